#include "actors/caf_glue.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/sec.hpp>

#include "actors/messages.hpp"

namespace dsmil {

caf::error to_caf(const error& e) {
  return caf::error{static_cast<uint8_t>(e.code), caf::atom("dsmil"), caf::make_message(e.message)};
}

error from_caf(const caf::error& e) {
  if (!e) return {};
  std::string ctx;
  if (e.context().match_elements<std::string>()) ctx = e.context().get_as<std::string>(0);
  if (e.category() == caf::atom("dsmil"))
    return make_error(static_cast<errc>(e.code()), ctx.empty() ? "unknown error" : ctx);
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
    case caf::sec::request_timeout:
      return make_error(errc::timeout, "the request timed out");
    case caf::sec::request_receiver_down:
      return make_error(errc::unavailable, "the actor serving the request went down");
    case caf::sec::cannot_connect_to_node:
      return make_error(errc::unavailable, "cannot connect to the node");
    default:
      break;
    }
  }
  return make_error(errc::internal, caf::to_string(e));
}

void configure_actor_system(caf::actor_system_config& cfg, bool with_middleman) {
  cfg.add_message_types<caf::id_block::dsmil>();
  cfg.add_error_category(
      caf::atom("dsmil"), [](uint8_t code, caf::atom_value, const caf::message& ctx) {
        std::string s = std::string("dsmil: ") + to_string(static_cast<errc>(code));
        if (ctx.match_elements<std::string>()) s += ": " + ctx.get_as<std::string>(0);
        return s;
      });
  if (with_middleman) cfg.load<caf::io::middleman>();
}

} // namespace dsmil
