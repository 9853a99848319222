#include "simd/crc64.hpp"

#include <isa-l/crc64.h>

namespace dsmil::simd {

uint64_t crc64(const void* data, size_t size, uint64_t seed) {
  return crc64_ecma_refl(seed, static_cast<const unsigned char*>(data), size);
}

} // namespace dsmil::simd
