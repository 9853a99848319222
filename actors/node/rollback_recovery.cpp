// Saga recovery at start-up: every journal without an end record is
// compensated (or resumed, per [rollback] on_interrupted) before the node
// takes commands.
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

// -- recovery ------------------------------------------------------------------

namespace {

void recover_saga(node_context& ctx, device_calls& calls, const std::string& dir,
                  const std::string& id);

} // namespace

void recover_sagas(node_context& ctx, device_calls& calls) {
  auto dir = journal_dir(ctx);
  auto ids = list_journals(*ctx.os, dir);
  if (!ids) {
    spdlog::error("cannot list saga journals in {}: {}", dir, ids.err().message);
    return;
  }
  for (auto& id : *ids) {
    try {
      recover_saga(ctx, calls, dir, id);
    } catch (const std::exception& e) {
      spdlog::error("saga {}: its journal cannot be settled ({}); left for the next start", id,
                    e.what());
    }
  }
}

namespace {

void recover_saga(node_context& ctx, device_calls& calls, const std::string& dir,
                  const std::string& id) {
  auto records = read_journal(*ctx.os, journal_path(dir, id));
  if (!records) {
    spdlog::error("saga {}: {}", id, records.err().message);
    return;
  }
  auto& rs = *records;
  if (std::any_of(rs.begin(), rs.end(), [](const json& r) { return r["t"] == "end"; })) return;
  if (rs.empty() || rs.front()["t"] != "begin") {
    // Killed before its begin record was durable: nothing was touched.
    spdlog::info("saga {} never began; removing its journal", id);
    if (auto err = remove_durable(*ctx.os, journal_path(dir, id)))
      spdlog::error("saga {}: its journal cannot be removed ({}); left for the next start", id,
                    err.message);
    return;
  }
  const auto start = ctx.os->steady_ns();
  auto& begin = rs.front();
  std::vector<saga_step> steps;
  for (auto& st : begin["steps"])
    steps.push_back(step_from_json(st));
  std::vector<size_t> started;
  for (auto& r : rs)
    if (r["t"] == "step_start") started.push_back(r["step"].get<size_t>());
  auto journal = saga_journal::reopen(*ctx.os, dir, id);
  if (!journal) {
    spdlog::error("saga {}: {}", id, journal.err().message);
    return;
  }
  auto& jl = **journal;
  const bool resume = ctx.cfg.rollback_on_interrupted == "resume";
  auto load = [&](const std::string& cp) {
    std::lock_guard<std::mutex> lock(ctx.mu);
    return ctx.store->load(cp);
  };
  // Every record is checked. Recovery is idempotent (a device already in its
  // state is not written again), so a record that cannot be written stops it
  // before it acts on what it could not journal, and the next start repeats
  // it from the journal as it is.
  auto append = [&](json record) {
    auto err = jl.append(std::move(record));
    if (err)
      spdlog::error("saga {}: its journal cannot be written ({}); recovery stops here and is "
                    "repeated at the next start",
                    id, err.message);
    return !err;
  };
  if (!append({{"t", "recovered"}, {"policy", resume ? "resume" : "compensate"}})) return;
  if (resume) {
    auto target = load(begin["target"].get<std::string>());
    if (target) {
      std::vector<size_t> all;
      for (size_t i = 0; i < steps.size(); ++i)
        all.push_back(i);
      auto failed =
          apply_states(ctx, calls, steps, all, by_id(target->devices), target->configuration);
      if (failed.empty()) {
        if (!append(
                {{"t", "end"}, {"outcome", "completed"}, {"duration_ms", ms_since(ctx, start)}}))
          return;
        spdlog::warn("saga {} was interrupted; resumed to its target {}", id,
                     begin["target"].get<std::string>());
        return;
      }
      spdlog::warn("saga {}: resuming failed ({}); compensating", id, failed.dump());
      for (size_t i = 0; i < steps.size(); ++i)
        if (std::find(started.begin(), started.end(), i) == started.end()) started.push_back(i);
    }
  }
  auto pre = load(begin["pre_rollback"].get<std::string>());
  if (!pre) {
    spdlog::error("saga {} was interrupted and cannot be compensated: pre-rollback checkpoint "
                  "{}: {}",
                  id, begin["pre_rollback"].get<std::string>(), pre.err().message);
    return;
  }
  std::vector<size_t> order(started.rbegin(), started.rend());
  if (!append({{"t", "compensate_start"}, {"steps", order}, {"reason", "interrupted"}})) return;
  auto failed = apply_states(ctx, calls, steps, order, by_id(pre->devices), pre->configuration);
  const bool ok = failed.empty();
  if (!append({{"t", "compensate_done"}, {"ok", ok}, {"failed", failed}})) return;
  if (!ok) {
    // No end record: the next start tries again.
    spdlog::error("saga {} was interrupted; compensation failed for {}", id, failed.dump());
    return;
  }
  if (!append({{"t", "end"},
               {"outcome", "compensated"},
               {"failed_phase", "interrupted"},
               {"error", "the node stopped during the rollback"},
               {"duration_ms", ms_since(ctx, start)}}))
    return;
  spdlog::warn("saga {} was interrupted; compensated {} step(s) back to pre-rollback "
               "checkpoint {}",
               id, order.size(), begin["pre_rollback"].get<std::string>());
}

} // namespace

} // namespace dsmil
