// Rollback validation: the plan, its warnings and estimate, and the target
// checkpoint loaded and checked.
#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "runtime/components/system_config_ops.hpp"
#include "runtime/saga/journal.hpp"
#include "runtime/saga/plan.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace rollback_detail {

status validate(node_context& ctx, device_calls& calls, const json& args, json& result,
                validated& v, const std::function<void()>& on_current) {
  std::string type_name = args.value("type", std::string());
  const bool has_selection = args.contains("devices") || args.contains("groups");
  if (type_name.empty()) type_name = has_selection ? "selective" : "full";
  auto parsed = parse_enum<rollback_type>(type_name);
  if (!parsed)
    return make_error(errc::invalid_argument, "rollback type must be " +
                                                  enum_choices<rollback_type>() + ", got '" +
                                                  type_name + "'");
  const rollback_type type = *parsed;
  if (type == rollback_type::selective && !has_selection)
    return make_error(errc::invalid_argument,
                      "a selective rollback needs --devices or --groups (what to roll back)");
  if ((type == rollback_type::full || type == rollback_type::emergency) && has_selection)
    return make_error(errc::invalid_argument,
                      "a " + type_name +
                          " rollback restores everything; drop --devices/--groups or "
                          "use --type selective");
  v.type = type;
  result["type"] = type_name;

  std::string id;
  if (args.value("undo", false)) {
    // Undo: back to the state before the newest completed rollback.
    auto h = history(ctx);
    if (!h) return h.err();
    for (auto it = h->rbegin(); it != h->rend(); ++it)
      if ((*it)["outcome"] == "completed" && it->contains("pre_rollback")) {
        id = (*it)["pre_rollback"].get<std::string>();
        result["undoes"] = (*it)["id"];
        break;
      }
    if (id.empty())
      return make_error(errc::not_found, "no completed rollback to undo ('dsmilctl rollback "
                                         "history' lists them)");
  } else {
    auto a = arg_string(args, "id");
    if (!a) return a.err();
    id = *a;
  }
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto resolved = ctx.store->resolve(id);
    if (!resolved) return resolved.err();
    v.target_id = *resolved;
    result["checkpoint"] = *resolved;
    v.current_config = ctx.configuration;
  }
  rollback_selection sel;
  if (args.contains("devices"))
    for (auto& d : args["devices"]) {
      auto dev = parse_device_id(d.get<std::string>(), ctx.cfg.devices);
      if (!dev) return dev.err();
      sel.devices.push_back(*dev);
    }
  if (args.contains("groups"))
    for (auto& g : args["groups"]) {
      auto n = g.get<int64_t>();
      if (n < 0 || n >= group_count)
        return make_error(errc::invalid_argument,
                          "no such group " + std::to_string(n) + "; groups are 0-6");
      sel.groups.push_back(static_cast<uint8_t>(n));
    }
  std::vector<device_id> ids;
  for (auto& d : ctx.cfg.devices.devices())
    ids.push_back(d.id);
  std::vector<std::pair<device_id, error>> errors;
  v.current = calls.read_many(ids, errors);
  if (!errors.empty()) {
    // The pre-rollback checkpoint needs every device: without it there is
    // nothing to compensate to.
    auto& [dev, e] = errors.front();
    return make_error(e.code, "device " + format_device_id(dev) + " cannot be read (" + e.message +
                                  "); the pre-rollback checkpoint needs every device");
  }
  if (on_current) on_current();
  // The signature, roots and every chunk are checked on load; an emergency
  // rollback keeps this (it trusts nothing unsigned) and skips the rest. No
  // ctx.mu: while a saga runs nothing that changes the store is accepted,
  // and the store's index has its own lock.
  auto target = ctx.store->load(v.target_id);
  if (!target)
    return make_error(target.err().code, "checkpoint " + v.target_id +
                                             " failed verification: " + target.err().message);
  v.target = std::move(*target);
  auto plan = plan_rollback(ctx.cfg.devices, v.target, v.current, v.current_config, sel);
  if (!plan) return plan.err();
  v.plan = std::move(*plan);
  auto& p = v.plan;

  // Steps: what each type restores.
  std::set<device_id> differing;
  for (auto& d : p.diffs)
    differing.insert(d.id);
  const bool incremental = type == rollback_type::incremental;
  if (p.restore_configuration && (!incremental || p.configuration_differs))
    v.steps.push_back({"configuration", true, -1, {}});
  for (auto group : ctx.cfg.devices.restore_order()) {
    saga_step st{"group " + std::to_string(group), false, group, {}};
    for (auto dev : p.devices)
      if (ctx.cfg.devices.find(dev)->group == group && (!incremental || differing.count(dev)))
        st.devices.push_back(dev);
    if (!st.devices.empty()) v.steps.push_back(std::move(st));
  }

  json diffs = json::array();
  for (auto& d : p.diffs)
    diffs.push_back(diff_json(d));
  json steps = json::array();
  size_t planned = 0;
  for (auto& st : v.steps) {
    steps.push_back(to_json(st));
    planned += st.devices.size();
  }
  std::vector<device_id> order;
  for (auto& st : v.steps)
    order.insert(order.end(), st.devices.begin(), st.devices.end());
  result["plan"] = {{"configuration", std::any_of(v.steps.begin(), v.steps.end(),
                                                  [](auto& s) { return s.configuration; })},
                    {"configuration_differs", p.configuration_differs},
                    {"order", ids_json(order)},
                    {"steps", steps},
                    {"dependents", p.dependents},
                    {"differences", diffs}};

  auto warnings = p.warnings;
  if (type != rollback_type::emergency && !v.target.security.pcrs.empty()) {
    // The platform state today against the one the checkpoint was taken under.
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto now = ctx.store->key().read_pcrs();
    if (!now) {
      warnings.push_back("PCRs could not be read to compare with the checkpoint's (" +
                         now.err().message + ")");
    } else if (!now->empty()) {
      std::map<int, std::string> today(now->begin(), now->end());
      std::string differ;
      for (auto& [index, value] : v.target.security.pcrs) {
        auto it = today.find(index);
        if (it != today.end() && it->second != value)
          differ += (differ.empty() ? "" : ", ") + std::to_string(index);
      }
      if (!differ.empty())
        warnings.push_back("platform state differs from the checkpoint's: PCR " + differ +
                           " changed since it was taken");
    }
  }
  for (auto g : p.dependents)
    warnings.push_back("group " + std::to_string(g) +
                       " depends on the selection and is rolled back with it");
  result["warnings"] = warnings;
  result["skipped_quarantined"] = ids_json(p.quarantined);
  result["estimate"] = estimate(ctx, type_name, planned);
  return {};
}

} // namespace rollback_detail

} // namespace dsmil
