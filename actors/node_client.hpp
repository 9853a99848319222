// Asking a node by command name, as dsmilctl, the tests and the benchmarks
// do: the name picks the typed request of dsmil/control.hpp, the JSON
// arguments fill it (unknown keys and wrong types are refused before
// anything is sent), and the typed answer comes back as the JSON
// `dsmilctl --json` prints.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "actors/node_api.hpp"
#include "dsmil/fields_json.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

/// An answer as a client prints it: code, line and the JSON of its body.
template <class T> control_reply to_control_reply(const answer<T>& a) {
  return control_reply{static_cast<uint8_t>(a.code), a.message, to_json_answer(a).dump()};
}

/// Sends `command` to `node` from the event-based actor `self`; `done` gets
/// the answer as control_reply (its body the reply's JSON), `failed` what
/// stopped it from coming (a timeout, a node gone). An unknown command, or
/// arguments that do not fit it, are answered by `done` at once with
/// invalid_argument.
void ask_node(caf::event_based_actor* self, const node_api& node, const caf::duration& timeout,
              const std::string& command, const nlohmann::json& args,
              std::function<void(control_reply&)> done, std::function<void(caf::error&)> failed);

/// The same, waiting for the answer; the error when none came.
result<control_reply> ask_node(caf::actor_system& sys, const node_api& node, caf::timespan timeout,
                               const std::string& command, const nlohmann::json& args);

} // namespace dsmil
