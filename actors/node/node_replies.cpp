// Helpers shared by the node's command files: replies, arguments, and the
// JSON of checkpoints and of the system configuration.
#include <spdlog/spdlog.h>

#include "actors/node/node_impl.hpp"
#include "dsmil/fields_json.hpp"

namespace dsmil {

// -- shared helpers ---------------------------------------------------------------

control_reply ok_reply(const json& body) {
  return control_reply{0, "", body.dump()};
}

control_reply with_warnings(control_reply reply, const std::vector<std::string>& warnings) {
  if (warnings.empty()) return reply;
  auto body = json::parse(reply.body, nullptr, false);
  if (!body.is_object()) return reply;
  auto& w = body["warnings"];
  if (!w.is_array()) w = json::array();
  for (auto& line : warnings)
    w.push_back(line);
  reply.body = body.dump();
  return reply;
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

result<device_id> arg_device(const node_context& ctx, const std::string& id) {
  if (auto err = require(id, "id")) return err;
  return parse_device_id(id, ctx.cfg.devices);
}

error require(const std::string& value, const char* name) {
  if (!value.empty()) return {};
  return make_error(errc::invalid_argument, std::string("missing argument '") + name + "'");
}

checkpoint_view to_view(const checkpoint_info& i) {
  checkpoint_view v;
  v.id = i.id;
  v.name = i.name;
  v.description = i.description;
  v.type = enum_name(i.type);
  v.created_at = i.created_at;
  if (!i.parent_id.empty()) v.parent = i.parent_id;
  v.devices = i.device_count;
  v.logical_bytes = i.logical_bytes;
  v.new_bytes = i.new_bytes;
  v.key_id = i.key_id;
  v.pinned = i.pinned;
  v.provider = i.provider;
  return v;
}

answer<rollback_reply> to_rollback_answer(const control_reply& r) {
  answer<rollback_reply> out{static_cast<errc>(r.code), r.message, {}};
  auto body = json::parse(r.body, nullptr, false);
  if (body.is_object()) body.erase("error"); // the answer carries it
  if (!body.is_object() || body.empty()) return out;
  rollback_reply typed;
  auto why = from_json_fields(body, typed);
  if (!why.empty()) {
    // The rollback has run: its outcome stands; only its details are lost.
    spdlog::error("a rollback's reply does not fit rollback_reply ({}); answering without its "
                  "details",
                  why);
    return out;
  }
  out.body = std::move(typed);
  return out;
}

} // namespace dsmil
