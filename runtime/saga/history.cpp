#include "runtime/saga/history.hpp"

#include <nlohmann/json.hpp>

namespace dsmil {

using nlohmann::json;

namespace {

struct summarizer {
  json& s;
  const begin_record& b;
  json phases = json::array({"validation", "preparation"});
  json done_steps = json::array();

  void operator()(const begin_record&) {}
  void operator()(const phase_record& r) {
    // A phase record starts its phase: the one before it completed.
    if (r.phase == saga_phase::verification) phases.push_back("execution");
    if (r.phase == saga_phase::cleanup) phases.push_back("verification");
  }
  void operator()(const step_start_record&) {}
  void operator()(const step_done_record& r) {
    if (r.step < b.steps.size()) done_steps.push_back(b.steps[r.step].name);
  }
  void operator()(const step_failed_record&) {}
  void operator()(const compensate_start_record&) {}
  void operator()(const compensate_done_record& r) {
    s["compensated"] = r.ok;
    s["compensation_failed"] = to_json(r.failed);
  }
  void operator()(const recovered_record&) { s["recovered"] = true; }
  void operator()(const settled_record& r) { s["settled"] = r.items; }
  void operator()(const end_record& r) {
    s["outcome"] = enum_name(r.outcome);
    if (!r.failed_phase.empty()) s["failed_phase"] = r.failed_phase;
    if (!r.error.empty()) s["error"] = r.error;
    if (!r.failed.empty()) s["failed"] = to_json(r.failed);
    s["duration_ms"] = r.duration_ms;
    if (r.outcome == saga_outcome::completed) phases.push_back("cleanup");
  }
};

} // namespace

json summarize_saga(const std::string& id, const std::vector<journal_record>& records) {
  json s = {{"id", id}, {"outcome", enum_name(saga_outcome::interrupted)}};
  const begin_record* b = records.empty() ? nullptr : records.front().get<begin_record>();
  if (b == nullptr) return s;
  s["type"] = enum_name(b->type);
  s["target"] = b->target;
  if (!b->pre_rollback.empty()) s["pre_rollback"] = b->pre_rollback;
  s["initiated_by"] = b->initiated_by;
  s["reason"] = b->reason;
  s["started_at"] = b->started_at;
  size_t devices = 0;
  json steps = json::array();
  for (auto& st : b->steps) {
    devices += st.items.size();
    steps.push_back(to_json(st));
  }
  s["devices_planned"] = devices;
  s["steps"] = steps;
  summarizer sum{s, *b};
  for (auto& r : records)
    std::visit(sum, r.body);
  s["phases_completed"] = sum.phases;
  s["steps_done"] = sum.done_steps;
  return s;
}

} // namespace dsmil
