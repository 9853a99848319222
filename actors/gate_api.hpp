// The control endpoint as remote clients see it (dsmilctl, other nodes,
// the benchmark): the one actor a node publishes, over mutual TLS. Each
// command is two round trips: a nonce, then the request signed over it
// (actors/messages.hpp: signed_request). The gate checks who signed it,
// their role against the command's class, audits, and hands the typed
// request to the node (actors/node/control_gate.hpp).
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace dsmil {

using gate_api = caf::typed_actor<caf::replies_to<challenge_request>::with<challenge>,
                                  caf::replies_to<signed_request>::with<control_reply>>;

} // namespace dsmil
