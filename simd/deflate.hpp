// Raw DEFLATE through ISA-L's igzip (levels 0-3), which picks AVX-512, AVX2
// or SSE kernels at run time. One deflater per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dsmil::simd {

class deflater {
public:
  /// `level` 0-3 (ISA-L's levels; 1 is the fast default).
  explicit deflater(int level);

  /// Compresses `in` into `out` (replacing its contents). Returns false, and
  /// leaves `out` unspecified, when the result would not be smaller than the
  /// input: the caller stores those bytes raw.
  bool compress(const uint8_t* in, size_t size, std::string& out);

private:
  int level_;
  std::vector<uint8_t> level_buf_;
};

/// Decompresses raw DEFLATE `in` into exactly `out_size` bytes at `out`.
/// False on malformed input or a size mismatch.
bool inflate(const uint8_t* in, size_t size, uint8_t* out, size_t out_size);

} // namespace dsmil::simd
