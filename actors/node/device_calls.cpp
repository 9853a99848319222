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
// entry stays in the actor clock until it fires, and its late timeout error
// then waits in a blocking actor's mailbox forever (a blocking receive skips
// responses it does not await). With device timeouts of minutes, that was
// memory growing with every request. So every answered request's timeout is
// cancelled here.
template <class Handle> void settle(caf::blocking_actor* self, const Handle& h) {
  self->clock().cancel_request_timeout(self, h.id());
}

template <class Handle> result<device_state> collect(caf::blocking_actor* self, Handle& h) {
  result<device_state> out = make_error(errc::internal, "no reply");
  h.receive([&](device_state& s) { out = std::move(s); },
            [&](caf::error& e) { out = from_caf(e); });
  settle(self, h);
  return out;
}

} // namespace

std::chrono::milliseconds device_calls::timeout() const {
  auto t = device_timeout(ctx_.cfg);
  if (deadline_ns_ == 0) return t;
  const auto left = (deadline_ns_ - ctx_.os->steady_ns()) / 1000000;
  return std::min(t, std::chrono::milliseconds(std::max<int64_t>(left, 1)));
}

bool device_calls::past_deadline() const {
  return deadline_ns_ != 0 && ctx_.os->steady_ns() >= deadline_ns_;
}

result<device_state> device_calls::read(device_id id) {
  auto h = self_->request(ctx_.devices, timeout(), read_atom::value, id);
  return collect(self_, h);
}

result<device_state> device_calls::write(const device_patch& p) {
  auto h = self_->request(ctx_.devices, timeout(), p);
  return collect(self_, h);
}

std::vector<device_state>
device_calls::read_many(const std::vector<device_id>& ids,
                        std::vector<std::pair<device_id, error>>& errors) {
  using handle_t = decltype(self_->request(ctx_.devices, timeout(), read_atom::value, device_id{}));
  std::vector<handle_t> handles;
  handles.reserve(ids.size());
  const auto t = timeout();
  for (auto id : ids)
    handles.push_back(self_->request(ctx_.devices, t, read_atom::value, id));
  std::vector<device_state> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto r = collect(self_, handles[i]);
    if (r)
      out.push_back(std::move(*r));
    else
      errors.emplace_back(ids[i], r.err());
  }
  return out;
}

std::vector<device_state>
device_calls::write_many(const std::vector<device_patch>& patches,
                         std::vector<std::pair<device_id, error>>& errors) {
  using handle_t = decltype(self_->request(ctx_.devices, timeout(), device_patch{}));
  std::vector<handle_t> handles;
  handles.reserve(patches.size());
  const auto t = timeout();
  for (auto& p : patches)
    handles.push_back(self_->request(ctx_.devices, t, p));
  std::vector<device_state> out;
  for (size_t i = 0; i < patches.size(); ++i) {
    auto r = collect(self_, handles[i]);
    if (r)
      out.push_back(std::move(*r));
    else
      errors.emplace_back(patches[i].id, r.err());
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
