#include "bench/node_client.hpp"

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace dsmil::bench {

result<nlohmann::json> ask(caf::actor_system& sys, const caf::actor& control,
                           const std::string& command, const nlohmann::json& args,
                           std::chrono::seconds timeout) {
  caf::scoped_actor self{sys};
  result<nlohmann::json> out = make_error(errc::internal, "no reply");
  self->request(control, timeout, control_request{command, args.dump()})
      .receive(
          [&](control_reply& r) {
            if (r.code != 0)
              out = make_error(static_cast<errc>(r.code), command + ": " + r.message);
            else
              out = nlohmann::json::parse(r.body);
          },
          [&](caf::error& e) { out = make_error(errc::unavailable, caf::to_string(e)); });
  return out;
}

} // namespace dsmil::bench
