#include "runtime/base/uuid.hpp"

#include "runtime/base/crypto.hpp"

namespace dsmil {

std::string uuid_v7_generator::next(int64_t unix_ns) {
  uint8_t b[16];
  random_bytes(b, sizeof(b));
  uint64_t ms = static_cast<uint64_t>(unix_ns / 1000000);
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (ms <= last_ms_) {
      ms = last_ms_;
      if (++counter_ > 0xFFF) { // counter exhausted: borrow the next millisecond
        ++ms;
        counter_ = 0;
      }
    } else {
      counter_ = static_cast<uint16_t>(((b[6] & 0x0F) << 8 | b[7]) & 0x7FF); // leave headroom
    }
    last_ms_ = ms;
    b[6] = static_cast<uint8_t>(0x70 | ((counter_ >> 8) & 0x0F));
    b[7] = static_cast<uint8_t>(counter_ & 0xFF);
  }
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3F)); // variant 10
  auto hex = to_hex(b, sizeof(b));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

bool is_uuid_v7(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  }
  return s[14] == '7' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

} // namespace dsmil
