#include "bench/node_client.hpp"

#include <caf/all.hpp>

#include "actors/node_client.hpp"
#include "actors/remote_client.hpp"

namespace dsmil::bench {

result<nlohmann::json> ask(caf::actor_system& sys, const node_api& control,
                           const std::string& command, const nlohmann::json& args,
                           std::chrono::seconds timeout) {
  auto r = ask_node(sys, control, timeout, command, args);
  if (!r) return make_error(errc::unavailable, r.err().message);
  if (r->code != 0) return make_error(static_cast<errc>(r->code), command + ": " + r->message);
  return nlohmann::json::parse(r->body);
}

result<nlohmann::json> ask(caf::actor_system& sys, const gate_api& gate,
                           const request_signer& signer, const std::string& command,
                           const nlohmann::json& args, std::chrono::seconds timeout) {
  auto r = ask_gate(sys, gate, signer, timeout, command, args);
  if (!r) return make_error(errc::unavailable, r.err().message);
  if (r->code != 0) return make_error(static_cast<errc>(r->code), command + ": " + r->message);
  return nlohmann::json::parse(r->body);
}

} // namespace dsmil::bench
