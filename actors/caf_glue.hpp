// The bridge between runtime errors and CAF: dsmil::errc is a CAF error
// category ("dsmil"), and an actor_system_config knows every message type.
#pragma once

#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/fwd.hpp>

#include "dsmil/errors.hpp"

CAF_ERROR_CODE_ENUM(dsmil::errc, "dsmil")

namespace dsmil {

/// A caf::error of category "dsmil" carrying the one-line message.
caf::error to_caf(const error& e);
/// Back from a caf::error; CAF's own errors (timeouts, dead actors,
/// unreachable nodes) become timeout / unavailable with a readable message.
error from_caf(const caf::error& e);

/// Registers the message types and the error category, and (unless
/// `with_middleman` is false, as in deterministic tests) loads the middleman
/// so the node can publish and reach remote actors.
void configure_actor_system(caf::actor_system_config& cfg, bool with_middleman = true);

} // namespace dsmil
