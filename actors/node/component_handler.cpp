#include "actors/node/component_handler.hpp"

#include <functional>
#include <map>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

// The component's calls, on a thread of their own. An exception from the
// component becomes its answer (an error, or every item of the step failed);
// a worker that dies anyway is restarted by its handler.
class handler_worker final : public caf::blocking_actor {
public:
  handler_worker(caf::actor_config& cfg, std::shared_ptr<component> c)
      : caf::blocking_actor(cfg), c_(std::move(c)) {}
  const char* name() const override { return "dsmil.handler"; }

  void act() override {
    bool running = true;
    receive_while([&] { return running; })(
        [&](capture_atom) -> caf::result<image_ref> {
          result<component_image> r = make_error(errc::internal, "not captured");
          try {
            r = c_->capture();
          } catch (const std::exception& e) {
            r = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (!r) return to_caf(r.err());
          return image_ref::of(std::move(*r));
        },
        [&](plan_atom, const image_ref& now, const image_ref& target,
            const plan_request& req) -> caf::result<component_plan> {
          result<component_plan> r = make_error(errc::internal, "not planned");
          try {
            r = c_->plan(*now, *target, req);
          } catch (const std::exception& e) {
            r = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (!r) return to_caf(r.err());
          return std::move(*r);
        },
        [&](apply_atom, const saga_step& st, const image_ref& target, caf::timespan) {
          try {
            return c_->apply(st, *target);
          } catch (const std::exception& e) {
            return every_item_failed(st, std::string("internal error: ") + e.what());
          }
        },
        [&](read_back_atom, const saga_step& st, const image_ref& target, caf::timespan) {
          try {
            return c_->read_back(st, *target);
          } catch (const std::exception& e) {
            return every_item_failed(st, std::string("internal error: ") + e.what());
          }
        },
        [&](hold_atom) -> caf::result<std::vector<std::string>> {
          result<std::vector<std::string>> r = make_error(errc::internal, "not held");
          try {
            r = c_->hold();
          } catch (const std::exception& e) {
            r = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (!r) return to_caf(r.err());
          return std::move(*r);
        },
        [&](release_atom) {
          try {
            return c_->release();
          } catch (const std::exception& e) {
            return std::vector<std::string>{std::string("internal error: ") + e.what()};
          }
        },
        [&](caf::exit_msg&) { running = false; });
  }

private:
  std::shared_ptr<component> c_;
};

struct handler_state {
  std::string component;
  std::shared_ptr<class component> impl;
  caf::actor worker;
  circuit_breaker breaker{breaker_config{}};
  env* os = nullptr;
  uint32_t restarts = 0;
  bool optional = false; ///< fixed when the node starts
  // What the worker was asked and has not answered: failed at once if it
  // dies; when each was asked (steady ns) is for health.
  struct call {
    std::function<void(const caf::error&)> fail;
    int64_t asked_ns = 0;
    bool answered = false; ///< the caller was told (at its limit) before the worker answered
  };
  std::map<uint64_t, call> pending;
  uint64_t next_id = 0;
  static inline const char* name = "dsmil.component";
};

using handler_ptr = component_handler::stateful_pointer<handler_state>;

int64_t now_ms(handler_ptr self) {
  return self->state.os->steady_ns() / 1000000;
}

void start_worker(handler_ptr self) {
  self->state.worker = self->spawn<handler_worker, caf::monitored>(self->state.impl);
}

// Asks the worker, answering the caller when it answers, or at `limit`
// (when not zero) with a timeout while the worker goes on; fails fast while
// the breaker is open.
template <class T, class... Ts>
caf::result<T> forward(handler_ptr self, caf::timespan limit, Ts... xs) {
  auto& st = self->state;
  if (!st.breaker.allow(now_ms(self)))
    return to_caf(make_error(
        errc::circuit_open,
        "component " + st.component + " is failing (" +
            std::to_string(st.breaker.consecutive_failures()) +
            " failures in a row; its breaker is open, next try in " +
            std::to_string((st.breaker.retry_in_ms(now_ms(self)) + 999) / 1000) + " s)"));
  auto rp = self->template make_response_promise<T>();
  const uint64_t id = ++st.next_id;
  st.pending.emplace(id, handler_state::call{[rp](const caf::error& e) mutable { rp.deliver(e); },
                                             st.os->steady_ns()});
  if (limit.count() > 0) self->delayed_send(self, limit, tick_atom::value, id);
  // The worker answered: the call is no longer in flight. Whether the
  // caller still waits; none when the call was failed already (its worker died).
  auto finish = [self, id](bool ok) -> std::optional<bool> {
    auto& st = self->state;
    auto it = st.pending.find(id);
    if (it == st.pending.end()) return std::nullopt;
    const bool waits = !it->second.answered;
    st.pending.erase(it);
    if (ok)
      st.breaker.on_success();
    else
      st.breaker.on_failure(now_ms(self));
    return waits;
  };
  self->request(st.worker, caf::infinite, xs...)
      .then(
          [finish, rp](T& v) mutable {
            if (finish(true).value_or(false)) rp.deliver(std::move(v));
          },
          [finish, rp](caf::error& e) mutable {
            if (finish(false).value_or(false)) rp.deliver(e);
          });
  return rp;
}

component_handler::behavior_type handler(handler_ptr self, std::shared_ptr<component> c,
                                         breaker_config breaker, env* os) {
  auto& st = self->state;
  st.component = c->name();
  st.optional = c->optional();
  st.impl = std::move(c);
  st.breaker = circuit_breaker(breaker);
  st.os = os;
  start_worker(self);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.worker) return;
    ++st.restarts;
    st.breaker.on_failure(now_ms(self));
    spdlog::warn("component {}: its handler's worker stopped ({}); restarted ({} restarts)",
                 st.component, caf::to_string(dm.reason), st.restarts);
    auto pending = std::move(st.pending);
    st.pending.clear();
    const auto why = to_caf(
        make_error(errc::unavailable, "component " + st.component + ": its handler stopped (" +
                                          caf::to_string(dm.reason) + ") and was restarted"));
    for (auto& [id, c] : pending)
      c.fail(why);
    start_worker(self);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    self->send_exit(self->state.worker, em.reason);
    self->quit(em.reason);
  });
  return {
      [self](capture_atom a) { return forward<image_ref>(self, caf::timespan{0}, a); },
      [self](plan_atom a, const image_ref& now, const image_ref& target, const plan_request& req) {
        return forward<component_plan>(self, caf::timespan{0}, a, now, target, req);
      },
      [self](apply_atom a, const saga_step& s, const image_ref& target, caf::timespan limit) {
        return forward<std::vector<failed_item>>(self, limit, a, s, target, limit);
      },
      [self](read_back_atom a, const saga_step& s, const image_ref& target, caf::timespan limit) {
        return forward<std::vector<failed_item>>(self, limit, a, s, target, limit);
      },
      [self](hold_atom a) { return forward<std::vector<std::string>>(self, caf::timespan{0}, a); },
      [self](release_atom a) {
        return forward<std::vector<std::string>>(self, caf::timespan{0}, a);
      },
      [self](tick_atom, uint64_t id) {
        auto& st = self->state;
        auto it = st.pending.find(id);
        if (it == st.pending.end() || it->second.answered) return;
        it->second.answered = true;
        const auto ms = (st.os->steady_ns() - it->second.asked_ns) / 1000000;
        it->second.fail(to_caf(make_error(errc::timeout, "component " + st.component +
                                                             " did not answer in time (" +
                                                             std::to_string(ms) + " ms)")));
      },
      [self](health_atom) {
        auto& st = self->state;
        component_health h;
        h.name = st.component;
        h.optional = st.optional;
        st.breaker.allow(now_ms(self)); // an open breaker past its time reads half-open
        h.breaker = to_string(st.breaker.state());
        h.failures = st.breaker.consecutive_failures();
        h.restarts = st.restarts;
        h.in_flight = static_cast<uint32_t>(st.pending.size());
        if (!st.pending.empty()) // ids grow: the first is the oldest
          h.oldest_call_ms = static_cast<uint64_t>(
              (st.os->steady_ns() - st.pending.begin()->second.asked_ns) / 1000000);
        return h;
      },
  };
}

} // namespace

handler_ref spawn_component_handler(caf::actor_system& sys, std::shared_ptr<component> c,
                                    const breaker_config& breaker, env& e) {
  handler_ref ref;
  ref.name = c->name();
  ref.optional = c->optional();
  ref.handle = sys.spawn(handler, std::move(c), breaker, &e);
  return ref;
}

} // namespace dsmil
