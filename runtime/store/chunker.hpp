// Content-defined chunking (FastCDC style: gear hash, normalized chunk sizes).
// A cut depends only on the bytes just before it, so inserting or deleting
// bytes moves the boundaries near the change and no others.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dsmil/result.hpp"

namespace dsmil {

struct chunker_params {
  // Small enough that a scattered edit re-stores little (restic cuts ~1 MiB),
  // large enough that per-chunk costs (index entry, record header) stay small.
  uint32_t min_size = 16 * 1024;
  uint32_t avg_size = 64 * 1024; ///< a power of two
  uint32_t max_size = 256 * 1024;
};

/// Errors name what is wrong with the sizes (min < avg < max, avg a power of two).
status validate(const chunker_params& p);

class chunker {
public:
  /// REQUIRES: validate(p) succeeded.
  explicit chunker(chunker_params p);

  /// Length of the chunk that starts at `data`, of which `size` bytes are
  /// available. When `last` is false and no cut was found within the
  /// available bytes (fewer than max_size), returns 0: call again with more.
  size_t next_cut(const uint8_t* data, size_t size, bool last) const;

  const chunker_params& params() const { return p_; }

private:
  chunker_params p_;
  uint64_t mask_small_; // stricter, before avg_size: fewer small chunks
  uint64_t mask_large_; // looser, after avg_size: fewer large chunks
};

} // namespace dsmil
