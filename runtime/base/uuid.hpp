// UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits. Ids made
// by one generator sort in creation order, even within one millisecond.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace dsmil {

class uuid_v7_generator {
public:
  /// A new id for wall-clock time `unix_ns`, e.g. "0193..-....-7...-....-............".
  std::string next(int64_t unix_ns);

private:
  std::mutex mu_;
  uint64_t last_ms_ = 0;
  uint16_t counter_ = 0; // 12-bit rand_a, used as a monotonic counter within a millisecond
};

/// True for the canonical lower-case 8-4-4-4-12 form of a version 7 UUID.
bool is_uuid_v7(const std::string& s);

} // namespace dsmil
