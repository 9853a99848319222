// coding: fixed-width integers in explicit little-endian byte order, the one
// encoding every stored format uses (pack records, export blobs, device state,
// journal frames, the simulator's state file). Independent of the host's byte
// order: bytes are shifted, never copied from memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace dsmil::coding {

inline void encode_fixed16(char* dst, uint16_t v) {
  auto* p = reinterpret_cast<unsigned char*>(dst);
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

inline void encode_fixed32(char* dst, uint32_t v) {
  auto* p = reinterpret_cast<unsigned char*>(dst);
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}

inline void encode_fixed64(char* dst, uint64_t v) {
  auto* p = reinterpret_cast<unsigned char*>(dst);
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}

inline uint16_t decode_fixed16(const char* src) {
  auto* p = reinterpret_cast<const unsigned char*>(src);
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline uint32_t decode_fixed32(const char* src) {
  auto* p = reinterpret_cast<const unsigned char*>(src);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

inline uint64_t decode_fixed64(const char* src) {
  auto* p = reinterpret_cast<const unsigned char*>(src);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

inline void put_fixed16(std::string& dst, uint16_t v) {
  char b[2];
  encode_fixed16(b, v);
  dst.append(b, 2);
}

inline void put_fixed32(std::string& dst, uint32_t v) {
  char b[4];
  encode_fixed32(b, v);
  dst.append(b, 4);
}

inline void put_fixed64(std::string& dst, uint64_t v) {
  char b[8];
  encode_fixed64(b, v);
  dst.append(b, 8);
}

/// `v` appended in little-endian order; T is an integer or a double (its
/// IEEE-754 bits as a u64).
template <class T> void put(std::string& dst, T v) {
  static_assert(std::is_integral_v<T> || std::is_same_v<T, double>);
  if constexpr (std::is_same_v<T, double>) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_fixed64(dst, bits);
  } else if constexpr (sizeof(T) == 1) {
    dst.push_back(static_cast<char>(v));
  } else if constexpr (sizeof(T) == 2) {
    put_fixed16(dst, static_cast<uint16_t>(v));
  } else if constexpr (sizeof(T) == 4) {
    put_fixed32(dst, static_cast<uint32_t>(v));
  } else {
    put_fixed64(dst, static_cast<uint64_t>(v));
  }
}

/// The T that put() wrote at `src` (sizeof(T) bytes).
template <class T> T get(const char* src) {
  static_assert(std::is_integral_v<T> || std::is_same_v<T, double>);
  if constexpr (std::is_same_v<T, double>) {
    const uint64_t bits = decode_fixed64(src);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  } else if constexpr (sizeof(T) == 1) {
    return static_cast<T>(static_cast<unsigned char>(*src));
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(decode_fixed16(src));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(decode_fixed32(src));
  } else {
    return static_cast<T>(decode_fixed64(src));
  }
}

} // namespace dsmil::coding
