// Node commands about the node itself, its devices and its configuration.
#include <caf/all.hpp>

#include "actors/node/node_impl.hpp"
#include "actors/node/rollback_detail.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/store/manifest.hpp"
#include "runtime/components/system_config_ops.hpp"
#include "simd/cpu_features.hpp"

#include <unistd.h>

namespace dsmil {

namespace {

json health_json(const device_health* h) {
  if (h == nullptr)
    return {{"breaker", "unknown"}, {"restarts", 0}, {"failures", 0}, {"given_up", false}};
  return {{"breaker", h->breaker},
          {"restarts", h->restarts},
          {"failures", h->failures},
          {"given_up", h->given_up}};
}

json fault_json(const fault_spec& f) {
  return {{"error_rate", f.error_rate},
          {"latency_ms", f.latency_ms},
          {"offline", f.offline},
          {"stuck_register", f.stuck_register},
          {"thermal_spike", f.thermal_spike}};
}

const device_health* find_health(const std::vector<device_health>& all, device_id id) {
  for (auto& h : all)
    if (h.id == id) return &h;
  return nullptr;
}

} // namespace

control_reply cmd_status(node_context& ctx, actor_calls& calls, const json&) {
  auto health = calls.health();
  if (!health) return error_reply(health.err());
  int quarantined = 0, critical = 0, open = 0, given_up = 0;
  uint64_t restarts = 0;
  for (auto& d : ctx.cfg.devices.devices()) {
    quarantined += d.quarantined;
    critical += d.critical;
  }
  for (auto& h : *health) {
    open += h.breaker != "closed";
    given_up += h.given_up;
    restarts += h.restarts;
  }
  auto list = ctx.store->list();
  json body = {
      {"node",
       {{"pid", ::getpid()},
        {"listen", ctx.cfg.listen_host + ":" + std::to_string(ctx.published_port->load())},
        {"data_dir", ctx.cfg.data_dir},
        {"config", ctx.cfg.source},
        {"uptime_s", (ctx.os->now_unix_ns() - ctx.started_ns) / 1000000000},
        {"cpu", simd::describe(simd::detect_cpu())}}},
      {"devices",
       {{"total", ctx.cfg.devices.devices().size()},
        {"backend", ctx.cfg.backend},
        {"quarantined", quarantined},
        {"critical", critical},
        {"breakers_not_closed", open},
        {"actor_restarts", restarts},
        {"given_up", given_up}}},
      {"checkpoints",
       {{"count", list.size()},
        {"latest", list.empty() ? json(nullptr) : json(list.back().id)},
        {"store", ctx.store->dir()},
        {"chunks", ctx.store->chunk_count()}}},
      {"keys", {{"provider", ctx.store->key().provider()}, {"key_id", ctx.store->key().key_id()}}},
      {"configuration", to_json(ctx.configuration->get())},
  };
  // Free space and the reserve kept for a rollback's safety net.
  json warnings = json::array();
  auto fs = ctx.os->space(ctx.store->dir());
  body["store_free_bytes"] = fs ? json(fs->free) : json(nullptr);
  body["store_reserve_bytes"] = ctx.reserve->held();
  if (ctx.reserve->held() < ctx.reserve->wanted())
    warnings.push_back("the space reserve is not held (" + std::to_string(ctx.reserve->held()) +
                       " of " + std::to_string(ctx.reserve->wanted()) +
                       " bytes): a rollback may not find room for its pre-rollback checkpoint; "
                       "free space (checkpoint delete, store gc)");
  else if (fs && fs->free < ctx.reserve->held())
    warnings.push_back("free space on the store's file system (" + std::to_string(fs->free) +
                       " bytes) is below the reserve (" + std::to_string(ctx.reserve->held()) +
                       "); new checkpoints may fail: free space (checkpoint delete, store gc)");
  // A rollback that could not put everything back is reported until a later
  // rollback settles it (the newest ended saga decides; refused ones change
  // nothing).
  body["compensation_incomplete"] = nullptr;
  if (auto saga = rollback_detail::incomplete_compensation(ctx)) {
    const auto id = (*saga)["id"].get<std::string>();
    auto failed = saga->value("compensation_failed", json::array());
    body["compensation_incomplete"] = {{"saga", id}, {"failed", failed}};
    std::string items;
    for (auto& f : failed)
      items += (items.empty() ? "" : ", ") + f.value("id", "?");
    warnings.push_back("rollback " + id + " could not put back " + items +
                       ": they may be neither at the checkpoint nor at the pre-rollback state; "
                       "the node keeps trying, or roll back again once they answer ('dsmilctl "
                       "rollback show " +
                       id + "')");
  }
  // The handlers of the other components: breaker, restarts, calls waiting.
  json components = json::array();
  for (auto& h : ctx.handlers) {
    auto ch = calls.health(h);
    if (!ch) {
      components.push_back({{"name", h.name}, {"error", ch.err().message}});
      warnings.push_back("component " + h.name + "'s handler does not answer: " + ch.err().message);
      continue;
    }
    components.push_back({{"name", ch->name},
                          {"optional", ch->optional},
                          {"breaker", ch->breaker},
                          {"failures", ch->failures},
                          {"restarts", ch->restarts},
                          {"in_flight", ch->in_flight},
                          {"oldest_call_ms", ch->oldest_call_ms}});
    if (ch->breaker == "open")
      warnings.push_back("component " + h.name + " is failing: its breaker is open after " +
                         std::to_string(ch->failures) +
                         " failed calls; checkpoints fail (or leave it out, when optional) "
                         "until it answers again");
    if (ch->in_flight > 0 && ch->oldest_call_ms > ctx.cfg.component_call_timeout_ms)
      warnings.push_back("component " + h.name + " has not answered a call for " +
                         std::to_string(ch->oldest_call_ms / 1000) +
                         " s: it may hang; what is asked of it next waits behind that call");
  }
  body["components"] = components;
  body["warnings"] = warnings;
  return ok_reply(body);
}

control_reply cmd_device_list(node_context& ctx, actor_calls& calls, const json&) {
  std::vector<device_id> ids;
  for (auto& d : ctx.cfg.devices.devices())
    ids.push_back(d.id);
  std::vector<std::pair<device_id, error>> errors;
  auto states = calls.read_many(ids, errors);
  auto health = calls.health();
  std::vector<device_health> none;
  const auto& hv = health ? *health : none;
  json out = json::array();
  size_t si = 0;
  for (auto& d : ctx.cfg.devices.devices()) {
    json row = {{"id", format_device_id(d.id)},
                {"name", d.name},
                {"group", d.group},
                {"quarantined", d.quarantined},
                {"critical", d.critical}};
    if (si < states.size() && states[si].id == d.id) {
      auto& s = states[si++];
      row["enabled"] = s.enabled;
      row["security_level"] = s.security_level;
      row["temperature_c"] = s.temperature_c;
    } else {
      for (auto& [id, e] : errors)
        if (id == d.id) row["error"] = e.message;
    }
    auto h = health_json(find_health(hv, d.id));
    row["breaker"] = h["breaker"];
    row["restarts"] = h["restarts"];
    out.push_back(std::move(row));
  }
  return ok_reply({{"devices", out}});
}

namespace {

json device_json(node_context& ctx, actor_calls& calls, const device_state& s) {
  auto* info = ctx.cfg.devices.find(s.id);
  auto& group = ctx.cfg.devices.groups()[info->group];
  auto health = calls.health();
  json body = {
      {"id", format_device_id(s.id)},
      {"name", info->name},
      {"group", info->group},
      {"group_role", group.role},
      {"quarantined", info->quarantined},
      {"critical", info->critical},
      {"enabled", s.enabled},
      {"security_level", s.security_level},
      {"temperature_c", s.temperature_c},
      {"last_activity",
       s.last_activity_ns == 0 ? json(nullptr) : json(format_time(s.last_activity_ns))},
      {"registers", s.registers},
      {"config_blob", to_hex(s.config_blob.data(), s.config_blob.size())},
      {"config_blob_sha256", sha256_hex(std::string(s.config_blob.begin(), s.config_blob.end()))},
      {"health", health_json(health ? find_health(*health, s.id) : nullptr)},
      {"faults", fault_json(ctx.sim->fault(s.id))},
  };
  if (info->quarantined) body["quarantine_reason"] = info->quarantine_reason;
  if (info->critical) body["critical_role"] = info->critical_role;
  return body;
}

} // namespace

control_reply cmd_device_show(node_context& ctx, actor_calls& calls, const json& args) {
  auto id = arg_device(ctx, args);
  if (!id) return error_reply(id.err());
  auto s = calls.read(*id);
  if (!s) return error_reply(s.err());
  return ok_reply(device_json(ctx, calls, *s));
}

control_reply cmd_device_set(node_context& ctx, actor_calls& calls, const json& args) {
  auto id = arg_device(ctx, args);
  if (!id) return error_reply(id.err());
  device_patch p;
  p.id = *id;
  bool any = false;
  if (args.contains("register") || args.contains("value")) {
    if (!args.contains("register") || !args.contains("value"))
      return error_reply(make_error(errc::invalid_argument, "--register and --value go together"));
    auto reg = args["register"].get<int64_t>();
    auto val = args["value"].get<int64_t>();
    if (reg < 0 || val < 0 || val > 0xFFFFFFFFll)
      return error_reply(make_error(errc::invalid_argument,
                                    "register must be >= 0 and value a 32-bit unsigned number"));
    p.register_index.push_back(static_cast<uint32_t>(reg));
    p.register_value.push_back(static_cast<uint32_t>(val));
    any = true;
  }
  if (args.contains("enabled")) {
    p.enabled = args["enabled"].get<bool>() ? 1 : 0;
    any = true;
  }
  if (args.contains("security_level")) {
    auto l = args["security_level"].get<int64_t>();
    if (l < 0 || l > max_security_level)
      return error_reply(make_error(errc::invalid_argument, "security level must be 0-4"));
    p.security_level = static_cast<int8_t>(l);
    any = true;
  }
  if (!any)
    return error_reply(make_error(errc::invalid_argument,
                                  "nothing to set: give --register N --value V, --enable, "
                                  "--disable or --security-level L"));
  auto s = calls.write(p);
  if (!s) return error_reply(s.err());
  return ok_reply(device_json(ctx, calls, *s));
}

control_reply cmd_device_fault(node_context& ctx, actor_calls&, const json& args) {
  auto id = arg_device(ctx, args);
  if (!id) return error_reply(id.err());
  fault_spec f = args.value("clear", false) ? fault_spec{} : ctx.sim->fault(*id);
  if (args.contains("error_rate")) f.error_rate = args["error_rate"].get<double>();
  if (args.contains("latency_ms")) f.latency_ms = args["latency_ms"].get<uint32_t>();
  if (args.contains("offline")) f.offline = args["offline"].get<bool>();
  if (args.contains("stuck_register")) f.stuck_register = args["stuck_register"].get<int32_t>();
  if (args.contains("thermal_spike")) f.thermal_spike = args["thermal_spike"].get<bool>();
  if (f.error_rate < 0 || f.error_rate > 1)
    return error_reply(make_error(errc::invalid_argument, "error rate must be 0-1"));
  ctx.sim->set_fault(*id, f);
  return ok_reply({{"id", format_device_id(*id)}, {"faults", fault_json(f)}});
}

control_reply cmd_device_crash(node_context& ctx, actor_calls& calls, const json& args) {
  auto id = arg_device(ctx, args);
  if (!id) return error_reply(id.err());
  calls.self()->send(ctx.devices, crash_atom::value, *id);
  return ok_reply({{"id", format_device_id(*id)}, {"crashed", true}});
}

control_reply cmd_config_show(node_context& ctx, actor_calls&, const json&) {
  return ok_reply(to_json(ctx.configuration->get()));
}

control_reply cmd_config_set(node_context& ctx, actor_calls&, const json& args) {
  auto key = arg_string(args, "key");
  if (!key) return error_reply(key.err());
  if (!args.contains("value") || !args["value"].is_string())
    return error_reply(make_error(errc::invalid_argument, "missing argument 'value'"));
  if (auto err = ctx.configuration->set(*key, args["value"].get<std::string>()))
    return error_reply(err);
  return ok_reply(to_json(ctx.configuration->get()));
}

} // namespace dsmil
