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

device_health_view health_view(const device_health* h) {
  device_health_view v;
  if (h == nullptr) return v;
  v.breaker = h->breaker;
  v.restarts = h->restarts;
  v.failures = h->failures;
  v.given_up = h->given_up;
  return v;
}

device_faults faults_view(const fault_spec& f) {
  return device_faults{f.error_rate, f.latency_ms, f.offline, f.stuck_register, f.thermal_spike};
}

const device_health* find_health(const std::vector<device_health>& all, device_id id) {
  for (auto& h : all)
    if (h.id == id) return &h;
  return nullptr;
}

} // namespace

answer<status_reply> run(node_context& ctx, actor_calls& calls, const status_request&) {
  auto health = calls.health();
  if (!health) return fail(health.err());
  status_reply r;
  auto& devices = r.devices;
  for (auto& d : ctx.cfg.devices.devices()) {
    devices.quarantined += d.quarantined;
    devices.critical += d.critical;
  }
  for (auto& h : *health) {
    devices.breakers_not_closed += h.breaker != "closed";
    devices.given_up += h.given_up;
    devices.actor_restarts += h.restarts;
  }
  devices.total = ctx.cfg.devices.devices().size();
  devices.backend = ctx.cfg.backend;
  r.node = {::getpid(),
            ctx.endpoint->get(),
            ctx.cfg.data_dir,
            ctx.cfg.source,
            (ctx.os->now_unix_ns() - ctx.started_ns) / 1000000000,
            simd::describe(simd::detect_cpu())};
  auto list = ctx.store->list();
  r.checkpoints.count = list.size();
  if (!list.empty()) r.checkpoints.latest = list.back().id;
  r.checkpoints.store = ctx.store->dir();
  r.checkpoints.chunks = ctx.store->chunk_count();
  r.keys = {ctx.store->key().provider(), ctx.store->key().key_id()};
  r.configuration = ctx.configuration->get();
  // Free space and the reserve kept for a rollback's safety net.
  auto& warnings = r.warnings;
  auto fs = ctx.os->space(ctx.store->dir());
  if (fs) r.store_free_bytes = fs->free;
  r.store_reserve_bytes = ctx.reserve->held();
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
  if (auto saga = rollback_detail::incomplete_compensation(ctx)) {
    const auto id = (*saga)["id"].get<std::string>();
    auto failed = saga->value("compensation_failed", json::array());
    r.compensation_incomplete = compensation_view{id, failed};
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
  for (auto& h : ctx.handlers) {
    auto ch = calls.health(h);
    component_status c;
    c.name = h.name;
    if (!ch) {
      c.error = ch.err().message;
      r.components.push_back(c);
      warnings.push_back("component " + h.name + "'s handler does not answer: " + ch.err().message);
      continue;
    }
    c.optional = ch->optional;
    c.breaker = ch->breaker;
    c.failures = ch->failures;
    c.restarts = ch->restarts;
    c.in_flight = ch->in_flight;
    c.oldest_call_ms = ch->oldest_call_ms;
    r.components.push_back(c);
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
  std::lock_guard<std::mutex> lock(ctx.saga_mu);
  if (ctx.running)
    r.rollback = running_rollback{ctx.running->id, ctx.running->type, ctx.running->target,
                                  enum_name(ctx.running->phase.load()), ctx.emergency_waiting};
  return ok(std::move(r));
}

answer<device_list_reply> run(node_context& ctx, actor_calls& calls, const device_list_request&) {
  std::vector<device_id> ids;
  for (auto& d : ctx.cfg.devices.devices())
    ids.push_back(d.id);
  std::vector<std::pair<device_id, error>> errors;
  auto states = calls.read_many(ids, errors);
  auto health = calls.health();
  std::vector<device_health> none;
  const auto& hv = health ? *health : none;
  device_list_reply out;
  size_t si = 0;
  for (auto& d : ctx.cfg.devices.devices()) {
    device_row row;
    row.id = format_device_id(d.id);
    row.name = d.name;
    row.group = d.group;
    row.quarantined = d.quarantined;
    row.critical = d.critical;
    if (si < states.size() && states[si].id == d.id) {
      auto& s = states[si++];
      row.enabled = s.enabled;
      row.security_level = s.security_level;
      row.temperature_c = s.temperature_c;
    } else {
      for (auto& [id, e] : errors)
        if (id == d.id) row.error = e.message;
    }
    auto h = health_view(find_health(hv, d.id));
    row.breaker = h.breaker;
    row.restarts = h.restarts;
    out.devices.push_back(std::move(row));
  }
  return ok(std::move(out));
}

namespace {

device_reply device_view(node_context& ctx, actor_calls& calls, const device_state& s) {
  auto* info = ctx.cfg.devices.find(s.id);
  auto& group = ctx.cfg.devices.groups()[info->group];
  auto health = calls.health();
  device_reply r;
  r.id = format_device_id(s.id);
  r.name = info->name;
  r.group = info->group;
  r.group_role = group.role;
  r.quarantined = info->quarantined;
  r.critical = info->critical;
  r.enabled = s.enabled;
  r.security_level = s.security_level;
  r.temperature_c = s.temperature_c;
  if (s.last_activity_ns != 0) r.last_activity = format_time(s.last_activity_ns);
  r.registers = s.registers;
  r.config_blob = to_hex(s.config_blob.data(), s.config_blob.size());
  r.config_blob_sha256 = sha256_hex(std::string(s.config_blob.begin(), s.config_blob.end()));
  r.health = health_view(health ? find_health(*health, s.id) : nullptr);
  r.faults = faults_view(ctx.sim->fault(s.id));
  if (info->quarantined) r.quarantine_reason = info->quarantine_reason;
  if (info->critical) r.critical_role = info->critical_role;
  return r;
}

} // namespace

answer<device_reply> run(node_context& ctx, actor_calls& calls, const device_show_request& req) {
  auto id = arg_device(ctx, req.id);
  if (!id) return fail(id.err());
  auto s = calls.read(*id);
  if (!s) return fail(s.err());
  return ok(device_view(ctx, calls, *s));
}

answer<device_reply> run(node_context& ctx, actor_calls& calls, const device_set_request& req) {
  auto id = arg_device(ctx, req.id);
  if (!id) return fail(id.err());
  device_patch p;
  p.id = *id;
  bool any = false;
  if (req.register_index || req.value) {
    if (!req.register_index || !req.value)
      return fail(make_error(errc::invalid_argument, "--register and --value go together"));
    auto reg = *req.register_index;
    auto val = *req.value;
    if (reg < 0 || val < 0 || val > 0xFFFFFFFFll)
      return fail(make_error(errc::invalid_argument,
                             "register must be >= 0 and value a 32-bit unsigned number"));
    p.register_index.push_back(static_cast<uint32_t>(reg));
    p.register_value.push_back(static_cast<uint32_t>(val));
    any = true;
  }
  if (req.enabled) {
    p.enabled = *req.enabled ? 1 : 0;
    any = true;
  }
  if (req.security_level) {
    auto l = *req.security_level;
    if (l < 0 || l > max_security_level)
      return fail(make_error(errc::invalid_argument, "security level must be 0-4"));
    p.security_level = static_cast<int8_t>(l);
    any = true;
  }
  if (!any)
    return fail(make_error(errc::invalid_argument,
                           "nothing to set: give --register N --value V, --enable, "
                           "--disable or --security-level L"));
  auto s = calls.write(p);
  if (!s) return fail(s.err());
  return ok(device_view(ctx, calls, *s));
}

answer<device_fault_reply> run(node_context& ctx, actor_calls&, const device_fault_request& req) {
  auto id = arg_device(ctx, req.id);
  if (!id) return fail(id.err());
  fault_spec f = req.clear ? fault_spec{} : ctx.sim->fault(*id);
  if (req.error_rate) f.error_rate = *req.error_rate;
  if (req.latency_ms) {
    if (*req.latency_ms < 0 || *req.latency_ms > UINT32_MAX)
      return fail(make_error(errc::invalid_argument, "latency must be 0 or more milliseconds"));
    f.latency_ms = static_cast<uint32_t>(*req.latency_ms);
  }
  if (req.offline) f.offline = *req.offline;
  if (req.stuck_register) {
    if (*req.stuck_register < -1 || *req.stuck_register > INT32_MAX)
      return fail(make_error(errc::invalid_argument,
                             "stuck register must be a register index, or -1 for none"));
    f.stuck_register = static_cast<int32_t>(*req.stuck_register);
  }
  if (req.thermal_spike) f.thermal_spike = *req.thermal_spike;
  if (f.error_rate < 0 || f.error_rate > 1)
    return fail(make_error(errc::invalid_argument, "error rate must be 0-1"));
  ctx.sim->set_fault(*id, f);
  return ok(device_fault_reply{format_device_id(*id), faults_view(f)});
}

answer<device_crash_reply> run(node_context& ctx, actor_calls& calls,
                               const device_crash_request& req) {
  auto id = arg_device(ctx, req.id);
  if (!id) return fail(id.err());
  calls.self()->send(ctx.devices, crash_atom::value, *id);
  return ok(device_crash_reply{format_device_id(*id), true});
}

answer<system_config> run(node_context& ctx, actor_calls&, const config_show_request&) {
  return ok(ctx.configuration->get());
}

answer<system_config> run(node_context& ctx, actor_calls&, const config_set_request& req) {
  if (auto err = require(req.key, "key")) return fail(err);
  if (!req.value) return fail(make_error(errc::invalid_argument, "missing argument 'value'"));
  if (auto err = ctx.configuration->set(req.key, *req.value)) return fail(err);
  return ok(ctx.configuration->get());
}

} // namespace dsmil
