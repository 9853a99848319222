// The rollback command: validation, preparation, execution, verification,
// cleanup. Restores groups in dependency order; the verification phase reads
// every restored device back and compares it with the checkpoint bit for bit.
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node_impl.hpp"
#include "runtime/rollback_plan.hpp"
#include "runtime/system_config_ops.hpp"

namespace dsmil {

namespace {

std::string describe_mismatch(const device_state& got, const device_state& want) {
  auto d = diff_device(got, want);
  std::string s;
  for (auto r : d.registers) {
    if (r >= got.registers.size() || r >= want.registers.size()) continue;
    char buf[96];
    std::snprintf(buf, sizeof(buf), "register %u reads 0x%08x, checkpoint has 0x%08x; ", r,
                  got.registers[r], want.registers[r]);
    s += buf;
  }
  if (d.blob) s += "config blob differs; ";
  if (d.enabled) s += "enabled flag differs; ";
  if (d.security_level) s += "security level differs; ";
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

json diff_json(const device_diff& d) {
  return {{"id", format_device_id(d.id)},
          {"registers", d.registers},
          {"config_blob", d.blob},
          {"enabled", d.enabled},
          {"security_level", d.security_level}};
}

json ids_json(const std::vector<device_id>& ids) {
  json a = json::array();
  for (auto id : ids)
    a.push_back(format_device_id(id));
  return a;
}

} // namespace

control_reply cmd_rollback(node_context& ctx, device_calls& calls, const json& args) {
  const auto start = env::posix().steady_ns();
  const bool dry_run = args.value("dry_run", false);
  const bool ack = args.value("ack_critical", false);
  auto elapsed_ms = [&] { return static_cast<double>(env::posix().steady_ns() - start) / 1e6; };

  json result = {{"dry_run", dry_run},
                 {"success", false},
                 {"phases_completed", json::array()},
                 {"failed_phase", nullptr}};
  auto fail = [&](const char* phase, const error& e) {
    result["failed_phase"] = phase;
    result["duration_ms"] = elapsed_ms();
    return error_reply(e, result);
  };

  // -- validation ---------------------------------------------------------------
  auto id = arg_string(args, "id");
  if (!id) return fail("validation", id.err());
  auto resolved = ctx.store->resolve(*id);
  if (!resolved) return fail("validation", resolved.err());
  result["checkpoint"] = *resolved;
  rollback_selection sel;
  if (args.contains("devices"))
    for (auto& d : args["devices"]) {
      auto dev = parse_device_id(d.get<std::string>(), ctx.cfg.devices);
      if (!dev) return fail("validation", dev.err());
      sel.devices.push_back(*dev);
    }
  if (args.contains("groups"))
    for (auto& g : args["groups"]) {
      auto v = g.get<int64_t>();
      if (v < 0 || v >= group_count)
        return fail("validation",
                    make_error(errc::invalid_argument,
                               "no such group " + std::to_string(v) + "; groups are 0-6"));
      sel.groups.push_back(static_cast<uint8_t>(v));
    }
  result["type"] = sel.full() ? "full" : "selective";
  auto target = ctx.store->load(*resolved); // checks signature, roots and every chunk
  if (!target)
    return fail("validation",
                make_error(target.err().code, "checkpoint " + *resolved +
                                                  " failed verification: " + target.err().message));
  std::vector<device_id> ids;
  for (auto& d : ctx.cfg.devices.devices())
    ids.push_back(d.id);
  std::vector<std::pair<device_id, error>> errors;
  auto current = calls.read_many(ids, errors);
  auto plan = plan_rollback(ctx.cfg.devices, *target, current, ctx.configuration, sel);
  if (!plan) return fail("validation", plan.err());
  for (auto& [dev, e] : errors)
    if (std::find(plan->devices.begin(), plan->devices.end(), dev) != plan->devices.end())
      return fail("validation", make_error(e.code, "device " + format_device_id(dev) +
                                                       " cannot be read: " + e.message));
  json diffs = json::array();
  for (auto& d : plan->diffs)
    diffs.push_back(diff_json(d));
  result["plan"] = {{"configuration", plan->restore_configuration},
                    {"configuration_differs", plan->configuration_differs},
                    {"order", ids_json(plan->devices)},
                    {"differences", diffs}};
  auto warnings = plan->warnings;
  // The platform state today against the one the checkpoint was taken under.
  if (!target->security.pcrs.empty()) {
    auto now = ctx.store->key().read_pcrs();
    if (!now) {
      warnings.push_back("PCRs could not be read to compare with the checkpoint's (" +
                         now.err().message + ")");
    } else if (!now->empty()) {
      std::map<int, std::string> today(now->begin(), now->end());
      std::string differ;
      for (auto& [index, value] : target->security.pcrs) {
        auto it = today.find(index);
        if (it != today.end() && it->second != value)
          differ += (differ.empty() ? "" : ", ") + std::to_string(index);
      }
      if (!differ.empty())
        warnings.push_back("platform state differs from the checkpoint's: PCR " + differ +
                           " changed since it was taken");
    }
  }
  result["warnings"] = warnings;
  result["skipped_quarantined"] = ids_json(plan->quarantined);
  result["phases_completed"].push_back("validation");
  if (dry_run) {
    result["success"] = true;
    result["duration_ms"] = elapsed_ms();
    return ok_reply(result);
  }
  if (!plan->critical_changes.empty() && !ack) {
    std::string list;
    for (auto d : plan->critical_changes)
      list += (list.empty() ? "" : ", ") + format_device_id(d) + " (" +
              ctx.cfg.devices.find(d)->critical_role + ")";
    result["phases_completed"] = json::array();
    return fail("validation",
                make_error(errc::critical_unacknowledged,
                           "rollback would change critical device " + list +
                               "; review with --dry-run, then repeat with --ack-critical"));
  }

  // -- preparation: the current state of everything the rollback touches -----------
  std::map<device_id, device_state> target_by_id;
  for (auto& s : target->devices)
    target_by_id[s.id] = s;
  result["phases_completed"].push_back("preparation");

  // -- execution: configuration, then devices group by group -----------------------
  json rolled_back = json::array();
  json failed = json::array();
  if (plan->restore_configuration) {
    restore_config(ctx.configuration, target->configuration);
    rolled_back.push_back("configuration");
  }
  std::vector<device_id> restored;
  for (auto group : ctx.cfg.devices.restore_order()) {
    std::vector<device_patch> patches;
    for (auto dev : plan->devices)
      if (ctx.cfg.devices.find(dev)->group == group)
        patches.push_back(restore_patch(target_by_id[dev]));
    if (patches.empty()) continue;
    std::vector<std::pair<device_id, error>> write_errors;
    auto written = calls.write_many(patches, write_errors);
    for (auto& s : written)
      restored.push_back(s.id);
    if (!write_errors.empty()) {
      for (auto& [dev, e] : write_errors)
        failed.push_back({{"id", format_device_id(dev)}, {"error", e.message}});
      // Groups that depend on this one are not touched.
      result["rolled_back"] = {{"components", rolled_back}, {"devices", ids_json(restored)}};
      result["failed"] = failed;
      auto& [dev, e] = write_errors.front();
      return fail("execution",
                  make_error(errc::rollback_failed, "rollback stopped in group " +
                                                        std::to_string(group) + ": device " +
                                                        format_device_id(dev) + ": " + e.message));
    }
  }
  rolled_back.push_back("devices");
  result["rolled_back"] = {{"components", rolled_back}, {"devices", ids_json(restored)}};
  result["phases_completed"].push_back("execution");

  // -- verification: read back and compare bit for bit ---------------------------
  std::vector<std::pair<device_id, error>> read_errors;
  auto after = calls.read_many(restored, read_errors);
  for (auto& [dev, e] : read_errors)
    failed.push_back({{"id", format_device_id(dev)}, {"error", "cannot read back: " + e.message}});
  for (auto& s : after)
    if (!same_restorable_state(s, target_by_id[s.id]))
      failed.push_back(
          {{"id", format_device_id(s.id)}, {"error", describe_mismatch(s, target_by_id[s.id])}});
  if (plan->restore_configuration && !ctx.configuration.same_restorable(target->configuration))
    failed.push_back({{"id", "configuration"}, {"error", "configuration differs after restore"}});
  result["failed"] = failed;
  if (!failed.empty()) {
    auto first = failed.front();
    return fail("verification",
                make_error(errc::rollback_failed,
                           "verification failed for " + std::to_string(failed.size()) +
                               " item(s), first " + first["id"].get<std::string>() + ": " +
                               first["error"].get<std::string>()));
  }
  result["phases_completed"].push_back("verification");

  // -- cleanup: nothing is held between phases yet -----------------------------------
  result["phases_completed"].push_back("cleanup");
  result["success"] = true;
  result["duration_ms"] = elapsed_ms();
  spdlog::info("rollback to {} done: {} devices{}, {:.1f} ms", *resolved, restored.size(),
               plan->restore_configuration ? " and configuration" : "", elapsed_ms());
  return ok_reply(result);
}

} // namespace dsmil
