#include "runtime/saga/plan.hpp"

#include "runtime/store/store.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace dsmil {

device_diff diff_device(const device_state& current, const device_state& target) {
  device_diff d;
  d.id = target.id;
  size_t n = std::max(current.registers.size(), target.registers.size());
  for (size_t i = 0; i < n; ++i) {
    bool same = i < current.registers.size() && i < target.registers.size() &&
                current.registers[i] == target.registers[i];
    if (!same) d.registers.push_back(static_cast<uint32_t>(i));
  }
  d.blob = current.config_blob != target.config_blob;
  d.enabled = current.enabled != target.enabled;
  d.security_level = current.security_level != target.security_level;
  return d;
}

result<rollback_plan> plan_rollback(const device_map& map, const checkpoint_contents& target,
                                    const std::vector<device_state>& current,
                                    const system_config& current_config,
                                    const rollback_selection& selection) {
  std::set<device_id> wanted;
  for (auto id : selection.devices) {
    if (map.find(id) == nullptr)
      return make_error(errc::no_such_device, "no such device " + format_device_id(id));
    wanted.insert(id);
  }
  for (auto g : selection.groups) {
    if (g >= group_count)
      return make_error(errc::invalid_argument,
                        "no such group " + std::to_string(g) + "; groups are 0-6");
    for (auto& d : map.devices())
      if (d.group == g) wanted.insert(d.id);
  }
  std::vector<uint8_t> dependents;
  if (selection.full()) {
    for (auto& d : map.devices())
      wanted.insert(d.id);
  } else {
    // Groups that depend on a selected one follow it back: their devices
    // were configured against its state.
    std::set<uint8_t> in;
    for (auto id : wanted)
      in.insert(map.find(id)->group);
    for (bool grew = true; grew;) {
      grew = false;
      for (auto g : map.restore_order()) {
        if (in.count(g)) continue;
        for (auto dep : map.groups()[g].depends_on)
          if (in.count(dep)) {
            in.insert(g);
            dependents.push_back(g);
            grew = true;
            break;
          }
      }
    }
    for (auto g : dependents)
      for (auto& d : map.devices())
        if (d.group == g) wanted.insert(d.id);
  }

  std::map<device_id, const device_state*> now, then;
  for (auto& s : current)
    now[s.id] = &s;
  for (auto& s : target.devices)
    then[s.id] = &s;

  rollback_plan plan;
  plan.dependents = std::move(dependents);
  plan.restore_configuration = selection.full();
  plan.configuration_differs = !current_config.same_restorable(target.configuration);

  for (auto group : map.restore_order()) {
    for (auto& info : map.devices()) {
      if (info.group != group || !wanted.count(info.id)) continue;
      auto t = then.find(info.id);
      auto c = now.find(info.id);
      const std::string name = format_device_id(info.id) + " (" + info.name + ")";
      if (t == then.end()) {
        plan.warnings.push_back("device " + name + " is not in the checkpoint: left as it is");
        continue;
      }
      if (c == now.end()) return make_error(errc::internal, "no current state for " + name);
      auto diff = diff_device(*c->second, *t->second);
      if (info.quarantined) {
        plan.quarantined.push_back(info.id);
        if (diff.any())
          plan.warnings.push_back("device " + name + " is quarantined (" + info.quarantine_reason +
                                  "): it differs from the checkpoint but is never written");
        continue;
      }
      plan.devices.push_back(info.id);
      if (!diff.any()) continue;
      if (c->second->enabled && !t->second->enabled)
        plan.warnings.push_back("device " + name + " will be disabled");
      if (t->second->security_level < c->second->security_level)
        plan.warnings.push_back("device " + name + " security level will drop from " +
                                std::to_string(c->second->security_level) + " to " +
                                std::to_string(t->second->security_level));
      if (info.critical) {
        plan.critical_changes.push_back(info.id);
        plan.warnings.push_back("critical device " + name + " (" + info.critical_role +
                                ") will change; needs --ack-critical");
      }
      plan.diffs.push_back(std::move(diff));
    }
  }
  return plan;
}

} // namespace dsmil
