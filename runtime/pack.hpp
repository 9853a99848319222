// Pack files: immutable sequences of chunk records, each self-describing so
// that a scrub can check it without the index, and the index can be rebuilt.
//
// pack   := "DSMPACK1" record*
// record := header(56 bytes) payload(stored_len bytes)
// header := "DSMC" u8 version u8 codec u8 cipher u8 0 u32 plain_len u32 stored_len
//           u64 crc64(payload) u8[32] chunk id
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/crypto.hpp"
#include "runtime/result.hpp"
#include "simd/deflate.hpp"

namespace dsmil {

constexpr size_t pack_header_size = 8;
constexpr size_t record_header_size = 56;

enum class chunk_codec : uint8_t { none = 0, deflate = 1 };
enum class chunk_cipher : uint8_t { none = 0 };

/// Where a chunk's record lives.
struct chunk_location {
  std::string pack;    ///< pack name (hex SHA-256 of the pack bytes)
  uint64_t offset = 0; ///< of the record header inside the pack
  uint64_t length = 0; ///< header + payload
};

/// A record for `plain` under chunk id `id`: deflated with `d` when that
/// makes it smaller (d may be null: stored raw), CRC64 over the stored bytes.
/// `out` is replaced; its capacity is reused, so a worker keeps one.
void encode_record(const digest& id, const std::string& plain, simd::deflater* d, std::string& out);
inline std::string encode_record(const digest& id, const std::string& plain) {
  std::string out;
  encode_record(id, plain, nullptr, out);
  return out;
}

/// The 8 bytes every pack starts with.
std::string pack_header();
/// One index line: "chunkid offset length\n".
std::string index_line(const std::string& id_hex, uint64_t offset, uint64_t length);

/// Collects records in memory and produces the pack bytes and its index.
class pack_builder {
public:
  pack_builder();
  /// Appends a record for `plain` under chunk id `id` (raw 32 bytes), raw.
  void add(const digest& id, const std::string& plain) { append(id, encode_record(id, plain)); }
  /// Appends an encoded record (see encode_record).
  void append(const digest& id, const std::string& record);
  size_t size() const { return bytes_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::string& bytes() const { return bytes_; }
  /// Index text for a pack called `pack_name`: one "chunkid offset length" line per record.
  std::string index_text() const;

private:
  std::string bytes_;
  std::vector<std::pair<digest, std::pair<uint64_t, uint64_t>>> entries_;
};

/// Parses an index file into `out` (chunk id hex -> location). Errors name `path`.
status parse_index(const std::string& text, const std::string& pack_name, const std::string& path,
                   std::map<std::string, chunk_location>& out);

/// Decodes one record (exactly the `loc.length` bytes at `loc.offset` of the
/// pack) and returns the plaintext after checking magic, lengths, CRC64,
/// decoding and SHA-256 against `id_hex`. Errors are integrity_error and name
/// `pack_path`, the chunk and the offset.
result<std::string> decode_record(const std::string& record, const chunk_location& loc,
                                  const std::string& id_hex, const std::string& pack_path);

/// True when `head` starts with the pack magic.
bool is_pack_header(const std::string& head);

} // namespace dsmil
