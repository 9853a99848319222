// CRC64 (ECMA-182, reflected) over stored chunk bytes, through ISA-L, which
// picks its kernel (PCLMULQDQ / VPCLMULQDQ) at run time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dsmil::simd {

/// CRC64-ECMA of `data`; `seed` continues an earlier CRC (0 to start).
uint64_t crc64(const void* data, size_t size, uint64_t seed = 0);

} // namespace dsmil::simd
