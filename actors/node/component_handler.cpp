#include "actors/node/component_handler.hpp"

#include <functional>
#include <map>

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
  handler_worker(caf::actor_config& cfg, component_factory make)
      : caf::blocking_actor(cfg), make_(std::move(make)) {}
  const char* name() const override { return "dsmil.handler"; }

  void act() override {
    auto b = make_(this);
    if (!b.impl) return; // the node is gone
    auto& c = *b.impl;
    // Each call within its caller's limits, lifted after it.
    auto limited = [&](int64_t deadline, bool preemptible, auto call) {
      if (b.limit) b.limit(deadline, preemptible);
      auto lift = [&] {
        if (b.limit) b.limit(0, false);
      };
      try {
        auto r = call();
        lift();
        return r;
      } catch (...) {
        lift();
        throw;
      }
    };
    bool running = true;
    receive_while([&] { return running; })(
        [&](capture_atom, int64_t deadline) -> caf::result<component_image> {
          result<component_image> r = make_error(errc::internal, "not captured");
          try {
            r = limited(deadline, false, [&] { return c.capture(); });
          } catch (const std::exception& e) {
            r = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (!r) return to_caf(r.err());
          return std::move(*r);
        },
        [&](plan_atom, const component_image& now, const component_image& target,
            const plan_request& req, int64_t deadline) -> caf::result<component_plan> {
          result<component_plan> r = make_error(errc::internal, "not planned");
          try {
            r = limited(deadline, false, [&] { return c.plan(now, target, req); });
          } catch (const std::exception& e) {
            r = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (!r) return to_caf(r.err());
          return std::move(*r);
        },
        [&](apply_atom, const saga_step& st, const component_image& target, int64_t deadline,
            bool preemptible) {
          try {
            return limited(deadline, preemptible, [&] { return c.apply(st, target); });
          } catch (const std::exception& e) {
            return every_item_failed(st, std::string("internal error: ") + e.what());
          }
        },
        [&](read_back_atom, const saga_step& st, const component_image& target, int64_t deadline) {
          try {
            return limited(deadline, false, [&] { return c.read_back(st, target); });
          } catch (const std::exception& e) {
            return every_item_failed(st, std::string("internal error: ") + e.what());
          }
        },
        [&](preempt_atom) {}, // came after the call it was for had ended
        [&](caf::exit_msg&) { running = false; });
  }

private:
  component_factory make_;
};

struct handler_state {
  std::string component;
  component_factory make;
  caf::actor worker;
  circuit_breaker breaker{breaker_config{}};
  bool use_breaker = true;
  env* os = nullptr;
  uint32_t restarts = 0;
  bool optional = false; ///< fixed when the node starts
  // What the worker was asked and has not answered: failed at once if it
  // dies; when each was asked (steady ns) is for health.
  struct call {
    std::function<void(const caf::error&)> fail;
    int64_t asked_ns = 0;
    bool preemptible = false;
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
  self->state.worker = self->spawn<handler_worker, caf::monitored>(self->state.make);
}

// Asks the worker, answering the caller when it answers; fails fast while
// the breaker is open.
template <class T, class... Ts>
caf::result<T> forward(handler_ptr self, bool preemptible, Ts... xs) {
  auto& st = self->state;
  if (st.use_breaker && !st.breaker.allow(now_ms(self)))
    return to_caf(make_error(
        errc::unavailable, "component " + st.component + " is failing (" +
                               std::to_string(st.breaker.consecutive_failures()) +
                               " failures in a row; its breaker is open, next try in " +
                               std::to_string((st.breaker.retry_in_ms(now_ms(self)) + 999) / 1000) +
                               " s)"));
  auto rp = self->template make_response_promise<T>();
  const uint64_t id = ++st.next_id;
  st.pending.emplace(id, handler_state::call{[rp](const caf::error& e) mutable { rp.deliver(e); },
                                             st.os->steady_ns(), preemptible});
  self->request(st.worker, caf::infinite, xs...)
      .then(
          [self, id, rp](T& v) mutable {
            if (self->state.pending.erase(id) == 0) return;
            if (self->state.use_breaker) self->state.breaker.on_success();
            rp.deliver(std::move(v));
          },
          [self, id, rp](caf::error& e) mutable {
            if (self->state.pending.erase(id) == 0) return;
            if (self->state.use_breaker) self->state.breaker.on_failure(now_ms(self));
            rp.deliver(e);
          });
  return rp;
}

component_handler::behavior_type handler(handler_ptr self, std::string name, bool optional,
                                         component_factory make,
                                         std::optional<breaker_config> breaker, env* os) {
  auto& st = self->state;
  st.component = std::move(name);
  st.optional = optional;
  st.make = std::move(make);
  st.use_breaker = breaker.has_value();
  if (breaker) st.breaker = circuit_breaker(*breaker);
  st.os = os;
  start_worker(self);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.worker) return;
    if (!dm.reason || dm.reason == caf::exit_reason::normal) return; // the node is gone
    ++st.restarts;
    if (st.use_breaker) st.breaker.on_failure(now_ms(self));
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
      [self](capture_atom a, int64_t deadline) {
        return forward<component_image>(self, false, a, deadline);
      },
      [self](plan_atom a, const component_image& now, const component_image& target,
             const plan_request& req, int64_t deadline) {
        return forward<component_plan>(self, false, a, now, target, req, deadline);
      },
      [self](apply_atom a, const saga_step& s, const component_image& target, int64_t deadline,
             bool preemptible) {
        return forward<std::vector<failed_item>>(self, preemptible, a, s, target, deadline,
                                                 preemptible);
      },
      [self](read_back_atom a, const saga_step& s, const component_image& target,
             int64_t deadline) {
        return forward<std::vector<failed_item>>(self, false, a, s, target, deadline);
      },
      [self](preempt_atom a) {
        // The worker runs calls in order: the oldest waiting is its current.
        auto& st = self->state;
        if (!st.pending.empty() && st.pending.begin()->second.preemptible)
          caf::anon_send(st.worker, a);
      },
      [self](health_atom) {
        auto& st = self->state;
        component_health h;
        h.name = st.component;
        h.optional = st.optional;
        st.breaker.allow(now_ms(self)); // an open breaker past its time reads half-open
        h.breaker = st.use_breaker ? to_string(st.breaker.state()) : "per item";
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

handler_ref spawn_component_handler(caf::actor_system& sys, std::string name, bool optional,
                                    component_factory make,
                                    const std::optional<breaker_config>& breaker, env& e) {
  handler_ref ref;
  ref.name = name;
  ref.optional = optional;
  ref.handle = sys.spawn(handler, std::move(name), optional, std::move(make), breaker, &e);
  return ref;
}

handler_ref spawn_component_handler(caf::actor_system& sys, std::shared_ptr<component> c,
                                    const breaker_config& breaker, env& e) {
  auto name = c->name();
  const bool optional = c->optional();
  return spawn_component_handler(
      sys, std::move(name), optional,
      [c](caf::blocking_actor*) {
        return component_binding{c, {}};
      },
      breaker, e);
}

} // namespace dsmil
