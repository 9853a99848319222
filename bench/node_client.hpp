// One control request to a node, for the benchmarks that drive one.
#pragma once

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "actors/gate_api.hpp"
#include "actors/node_api.hpp"
#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"
#include "runtime/auth/pki.hpp"

namespace dsmil::bench {

/// Sends `command` with `args` to the node's control actor `control` from
/// `sys` and waits for the answer: its JSON body, or its error (the node's
/// code and line, or unavailable when no answer came within `timeout`).
result<nlohmann::json> ask(caf::actor_system& sys, const node_api& control,
                           const std::string& command, const nlohmann::json& args,
                           std::chrono::seconds timeout = std::chrono::seconds(120));

/// The same through a node's control gate (mutual TLS), signed by `signer`.
result<nlohmann::json> ask(caf::actor_system& sys, const gate_api& gate,
                           const request_signer& signer, const std::string& command,
                           const nlohmann::json& args,
                           std::chrono::seconds timeout = std::chrono::seconds(120));

} // namespace dsmil::bench
