#include "runtime/components/devices_component.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "runtime/saga/plan.hpp"
#include "runtime/store/state_codec.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

using nlohmann::json;

namespace {

json ids_json(const std::vector<device_id>& ids) {
  json a = json::array();
  for (auto id : ids)
    a.push_back(format_device_id(id));
  return a;
}

json diff_json(const device_diff& d) {
  return {{"id", format_device_id(d.id)},
          {"registers", d.registers},
          {"config_blob", d.blob},
          {"enabled", d.enabled},
          {"security_level", d.security_level}};
}

// What differs between a device read back and the state it should have, for a person.
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

} // namespace

std::string devices_component::record_name(device_id id) {
  return format_device_id(id);
}

result<std::vector<device_state>> devices_component::decode(const component_image& image) {
  std::vector<device_state> out;
  for (auto& [name, bytes] : image.records) {
    auto s = decode_device(bytes);
    if (!s) return make_error(s.err().code, "device " + name + ": " + s.err().message);
    out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

std::vector<device_id> devices_component::all_ids() const {
  std::vector<device_id> ids;
  for (auto& d : map_.devices())
    ids.push_back(d.id);
  return ids;
}

result<component_image> devices_component::image_of(const std::vector<device_state>& states,
                                                    const device_errors& errors) {
  if (!errors.empty()) {
    auto& [id, e] = errors.front();
    return make_error(
        e.code,
        "device " + format_device_id(id) + " cannot be read (" + e.message + ")" +
            (errors.size() > 1 ? " and " + std::to_string(errors.size() - 1) + " more" : ""));
  }
  component_image image;
  for (auto& s : states)
    image.records.emplace(record_name(s.id), encode_device(s));
  return image;
}

result<component_image> devices_component::capture() {
  device_errors errors;
  auto states = port_.read_many(all_ids(), errors);
  return image_of(states, errors);
}

result<component_plan> devices_component::plan(const component_image& now,
                                               const component_image& target,
                                               const plan_request& request) {
  component_plan out;
  rollback_selection sel;
  if (!request.whole) {
    for (auto& item : request.items) {
      // Another component's item ("agent:ID"): not the devices'.
      if (item.find(':') != std::string::npos && item.rfind("group:", 0) != 0) continue;
      if (item.rfind("group:", 0) == 0) {
        const std::string n = item.substr(6);
        size_t used = 0;
        unsigned long g = 0;
        try {
          g = std::stoul(n, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != n.size() || g >= group_count)
          return make_error(errc::invalid_argument, "no such group " + n + "; groups are 0-6");
        sel.groups.push_back(static_cast<uint8_t>(g));
      } else {
        auto id = parse_device_id(item, map_);
        if (!id) return id.err();
        sel.devices.push_back(*id);
      }
    }
    if (sel.groups.empty() && sel.devices.empty()) return out; // not selected
  }
  auto current = decode(now);
  if (!current) return current.err();
  checkpoint_contents then;
  auto t = decode(target);
  if (!t) return t.err();
  then.devices = std::move(*t);
  auto p = plan_rollback(map_, then, *current, system_config{}, sel);
  if (!p) return p.err();

  std::set<device_id> differing;
  for (auto& d : p->diffs)
    differing.insert(d.id);
  const bool incremental = request.type == rollback_type::incremental;
  std::vector<device_id> order;
  for (auto group : map_.restore_order()) {
    saga_step st{name(), "group " + std::to_string(group), {}};
    for (auto dev : p->devices)
      if (map_.find(dev)->group == group && (!incremental || differing.count(dev))) {
        st.items.push_back(record_name(dev));
        order.push_back(dev);
      }
    if (!st.items.empty()) out.steps.push_back(std::move(st));
  }
  out.differs = !p->diffs.empty();
  out.warnings = p->warnings;
  for (auto d : p->critical_changes)
    out.needs_ack.push_back(format_device_id(d) + " (" + map_.find(d)->critical_role + ")");
  json diffs = json::array();
  for (auto& d : p->diffs)
    diffs.push_back(diff_json(d));
  out.plan_detail = {
      {"order", ids_json(order)}, {"dependents", p->dependents}, {"differences", diffs}};
  out.reply_detail = {{"skipped_quarantined", ids_json(p->quarantined)}};
  for (auto g : p->dependents)
    out.warnings.push_back("group " + std::to_string(g) +
                           " depends on the selection and is rolled back with it");
  return out;
}

devices_component::step_job devices_component::start_step(const saga_step& step,
                                                          const component_image& target) const {
  step_job job;
  for (auto& item : step.items) {
    auto id = parse_device_id(item, map_);
    if (!id) {
      job.failed.push_back({item, id.err().message});
      continue;
    }
    auto rec = target.records.find(record_name(*id));
    if (rec == target.records.end()) {
      job.failed.push_back({item, "not in the state to restore"});
      continue;
    }
    auto s = decode_device(rec->second);
    if (!s) {
      job.failed.push_back({item, s.err().message});
      continue;
    }
    job.wanted.push_back(*id);
    job.states.emplace(*id, std::move(*s));
  }
  return job;
}

// A device already in its state is not written: a write that was refused
// left it there, and a resumed or compensating saga repeats steps. One that
// cannot be read is not written blind: it fails the step, named.
std::vector<device_patch>
devices_component::patches_after_read(step_job& job, const std::vector<device_state>& read,
                                      const device_errors& errors) {
  std::set<device_id> in_place, unread;
  for (auto& s : read)
    if (same_restorable_state(s, job.states.at(s.id))) in_place.insert(s.id);
  for (auto& [dev, e] : errors) {
    unread.insert(dev);
    job.failed.push_back(
        {format_device_id(dev), "cannot read it before restoring it: " + e.message});
  }
  std::vector<device_patch> patches;
  for (auto d : job.wanted)
    if (!in_place.count(d) && !unread.count(d)) patches.push_back(restore_patch(job.states.at(d)));
  return patches;
}

std::vector<failed_item> devices_component::after_write(step_job& job,
                                                        const device_errors& errors) {
  for (auto& [dev, e] : errors)
    job.failed.push_back({format_device_id(dev), e.message});
  return std::move(job.failed);
}

std::vector<failed_item> devices_component::compare(step_job& job,
                                                    const std::vector<device_state>& read,
                                                    const device_errors& errors) {
  for (auto& s : read)
    if (!same_restorable_state(s, job.states.at(s.id)))
      job.failed.push_back({format_device_id(s.id), describe_mismatch(s, job.states.at(s.id))});
  for (auto& [dev, e] : errors)
    job.failed.push_back({format_device_id(dev), "cannot read back: " + e.message});
  return std::move(job.failed);
}

std::vector<failed_item> devices_component::apply(const saga_step& step,
                                                  const component_image& target) {
  auto job = start_step(step, target);
  device_errors errors;
  auto read = port_.read_many(job.wanted, errors);
  auto patches = patches_after_read(job, read, errors);
  errors.clear();
  port_.write_many(patches, errors);
  return after_write(job, errors);
}

std::vector<failed_item> devices_component::read_back(const saga_step& step,
                                                      const component_image& target) {
  auto job = start_step(step, target);
  device_errors errors;
  auto read = port_.read_many(job.wanted, errors);
  return compare(job, read, errors);
}

} // namespace dsmil
