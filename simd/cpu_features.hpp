// CPU features relevant to the project's kernels, detected at run time.
#pragma once

#include <string>

namespace dsmil::simd {

struct cpu_features {
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool sha_ni = false;
  bool vpclmulqdq = false;
};

/// Detected once per process.
const cpu_features& detect_cpu();

/// "avx2 sha-ni vpclmulqdq" style list, for logs and reports.
std::string describe(const cpu_features& f);

} // namespace dsmil::simd
