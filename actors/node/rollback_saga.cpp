// Rollback sagas, each an event-based actor whose phases are behaviours:
// waiting its turn; validation plans and preparation takes the pre-rollback
// checkpoint (the compensation target) and starts the journal (by its worker:
// saga_protocol.hpp); execution restores one step at a time (a request to the
// component's handler with the step's and the saga's limit, on the actor
// clock); verification reads every step back, bit for bit; cleanup ends the
// journal. A failed step, a mismatch, a limit passed, a pre-emption or a
// cancel compensates: the started steps are put back, newest first, and
// verified. Every transition is fsynced in the journal before its work.
#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/saga_protocol.hpp"
#include "dsmil/fields_json.hpp"
#include "runtime/components/checkpoint_images.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace {

using clock_point = caf::actor_clock::time_point;
using failed_list = std::vector<failed_item>;

class saga_actor final : public caf::event_based_actor {
public:
  saga_actor(caf::actor_config& cfg, saga_setup setup)
      : caf::event_based_actor(cfg), setup_(std::move(setup)), ctx_(*setup_.ctx), st_(*setup_.st) {}
  const char* name() const override { return "dsmil.saga"; }

  caf::behavior make_behavior() override {
    // A message a phase does not take waits for one that does: a
    // pre-emption that comes while the saga validates is seen by its first
    // step.
    set_default_handler(caf::skip);
    io_ = setup_.io(this);
    components_ = setup_.components(this);
    return {[this](rollback_by& r, caf::actor& client) { return start(r, client); }};
  }

private:
  // -- waiting its turn, validating ------------------------------------------------

  caf::result<control_reply> start(rollback_by& by, caf::actor& client) {
    auto& req = by.request;
    client_ = make_response_promise<control_reply>();
    args_ = to_json_fields(req); // what validation reads
    // `client` is who asked dsmil.control (which asks here, so that it can
    // answer the client itself should this actor stop): progress goes to it.
    if (req.progress) progress_to_ = client;
    initiated_by_ = by.identity;
    reason_ = req.reason;
    bool my_turn = false;
    {
      std::lock_guard<std::mutex> lock(ctx_.saga_mu);
      my_turn = !ctx_.running || ctx_.running == setup_.st;
      if (!my_turn) ctx_.next_saga = caf::actor_cast<caf::actor>(this);
    }
    if (my_turn) {
      validate();
    } else {
      // An emergency rollback waits here for the saga it pre-empted to
      // compensate; that saga hands over as it ends.
      become([this](tick_atom) { validate(); });
    }
    return client_;
  }

  void validate() {
    {
      std::lock_guard<std::mutex> lock(ctx_.saga_mu);
      if (ctx_.running != setup_.st) ctx_.emergency_waiting = false;
      ctx_.running = setup_.st;
      st_.actor = address();
    }
    start_ = phase_start_ = clock().now();
    become([](prepare_atom) {}); // takes nothing else until validation answers
    request(io_, caf::infinite, prepare_atom::value, args_.dump())
        .then([this](saga_prepared_ptr& p) { prepared(std::move(*p)); });
  }

  void prepared(saga_prepared p) {
    result_ = std::move(p.result);
    v_ = std::move(p.v);
    pre_rollback_ = std::move(p.pre_rollback);
    borrowed_ = p.borrowed;
    held_ = p.held;
    if (p.err) return fail(p.failed_phase, p.err);
    devices_total_ = item_count(v_.steps);
    result_["phases_completed"].push_back("validation");
    // -- preparation: the pre-rollback checkpoint is in place; the journal's
    // begin record goes out with the first step
    enter(saga_phase::preparation);
    defer(begin(v_.steps));
    result_["phases_completed"].push_back("preparation");
    enter(saga_phase::execution);
    defer(phase_record{saga_phase::execution});
    become([this](preempt_atom) { preempted(); });
    step(0);
  }

  // -- execution -------------------------------------------------------------------

  void step(size_t i) {
    if (i == v_.steps.size()) return verify();
    if (st_.preempt)
      return compensate(saga_phase::execution, preemption(), saga_outcome::preempted);
    // Durable before the step touches anything, with the records before it.
    commit(step_start_record{i}, [this, i](const status& err) {
      if (err) {
        if (i == 0) return fail(saga_phase::preparation, err); // the saga never began
        return compensate(saga_phase::execution, err, saga_outcome::compensated);
      }
      if (st_.preempt)
        return compensate(saga_phase::execution, preemption(), saga_outcome::preempted);
      started_.push_back(i);
      auto& st = v_.steps[i];
      report("execution", st.name, devices_done_);
      // The step's limit, or the saga's when it comes first.
      const auto now = clock().now();
      const auto step_end = now + std::chrono::milliseconds(ctx_.cfg.rollback_step_timeout_ms);
      const auto saga_end = start_ + std::chrono::milliseconds(ctx_.cfg.rollback_timeout_ms);
      const bool saga_limits = saga_end < step_end;
      current_ = i;
      ask(apply_atom::value, st, v_.target, saga_limits ? saga_end : step_end,
          [this, i, saga_limits](failed_list f, bool late) {
            step_done(i, std::move(f), late, saga_limits);
          });
    });
  }

  // An emergency rollback takes over: the step in progress is abandoned (its
  // answer, when it comes, is dropped) and the saga compensates at once.
  void preempted() {
    if (!current_) return; // between steps: the next one sees st_.preempt
    auto& st = v_.steps[*current_];
    ++asked_; // the outstanding answer is stale now
    current_.reset();
    failed_ = every_item_failed(st, "abandoned: an emergency rollback pre-empts this one");
    defer(step_failed_record{started_.back(), failed_});
    compensate(saga_phase::execution, preemption(), saga_outcome::preempted);
  }

  void step_done(size_t i, failed_list f, bool late, bool saga_limits) {
    current_.reset();
    failed_ = std::move(f);
    auto& st = v_.steps[i];
    if (st_.preempt) {
      if (!failed_.empty()) defer(step_failed_record{i, failed_});
      return compensate(saga_phase::execution, preemption(), saga_outcome::preempted);
    }
    if (failed_.empty() && !late) {
      devices_done_ += st.items.size();
      defer(step_done_record{i});
      return step(i + 1);
    }
    devices_done_ += st.items.size() - std::min(st.items.size(), failed_.size());
    if (!failed_.empty()) defer(step_failed_record{i, failed_});
    compensate(saga_phase::execution,
               step_error(ctx_.cfg, st, failed_, late ? (saga_limits ? 2 : 1) : 0),
               saga_outcome::compensated);
  }

  // -- verification: read back and compare bit for bit -----------------------------

  void verify() {
    result_["rolled_back"] = rolled_back_json(v_.steps);
    result_["phases_completed"].push_back("execution");
    enter(saga_phase::verification);
    defer(phase_record{saga_phase::verification});
    become([](preempt_atom) {}); // too late to pre-empt: the emergency waits for the end
    if (started_.empty()) return verified({});
    const auto limit = clock().now() + std::chrono::milliseconds(ctx_.cfg.rollback_step_timeout_ms);
    auto left = std::make_shared<size_t>(started_.size());
    auto failed = std::make_shared<failed_list>();
    for (auto i : started_)
      ask(read_back_atom::value, v_.steps[i], v_.target, limit,
          [this, left, failed](failed_list f, bool) {
            failed->insert(failed->end(), f.begin(), f.end());
            if (--*left == 0) verified(std::move(*failed));
          });
  }

  void verified(failed_list failed) {
    failed_ = std::move(failed);
    if (!failed_.empty())
      return compensate(saga_phase::verification,
                        make_error(errc::rollback_failed, "verification failed for " +
                                                              std::to_string(failed_.size()) +
                                                              " item(s), first " + failed_[0].id +
                                                              ": " + failed_[0].error),
                        saga_outcome::compensated);
    result_["phases_completed"].push_back("verification");
    // -- cleanup
    enter(saga_phase::cleanup);
    defer(phase_record{saga_phase::cleanup});
    result_["phases_completed"].push_back("cleanup");
    result_["phase_ms"]["cleanup"] = ms_since(phase_start_);
    end_record end;
    end.outcome = saga_outcome::completed;
    end.duration_ms = ms_since(start_);
    result_["duration_ms"] = end.duration_ms;
    commit(std::move(end), [this](const status& err) {
      if (err) return compensate(saga_phase::cleanup, err, saga_outcome::compensated);
      result_["success"] = true;
      result_["outcome"] = enum_name(saga_outcome::completed);
      report("done", "", devices_done_);
      spdlog::info("rollback {} to {} done ({}): {} step(s), {} item(s) of {}, {:.1f} ms", st_.id,
                   v_.target_id, enum_name(v_.type), v_.steps.size(), item_count(v_.steps),
                   result_["rolled_back"]["components"].dump(), ms_since(start_));
      finish(ok_reply(result_));
    });
  }

  // -- compensation ----------------------------------------------------------------

  // Puts the steps that started back to the pre-rollback state, newest
  // first, each within compensation_step_timeout_ms (a component that does
  // not answer is named, not waited for), then ends the saga.
  void compensate(saga_phase phase, const error& cause, saga_outcome outcome) {
    spdlog::warn("rollback {} failed in {} ({}): compensating {} step(s)", st_.id, enum_name(phase),
                 cause.message, started_.size());
    become([](preempt_atom) {}); // already compensating
    result_["failed_phase"] = enum_name(phase);
    if (!failed_.empty()) result_["failed"] = to_json(failed_);
    order_.assign(started_.rbegin(), started_.rend());
    comp_ = {phase, cause, outcome, {}};
    commit(compensate_start_record{order_, cause.message}, [this](const status& err) {
      if (err) {
        comp_.failed.push_back({"journal", err.message});
        return compensated();
      }
      report("compensation", "", devices_done_);
      put_back(0);
    });
  }

  void put_back(size_t k) {
    if (k == order_.size()) return compensated();
    auto& st = v_.steps[order_[k]];
    const auto limit_ms = ctx_.cfg.rollback_compensation_step_timeout_ms;
    const auto limit = clock().now() + std::chrono::milliseconds(limit_ms);
    auto late_note = [name = st.name, limit_ms](failed_list& f) {
      for (auto& item : f)
        item.error += " (putting back " + name + " took longer than " +
                      "compensation_step_timeout_ms, " + std::to_string(limit_ms) + " ms)";
    };
    ask(apply_atom::value, st, v_.current, limit, [=](failed_list f, bool late) {
      if (late) {
        // Not read back: what it asked is still in progress.
        late_note(f);
        comp_.failed.insert(comp_.failed.end(), f.begin(), f.end());
        return put_back(k + 1);
      }
      ask(read_back_atom::value, v_.steps[order_[k]], v_.current, limit,
          [=](failed_list r, bool late_read) mutable {
            std::set<std::string> known;
            for (auto& item : f)
              known.insert(item.id);
            for (auto& item : r)
              if (known.insert(item.id).second) f.push_back(std::move(item));
            if (late_read) late_note(f);
            comp_.failed.insert(comp_.failed.end(), f.begin(), f.end());
            put_back(k + 1);
          });
    });
  }

  void compensated() {
    auto& failed = comp_.failed;
    const bool ok = failed.empty();
    json names = json::array();
    for (auto i : order_)
      names.push_back(v_.steps[i].name);
    defer(compensate_done_record{ok, failed});
    result_["compensated"] = {{"steps", names}, {"ok", ok}, {"failed", to_json(failed)}};
    const double ms = ms_since(start_);
    result_["duration_ms"] = ms;
    end_record end;
    end.outcome = ok ? comp_.outcome : saga_outcome::compensation_failed;
    end.failed_phase = enum_name(comp_.phase);
    end.error = comp_.cause.message;
    end.failed = failed_;
    end.duration_ms = ms;
    result_["outcome"] = enum_name(end.outcome);
    commit(std::move(end), [this, ok](const status& ended) {
      end_or_log(ended);
      auto& failed = comp_.failed;
      if (!ok && !ended) {
        // Left to the node: it keeps trying to put these back.
        settle_.saga = st_.id;
        settle_.pre_rollback = pre_rollback_;
        settle_.steps = v_.steps;
        settle_.order = order_;
        settle_.image = v_.current;
        for (auto& f : failed)
          settle_.items.push_back(f.id);
      }
      const auto& cause = comp_.cause;
      std::string msg =
          cause.message + (ok ? "; every step that ran was put back to the "
                                "pre-rollback state and verified"
                              : "; COMPENSATION FAILED for " + std::to_string(failed.size()) +
                                    " item(s), first " + failed[0].id + ": " + failed[0].error);
      finish(error_reply(
          make_error(cause.code == errc::none ? errc::rollback_failed : cause.code, msg), result_));
    });
  }

  // -- ends ------------------------------------------------------------------------

  // Ends a saga that changed nothing; the history still records it.
  void fail(saga_phase phase, const error& e) {
    become([](preempt_atom) {});
    result_["failed_phase"] = enum_name(phase);
    const double ms = ms_since(start_);
    result_["duration_ms"] = ms;
    result_["outcome"] = enum_name(saga_outcome::refused);
    // Nothing was journalled yet (a begin record not written goes with its
    // steps): the history learns of the saga from this begin and end.
    pending_.clear();
    defer(begin({}));
    end_record end;
    end.outcome = saga_outcome::refused;
    end.failed_phase = enum_name(phase);
    end.error = e.message;
    end.duration_ms = ms;
    commit(std::move(end), [this, e](const status& err) {
      end_or_log(err);
      finish(error_reply(e, result_));
    });
  }

  // The worker gives back what it borrowed, if anything; the node is
  // released (the saga waiting for its turn, if any, runs); the client gets
  // its answer.
  void finish(control_reply reply) {
    become([](preempt_atom) {});
    if (borrowed_ || held_) {
      borrowed_ = held_ = false;
      request(io_, caf::infinite, finish_atom::value)
          .then([this, reply](std::vector<std::string>& warnings) mutable {
            finish(with_warnings(std::move(reply), warnings));
          });
      return;
    }
    release_saga(ctx_, st_.id);
    if (reply.code != 0) spdlog::info("rollback {}: {}", st_.id, reply.message);
    client_.deliver(std::move(reply));
    if (!settle_.items.empty() && setup_.settle) setup_.settle(std::move(settle_));
    quit();
  }

  // An end record that could not be written leaves the saga to start-up
  // recovery, which finds it without an end and settles it again (a device
  // already in its state is not written); the reply says so.
  void end_or_log(const status& err) {
    if (!err) return;
    spdlog::error("rollback {}: its end record cannot be written ({}); the next start settles it",
                  st_.id, err.message);
    result_["journal_error"] = err.message;
  }

  // -- helpers ---------------------------------------------------------------------

  // Asks the handler of `st`'s component to apply or read back `st` against
  // `image` by `limit`; `then` gets what failed and whether the limit passed.
  // An answer that comes after a pre-emption is dropped.
  template <class Atom, class Then>
  void ask(Atom atom, const saga_step& st, const system_image& image, clock_point limit,
           Then then) {
    const component_handler* h = nullptr;
    for (auto& c : components_)
      if (c.name == st.component) h = &c.handle;
    auto img = image.find(st.component);
    if (h == nullptr || img == image.end())
      return then(every_item_failed(st, h == nullptr ? "component " + st.component +
                                                           " is not configured on this node"
                                                     : "the checkpoint holds nothing of "
                                                       "component " +
                                                           st.component),
                  false);
    const auto within = std::max(caf::timespan{1000000}, limit - clock().now());
    const uint64_t asked = asked_;
    auto& ref = shared_[{&image, st.component}]; // copied once per image and component
    if (!ref.image) ref = image_ref::of(img->second);
    auto handle = request(*h, within + handler_grace, atom, st, ref, within);
    handle.then(
        [this, asked, then, limit, id = handle.id()](failed_list& f) mutable {
          clock().cancel_request_timeout(this, id); // CAF 0.17 keeps it otherwise
          if (asked != asked_) return;
          then(std::move(f), clock().now() >= limit); // answered at the limit: late
        },
        [this, asked, then, st](caf::error& e) mutable {
          if (asked != asked_) return;
          const bool late = e == caf::sec::request_timeout || from_caf(e).code == errc::timeout;
          then(every_item_failed(st, late ? "component " + st.component + " did not answer in time"
                                          : from_caf(e).message),
               late);
        });
  }

  error preemption() const {
    return make_error(errc::busy,
                      st_.cancelled ? "cancelled" : "pre-empted by an emergency rollback");
  }

  begin_record begin(std::vector<saga_step> steps) const {
    begin_record b;
    b.saga = st_.id;
    b.type = v_.type;
    b.target = v_.target_id;
    b.pre_rollback = pre_rollback_;
    b.initiated_by = initiated_by_;
    b.reason = reason_;
    b.started_at = ctx_.os->now_unix_ns();
    b.steps = std::move(steps);
    return b;
  }

  double ms_since(clock_point t) {
    return std::chrono::duration<double, std::milli>(clock().now() - t).count();
  }

  void report(const std::string& phase, const std::string& component, size_t done) {
    if (!progress_to_) return;
    json p = {{"saga", st_.id},
              {"phase", phase},
              {"component", component},
              {"devices_done", done},
              {"devices_total", devices_total_}};
    send(progress_to_, rollback_progress{p.dump()});
  }

  void enter(saga_phase phase) {
    const auto now = clock().now();
    result_["phase_ms"][enum_name(st_.phase.load())] =
        std::chrono::duration<double, std::milli>(now - phase_start_).count();
    phase_start_ = now;
    st_.phase = phase;
    report(enum_name(phase), "", devices_done_);
  }

  // Records that need to be durable only before the next commit (group commit).
  void defer(journal_record record) { pending_.push_back(std::move(record)); }

  // Writes the deferred records and `record` (fsynced by the worker), then `then(error)`.
  template <class Then> void commit(journal_record record, Then then) {
    pending_.push_back(std::move(record));
    auto batch = std::make_shared<std::vector<journal_record>>(std::move(pending_));
    pending_.clear();
    request(io_, caf::infinite, commit_atom::value, std::move(batch))
        .then([then](commit_atom) mutable { then(status{}); },
              [then](caf::error& e) mutable { then(status{from_caf(e)}); });
  }

  saga_setup setup_;
  node_context& ctx_;
  saga_status& st_;
  std::map<std::pair<const system_image*, std::string>, image_ref> shared_; ///< see ask()
  caf::actor io_;
  std::vector<handler_ref> components_;
  caf::response_promise client_;
  caf::actor progress_to_;
  json args_;
  std::string initiated_by_, reason_, pre_rollback_;
  clock_point start_, phase_start_;
  json result_;
  validated v_;
  bool borrowed_ = false;               ///< the worker released the space reserve for the saga
  bool held_ = false;                   ///< the components are held still until the saga ends
  std::vector<size_t> started_;         ///< steps whose step_start is journalled
  std::optional<size_t> current_;       ///< the step whose answer is awaited
  uint64_t asked_ = 0;                  ///< bumped to drop an abandoned step's answer
  std::vector<journal_record> pending_; ///< deferred records, written with the next commit
  failed_list failed_;                  ///< what the failed step or verification could not restore
  size_t devices_total_ = 0, devices_done_ = 0; ///< items, for progress
  std::vector<size_t> order_;                   ///< compensation order
  struct {
    saga_phase phase = saga_phase::execution;
    error cause;
    saga_outcome outcome = saga_outcome::compensated;
    failed_list failed; ///< what could not be put back
  } comp_;
  settle_job settle_;
};

} // namespace

caf::actor spawn_saga(caf::actor_system& sys, saga_setup setup) {
  return sys.spawn<saga_actor>(std::move(setup));
}

} // namespace dsmil
