#include <doctest/doctest.h>

#include "runtime/base/coding.hpp"

using namespace dsmil;

TEST_CASE("fixed-width coding is little-endian whatever the host's byte order") {
  std::string out;
  coding::put_fixed16(out, 0x0102);
  coding::put_fixed32(out, 0x03040506u);
  coding::put_fixed64(out, 0x0708090a0b0c0d0eull);
  const std::string want("\x02\x01\x06\x05\x04\x03\x0e\x0d\x0c\x0b\x0a\x09\x08\x07", 14);
  CHECK(out == want);
  CHECK(coding::decode_fixed16(out.data()) == 0x0102);
  CHECK(coding::decode_fixed32(out.data() + 2) == 0x03040506u);
  CHECK(coding::decode_fixed64(out.data() + 6) == 0x0708090a0b0c0d0eull);
}

TEST_CASE("put and get round-trip every width, signed values and doubles") {
  std::string out;
  coding::put<uint8_t>(out, 0xfe);
  coding::put<int16_t>(out, -2);
  coding::put<int32_t>(out, -123456);
  coding::put<int64_t>(out, -9000000000ll);
  coding::put<double>(out, 41.5);
  REQUIRE(out.size() == 1 + 2 + 4 + 8 + 8);
  const char* p = out.data();
  CHECK(coding::get<uint8_t>(p) == 0xfe);
  CHECK(coding::get<int16_t>(p + 1) == -2);
  CHECK(coding::get<int32_t>(p + 3) == -123456);
  CHECK(coding::get<int64_t>(p + 7) == -9000000000ll);
  CHECK(coding::get<double>(p + 15) == 41.5);
  // 41.5 = 0x4044c00000000000: the high byte comes last.
  CHECK(static_cast<unsigned char>(out[22]) == 0x40);
  CHECK(static_cast<unsigned char>(out[21]) == 0x44);
}
