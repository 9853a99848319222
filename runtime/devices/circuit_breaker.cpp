#include "runtime/devices/circuit_breaker.hpp"

#include <algorithm>
#include <cmath>

namespace dsmil {

const char* to_string(breaker_state s) noexcept {
  switch (s) {
  case breaker_state::closed:
    return "closed";
  case breaker_state::open:
    return "open";
  case breaker_state::half_open:
    return "half-open";
  }
  return "unknown";
}

bool circuit_breaker::allow(int64_t now_ms) {
  if (state_ == breaker_state::open && now_ms - opened_at_ms_ >= cfg_.open_ms) {
    state_ = breaker_state::half_open;
    successes_ = 0;
  }
  return state_ != breaker_state::open;
}

void circuit_breaker::on_success() {
  failures_ = 0;
  if (state_ == breaker_state::half_open && ++successes_ >= cfg_.success_threshold)
    state_ = breaker_state::closed;
}

void circuit_breaker::on_failure(int64_t now_ms) {
  ++failures_;
  if (state_ == breaker_state::half_open || failures_ >= cfg_.failure_threshold) trip(now_ms);
}

void circuit_breaker::trip(int64_t now_ms) {
  state_ = breaker_state::open;
  opened_at_ms_ = now_ms;
  successes_ = 0;
}

int64_t circuit_breaker::retry_in_ms(int64_t now_ms) const {
  if (state_ != breaker_state::open) return 0;
  return std::max<int64_t>(0, opened_at_ms_ + cfg_.open_ms - now_ms);
}

int64_t backoff_delay_ms(const retry_config& cfg, uint32_t attempt, double unit_random) {
  double d = static_cast<double>(cfg.base_ms) * std::pow(2.0, attempt > 0 ? attempt - 1 : 0);
  d = std::min(d, static_cast<double>(cfg.max_ms));
  d *= 1.0 + cfg.jitter * (2.0 * unit_random - 1.0);
  return std::max<int64_t>(0, static_cast<int64_t>(std::llround(d)));
}

} // namespace dsmil
