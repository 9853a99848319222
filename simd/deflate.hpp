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

  /// Compresses `in` into `out` (at most `cap` bytes). Returns the compressed
  /// size, or 0 when it would not fit in `cap` (`out` then holds garbage):
  /// pass cap = size - 1 and store the input raw when this returns 0.
  size_t compress(const uint8_t* in, size_t size, uint8_t* out, size_t cap);

  /// Same, into a string: false when the result would not be smaller.
  bool compress(const uint8_t* in, size_t size, std::string& out);

private:
  int level_;
  std::vector<uint8_t> level_buf_;
};

/// Decompresses raw DEFLATE `in` into exactly `out_size` bytes at `out`.
/// False on malformed input or a size mismatch.
bool inflate(const uint8_t* in, size_t size, uint8_t* out, size_t out_size);

} // namespace dsmil::simd
