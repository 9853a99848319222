#include <doctest/doctest.h>

#include "runtime/devices/circuit_breaker.hpp"

using namespace dsmil;

TEST_CASE("breaker: closed -> open after the threshold, half-open after open_ms, closed after "
          "successes") {
  circuit_breaker b(breaker_config{3, 1000, 2});
  int64_t t = 0;
  CHECK(b.state() == breaker_state::closed);
  b.on_failure(t);
  b.on_failure(t);
  CHECK(b.allow(t));
  b.on_success(); // a success resets the count of consecutive failures
  b.on_failure(t);
  b.on_failure(t);
  CHECK(b.state() == breaker_state::closed);
  b.on_failure(t);
  CHECK(b.state() == breaker_state::open);
  CHECK_FALSE(b.allow(t + 999));
  CHECK(b.retry_in_ms(t + 400) == 600);
  CHECK(b.allow(t + 1000));
  CHECK(b.state() == breaker_state::half_open);
  b.on_success();
  CHECK(b.state() == breaker_state::half_open);
  b.on_success();
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: a failure while half-open opens it again for a full period") {
  circuit_breaker b(breaker_config{1, 500, 3});
  b.on_failure(0);
  CHECK(b.allow(500));
  b.on_success();
  b.on_failure(600);
  CHECK(b.state() == breaker_state::open);
  CHECK_FALSE(b.allow(1099));
  CHECK(b.allow(1100));
}

TEST_CASE("backoff doubles from the base, is capped, and jitter stays within its band") {
  retry_config r{5, 1000, 30000, 0.1};
  CHECK(backoff_delay_ms(r, 1, 0.5) == 1000);
  CHECK(backoff_delay_ms(r, 2, 0.5) == 2000);
  CHECK(backoff_delay_ms(r, 3, 0.5) == 4000);
  CHECK(backoff_delay_ms(r, 10, 0.5) == 30000);
  CHECK(backoff_delay_ms(r, 1, 0.0) == 900);
  CHECK(backoff_delay_ms(r, 1, 1.0) == 1100);
  CHECK(backoff_delay_ms(r, 10, 1.0) == 33000);
}
