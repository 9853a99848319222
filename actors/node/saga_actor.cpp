// The saga actor, dsmil.saga: one rollback saga, waiting its turn, then
// (when its compensation failed) putting back what it could not.
#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/node_impl.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

// After a saga whose compensation failed has answered: puts back what it
// could not, with backoff ([retry]), while no other rollback runs. A
// rollback that starts takes over (an attempt in progress stops at once;
// the new saga's own state decides from then on). Ends when everything is
// back (journalled as settled), on a newer rollback, or when the node stops.
void settle(caf::blocking_actor* self, node_context& ctx, const settle_job& job) {
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(ctx.saga_mu);
    generation = ctx.sagas_started;
    ctx.settler = self->address();
  }
  uint64_t rng = ctx.os->steady_ns() | 1;
  for (uint32_t attempt = 1;; attempt = std::min(attempt + 1, 30u)) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    const auto delay = backoff_delay_ms(ctx.cfg.retry, attempt,
                                        static_cast<double>(rng >> 11) / double(1ull << 53));
    bool stop = false;
    self->receive(
        [&](caf::exit_msg& m) {
          if (m.reason == caf::exit_reason::kill) throw actor_killed{};
          stop = true;
        },
        caf::after(std::chrono::milliseconds(delay)) >> [] {});
    auto st = std::make_shared<saga_status>();
    st->id = job.saga;
    st->type = "settle";
    st->target = job.pre_rollback;
    st->phase = saga_phase::cleanup;
    {
      std::lock_guard<std::mutex> lock(ctx.saga_mu);
      if (stop || ctx.sagas_started != generation || ctx.running) {
        ctx.settler = caf::actor_addr{};
        return;
      }
      ctx.running = st;
      st->actor = self->address();
    }
    actor_calls calls(self, ctx);
    auto failed = settle_attempt(ctx, calls, job);
    release_saga(ctx, st->id);
    if (calls.exit_requested()) {
      std::lock_guard<std::mutex> lock(ctx.saga_mu);
      ctx.settler = caf::actor_addr{};
      return;
    }
    if (st->preempt) continue; // the next look sees the newer rollback and ends
    if (failed.empty()) {
      if (auto err = record_settled(ctx, job))
        spdlog::error("rollback {}: everything is back, but its journal cannot say so: {}",
                      job.saga, err.message);
      else
        spdlog::info("rollback {}: what its compensation could not put back is back now and "
                     "verified",
                     job.saga);
      std::lock_guard<std::mutex> lock(ctx.saga_mu);
      ctx.settler = caf::actor_addr{};
      return;
    }
    spdlog::debug("rollback {}: still not back ({} item(s), first {}: {})", job.saga, failed.size(),
                  failed[0].id, failed[0].error);
  }
}

// One rollback saga: waits its turn (an emergency waits for the saga it
// pre-empts to compensate), runs, answers the client directly; then, when
// its compensation failed, keeps putting back what it could not.
void saga_loop(caf::blocking_actor* self, std::shared_ptr<node_context> ctx,
               std::shared_ptr<saga_status> st) {
  settle_job job;
  // `client` is who asked dsmil.control (which asks here, so that it can
  // answer the client itself should this actor stop): progress goes to it.
  self->receive([&](control_request& req, caf::actor& client) -> control_reply {
    auto args = parse_args(req);
    bool my_turn = false;
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      my_turn = !ctx->running || ctx->running == st;
      if (!my_turn) ctx->next_saga = caf::actor_cast<caf::actor>(self);
    }
    // An emergency rollback waits here for the saga it pre-empted to
    // compensate; that saga hands over as it ends.
    if (!my_turn)
      self->receive([](tick_atom) {},
                    [](caf::exit_msg& m) {
                      if (m.reason == caf::exit_reason::kill) throw actor_killed{};
                    });
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      if (ctx->running != st) ctx->emergency_waiting = false;
      ctx->running = st;
      st->actor = self->address();
    }
    actor_calls calls(self, *ctx);
    progress_fn progress;
    if (args && args->value("progress", false) && client)
      progress = [&](const json& p) { self->send(client, rollback_progress{p.dump()}); };
    control_reply reply;
    try {
      reply = args ? run_rollback(*ctx, calls, *args, st.get(), progress, &job)
                   : error_reply(args.err());
    } catch (const json::exception& e) {
      reply = malformed(e);
    } catch (const std::exception& e) {
      reply = error_reply(make_error(errc::internal, std::string("internal error: ") + e.what()));
    }
    {
      std::lock_guard<std::recursive_mutex> lock(ctx->mu);
      // Released for the saga's safety net when space was short: held again.
      if (ctx->reserve->held() < ctx->reserve->wanted()) hold_reserve(*ctx);
    }
    release_saga(*ctx, st->id);
    if (reply.code != 0) spdlog::info("rollback {}: {}", st->id, reply.message);
    return reply;
  });
  if (!job.items.empty()) settle(self, *ctx, job);
}

class saga_actor final : public caf::blocking_actor {
public:
  saga_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx,
             std::shared_ptr<saga_status> st)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), st_(std::move(st)) {}
  const char* name() const override { return "dsmil.saga"; }
  void act() override {
    try {
      saga_loop(this, ctx_, st_);
    } catch (const actor_killed&) {
      fail_state(caf::exit_reason::kill); // dsmil.control recovers the saga from its journal
    }
  }

private:
  std::shared_ptr<node_context> ctx_;
  std::shared_ptr<saga_status> st_;
};

// Settles what a saga's compensation could not put back, for a node that
// restarted since (the saga's own actor did it before).
class settler_actor final : public caf::blocking_actor {
public:
  settler_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx, settle_job job)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), job_(std::move(job)) {}
  const char* name() const override { return "dsmil.saga"; }
  void act() override {
    try {
      settle(this, *ctx_, job_);
    } catch (const actor_killed&) {
      fail_state(caf::exit_reason::kill);
    }
  }

private:
  std::shared_ptr<node_context> ctx_;
  settle_job job_;
};

} // namespace

void spawn_settler(caf::actor_system& sys, std::shared_ptr<node_context> ctx, settle_job job) {
  spdlog::warn("rollback {} could not put back {} item(s) before the node stopped; trying again",
               job.saga, job.items.size());
  auto& c = *ctx;
  auto a = sys.spawn<settler_actor>(std::move(ctx), std::move(job));
  std::lock_guard<std::mutex> lock(c.saga_mu);
  c.settler = a.address(); // told to stop with the node from now on
}

void release_saga(node_context& ctx, const std::string& id) {
  caf::actor next;
  {
    std::lock_guard<std::mutex> lock(ctx.saga_mu);
    if (!ctx.running || ctx.running->id != id) return;
    ctx.running.reset();
    std::swap(next, ctx.next_saga);
  }
  if (next) caf::anon_send(next, tick_atom::value);
}

caf::actor spawn_saga(caf::actor_system& sys, std::shared_ptr<node_context> ctx,
                      std::shared_ptr<saga_status> st) {
  return sys.spawn<saga_actor>(std::move(ctx), std::move(st));
}

} // namespace dsmil
