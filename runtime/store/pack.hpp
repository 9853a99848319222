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

#include "runtime/base/crypto.hpp"
#include "runtime/os/env.hpp"
#include "dsmil/result.hpp"
#include "simd/deflate.hpp"

namespace dsmil {

constexpr size_t pack_header_size = 8;
constexpr size_t record_header_size = 56;

enum class chunk_codec : uint8_t { none = 0, deflate = 1 };
enum class chunk_cipher : uint8_t { none = 0, aes_256_gcm = 1 };

struct store_keys;

/// Where a chunk's record lives.
struct chunk_location {
  std::string pack;    ///< pack name (64 random hex digits)
  uint64_t offset = 0; ///< of the record header inside the pack
  uint64_t length = 0; ///< header + payload
};

/// Chunks smaller than this are stored raw.
constexpr size_t min_deflate_size = 512;

/// A record for `plain` under chunk id `id`: deflated with `d` when that
/// makes it smaller (d may be null: stored raw; so is a chunk smaller than
/// min_deflate_size), CRC64 over the stored bytes.
/// With `keys`, what would be stored is then sealed with AES-256-GCM (the id
/// as associated data). `out` is replaced; its capacity is reused.
void encode_record(const digest& id, std::string_view plain, simd::deflater* d, std::string& out,
                   const store_keys* keys = nullptr);

/// True when an encoded record stores DEFLATE output (it compressed).
bool record_is_deflated(const std::string& record);

/// The 8 bytes every pack starts with.
std::string pack_header();
/// One index line: "chunkid offset length\n".
std::string index_line(const std::string& id_hex, uint64_t offset, uint64_t length);

/// A pack being written: records go straight to its tmp file, so no pack is
/// ever held in memory.
struct open_pack {
  std::string name; // 64 hex digits, random: packs are named once, never by content
  std::string tmp_path;
  std::unique_ptr<writable_file> file;
  uint64_t size = 0;
  std::string index;

  status append(const std::string& id_hex, const std::string& record) {
    if (auto err = file->append(record)) return err;
    index += index_line(id_hex, size, record.size());
    size += record.size();
    return {};
  }
};

/// Parses an index file into `out` (chunk id hex -> location). Errors name `path`.
status parse_index(const std::string& text, const std::string& pack_name, const std::string& path,
                   std::map<std::string, chunk_location>& out);

/// Decodes one record (exactly the `loc.length` bytes at `loc.offset` of the
/// pack) and returns the plaintext after checking magic, lengths, CRC64,
/// decryption (with `keys`), decoding and the id (SHA-256, or HMAC with keys)
/// against `id_hex`. Errors are integrity_error and name `pack_path`, the
/// chunk and the offset; an encrypted record without keys is `unavailable`.
/// With `content` false only structure and CRC64 are checked ("" returned).
result<std::string> decode_record(const std::string& record, const chunk_location& loc,
                                  const std::string& id_hex, const std::string& pack_path,
                                  const store_keys* keys = nullptr, bool content = true);

/// decode_record for `len` bytes at `record`, writing the plaintext, which must
/// be exactly `out_size` bytes (what the manifest says), to `out`.
status decode_record_to(const char* record, size_t len, const chunk_location& loc,
                        const std::string& id_hex, const std::string& pack_path,
                        const store_keys* keys, char* out, size_t out_size);
/// True when `head` starts with the pack magic.
bool is_pack_header(const std::string& head);

} // namespace dsmil
