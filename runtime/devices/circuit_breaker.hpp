// circuit_breaker: closed / open / half-open, driven by explicit times so
// that tests control the clock. Not thread-safe: owned by one actor.
#pragma once

#include <cstdint>
#include <string>

namespace dsmil {

/// The breaker of one device or component ([breaker] in the node config).
struct breaker_config {
  uint32_t failure_threshold = 5;
  uint32_t open_ms = 60000;
  uint32_t success_threshold = 3;
};

/// Retries of a failed call ([retry] in the node config).
struct retry_config {
  uint32_t attempts = 3; ///< calls in all
  uint32_t base_ms = 1000;
  uint32_t max_ms = 30000;
  double jitter = 0.1;
};

enum class breaker_state : uint8_t { closed, open, half_open };

const char* to_string(breaker_state s) noexcept;

class circuit_breaker {
public:
  explicit circuit_breaker(breaker_config cfg) : cfg_(cfg) {}

  /// May a call go out at time `now_ms`? An open breaker turns half-open
  /// once open_ms have passed since it opened.
  bool allow(int64_t now_ms);
  void on_success();
  void on_failure(int64_t now_ms);
  /// Opens the breaker now (escalation from a supervisor).
  void trip(int64_t now_ms);

  breaker_state state() const { return state_; }
  uint32_t consecutive_failures() const { return failures_; }
  /// Milliseconds until an open breaker allows a trial call.
  int64_t retry_in_ms(int64_t now_ms) const;

private:
  breaker_config cfg_;
  breaker_state state_ = breaker_state::closed;
  uint32_t failures_ = 0;
  uint32_t successes_ = 0;
  int64_t opened_at_ms_ = 0;
};

/// Delay before retry number `attempt` (1 = first retry): base * 2^(attempt-1),
/// capped at max, then scaled by a factor in [1 - jitter, 1 + jitter] taken
/// from `unit_random` (0-1).
int64_t backoff_delay_ms(const retry_config& cfg, uint32_t attempt, double unit_random);

} // namespace dsmil
