#include "simd/cpu_features.hpp"

#include <cpuid.h>

namespace dsmil::simd {

const cpu_features& detect_cpu() {
  static const cpu_features f = [] {
    cpu_features r;
    __builtin_cpu_init();
    r.avx2 = __builtin_cpu_supports("avx2");
    r.avx512f = __builtin_cpu_supports("avx512f");
    r.avx512bw = __builtin_cpu_supports("avx512bw");
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      r.sha_ni = (b >> 29) & 1;
      r.vpclmulqdq = (c >> 10) & 1;
    }
    return r;
  }();
  return f;
}

std::string describe(const cpu_features& f) {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.sha_ni, "sha-ni");
  add(f.vpclmulqdq, "vpclmulqdq");
  return s.empty() ? "baseline" : s;
}

} // namespace dsmil::simd
