// Rollback sagas. Validation plans the rollback; preparation takes a
// pre-rollback checkpoint of the current state (the compensation target) and
// starts the saga's journal; execution restores one step at a time (the
// configuration, then device groups in dependency order); verification reads
// every restored device back and compares it with the checkpoint bit for bit;
// cleanup ends the journal. A failed step, a verification mismatch, a timeout
// or an emergency pre-emption compensates: the steps that started are put back
// to the pre-rollback state in reverse order and verified. Every transition is
// a journal record fsynced before the work it announces, so a node killed at
// any instant finds the saga at start-up and compensates (or resumes) it.
#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/saga/journal.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace {

// -- the saga ---------------------------------------------------------------------

class saga {
public:
  saga(node_context& ctx, actor_calls& calls, saga_status& status, const progress_fn& progress,
       settle_job* settle)
      : ctx_(ctx), calls_(calls), components_(ctx, calls), status_(status), progress_(progress),
        settle_(settle) {}

  control_reply run(const json& args);

private:
  // Ends a saga that changed nothing; the history still records it.
  control_reply fail(saga_phase phase, const error& e) {
    result_["failed_phase"] = enum_name(phase);
    const double ms = ms_since(ctx_, start_);
    result_["duration_ms"] = ms;
    result_["outcome"] = enum_name(saga_outcome::refused);
    if (!journal_) {
      auto j = saga_journal::create(*ctx_.os, journal_dir(ctx_), status_.id);
      if (j) {
        note_journal(ctx_, status_.id);
        journal_ = std::move(*j);
        pending_.clear(); // a begin record never written goes with its steps
        defer(begin({}));
      }
    }
    if (journal_) {
      end_record end;
      end.outcome = saga_outcome::refused;
      end.failed_phase = enum_name(phase);
      end.error = e.message;
      end.duration_ms = ms;
      end_or_log(commit(end));
    }
    return error_reply(e, result_);
  }
  begin_record begin(std::vector<saga_step> steps) const {
    begin_record b;
    b.saga = status_.id;
    b.type = v_.type;
    b.target = v_.target_id;
    b.pre_rollback = pre_rollback_;
    b.initiated_by = initiated_by_;
    b.reason = reason_;
    b.started_at = ctx_.os->now_unix_ns();
    b.steps = std::move(steps);
    return b;
  }
  // An end record that could not be written leaves the saga to start-up
  // recovery, which finds it without an end and settles it again (a device
  // already in its state is not written); the reply says so.
  void end_or_log(const status& err) {
    if (!err) return;
    spdlog::error("rollback {}: its end record cannot be written ({}); the next start settles it",
                  status_.id, err.message);
    result_["journal_error"] = err.message;
  }
  void report(const std::string& phase, const std::string& component, size_t done) {
    if (!progress_) return;
    progress_({{"saga", status_.id},
               {"phase", phase},
               {"component", component},
               {"devices_done", done},
               {"devices_total", devices_total_}});
  }
  void enter(saga_phase phase) {
    const auto now = ctx_.os->steady_ns();
    result_["phase_ms"][enum_name(status_.phase.load())] =
        static_cast<double>(now - phase_start_) / 1e6;
    phase_start_ = now;
    status_.phase = phase;
    report(enum_name(phase), "", devices_done_);
  }
  // Records that need to be durable only before the next commit (group commit).
  void defer(journal_record record) { pending_.push_back(std::move(record)); }
  status commit(journal_record record) {
    pending_.push_back(std::move(record));
    auto batch = std::move(pending_);
    pending_.clear();
    return journal_->append_all(std::move(batch));
  }
  // Whether the file system has room for what the saga writes before it can
  // compensate (pre-rollback checkpoint, journal), counting the reserve; the
  // error names both figures. `release` says whether the reserve is needed.
  error check_room(bool& release) {
    uint64_t state_bytes = 0;
    size_t records = 0;
    for (auto& [name, img] : v_.current) {
      for (auto& [key, bytes] : img.records)
        state_bytes += key.size() + bytes.size() + 64;
      for (auto& [key, bytes] : img.streams)
        state_bytes += bytes.size();
      records += img.records.size() + img.streams.size();
    }
    const uint64_t need = rollback_safety_net_bytes(records, state_bytes);
    auto fs = ctx_.os->space(ctx_.store->dir());
    if (!fs) return {}; // cannot tell: the checkpoint itself will say
    uint64_t reserve = 0;
    {
      std::lock_guard<std::recursive_mutex> lock(ctx_.mu);
      reserve = ctx_.reserve->held();
    }
    release = fs->free < 2 * need; // with room to spare for what else writes meanwhile
    if (fs->free + reserve >= need) return {};
    return make_error(errc::no_space,
                      "no space left for the rollback's safety net: its pre-rollback checkpoint "
                      "and journal need about " +
                          std::to_string(need) + " bytes, the store's file system has " +
                          std::to_string(fs->free) + " free and the reserve " +
                          std::to_string(reserve) +
                          "; free space (checkpoint delete, store gc) and try again");
  }
  // Compensates the steps that started and ends the saga; returns the reply.
  control_reply compensate(saga_phase phase, const error& cause, saga_outcome outcome);

  node_context& ctx_;
  actor_calls& calls_; ///< its deadline bounds each step, on the actor clock
  component_set components_;
  saga_status& status_;
  const progress_fn& progress_;
  settle_job* settle_; ///< filled when compensation fails (may be null)
  int64_t start_ = ctx_.os->steady_ns();
  int64_t phase_start_ = start_;
  json result_;
  validated v_;
  std::unique_ptr<saga_journal> journal_;
  std::vector<size_t> started_;         ///< steps whose step_start is journalled
  std::vector<journal_record> pending_; ///< deferred records, written with the next commit
  std::vector<failed_item> failed_;     ///< what the failed step or verification could not restore
  std::string pre_rollback_;            ///< its checkpoint id, once taken
  size_t devices_total_ = 0, devices_done_ = 0; ///< items, for progress
  std::string initiated_by_, reason_;
};

control_reply saga::compensate(saga_phase phase, const error& cause, saga_outcome outcome) {
  spdlog::warn("rollback {} failed in {} ({}): compensating {} step(s)", status_.id,
               enum_name(phase), cause.message, started_.size());
  result_["failed_phase"] = enum_name(phase);
  if (!failed_.empty()) result_["failed"] = to_json(failed_);
  std::vector<size_t> order(started_.rbegin(), started_.rend());
  json names = json::array();
  for (auto i : order)
    names.push_back(v_.steps[i].name);
  std::vector<failed_item> failed;
  if (auto err = commit(compensate_start_record{order, cause.message})) {
    failed.push_back({"journal", err.message});
  } else {
    report("compensation", "", devices_done_);
    // Each step put back within compensation_step_timeout_ms: a device
    // that does not answer is named, not waited for.
    const auto limit = int64_t{ctx_.cfg.rollback_compensation_step_timeout_ms} * 1000000;
    for (auto i : order) {
      calls_.set_deadline(ctx_.os->steady_ns() + limit);
      auto f = apply_steps(components_, v_.steps, {i}, v_.current);
      const bool late = calls_.past_deadline();
      for (auto& item : f) {
        if (late)
          item.error += " (putting back " + v_.steps[i].name + " took longer than " +
                        "compensation_step_timeout_ms, " +
                        std::to_string(ctx_.cfg.rollback_compensation_step_timeout_ms) + " ms)";
        failed.push_back(std::move(item));
      }
    }
    calls_.set_deadline(0);
  }
  const bool ok = failed.empty();
  defer(compensate_done_record{ok, failed});
  result_["compensated"] = {{"steps", names}, {"ok", ok}, {"failed", to_json(failed)}};
  const double ms = ms_since(ctx_, start_);
  result_["duration_ms"] = ms;
  end_record end;
  end.outcome = ok ? outcome : saga_outcome::compensation_failed;
  end.failed_phase = enum_name(phase);
  end.error = cause.message;
  end.failed = failed_;
  end.duration_ms = ms;
  const auto ended = commit(end);
  end_or_log(ended);
  result_["outcome"] = enum_name(end.outcome);
  if (!ok && !ended && settle_ != nullptr) {
    // Left to the saga's actor: it keeps trying to put these back.
    settle_->saga = status_.id;
    settle_->pre_rollback = pre_rollback_;
    settle_->steps = v_.steps;
    settle_->order = order;
    settle_->image = v_.current;
    for (auto& f : failed)
      settle_->items.push_back(f.id);
  }
  std::string msg =
      cause.message + (ok ? "; every step that ran was put back to the "
                            "pre-rollback state and verified"
                          : "; COMPENSATION FAILED for " + std::to_string(failed.size()) +
                                " item(s), first " + failed[0].id + ": " + failed[0].error);
  return error_reply(make_error(cause.code == errc::none ? errc::rollback_failed : cause.code, msg),
                     result_);
}

control_reply saga::run(const json& args) {
  result_ = {{"saga", status_.id},
             {"dry_run", false},
             {"success", false},
             {"phases_completed", json::array()},
             {"failed_phase", nullptr}};
  initiated_by_ = args.value("initiated_by", std::string("dsmilctl"));
  reason_ = args.value("reason", std::string());
  // -- validation, with the pre-rollback checkpoint and the journal started
  // on threads of the env as soon as the current state is known; both are
  // joined before validation's verdict is acted on.
  result<checkpoint_info> pre = make_error(errc::internal, "not taken");
  result<std::unique_ptr<saga_journal>> journal = make_error(errc::internal, "not started");
  std::unique_ptr<thread_handle> pre_thread, journal_thread;
  error no_room; // the safety net would not fit: refused before anything is written
  bool release = false;
  auto start_preparation = [&] {
    if ((no_room = check_room(release))) return;
    pre_thread = ctx_.os->start_thread([this, release, &pre] {
      std::lock_guard<std::recursive_mutex> lock(ctx_.mu);
      // The reserve was kept for this: the pre-rollback checkpoint and the
      // journal never fail for lack of the space it held. Released only when
      // the free space alone is short (and held again after the saga).
      if (release)
        if (auto err = ctx_.reserve->release())
          spdlog::warn("rollback {}: the space reserve cannot be released: {}", status_.id,
                       err.message);
      checkpoint_request req;
      req.type = checkpoint_type::pre_rollback;
      req.name = "pre-rollback " + status_.id;
      req.description = "state before rollback " + status_.id + " to " + v_.target_id;
      pre = create_checkpoint(*ctx_.store, req, v_.current);
    });
    journal_thread = ctx_.os->start_thread([this, &journal] {
      journal = saga_journal::create(*ctx_.os, journal_dir(ctx_), status_.id);
      if (journal) note_journal(ctx_, status_.id);
    });
  };
  auto err = validate(ctx_, calls_, components_, args, result_, v_, start_preparation);
  if (!err && no_room) err = no_room;
  if (!err && !v_.needs_ack.empty() && !args.value("ack_critical", false) &&
      v_.type != rollback_type::emergency) {
    std::string list;
    for (auto& item : v_.needs_ack)
      list += (list.empty() ? "" : ", ") + item;
    err = make_error(errc::critical_unacknowledged,
                     "rollback would change critical device " + list +
                         "; review with --dry-run, then repeat with --ack-critical");
  }
  {
    std::lock_guard<std::mutex> lock(ctx_.saga_mu); // status reads them
    status_.type = enum_name(v_.type);
    status_.target = v_.target_id;
  }
  if (journal_thread) {
    journal_thread->join();
    if (journal) journal_ = std::move(*journal);
    if (!journal && !err) err = journal.err();
  }
  if (pre_thread) {
    pre_thread->join();
    if (pre) {
      if (err) {
        // Refused: the state it saved was never left.
        std::lock_guard<std::recursive_mutex> lock(ctx_.mu);
        ctx_.store->remove(pre->id);
      } else {
        pre_rollback_ = pre->id;
        result_["pre_rollback"] = pre->id;
      }
    } else if (!err) {
      err = make_error(pre.err().code,
                       "cannot take the pre-rollback checkpoint: " + pre.err().message);
      return fail(saga_phase::preparation, err);
    }
  }
  if (err) return fail(saga_phase::validation, err);
  devices_total_ = item_count(v_.steps);
  result_["phases_completed"].push_back("validation");

  // -- preparation: the pre-rollback checkpoint is in place; the journal's
  // begin record goes out with the first step
  enter(saga_phase::preparation);
  defer(begin(v_.steps));
  result_["phases_completed"].push_back("preparation");

  // -- execution
  enter(saga_phase::execution);
  defer(phase_record{saga_phase::execution});
  const auto step_limit = int64_t{ctx_.cfg.rollback_step_timeout_ms} * 1000000;
  const auto saga_limit = int64_t{ctx_.cfg.rollback_timeout_ms} * 1000000;
  for (size_t i = 0; i < v_.steps.size(); ++i) {
    if (status_.preempt)
      return compensate(saga_phase::execution,
                        make_error(errc::busy, "pre-empted by an emergency rollback"),
                        saga_outcome::preempted);
    auto& st = v_.steps[i];
    // Durable before the step touches anything, with the records before it.
    if (auto err = commit(step_start_record{i})) {
      if (i == 0) return fail(saga_phase::preparation, err); // the saga never began
      return compensate(saga_phase::execution, err, saga_outcome::compensated);
    }
    started_.push_back(i);
    report("execution", st.name, devices_done_);
    // The step's time limit, and the saga's, interrupt it: every request
    // it makes gives up at the earlier deadline.
    const auto step_start = ctx_.os->steady_ns();
    const bool saga_limits = start_ + saga_limit < step_start + step_limit;
    calls_.set_deadline(saga_limits ? start_ + saga_limit : step_start + step_limit);
    calls_.set_preemptible(true); // an emergency stops the step's waits at once
    auto* c = components_.find(st.component);
    auto t = v_.target.find(st.component);
    failed_ = c != nullptr && t != v_.target.end()
                  ? c->apply(st, t->second)
                  : std::vector<failed_item>{{st.component, "component is not configured"}};
    calls_.set_preemptible(false);
    const bool late = calls_.past_deadline();
    calls_.set_deadline(0);
    if (status_.preempt) {
      if (!failed_.empty()) defer(step_failed_record{i, failed_});
      return compensate(saga_phase::execution,
                        make_error(errc::busy, "pre-empted by an emergency rollback"),
                        saga_outcome::preempted);
    }
    if (!failed_.empty() || late) {
      devices_done_ += st.items.size() - std::min(st.items.size(), failed_.size());
      if (!failed_.empty()) defer(step_failed_record{i, failed_});
      const std::string first =
          failed_.empty() ? ""
                          : ": " + (failed_[0].id == st.component ? "" : failed_[0].id + ": ") +
                                failed_[0].error;
      if (late && saga_limits)
        return compensate(
            saga_phase::execution,
            make_error(errc::timeout, "the rollback took longer than timeout_ms (" +
                                          std::to_string(ctx_.cfg.rollback_timeout_ms) +
                                          " ms) in " + st.name + first),
            saga_outcome::compensated);
      if (late)
        return compensate(
            saga_phase::execution,
            make_error(errc::timeout, st.name + " took longer than step_timeout_ms (" +
                                          std::to_string(ctx_.cfg.rollback_step_timeout_ms) +
                                          " ms)" + first),
            saga_outcome::compensated);
      return compensate(saga_phase::execution,
                        make_error(errc::rollback_failed, "rollback stopped in " + st.name + " (" +
                                                              st.component + ")" + first),
                        saga_outcome::compensated);
    }
    devices_done_ += st.items.size();
    defer(step_done_record{i});
  }
  // What was rolled back: the components, and the items of each.
  json rolled_back = {{"components", json::array()}};
  for (auto& st : v_.steps) {
    auto& items = rolled_back[st.component];
    if (items.is_null()) {
      items = json::array();
      rolled_back["components"].push_back(st.component);
    }
    for (auto& item : st.items)
      items.push_back(item);
  }
  result_["rolled_back"] = rolled_back;
  result_["phases_completed"].push_back("execution");

  // -- verification: read back and compare bit for bit
  enter(saga_phase::verification);
  defer(phase_record{saga_phase::verification});
  failed_ = read_back_steps(components_, v_.steps, started_, v_.target);
  if (!failed_.empty())
    return compensate(saga_phase::verification,
                      make_error(errc::rollback_failed,
                                 "verification failed for " + std::to_string(failed_.size()) +
                                     " item(s), first " + failed_[0].id + ": " + failed_[0].error),
                      saga_outcome::compensated);
  result_["phases_completed"].push_back("verification");

  // -- cleanup
  enter(saga_phase::cleanup);
  defer(phase_record{saga_phase::cleanup});
  result_["phases_completed"].push_back("cleanup");
  result_["phase_ms"]["cleanup"] = ms_since(ctx_, phase_start_);
  end_record end;
  end.outcome = saga_outcome::completed;
  end.duration_ms = ms_since(ctx_, start_);
  result_["duration_ms"] = end.duration_ms;
  if (auto err = commit(end))
    return compensate(saga_phase::cleanup, err, saga_outcome::compensated);
  result_["success"] = true;
  result_["outcome"] = enum_name(saga_outcome::completed);
  report("done", "", devices_done_);
  spdlog::info("rollback {} to {} done ({}): {} step(s), {} item(s) of {}, {:.1f} ms", status_.id,
               v_.target_id, enum_name(v_.type), v_.steps.size(), item_count(v_.steps),
               rolled_back["components"].dump(), ms_since(ctx_, start_));
  return ok_reply(result_);
}

} // namespace

std::vector<failed_item> settle_attempt(node_context& ctx, actor_calls& calls,
                                        const settle_job& job) {
  component_set components(ctx, calls);
  std::vector<failed_item> failed;
  const auto limit = int64_t{ctx.cfg.rollback_compensation_step_timeout_ms} * 1000000;
  for (auto i : job.order) {
    calls.set_deadline(ctx.os->steady_ns() + limit);
    calls.set_preemptible(true); // a rollback that starts takes over at once
    auto f = apply_steps(components, job.steps, {i}, job.image);
    calls.set_preemptible(false);
    failed.insert(failed.end(), f.begin(), f.end());
  }
  calls.set_deadline(0);
  return failed;
}

status record_settled(node_context& ctx, const settle_job& job) {
  auto journal = saga_journal::reopen(*ctx.os, journal_dir(ctx), job.saga);
  if (!journal) return journal.err();
  auto err = (*journal)->append_all({settled_record{job.items}});
  note_changed(ctx, job.saga);
  return err;
}

control_reply run_rollback(node_context& ctx, actor_calls& calls, const json& args,
                           saga_status* status, const progress_fn& progress, settle_job* settle) {
  if (status) return saga(ctx, calls, *status, progress, settle).run(args);
  // Dry run: validation alone.
  const auto start = ctx.os->steady_ns();
  json result = {{"dry_run", true},
                 {"success", false},
                 {"phases_completed", json::array()},
                 {"failed_phase", nullptr}};
  validated v;
  component_set components(ctx, calls);
  if (auto err = validate(ctx, calls, components, args, result, v, nullptr)) {
    result["failed_phase"] = "validation";
    result["duration_ms"] = ms_since(ctx, start);
    return error_reply(err, result);
  }
  result["phases_completed"].push_back("validation");
  result["success"] = true;
  result["duration_ms"] = ms_since(ctx, start);
  return ok_reply(result);
}

} // namespace dsmil
