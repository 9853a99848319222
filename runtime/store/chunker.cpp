#include "runtime/store/chunker.hpp"

#include <array>

#include "runtime/devices/sim_driver.hpp"

namespace dsmil {

namespace {

// 256 random 64-bit values, fixed so that chunk boundaries are stable across
// runs and machines (dedup across checkpoints depends on it).
const std::array<uint64_t, 256>& gear() {
  static const std::array<uint64_t, 256> table = [] {
    std::array<uint64_t, 256> t{};
    uint64_t s = 0x44534D494C434443ull; // "DSMILCDC"
    for (auto& v : t)
      v = splitmix64(s);
    return t;
  }();
  return table;
}

int log2_exact(uint32_t v) {
  int b = 0;
  while ((1u << b) < v)
    ++b;
  return b;
}

// `bits` one-bits taken from the top of the word: the gear hash's high bits
// depend on the most bytes.
uint64_t top_mask(int bits) {
  return bits <= 0 ? 0 : ~uint64_t{0} << (64 - bits);
}

} // namespace

status validate(const chunker_params& p) {
  if (p.min_size < 64 || p.min_size >= p.avg_size || p.avg_size >= p.max_size)
    return make_error(errc::config_error,
                      "chunk sizes must satisfy 64 <= min < avg < max (got min " +
                          std::to_string(p.min_size) + ", avg " + std::to_string(p.avg_size) +
                          ", max " + std::to_string(p.max_size) + ")");
  if ((p.avg_size & (p.avg_size - 1)) != 0)
    return make_error(errc::config_error,
                      "avg chunk size must be a power of two, got " + std::to_string(p.avg_size));
  if (p.max_size > (64u << 20))
    return make_error(errc::config_error, "max chunk size must be at most 64 MiB");
  return {};
}

chunker::chunker(chunker_params p) : p_(p) {
  int bits = log2_exact(p.avg_size);
  mask_small_ = top_mask(bits + 2);
  mask_large_ = top_mask(bits - 2);
}

size_t chunker::next_cut(const uint8_t* data, size_t size, bool last) const {
  if (size <= p_.min_size) return last ? size : 0;
  const auto& g = gear();
  const size_t end = size < p_.max_size ? size : p_.max_size;
  const size_t normal = end < p_.avg_size ? end : p_.avg_size;
  uint64_t h = 0;
  size_t i = p_.min_size;
  for (; i < normal; ++i) {
    h = (h << 1) + g[data[i]];
    if ((h & mask_small_) == 0) return i + 1;
  }
  for (; i < end; ++i) {
    h = (h << 1) + g[data[i]];
    if ((h & mask_large_) == 0) return i + 1;
  }
  if (end == p_.max_size) return end;
  return last ? size : 0;
}

} // namespace dsmil
