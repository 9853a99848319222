// The node's rollback sagas: how one is set up (its worker and handlers), how
// it hands the node over when it ends, and the settler: after a saga whose
// compensation could not put everything back (or at start-up, for one that
// decides still), it keeps trying, as a blocking actor of its own
// (dsmil.settler).
#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/node_impl.hpp"
#include "actors/node/saga_protocol.hpp"
#include "runtime/os/env.hpp"
#include "runtime/saga/journal.hpp"

namespace dsmil {

using namespace rollback_detail;

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

// Settles what a saga's compensation could not put back.
class settler_actor final : public caf::blocking_actor {
public:
  settler_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx, settle_job job)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), job_(std::move(job)) {}
  const char* name() const override { return "dsmil.settler"; }
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
  auto& c = *ctx;
  // Spawned and named under the lock dsmil.control's exit takes: a settler
  // either is told to stop with the node or never starts (one started after
  // would wait out its backoff and hold the actor system open).
  std::lock_guard<std::mutex> lock(c.saga_mu);
  if (c.stopping) {
    spdlog::info("rollback {}: the node is stopping; its next start puts back what is left",
                 job.saga);
    return;
  }
  auto a = sys.spawn<settler_actor>(std::move(ctx), std::move(job));
  c.settler = a.address();
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

saga_setup node_saga_setup(caf::actor_system& sys, std::shared_ptr<node_context> ctx,
                           std::shared_ptr<saga_status> st) {
  saga_setup s;
  s.ctx = ctx;
  s.st = st;
  s.io = [ctx, st](caf::event_based_actor* saga) { return spawn_saga_io(saga, ctx, st); };
  s.components = [ctx](caf::event_based_actor* saga) {
    // DESIGN order: configuration, security, devices, then a host's.
    std::vector<handler_ref> all;
    for (auto& h : ctx->handlers) {
      all.push_back(h);
      if (all.size() == 2) all.push_back(spawn_devices_handler(saga, ctx));
    }
    if (all.size() < 3) all.push_back(spawn_devices_handler(saga, ctx));
    return all;
  };
  s.settle = [&sys, ctx](settle_job job) {
    spdlog::warn("rollback {}: {} item(s) not put back; the node keeps trying", job.saga,
                 job.items.size());
    spawn_settler(sys, ctx, std::move(job));
  };
  return s;
}

caf::actor spawn_saga(caf::actor_system& sys, std::shared_ptr<node_context> ctx,
                      std::shared_ptr<saga_status> st) {
  return spawn_saga(sys, node_saga_setup(sys, std::move(ctx), std::move(st)));
}

} // namespace dsmil
