#include "simd/deflate.hpp"

#include <isa-l/igzip_lib.h>

namespace dsmil::simd {

namespace {

size_t level_buf_size(int level) {
  switch (level) {
  case 1:
    return ISAL_DEF_LVL1_DEFAULT;
  case 2:
    return ISAL_DEF_LVL2_DEFAULT;
  case 3:
    return ISAL_DEF_LVL3_DEFAULT;
  default:
    return 0;
  }
}

} // namespace

deflater::deflater(int level)
    : level_(level < 0   ? 0
             : level > 3 ? 3
                         : level),
      level_buf_(level_buf_size(level_)) {}

bool deflater::compress(const uint8_t* in, size_t size, std::string& out) {
  if (size < 2) return false;
  out.resize(size);
  size_t n = compress(in, size, reinterpret_cast<uint8_t*>(out.data()), size - 1);
  out.resize(n);
  return n > 0;
}

size_t deflater::compress(const uint8_t* in, size_t size, uint8_t* out, size_t cap) {
  if (size == 0 || size > UINT32_MAX || cap == 0) return 0;
  isal_zstream s;
  isal_deflate_stateless_init(&s);
  s.next_in = const_cast<uint8_t*>(in);
  s.avail_in = static_cast<uint32_t>(size);
  s.next_out = out;
  s.avail_out = static_cast<uint32_t>(cap < UINT32_MAX ? cap : UINT32_MAX);
  s.level = static_cast<uint32_t>(level_);
  s.level_buf = level_buf_.empty() ? nullptr : level_buf_.data();
  s.level_buf_size = static_cast<uint32_t>(level_buf_.size());
  s.end_of_stream = 1;
  s.flush = NO_FLUSH;
  if (isal_deflate_stateless(&s) != COMP_OK || s.avail_in != 0) return 0;
  return s.total_out;
}

bool inflate(const uint8_t* in, size_t size, uint8_t* out, size_t out_size) {
  inflate_state s;
  isal_inflate_init(&s);
  s.next_in = const_cast<uint8_t*>(in);
  s.avail_in = static_cast<uint32_t>(size);
  s.next_out = out;
  s.avail_out = static_cast<uint32_t>(out_size);
  int rc = isal_inflate_stateless(&s);
  return rc == ISAL_DECOMP_OK && s.total_out == out_size && s.avail_in == 0;
}

} // namespace dsmil::simd
