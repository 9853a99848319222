#include <map>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "actors/devices/device_service.hpp"
#include "runtime/devices/sim_driver.hpp"

#include <spdlog/spdlog.h>

namespace dsmil {

int64_t clock_ms(caf::local_actor* self) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             self->clock().now().time_since_epoch())
      .count();
}

namespace {

// One call in flight: retried with backoff until it succeeds, fails for
// good, or runs out of attempts. `patch` is empty for a read.
struct pending_call {
  bool is_write = false;
  device_patch patch;
  uint32_t attempt = 0;
  caf::typed_response_promise<device_state> promise;
  bool reply_due = false; // the call is done; the reply waits for the simulated latency
  device_state reply;
};

struct device_actor_state {
  device_actor_config cfg;
  std::map<uint64_t, pending_call> calls;
  uint64_t next_call = 1;
  uint64_t jitter_rng = 0;
  static inline const char* name = "dsmil.device";
};

using self_ptr = device_service::stateful_pointer<device_actor_state>;

bool retryable(errc code) {
  return code == errc::driver_error || code == errc::device_offline;
}

void attempt(self_ptr self, uint64_t call_id);

void finish(self_ptr self, uint64_t call_id, device_state state) {
  auto& call = self->state.calls[call_id];
  auto latency = self->state.cfg.drv->latency_ms(self->state.cfg.id);
  if (latency > 0 && !call.reply_due) {
    // The simulated device is slow: answer later on the actor clock, never sleep.
    call.reply_due = true;
    call.reply = std::move(state);
    self->delayed_send(self, std::chrono::milliseconds(latency), retry_atom::value, call_id);
    return;
  }
  call.promise.deliver(std::move(state));
  self->state.calls.erase(call_id);
}

void fail(self_ptr self, uint64_t call_id, const error& e) {
  self->state.calls[call_id].promise.deliver(to_caf(e));
  self->state.calls.erase(call_id);
}

void attempt(self_ptr self, uint64_t call_id) {
  auto& st = self->state;
  auto& call = st.calls[call_id];
  const auto id = st.cfg.id;
  {
    std::lock_guard<std::mutex> guard(st.cfg.slot->mu);
    auto& b = st.cfg.slot->breaker;
    if (!b.allow(clock_ms(self))) {
      auto wait_s = (b.retry_in_ms(clock_ms(self)) + 999) / 1000;
      return fail(self, call_id,
                  make_error(errc::circuit_open, "device " + format_device_id(id) +
                                                     " is failing: its circuit breaker is open "
                                                     "after " +
                                                     std::to_string(b.consecutive_failures()) +
                                                     " failures; next trial in " +
                                                     std::to_string(wait_s) + " s"));
    }
  }
  ++call.attempt;
  error err;
  device_state after;
  if (call.is_write) {
    err = st.cfg.drv->write(call.patch);
    if (!err) {
      auto r = st.cfg.drv->read(id);
      if (r)
        after = std::move(*r);
      else
        err = r.err();
    }
  } else {
    auto r = st.cfg.drv->read(id);
    if (r)
      after = std::move(*r);
    else
      err = r.err();
  }
  if (!err) {
    std::lock_guard<std::mutex> guard(st.cfg.slot->mu);
    st.cfg.slot->breaker.on_success();
  } else if (retryable(err.code)) {
    std::lock_guard<std::mutex> guard(st.cfg.slot->mu);
    st.cfg.slot->breaker.on_failure(clock_ms(self));
  }
  if (!err) return finish(self, call_id, std::move(after));
  if (!retryable(err.code) || call.attempt >= st.cfg.retry.attempts) {
    if (retryable(err.code) && call.attempt > 1)
      err.message += " (after " + std::to_string(call.attempt) + " attempts)";
    return fail(self, call_id, err);
  }
  double unit =
      static_cast<double>(splitmix64(st.jitter_rng) >> 11) / static_cast<double>(1ull << 53);
  auto delay = backoff_delay_ms(st.cfg.retry, call.attempt, unit);
  self->delayed_send(self, std::chrono::milliseconds(delay), retry_atom::value, call_id);
}

caf::result<device_state> start_call(self_ptr self, pending_call call) {
  auto id = self->state.next_call++;
  auto promise = self->make_response_promise<device_state>();
  call.promise = promise;
  self->state.calls.emplace(id, std::move(call));
  attempt(self, id);
  return promise;
}

device_service::behavior_type device_actor(self_ptr self, device_actor_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.jitter_rng = self->state.cfg.id * 0x9E3779B97F4A7C15ull + 1;
  // A (re)started device actor re-reads its device before serving anyone.
  auto first = self->state.cfg.drv->read(self->state.cfg.id);
  if (!first)
    spdlog::warn("device {} unreadable at start: {}", format_device_id(self->state.cfg.id),
                 first.err().message);
  return {
      [=](read_atom, device_id id) -> caf::result<device_state> {
        if (id != self->state.cfg.id) return to_caf(make_error(errc::internal, "misrouted read"));
        return start_call(self, pending_call{});
      },
      [=](device_patch& p) -> caf::result<device_state> {
        if (p.id != self->state.cfg.id)
          return to_caf(make_error(errc::internal, "misrouted write"));
        pending_call call;
        call.is_write = true;
        call.patch = std::move(p);
        return start_call(self, std::move(call));
      },
      [=](health_atom) -> std::vector<device_health> { return {}; },
      [=](crash_atom, device_id) {
        self->quit(to_caf(make_error(errc::internal, "crash injected into device actor " +
                                                         format_device_id(self->state.cfg.id))));
      },
      [=](retry_atom, uint64_t call_id) {
        auto it = self->state.calls.find(call_id);
        if (it == self->state.calls.end()) return;
        if (it->second.reply_due) {
          it->second.promise.deliver(std::move(it->second.reply));
          self->state.calls.erase(it);
          return;
        }
        attempt(self, call_id);
      },
  };
}

} // namespace

device_service spawn_device_actor(caf::local_actor* parent, device_actor_config cfg) {
  return parent->spawn(device_actor, std::move(cfg));
}

} // namespace dsmil
