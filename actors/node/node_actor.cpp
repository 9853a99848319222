#include <deque>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/node_impl.hpp"

namespace dsmil {

namespace {

// Which worker serves a command. Reads change nothing and take no node lock,
// so dsmil.reader answers them beside whatever dsmil.writer or a saga does
// (the store, the configuration and the history guard themselves). Long
// reads (a full verify, a store check, a dry run) and changes go to
// dsmil.writer, one at a time; changes are refused while a rollback runs.
// Levers are the simulator's test controls: they take no node lock either
// and act at once on dsmil.reader (clearing a fault is how a hung saga's
// device answers again). Typed commands say their kind themselves
// (dsmil/control.hpp); a rollback's dry run is a long read, any other
// rollback starts a saga.
bool on_reader(command_kind kind) {
  return kind == command_kind::read || kind == command_kind::lever;
}

// Why a change waits: the rollback that runs, named. Empty when none runs.
std::string refusal(node_context& ctx, const std::string& command) {
  std::lock_guard<std::mutex> lock(ctx.saga_mu);
  if (!ctx.running) return {};
  return "rollback " + ctx.running->id + " is running (" + enum_name(ctx.running->phase.load()) +
         "); '" + command + "' waits until it ends ('dsmilctl rollback show " + ctx.running->id +
         "')";
}

// One typed command on a worker. The writer holds ctx.mu (shared with
// sagas' store work); the reader holds nothing.
template <class R>
answer<typename R::reply> serve(node_context& ctx, actor_calls& calls, const R& req, bool writer) {
  try {
    if (changes_state(req)) {
      auto why = refusal(ctx, R::command);
      if (!why.empty()) return fail(make_error(errc::busy, why));
    }
    std::unique_lock<std::recursive_mutex> lock(ctx.mu, std::defer_lock);
    if (writer) lock.lock();
    return run(ctx, calls, req);
  } catch (const std::exception& e) {
    return fail(make_error(errc::internal, std::string("internal error: ") + e.what()));
  }
}

template <class A> void log_answer(const char* command, const A& a) {
  if (a.code != errc::none)
    spdlog::info("{}: {}", command, a.message);
  else
    spdlog::debug("{}: ok", command);
}

// The node's detached actors, each named here (CAF's logs and exit reasons
// name them so): dsmil.writer serves changes and long reads one at a time,
// dsmil.reader serves reads, dsmil.saga runs one rollback saga and ends with
// it. Nothing else in the node runs on a thread of its own but the env's
// workers; dsmil.control, which routes commands to them, is event-based and
// supervises them.
class worker_actor final : public caf::blocking_actor {
public:
  /// A writer that `recovers` first settles the sagas a crash interrupted
  /// (dsmil.control asks it ready_atom, answered after that; a writer
  /// restarted later has nothing to settle: the node is up).
  worker_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx, bool writer,
               bool recovers)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), writer_(writer), recovers_(recovers) {}
  const char* name() const override { return writer_ ? "dsmil.writer" : "dsmil.reader"; }
  void act() override {
    try {
      serve_all();
    } catch (const actor_killed&) {
      fail_state(caf::exit_reason::kill); // dsmil.control starts another
    }
  }

private:
  template <class R> auto typed_handler(actor_calls& calls) {
    return [this, &calls](R& req) {
      auto reply = serve(*ctx_, calls, req, writer_);
      log_answer(R::command, reply);
      return reply;
    };
  }

  void serve_all() {
    actor_calls calls(this, *ctx_);
    if (recovers_) {
      recover_sagas(*ctx_, calls);
      // What a compensation could not put back before the node stopped:
      // tried again, as its saga would have.
      if (auto job = unsettled_job(*ctx_)) {
        spdlog::warn("rollback {} could not put back {} item(s) before the node stopped; "
                     "trying again",
                     job->saga, job->items.size());
        spawn_settler(system(), ctx_, std::move(*job));
      }
    }
    bool running = true;
    std::apply(
        [&](auto... rs) {
          receive_while([&] { return running && !calls.exit_requested(); })(
              typed_handler<decltype(rs)>(calls)..., [](ready_atom) { return ready_atom::value; },
              // A saga whose actor stopped before it ended: settled from its
              // journal, then the saga waiting for its turn, if any, runs.
              [&](recover_atom, const std::string& id) {
                {
                  std::lock_guard<std::recursive_mutex> lock(ctx_->mu);
                  recover_saga(*ctx_, calls, id, "the rollback's actor stopped before it ended");
                }
                release_saga(*ctx_, id);
              },
              [&](caf::exit_msg& m) {
                if (m.reason == caf::exit_reason::kill) throw actor_killed{};
                running = false;
              });
        },
        node_requests{});
  }

  std::shared_ptr<node_context> ctx_;
  bool writer_;
  bool recovers_;
};

// Automatic checkpoints ([automatic] interval_s): a timer on the actor clock
// that asks dsmil.control, like any client would; retention runs after each
// one. A child of dsmil.control, restarted by it.
class scheduler_actor final : public caf::event_based_actor {
public:
  scheduler_actor(caf::actor_config& cfg, caf::actor_addr control, std::chrono::seconds every)
      : caf::event_based_actor(cfg), control_(std::move(control)), every_(every) {}
  const char* name() const override { return "dsmil.scheduler"; }

  caf::behavior make_behavior() override {
    delayed_send(this, every_, tick_atom::value);
    return {[this](tick_atom) {
      if (auto control = caf::actor_cast<caf::actor>(control_)) { // still there
        checkpoint_create_request req;
        req.type = "automatic";
        req.name = "automatic";
        request(caf::actor_cast<node_api>(control), caf::infinite, std::move(req))
            .then(
                [](const answer<checkpoint_create_reply>& r) {
                  if (r.code != errc::none)
                    spdlog::warn("automatic checkpoint failed: {}", r.message);
                },
                [](caf::error& e) {
                  spdlog::warn("automatic checkpoint failed: {}", caf::to_string(e));
                });
      }
      delayed_send(this, every_, tick_atom::value);
    }};
  }

private:
  caf::actor_addr control_; ///< weak: its parent holds this actor
  std::chrono::seconds every_;
};

// Routes each command to its worker or starts a saga; does no work itself,
// so it answers at once whatever the workers do. Supervises the workers and
// the scheduler (restarted when they die, at most [supervision] max_restarts
// times in window_ms together; beyond that the node stops, for its service
// manager to restart) and the sagas (one whose actor dies is settled from its journal,
// as after a kill, and its client told so at once).
class control_actor final : public node_api::base {
public:
  control_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx)
      : node_api::base(cfg), ctx_(std::move(ctx)) {}
  const char* name() const override { return "dsmil.control"; }

  node_api::behavior_type make_behavior() override {
    start_worker(false, false);
    start_worker(true, true);
    if (ctx_->cfg.automatic_interval_s > 0) start_scheduler();
    set_exit_handler([this](caf::exit_msg& em) { stop(em.reason); });
    set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
    // Until the writer has settled the sagas a crash interrupted, every
    // command waits in the mailbox: what a client reads first after a
    // restart is the recovered state, never a saga half-way.
    await_ready();
    return std::apply(
        [](auto... rs) -> node_api::behavior_type {
          return {
              [](decltype(rs)&) -> caf::result<answer<typename decltype(rs)::reply>> {
                return caf::skip; // seen again after become()
              }...,
              [](rollback_by&) -> caf::result<answer<rollback_reply>> { return caf::skip; },
          };
        },
        node_requests{});
  }

private:
  // Serves commands once dsmil.writer answers ready_atom, which it does
  // after start-up recovery. A writer that dies first is started again by
  // on_down(), which asks again.
  void await_ready() {
    request(writer_, caf::infinite, ready_atom::value)
        .then(
            [this](ready_atom) {
              if (ready_) return;
              ready_ = true;
              if (ctx_->on_ready) ctx_->on_ready();
              become(serving());
            },
            [](caf::error&) {});
  }

  node_api::behavior_type serving() {
    return std::apply(
        [this](auto... rs) -> node_api::behavior_type {
          return {
              [this](decltype(rs)& req) -> caf::result<answer<typename decltype(rs)::reply>> {
                using R = decltype(rs);
                if constexpr (std::is_same<R, rollback_request>::value) {
                  // a dry run is a long read
                  if (!req.dry_run) return start_saga(req, "embedded");
                }
                delegate(on_reader(R::kind) ? reader_ : writer_, std::move(req));
                return caf::delegated<answer<typename R::reply>>{};
              }...,
              [this](rollback_by& r) -> caf::result<answer<rollback_reply>> {
                if (!r.request.dry_run) return start_saga(r.request, r.identity);
                delegate(writer_, std::move(r.request));
                return caf::delegated<answer<rollback_reply>>{};
              },
          };
        },
        node_requests{});
  }

  struct saga_entry {
    /// Answered by the saga, or here when it dies first.
    caf::typed_response_promise<answer<rollback_reply>> client;
    std::shared_ptr<saga_status> st;
  };

  void start_worker(bool writer, bool recovers) {
    auto w = spawn<worker_actor, caf::monitored>(ctx_, writer, recovers);
    (writer ? writer_ : reader_) = w;
    std::lock_guard<std::mutex> lock(ctx_->saga_mu);
    (writer ? ctx_->writer : ctx_->reader) = w.address();
  }

  void start_scheduler() {
    scheduler_ = spawn<scheduler_actor, caf::monitored>(
        address(), std::chrono::seconds(ctx_->cfg.automatic_interval_s));
    std::lock_guard<std::mutex> lock(ctx_->saga_mu);
    ctx_->scheduler = scheduler_.address();
  }

  // Counts a restart; false (and the node stops) beyond the intensity limit.
  bool may_restart(const char* name, const caf::error& reason) {
    const auto now = std::chrono::steady_clock::now();
    const auto window = std::chrono::milliseconds(ctx_->cfg.supervision.window_ms);
    restarts_.push_back(now);
    while (!restarts_.empty() && now - restarts_.front() > window)
      restarts_.pop_front();
    if (restarts_.size() > ctx_->cfg.supervision.max_restarts) {
      spdlog::error("{} stopped ({}) and the node's actors have been restarted {} times within "
                    "{} ms ([supervision] max_restarts): the node stops",
                    name, caf::to_string(reason), ctx_->cfg.supervision.max_restarts,
                    ctx_->cfg.supervision.window_ms);
      // Not `kill`: the actors told to stop must run their exit handlers.
      stop(caf::make_error(caf::sec::runtime_error,
                           std::string(name) + " restarted more than max_restarts times"));
      return false;
    }
    spdlog::error("{} stopped ({}); starting it again", name, caf::to_string(reason));
    return true;
  }

  void stop(const caf::error& reason) {
    spdlog::info("control actor stopping: {}", caf::to_string(reason));
    quit(reason); // on_exit() tells the rest of the node
  }

  // However this actor ends (told to, giving up on restarts, or killed), the
  // actors under it stop too: nothing of the node outlives its control.
  void on_exit() override {
    // `kill` ends an actor before its exit handler runs: the others get a
    // reason they can act on.
    auto reason = fail_state();
    if (reason == caf::exit_reason::kill) reason = caf::exit_reason::user_shutdown;
    send_exit(ctx_->devices, reason);
    send_exit(reader_, reason);
    send_exit(writer_, reason);
    if (scheduler_) send_exit(scheduler_, reason);
    {
      std::lock_guard<std::mutex> lock(ctx_->saga_mu);
      ctx_->stopping = true;
      if (auto s = caf::actor_cast<caf::actor>(ctx_->settler)) send_exit(s, reason);
    }
    for (auto& h : ctx_->handlers)
      send_exit(h.handle, reason);
    // A saga still running ends where it is: its journal settles it at the
    // next start, as after a kill.
    for (auto& [addr, entry] : sagas_)
      send_exit(addr, reason);
  }

  void on_down(caf::down_msg& dm) {
    const bool normal = !dm.reason || dm.reason == caf::exit_reason::normal;
    if (dm.source == reader_.address() || dm.source == writer_.address()) {
      const bool writer = dm.source == writer_.address();
      const char* name = writer ? "dsmil.writer" : "dsmil.reader";
      if (normal) return; // only when the node stops
      if (!may_restart(name, dm.reason)) return;
      // A writer that dies before start-up recovery is done starts it over.
      start_worker(writer, writer && !ready_);
      if (writer && !ready_) await_ready();
      return;
    }
    if (scheduler_ && dm.source == scheduler_.address()) {
      if (!normal && may_restart("dsmil.scheduler", dm.reason)) start_scheduler();
      return;
    }
    auto it = sagas_.find(dm.source);
    if (it == sagas_.end()) return;
    auto entry = std::move(it->second);
    sagas_.erase(it);
    if (normal) return;
    const auto& id = entry.st->id;
    spdlog::error("rollback {}: its actor stopped ({}) before the saga ended; settling it from "
                  "its journal",
                  id, caf::to_string(dm.reason));
    if (entry.client.pending())
      entry.client.deliver(to_rollback_answer(error_reply(make_error(
          errc::internal, "rollback " + id + " stopped (" + caf::to_string(dm.reason) +
                              ") before it ended; the node puts back what it changed from its "
                              "journal, as after a restart: see 'dsmilctl rollback show " +
                              id + "'"))));
    bool recover = false;
    {
      std::lock_guard<std::mutex> lock(ctx_->saga_mu);
      if (ctx_->next_saga && ctx_->next_saga.address() == dm.source) {
        ctx_->next_saga = nullptr; // it waited for its turn: nothing to settle
        ctx_->emergency_waiting = false;
      }
      if (ctx_->settler == dm.source) ctx_->settler = caf::actor_addr{};
      // Running itself (its journal may lack an end) or settling (its
      // journal has one: recovery finds nothing to do and releases it).
      recover = ctx_->running && ctx_->running->id == id;
    }
    if (recover) caf::anon_send(writer_, recover_atom::value, id);
  }

  // Starts a saga for a rollback request, or says why not.
  caf::result<answer<rollback_reply>> start_saga(rollback_request& req,
                                                 const std::string& identity) {
    auto& ctx = ctx_;
    const bool emergency = req.type == "emergency";
    auto st = std::make_shared<saga_status>();
    st->id = ctx->saga_ids.next(ctx->os->now_unix_ns());
    st->type = req.type;
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      if (ctx->running && ctx->running->type == "settle" && !ctx->emergency_waiting) {
        // Putting back what an earlier compensation could not: any rollback
        // takes over at once.
        ctx->running->preempt = true;
        if (auto a = caf::actor_cast<caf::actor>(ctx->running->actor))
          caf::anon_send(a, preempt_atom::value);
        ctx->emergency_waiting = true;
      } else if (ctx->running) {
        auto& r = *ctx->running;
        std::string running = "rollback " + r.id + " (" + (r.type.empty() ? "?" : r.type) +
                              (r.target.empty() ? "" : " to " + r.target) + ", " +
                              enum_name(r.phase.load()) + ")";
        if (!emergency)
          return answer<rollback_reply>(fail(make_error(
              errc::busy, running + " is running; wait for it to end, or pre-empt it with --type "
                                    "emergency")));
        if (ctx->emergency_waiting)
          return answer<rollback_reply>(
              fail(make_error(errc::busy, "an emergency rollback already waits for " + running +
                                              " to compensate")));
        r.preempt = true;
        // Stops its wait for a step's devices at once (it then compensates).
        if (auto a = caf::actor_cast<caf::actor>(r.actor)) caf::anon_send(a, preempt_atom::value);
        ctx->emergency_waiting = true;
        spdlog::warn("emergency rollback {} pre-empts {}", st->id, running);
      } else {
        ctx->running = st;
      }
      ++ctx->sagas_started; // accepted: a settler gives way to it
    }
    auto saga = spawn_saga(system(), ctx, st);
    monitor(saga);
    auto client = caf::actor_cast<caf::actor>(current_sender());
    auto rp = make_response_promise<answer<rollback_reply>>();
    sagas_.emplace(saga.address(), saga_entry{rp, st});
    const auto addr = saga.address();
    auto deliver = [this, addr](const control_reply& r) {
      auto it = sagas_.find(addr);
      if (it != sagas_.end() && it->second.client.pending())
        it->second.client.deliver(to_rollback_answer(r));
    };
    request(saga, caf::infinite, rollback_by{identity, std::move(req)}, client)
        .then([deliver](control_reply& r) { deliver(r); },
              [deliver](caf::error& e) {
                deliver(error_reply(make_error(errc::internal, "rollback: " + caf::to_string(e))));
              });
    return rp;
  }

  std::shared_ptr<node_context> ctx_;
  caf::actor reader_;
  caf::actor writer_;
  caf::actor scheduler_; ///< when automatic checkpoints are on
  bool ready_ = false;   ///< start-up recovery is done
  std::deque<std::chrono::steady_clock::time_point> restarts_; ///< in the window
  std::map<caf::actor_addr, saga_entry> sagas_;                ///< sagas alive, by actor
};

} // namespace

node_api spawn_control(caf::actor_system& sys, std::shared_ptr<node_context> ctx) {
  return sys.spawn<control_actor>(std::move(ctx));
}

} // namespace dsmil
