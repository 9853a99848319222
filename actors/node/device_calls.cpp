// Device calls from the node's blocking actors: requests to many devices go
// out together and are collected afterwards, each bounded by the caller's
// deadline when it has one.
#include <algorithm>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "actors/node/node_impl.hpp"

namespace dsmil {

namespace {

// Longest a device call can take: every attempt with its largest backoff.
std::chrono::milliseconds device_timeout(const node_config& cfg) {
  return std::chrono::milliseconds(10000 + static_cast<int64_t>(cfg.retry.attempts) *
                                               (cfg.retry.max_ms + 60000));
}

} // namespace

namespace {

// CAF 0.17 never cancels a request's timeout when the response comes: the
// entry stays in the actor clock until it fires. With device timeouts of
// minutes, that was memory growing with every request. So every answered
// request's timeout is cancelled.
template <class Self, class Handle> void settle(Self* self, const Handle& h) {
  self->clock().cancel_request_timeout(self, h.id());
}

} // namespace

std::chrono::milliseconds device_calls::timeout() const {
  auto t = device_timeout(ctx_.cfg);
  if (deadline_ns_ == 0) return t;
  const auto left = (deadline_ns_ - ctx_.os->steady_ns() + 999999) / 1000000; // rounded up
  return std::min(t, std::chrono::milliseconds(std::max<int64_t>(left, 1)));
}

bool device_calls::past_deadline() const {
  return deadline_ns_ != 0 && (deadline_hit_ || ctx_.os->steady_ns() >= deadline_ns_);
}

// The requests go out from a helper actor, which hands each answer over as
// an ordinary message (gen, index, device_state or error). So this blocking
// actor waits with a receive that also takes preempt_atom: an emergency
// rollback stops the wait at once, without waiting for a device that hangs.
// Answers that come after such a stop carry an old `gen` and are dropped.
template <class Request>
std::vector<result<device_state>> device_calls::gather(size_t n, Request request) {
  std::vector<result<device_state>> out(
      n, result<device_state>(make_error(errc::internal, "no reply")));
  if (n == 0) return out;
  if (preemptible_ && preempted_) {
    for (auto& r : out)
      r = make_error(errc::busy, "abandoned: an emergency rollback pre-empts this one");
    return out;
  }
  const uint64_t gen = ++gen_;
  caf::actor waiter = caf::actor_cast<caf::actor>(self_);
  const auto t = timeout();
  auto devices = ctx_.devices;
  self_->spawn([=](caf::event_based_actor* a) {
    auto left = std::make_shared<size_t>(n);
    for (uint64_t i = 0; i < n; ++i) {
      auto h = request(a, devices, t, i);
      h.then(
          [=](device_state& s) {
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
  self_->receive_while([&] { return left > 0 && !stopped; })(
      [&](uint64_t g, uint64_t i, device_state& s) {
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
      });
  if (stopped) preempted_ = true;
  if (stopped)
    for (auto& r : out)
      if (!r && r.err().code == errc::internal)
        r = make_error(errc::busy, "abandoned: an emergency rollback pre-empts this one");
  return out;
}

result<device_state> device_calls::read(device_id id) {
  return std::move(gather(1, [id](caf::event_based_actor* a, const device_service& d,
                                  std::chrono::milliseconds t,
                                  uint64_t) { return a->request(d, t, read_atom::value, id); })[0]);
}

result<device_state> device_calls::write(const device_patch& p) {
  return std::move(
      gather(1, [p](caf::event_based_actor* a, const device_service& d, std::chrono::milliseconds t,
                    uint64_t) { return a->request(d, t, p); })[0]);
}

std::vector<device_state>
device_calls::read_many(const std::vector<device_id>& ids,
                        std::vector<std::pair<device_id, error>>& errors) {
  auto results = gather(ids.size(), [ids](caf::event_based_actor* a, const device_service& d,
                                          std::chrono::milliseconds t, uint64_t i) {
    return a->request(d, t, read_atom::value, ids[i]);
  });
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
device_calls::write_many(const std::vector<device_patch>& patches,
                         std::vector<std::pair<device_id, error>>& errors) {
  auto results =
      gather(patches.size(), [patches](caf::event_based_actor* a, const device_service& d,
                                       std::chrono::milliseconds t,
                                       uint64_t i) { return a->request(d, t, patches[i]); });
  std::vector<device_state> out;
  for (size_t i = 0; i < patches.size(); ++i) {
    if (results[i])
      out.push_back(std::move(*results[i]));
    else
      errors.emplace_back(patches[i].id, results[i].err());
  }
  return out;
}

result<std::vector<device_health>> device_calls::health() {
  result<std::vector<device_health>> out = make_error(errc::internal, "no reply");
  auto h = self_->request(ctx_.devices, std::chrono::seconds(30), health_atom::value);
  h.receive([&](std::vector<device_health>& v) { out = std::move(v); },
            [&](caf::error& e) { out = from_caf(e); });
  settle(self_, h);
  return out;
}

} // namespace dsmil
