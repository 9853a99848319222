// Rollback steps: encoding them for the journal, applying device states step by
// step, and reading devices back to verify them bit for bit.
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

json ids_json(const std::vector<device_id>& ids) {
  json a = json::array();
  for (auto id : ids)
    a.push_back(format_device_id(id));
  return a;
}

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

std::string journal_dir(const node_context& ctx) {
  return ctx.store->dir() + "/journal";
}

double ms_since(node_context& ctx, int64_t start_ns) {
  return static_cast<double>(ctx.os->steady_ns() - start_ns) / 1e6;
}

// -- steps ------------------------------------------------------------------------

// Reads `ids` back and names each that is not bit for bit in `states`, or
// cannot be read.
std::vector<failed_item> read_back(device_calls& calls, const std::vector<device_id>& ids,
                                   const std::map<device_id, device_state>& states) {
  std::vector<failed_item> failed;
  std::vector<std::pair<device_id, error>> errors;
  for (auto& s : calls.read_many(ids, errors))
    if (!same_restorable_state(s, states.at(s.id)))
      failed.push_back({format_device_id(s.id), describe_mismatch(s, states.at(s.id))});
  for (auto& [dev, e] : errors)
    failed.push_back({format_device_id(dev), "cannot read back: " + e.message});
  return failed;
}

// Puts the steps back to `states` / `config`, last first, and reads every
// device back. A device already in its state is not written (a write that
// was refused left it there). Returns what could not be put back.
std::vector<failed_item> apply_states(node_context& ctx, device_calls& calls,
                                      const std::vector<saga_step>& steps,
                                      const std::vector<size_t>& order,
                                      const std::map<device_id, device_state>& states,
                                      const system_config& config) {
  std::vector<failed_item> failed;
  std::vector<device_id> touched;
  for (auto i : order) {
    auto& st = steps[i];
    if (st.configuration) {
      std::lock_guard<std::mutex> lock(ctx.mu);
      restore_config(ctx.configuration, config);
      if (!ctx.configuration.same_restorable(config))
        failed.push_back({"configuration", "differs after restore"});
      continue;
    }
    std::vector<device_id> ids;
    for (auto d : st.devices)
      if (states.count(d)) ids.push_back(d);
    std::vector<std::pair<device_id, error>> errors;
    std::set<device_id> in_place;
    for (auto& s : calls.read_many(ids, errors))
      if (same_restorable_state(s, states.at(s.id))) in_place.insert(s.id);
    std::vector<device_patch> patches;
    for (auto d : ids)
      if (!in_place.count(d)) patches.push_back(restore_patch(states.at(d)));
    errors.clear();
    calls.write_many(patches, errors);
    for (auto& [dev, e] : errors)
      failed.push_back({format_device_id(dev), e.message});
    for (auto& p : patches)
      if (std::none_of(errors.begin(), errors.end(), [&](auto& e) { return e.first == p.id; }))
        touched.push_back(p.id);
  }
  for (auto& f : read_back(calls, touched, states))
    failed.push_back(std::move(f));
  return failed;
}

std::map<device_id, device_state> by_id(const std::vector<device_state>& v) {
  std::map<device_id, device_state> m;
  for (auto& s : v)
    m[s.id] = s;
  return m;
}

} // namespace rollback_detail

} // namespace dsmil
