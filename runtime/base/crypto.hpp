// Hashing, hex and randomness through OpenSSL (SHA-NI where the CPU has it).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsmil {

using digest = std::array<uint8_t, 32>;

digest sha256(std::string_view data);
std::string to_hex(const uint8_t* data, size_t size);
inline std::string to_hex(const digest& d) {
  return to_hex(d.data(), d.size());
}
std::string sha256_hex(std::string_view data);
/// SHA-256 of bytes that come in pieces (a stream too large for memory).
class sha256_stream {
public:
  sha256_stream();
  ~sha256_stream();
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;
  void update(std::string_view bytes);
  /// The digest of everything given; the hash starts over.
  digest finish();

private:
  void* ctx_; // EVP_MD_CTX
};
/// Decodes lower- or upper-case hex; false on malformed input.
bool from_hex(std::string_view hex, std::string& out);
/// Cryptographically strong random bytes.
void random_bytes(uint8_t* out, size_t size);

} // namespace dsmil
