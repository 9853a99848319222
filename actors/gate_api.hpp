// The control endpoint as remote clients see it (dsmilctl, other nodes,
// the benchmark): the one actor a node publishes, over mutual TLS. A
// command is a request signed over a nonce the node issued (actors/
// messages.hpp: signed_request); the first on a connection asks for one,
// every answer brings the next. The gate checks who signed it,
// their role against the command's class, audits, and hands the typed
// request to the node (actors/node/control_gate.hpp).
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace dsmil {

using gate_api = caf::typed_actor<caf::replies_to<challenge_request>::with<challenge>,
                                  caf::replies_to<signed_request>::with<signed_reply>>;

} // namespace dsmil
