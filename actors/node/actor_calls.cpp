// Calls from the node's blocking actors to device actors and component
// handlers: requests to many devices go out together and are collected
// afterwards, each bounded by the caller's deadline when it has one.
#include <algorithm>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "actors/node/node_impl.hpp"

namespace dsmil {

std::chrono::milliseconds device_call_timeout(const node_config& cfg) {
  return std::chrono::milliseconds(10000 + static_cast<int64_t>(cfg.retry.attempts) *
                                               (cfg.retry.max_ms + 60000));
}

namespace {

// CAF 0.17 never cancels a request's timeout when the response comes: the
// entry stays in the actor clock until it fires. With device timeouts of
// minutes, that was memory growing with every request. So every answered
// request's timeout is cancelled.
template <class Self, class Handle> void settle(Self* self, const Handle& h) {
  self->clock().cancel_request_timeout(self, h.id());
}

} // namespace

std::chrono::milliseconds actor_calls::timeout(std::chrono::milliseconds t) const {
  if (deadline_ns_ == 0) return t;
  const auto left = (deadline_ns_ - ctx_.os->steady_ns() + 999999) / 1000000; // rounded up
  return std::min(t, std::chrono::milliseconds(std::max<int64_t>(left, 1)));
}

bool actor_calls::past_deadline() const {
  return deadline_ns_ != 0 && (deadline_hit_ || ctx_.os->steady_ns() >= deadline_ns_);
}

// The requests go out from a helper actor, which hands each answer over as
// an ordinary message (gen, index, device_state or error). So this blocking
// actor waits with a receive that also takes preempt_atom: an emergency
// rollback stops the wait at once, without waiting for a device that hangs.
// Answers that come after such a stop carry an old `gen` and are dropped.
template <class T, class Request>
std::vector<result<T>> actor_calls::gather(size_t n, Request request,
                                           std::chrono::milliseconds limit) {
  std::vector<result<T>> out(n, result<T>(make_error(errc::internal, "no reply")));
  if (n == 0) return out;
  // What is not answered when the wait ends early fails with the reason.
  auto abandon = [&](errc code, const char* why) {
    for (auto& r : out)
      if (!r && r.err().code == errc::internal) r = make_error(code, why);
  };
  const char* stopping = "abandoned: the node is stopping";
  const char* preempting = "abandoned: an emergency rollback pre-empts this one";
  if (exit_requested_) {
    abandon(errc::unavailable, stopping);
    return out;
  }
  if (preemptible_ && preempted_) {
    abandon(errc::busy, preempting);
    return out;
  }
  const uint64_t gen = ++gen_;
  caf::actor waiter = caf::actor_cast<caf::actor>(self_);
  const auto t = timeout(limit);
  self_->spawn([=](caf::event_based_actor* a) {
    // Gone with the waiter: a node that stops does not wait for its answers.
    a->monitor(waiter);
    a->set_down_handler([a](caf::down_msg&) { a->quit(); });
    auto left = std::make_shared<size_t>(n);
    for (uint64_t i = 0; i < n; ++i) {
      auto h = request(a, t, i);
      h.then(
          [=](T& s) {
            settle(a, h);
            a->send(waiter, gen, i, std::move(s));
            if (--*left == 0) a->quit();
          },
          [=](caf::error& e) {
            a->send(waiter, gen, i, std::move(e));
            if (--*left == 0) a->quit();
          });
    }
  });
  size_t left = n;
  bool stopped = false;
  self_->receive_while([&] { return left > 0 && !stopped && !exit_requested_; })(
      [&](uint64_t g, uint64_t i, T& s) {
        if (g != gen || i >= n) return;
        out[i] = std::move(s);
        --left;
      },
      [&](uint64_t g, uint64_t i, caf::error& e) {
        if (g != gen || i >= n) return;
        out[i] = from_caf(e);
        if (deadline_ns_ != 0 && out[i].err().code == errc::timeout) deadline_hit_ = true;
        --left;
      },
      [&](preempt_atom) {
        if (preemptible_) stopped = true; // otherwise too late or too early: the saga checks
      },
      [&](caf::exit_msg& m) {
        if (m.reason == caf::exit_reason::kill) throw actor_killed{};
        exit_requested_ = true; // the node stops: nothing waits for these answers
      });
  if (exit_requested_) {
    abandon(errc::unavailable, stopping);
  } else if (stopped) {
    preempted_ = true;
    abandon(errc::busy, preempting);
  }
  return out;
}

result<device_state> actor_calls::read(device_id id) {
  return std::move(gather<device_state>(
      1,
      [id, d = ctx_.devices](caf::event_based_actor* a, std::chrono::milliseconds t, uint64_t) {
        return a->request(d, t, read_atom::value, id);
      },
      device_call_timeout(ctx_.cfg))[0]);
}

result<device_state> actor_calls::write(const device_patch& p) {
  return std::move(gather<device_state>(
      1,
      [p, d = ctx_.devices](caf::event_based_actor* a, std::chrono::milliseconds t, uint64_t) {
        return a->request(d, t, p);
      },
      device_call_timeout(ctx_.cfg))[0]);
}

std::vector<device_state> actor_calls::read_many(const std::vector<device_id>& ids,
                                                 std::vector<std::pair<device_id, error>>& errors) {
  auto results = gather<device_state>(
      ids.size(),
      [ids, d = ctx_.devices](caf::event_based_actor* a, std::chrono::milliseconds t, uint64_t i) {
        return a->request(d, t, read_atom::value, ids[i]);
      },
      device_call_timeout(ctx_.cfg));
  std::vector<device_state> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (results[i])
      out.push_back(std::move(*results[i]));
    else
      errors.emplace_back(ids[i], results[i].err());
  }
  return out;
}

std::vector<device_state>
actor_calls::write_many(const std::vector<device_patch>& patches,
                        std::vector<std::pair<device_id, error>>& errors) {
  auto results = gather<device_state>(
      patches.size(),
      [patches, d = ctx_.devices](caf::event_based_actor* a, std::chrono::milliseconds t,
                                  uint64_t i) { return a->request(d, t, patches[i]); },
      device_call_timeout(ctx_.cfg));
  std::vector<device_state> out;
  for (size_t i = 0; i < patches.size(); ++i) {
    if (results[i])
      out.push_back(std::move(*results[i]));
    else
      errors.emplace_back(patches[i].id, results[i].err());
  }
  return out;
}

// -- component handlers -------------------------------------------------------------

// `ask(a, t)` sends the request from `a` with timeout `t` (the deadline's or
// call_timeout_ms). A timeout is put in the component's name unless the
// handler's own answer names it already.
template <class T, class Ask> result<T> actor_calls::ask_handler(const handler_ref& h, Ask ask) {
  auto r = std::move(gather<T>(
      1,
      [ask](caf::event_based_actor* a, std::chrono::milliseconds t, uint64_t) { return ask(a, t); },
      std::chrono::milliseconds(ctx_.cfg.component_call_timeout_ms))[0]);
  if (!r && r.err().code == errc::timeout &&
      r.err().message.rfind("component " + h.name + " ", 0) != 0)
    return make_error(errc::timeout,
                      "component " + h.name + " did not answer in time (" + r.err().message + ")");
  return r;
}

result<component_image> actor_calls::capture(const handler_ref& h) {
  auto r = ask_handler<image_ref>(
      h, [handle = h.handle](caf::event_based_actor* a, std::chrono::milliseconds t) {
        return a->request(handle, t, capture_atom::value);
      });
  if (!r) return r.err();
  return std::move(*r).take();
}

result<std::vector<std::string>> actor_calls::hold(const handler_ref& h) {
  return ask_handler<std::vector<std::string>>(
      h, [handle = h.handle](caf::event_based_actor* a, std::chrono::milliseconds t) {
        return a->request(handle, t, hold_atom::value);
      });
}

std::vector<std::string> actor_calls::release(const handler_ref& h) {
  auto r = ask_handler<std::vector<std::string>>(
      h, [handle = h.handle](caf::event_based_actor* a, std::chrono::milliseconds t) {
        return a->request(handle, t, release_atom::value);
      });
  if (!r) return {"component " + h.name + " cannot be released: " + r.err().message};
  return std::move(*r);
}

result<component_plan> actor_calls::plan(const handler_ref& h, const component_image& now,
                                         const component_image& target, const plan_request& req) {
  return ask_handler<component_plan>(
      h, [handle = h.handle, now = image_ref::of(now), target = image_ref::of(target),
          req](caf::event_based_actor* a, std::chrono::milliseconds t) {
        return a->request(handle, t, plan_atom::value, now, target, req);
      });
}

// A step is asked with its limit: the handler answers by then itself, naming
// what is not done; the request waits handler_grace longer for that answer.
template <class Atom>
result<std::vector<failed_item>> actor_calls::ask_step(const handler_ref& h, Atom atom,
                                                       const saga_step& st,
                                                       const component_image& target) {
  return ask_handler<std::vector<failed_item>>(
      h, [handle = h.handle, atom, st,
          target = image_ref::of(target)](caf::event_based_actor* a, std::chrono::milliseconds t) {
        return a->request(handle, t + handler_grace, atom, st, target, caf::timespan(t));
      });
}

result<std::vector<failed_item>> actor_calls::apply(const handler_ref& h, const saga_step& st,
                                                    const component_image& target) {
  return ask_step(h, apply_atom::value, st, target);
}

result<std::vector<failed_item>> actor_calls::read_back(const handler_ref& h, const saga_step& st,
                                                        const component_image& target) {
  return ask_step(h, read_back_atom::value, st, target);
}

result<component_health> actor_calls::health(const handler_ref& h) {
  return std::move(gather<component_health>(
      1,
      [handle = h.handle](caf::event_based_actor* a, std::chrono::milliseconds t, uint64_t) {
        return a->request(handle, t, health_atom::value);
      },
      std::chrono::milliseconds(5000))[0]);
}

result<std::vector<device_health>> actor_calls::health() {
  result<std::vector<device_health>> out = make_error(errc::internal, "no reply");
  auto h = self_->request(ctx_.devices, std::chrono::seconds(30), health_atom::value);
  h.receive([&](std::vector<device_health>& v) { out = std::move(v); },
            [&](caf::error& e) { out = from_caf(e); });
  settle(self_, h);
  return out;
}

} // namespace dsmil
