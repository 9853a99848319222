// Helpers shared by the node's command files: replies, arguments, and the
// JSON of checkpoints and of the system configuration.
#include "actors/node/node_impl.hpp"

namespace dsmil {

// -- shared helpers ---------------------------------------------------------------

control_reply ok_reply(const json& body) {
  return control_reply{0, "", body.dump()};
}

control_reply error_reply(const error& e, const json& body) {
  json b = body;
  b["error"] = {{"code", to_string(e.code)}, {"message", e.message}};
  return control_reply{static_cast<uint8_t>(e.code), e.message, b.dump()};
}

result<std::string> arg_string(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_string() || it->get<std::string>().empty())
    return make_error(errc::invalid_argument, std::string("missing argument '") + key + "'");
  return it->get<std::string>();
}

result<device_id> arg_device(const node_context& ctx, const json& args, const char* key) {
  auto s = arg_string(args, key);
  if (!s) return s.err();
  return parse_device_id(*s, ctx.cfg.devices);
}

json to_json(const checkpoint_info& i) {
  return {{"id", i.id},
          {"name", i.name},
          {"description", i.description},
          {"type", enum_name(i.type)},
          {"created_at", i.created_at},
          {"parent", i.parent_id.empty() ? json(nullptr) : json(i.parent_id)},
          {"devices", i.device_count},
          {"logical_bytes", i.logical_bytes},
          {"new_bytes", i.new_bytes},
          {"key_id", i.key_id},
          {"pinned", i.pinned},
          {"provider", i.provider}};
}

json to_json(const system_config& c) {
  return {{"config_version", c.config_version},
          {"avx512_present", c.avx512_present},
          {"agent_concurrency_limit", c.agent_concurrency_limit},
          {"thermal_threshold_c", c.thermal_threshold_c},
          {"config_data", c.config_data}};
}

} // namespace dsmil
