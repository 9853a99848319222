// Many requests from an event-based actor at once, answered together: the
// asynchronous counterpart of actor_calls::gather.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "actors/caf_glue.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

/// Sends `n` requests (`request(i)` sends the i-th and returns its handle)
/// and calls `done` once with every answer, in request order: a value or
/// the error it got (its timeout included). `done` runs in `self`, and not
/// at all if `self` ends first.
template <class T, class Self, class Request, class Done>
void fan_out(Self* self, size_t n, Request request, Done done) {
  struct state {
    std::vector<result<T>> out;
    size_t left = 0;
    Done done;
  };
  auto s = std::make_shared<state>(
      state{std::vector<result<T>>(n, result<T>(make_error(errc::internal, "no reply"))), n,
            std::move(done)});
  if (n == 0) {
    s->done(std::move(s->out));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    auto h = request(i);
    const auto id = h.id();
    // CAF 0.17 keeps an answered request's timeout in the actor clock until
    // it fires: cancelled here, so long timeouts do not pile up.
    h.then(
        [self, s, i, id](T& v) {
          self->clock().cancel_request_timeout(self, id);
          s->out[i] = std::move(v);
          if (--s->left == 0) s->done(std::move(s->out));
        },
        [s, i](caf::error& e) {
          s->out[i] = from_caf(e);
          if (--s->left == 0) s->done(std::move(s->out));
        });
  }
}

} // namespace dsmil
