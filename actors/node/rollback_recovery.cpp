// Saga recovery at start-up: every journal without an end record is
// compensated (or resumed, per [rollback] on_interrupted) before the node
// takes commands.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "runtime/saga/journal.hpp"

namespace dsmil {

using namespace rollback_detail;

// -- recovery ------------------------------------------------------------------

namespace {

void recover_one(node_context& ctx, actor_calls& calls, const std::string& dir,
                 const std::string& id, const std::string& why);

} // namespace

void recover_sagas(node_context& ctx, actor_calls& calls) {
  auto dir = journal_dir(ctx);
  auto ids = list_journals(*ctx.os, dir);
  if (!ids) {
    spdlog::error("cannot list saga journals in {}: {}", dir, ids.err().message);
    return;
  }
  for (auto& id : *ids) {
    try {
      recover_one(ctx, calls, dir, id, "the node stopped during the rollback");
    } catch (const std::exception& e) {
      spdlog::error("saga {}: its journal cannot be settled ({}); left for the next start", id,
                    e.what());
    }
  }
}

void recover_saga(node_context& ctx, actor_calls& calls, const std::string& id,
                  const std::string& why) {
  if (!ctx.os->exists(journal_path(journal_dir(ctx), id))) return; // stopped before it began
  try {
    recover_one(ctx, calls, journal_dir(ctx), id, why);
  } catch (const std::exception& e) {
    spdlog::error("saga {}: its journal cannot be settled ({}); left for the next start", id,
                  e.what());
  }
  note_changed(ctx, id);
}

std::optional<json> rollback_detail::incomplete_compensation(node_context& ctx) {
  auto h = history(ctx);
  if (!h) return std::nullopt;
  for (auto it = h->rbegin(); it != h->rend(); ++it) {
    const auto outcome = it->value("outcome", std::string());
    if (outcome == "interrupted" || outcome == "refused" || outcome == "unreadable") continue;
    if (outcome == "compensation_failed" && !it->contains("settled")) return *it;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<settle_job> unsettled_job(node_context& ctx) {
  auto saga = incomplete_compensation(ctx);
  if (!saga) return std::nullopt;
  settle_job job;
  job.saga = (*saga)["id"].get<std::string>();
  auto records = read_journal(*ctx.os, journal_path(journal_dir(ctx), job.saga));
  if (!records) {
    spdlog::error("saga {}: {}", job.saga, records.err().message);
    return std::nullopt;
  }
  const begin_record* begin = nullptr;
  for (auto& r : *records) {
    if (auto* b = r.get<begin_record>()) begin = b;
    if (auto* cs = r.get<compensate_start_record>()) job.order = cs->steps;
    if (auto* cd = r.get<compensate_done_record>())
      for (auto& f : cd->failed)
        job.items.push_back(f.id);
  }
  if (begin == nullptr || job.items.empty()) return std::nullopt;
  for (auto i : job.order)
    if (i >= begin->steps.size()) return std::nullopt;
  job.pre_rollback = begin->pre_rollback;
  job.steps = begin->steps;
  std::lock_guard<std::recursive_mutex> lock(ctx.mu);
  auto image = load_image(ctx, job.pre_rollback);
  if (!image) {
    spdlog::error("rollback {} could not put back {} item(s), and its pre-rollback checkpoint "
                  "{} cannot be read to try again: {}",
                  job.saga, job.items.size(), job.pre_rollback, image.err().message);
    return std::nullopt;
  }
  job.image = std::move(*image);
  return job;
}

namespace {

void recover_one(node_context& ctx, actor_calls& calls, const std::string& dir,
                 const std::string& id, const std::string& why) {
  auto records = read_journal(*ctx.os, journal_path(dir, id));
  if (!records) {
    spdlog::error("saga {}: {}", id, records.err().message);
    return;
  }
  auto& rs = *records;
  if (std::any_of(rs.begin(), rs.end(), [](auto& r) { return r.template is<end_record>(); }))
    return;
  const begin_record* begin = rs.empty() ? nullptr : rs.front().get<begin_record>();
  if (begin == nullptr) {
    // Killed before its begin record was durable: nothing was touched.
    spdlog::info("saga {} never began; removing its journal", id);
    if (auto err = remove_durable(*ctx.os, journal_path(dir, id)))
      spdlog::error("saga {}: its journal cannot be removed ({}); left for the next start", id,
                    err.message);
    return;
  }
  const auto start = ctx.os->steady_ns();
  const auto& steps = begin->steps;
  std::vector<size_t> started;
  for (auto& r : rs)
    if (auto* s = r.get<step_start_record>()) started.push_back(s->step);
  for (auto i : started)
    if (i >= steps.size()) {
      spdlog::error("saga {}: its journal starts step {} of {}; left as it is", id, i,
                    steps.size());
      return;
    }
  auto journal = saga_journal::reopen(*ctx.os, dir, id);
  if (!journal) {
    spdlog::error("saga {}: {}", id, journal.err().message);
    return;
  }
  auto& jl = **journal;
  const auto policy = ctx.cfg.rollback_on_interrupted;
  component_set components(ctx, calls);
  // Held still while recovery restores (agents quiesced), released on every
  // way out; a component that cannot be held is restored as it runs.
  std::vector<std::string> notes;
  if (auto err = hold_all(components, notes))
    spdlog::warn("saga {}: {}; recovering anyway", id, err.message);
  struct release_on_exit {
    const component_set& c;
    const std::string& saga;
    node_context& ctx;
    actor_calls& calls;
    ~release_on_exit() {
      std::vector<std::string> w;
      calls.set_deadline(ctx.os->steady_ns() +
                         int64_t{ctx.cfg.rollback_compensation_step_timeout_ms} * 1000000);
      release_all(c, w);
      calls.set_deadline(0);
      for (auto& line : w)
        spdlog::warn("saga {}: {}", saga, line);
    }
  } released{components, id, ctx, calls};
  for (auto& line : notes)
    spdlog::warn("saga {}: {}", id, line);
  // A device that does not answer holds start-up for at most
  // compensation_step_timeout_ms per step; recovery then stops without an
  // end record, and the next start repeats it.
  auto bounded = [&](const std::vector<size_t>& order, const system_image& image) {
    std::vector<failed_item> failed;
    for (auto i : order) {
      calls.set_deadline(ctx.os->steady_ns() +
                         int64_t{ctx.cfg.rollback_compensation_step_timeout_ms} * 1000000);
      auto f = apply_steps(components, steps, {i}, image);
      failed.insert(failed.end(), f.begin(), f.end());
    }
    calls.set_deadline(0);
    return failed;
  };
  auto load = [&](const std::string& cp) {
    std::lock_guard<std::recursive_mutex> lock(ctx.mu);
    return load_image(ctx, cp);
  };
  // Every record is checked. Recovery is idempotent (a device already in its
  // state is not written again), so a record that cannot be written stops it
  // before it acts on what it could not journal, and the next start repeats
  // it from the journal as it is.
  auto append = [&](journal_record record) {
    auto err = jl.append(std::move(record));
    if (err)
      spdlog::error("saga {}: its journal cannot be written ({}); recovery stops here and is "
                    "repeated at the next start",
                    id, err.message);
    return !err;
  };
  if (!append(recovered_record{policy})) return;
  if (policy == interrupted_policy::resume) {
    auto target = load(begin->target);
    if (target) {
      std::vector<size_t> all;
      for (size_t i = 0; i < steps.size(); ++i)
        all.push_back(i);
      auto failed = bounded(all, *target);
      if (failed.empty()) {
        end_record end;
        end.outcome = saga_outcome::completed;
        end.duration_ms = ms_since(ctx, start);
        if (!append(end)) return;
        spdlog::warn("saga {} was interrupted; resumed to its target {}", id, begin->target);
        return;
      }
      spdlog::warn("saga {}: resuming failed ({}); compensating", id, to_json(failed).dump());
      for (size_t i = 0; i < steps.size(); ++i)
        if (std::find(started.begin(), started.end(), i) == started.end()) started.push_back(i);
    }
  }
  auto pre = load(begin->pre_rollback);
  if (!pre) {
    spdlog::error("saga {} was interrupted and cannot be compensated: pre-rollback checkpoint "
                  "{}: {}",
                  id, begin->pre_rollback, pre.err().message);
    return;
  }
  // Every step is put back, started or not: a component held still for the
  // saga (the agents) ran again from the moment this process started, and
  // is the saga's until it ends; a step that never started finds its items
  // in their pre-rollback state and writes nothing.
  std::vector<size_t> order;
  for (size_t i = steps.size(); i-- > 0;)
    order.push_back(i);
  if (!append(compensate_start_record{order, "interrupted"})) return;
  auto failed = bounded(order, *pre);
  const bool ok = failed.empty();
  if (!append(compensate_done_record{ok, failed})) return;
  if (!ok) {
    // No end record: the next start tries again.
    spdlog::error("saga {} was interrupted; compensation failed for {}", id,
                  to_json(failed).dump());
    return;
  }
  end_record end;
  end.outcome = saga_outcome::compensated;
  end.failed_phase = "interrupted";
  end.error = why;
  end.duration_ms = ms_since(ctx, start);
  if (!append(end)) return;
  spdlog::warn("saga {} was interrupted; compensated {} step(s) back to pre-rollback "
               "checkpoint {}",
               id, order.size(), begin->pre_rollback);
}

} // namespace

} // namespace dsmil
