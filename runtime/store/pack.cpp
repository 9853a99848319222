#include "runtime/store/pack.hpp"

#include <cstring>
#include <functional>
#include <sstream>

#include "runtime/base/coding.hpp"
#include "runtime/keys/cipher.hpp"
#include "simd/crc64.hpp"

namespace dsmil {

namespace {

constexpr char pack_magic[8] = {'D', 'S', 'M', 'P', 'A', 'C', 'K', '1'};
constexpr char record_magic[4] = {'D', 'S', 'M', 'C'};
constexpr uint8_t record_version = 1;

using coding::get;
using coding::put;

} // namespace

std::string pack_header() {
  return std::string(pack_magic, sizeof(pack_magic));
}

std::string index_line(const std::string& id_hex, uint64_t offset, uint64_t length) {
  return id_hex + " " + std::to_string(offset) + " " + std::to_string(length) + "\n";
}

void encode_record(const digest& id, std::string_view plain, simd::deflater* d, std::string& out,
                   const store_keys* keys) {
  const size_t size = plain.size();
  out.resize(record_header_size + size);
  char* payload = out.data() + record_header_size;
  size_t packed = 0;
  // Below min_deflate_size deflate saves a few hundred bytes at most, and
  // building its Huffman tables costs more than the rest of the encoding.
  if (d != nullptr && size >= min_deflate_size)
    packed = d->compress(reinterpret_cast<const uint8_t*>(plain.data()), size,
                         reinterpret_cast<uint8_t*>(payload), size - 1);
  if (packed == 0) std::memcpy(payload, plain.data(), size);
  size_t stored = packed > 0 ? packed : size;
  out.resize(record_header_size + stored);
  if (keys != nullptr) {
    // Encrypt what would be stored (compressed or raw); the id is the AAD.
    thread_local std::string sealed;
    sealed.clear();
    aes_gcm_seal(keys->enc, out.data() + record_header_size, stored, id.data(), id.size(), sealed);
    out.resize(record_header_size);
    out += sealed;
    stored = sealed.size();
  }
  char* h = out.data();
  std::memcpy(h, record_magic, 4);
  h[4] = static_cast<char>(record_version);
  h[5] = static_cast<char>(packed > 0 ? chunk_codec::deflate : chunk_codec::none);
  h[6] = static_cast<char>(keys != nullptr ? chunk_cipher::aes_256_gcm : chunk_cipher::none);
  h[7] = 0;
  coding::encode_fixed32(h + 8, static_cast<uint32_t>(size));
  coding::encode_fixed32(h + 12, static_cast<uint32_t>(stored));
  coding::encode_fixed64(h + 16, simd::crc64(h + record_header_size, stored));
  std::memcpy(h + 24, id.data(), id.size());
}

status parse_index(const std::string& text, const std::string& pack_name, const std::string& path,
                   std::map<std::string, chunk_location>& out) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream fields(line);
    std::string id;
    uint64_t offset = 0, length = 0;
    if (!(fields >> id >> offset >> length) || id.size() != 64 || length < record_header_size)
      return make_error(errc::integrity_error,
                        path + ":" + std::to_string(n) + ": malformed index line");
    out[id] = chunk_location{pack_name, offset, length};
  }
  return {};
}

bool record_is_deflated(const std::string& record) {
  return record.size() > 5 && static_cast<chunk_codec>(record[5]) == chunk_codec::deflate;
}

bool is_pack_header(const std::string& head) {
  return head.size() >= pack_header_size &&
         std::memcmp(head.data(), pack_magic, pack_header_size) == 0;
}

namespace {

// A record whose structure and CRC64 were checked.
struct checked_record {
  chunk_codec codec;
  chunk_cipher cipher;
  uint32_t plain_len;
  const char* payload;
  size_t payload_len;
};

} // namespace

static result<checked_record> check_record(const char* h, size_t len, const chunk_location& loc,
                                           const std::string& id_hex,
                                           const std::function<error(const std::string&)>& fail) {
  if (len != loc.length || loc.length < record_header_size)
    return fail("record extends past the end of the pack (truncated?)");
  if (std::memcmp(h, record_magic, 4) != 0) return fail("bad record magic");
  if (static_cast<uint8_t>(h[4]) != record_version) return fail("unknown record version");
  if (h[7] != 0) return fail("reserved header byte is not zero");
  auto codec = static_cast<chunk_codec>(h[5]);
  auto cipher = static_cast<chunk_cipher>(h[6]);
  if ((codec != chunk_codec::none && codec != chunk_codec::deflate) ||
      (cipher != chunk_cipher::none && cipher != chunk_cipher::aes_256_gcm))
    return fail("unknown codec or cipher");
  auto plain_len = get<uint32_t>(h + 8);
  auto stored_len = get<uint32_t>(h + 12);
  auto crc = get<uint64_t>(h + 16);
  if (stored_len != loc.length - record_header_size ||
      (codec == chunk_codec::none && cipher == chunk_cipher::none && plain_len != stored_len))
    return fail("record length does not match the index");
  // DEFLATE expands at most 1032:1: a larger plain length is a damaged
  // header, refused before anything that size is allocated.
  if (plain_len > uint64_t{stored_len} * 1032 + 64) return fail("impossible plain length");
  std::string stored_id = to_hex(reinterpret_cast<const uint8_t*>(h + 24), 32);
  if (stored_id != id_hex)
    return fail("record holds chunk " + stored_id.substr(0, 16) + " instead");
  const char* payload = h + record_header_size;
  if (simd::crc64(payload, stored_len) != crc) return fail("CRC64 mismatch (stored bytes damaged)");
  return checked_record{codec, cipher, plain_len, payload, stored_len};
}

// Decrypts and decodes a checked record into `out` (its plain_len bytes) and
// checks the content against the id.
static status open_record(const checked_record& r, const char* h, const std::string& id_hex,
                          const std::string& pack_path, const store_keys* keys, char* out,
                          const std::function<error(const std::string&)>& fail) {
  const char* payload = r.payload;
  size_t payload_len = r.payload_len;
  std::string opened;
  if (r.cipher == chunk_cipher::aes_256_gcm) {
    if (keys == nullptr)
      return make_error(errc::unavailable, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                               " is encrypted and the store's data key is not "
                                               "available");
    auto o =
        aes_gcm_open(keys->enc, payload, payload_len, reinterpret_cast<const uint8_t*>(h + 24), 32);
    if (!o) return fail(o.err().message);
    opened = std::move(*o);
    payload = opened.data();
    payload_len = opened.size();
  }
  if (r.codec == chunk_codec::deflate) {
    if (!simd::inflate(reinterpret_cast<const uint8_t*>(payload), payload_len,
                       reinterpret_cast<uint8_t*>(out), r.plain_len))
      return fail("cannot inflate the stored bytes");
  } else {
    if (payload_len != r.plain_len) return fail("record length does not match its header");
    std::memcpy(out, payload, payload_len);
  }
  const std::string_view plain(out, r.plain_len);
  // An encrypted record is named by its HMAC; a plain one by its SHA-256,
  // also in an encrypted store (a large stream's chunk list, which holds
  // only chunk ids and sizes, is stored plain so that it reads without the key).
  const bool mac = r.cipher == chunk_cipher::aes_256_gcm;
  const std::string got = mac ? to_hex(hmac_sha256(keys->mac, plain)) : to_hex(sha256(plain));
  if (got != id_hex)
    return fail(mac ? "HMAC mismatch (content damaged)" : "SHA-256 mismatch (content damaged)");
  return {};
}

result<std::string> decode_record(const std::string& record, const chunk_location& loc,
                                  const std::string& id_hex, const std::string& pack_path,
                                  const store_keys* keys, bool content) {
  auto fail = [&](const std::string& what) {
    return make_error(errc::integrity_error, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                                 " at offset " + std::to_string(loc.offset) + ": " +
                                                 what);
  };
  auto r = check_record(record.data(), record.size(), loc, id_hex, fail);
  if (!r) return r.err();
  if (!content) return std::string();
  std::string plain(r->plain_len, '\0');
  if (auto err = open_record(*r, record.data(), id_hex, pack_path, keys, plain.data(), fail))
    return err;
  return plain;
}

status decode_record_to(const char* record, size_t len, const chunk_location& loc,
                        const std::string& id_hex, const std::string& pack_path,
                        const store_keys* keys, char* out, size_t out_size) {
  auto fail = [&](const std::string& what) {
    return make_error(errc::integrity_error, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                                 " at offset " + std::to_string(loc.offset) + ": " +
                                                 what);
  };
  auto r = check_record(record, len, loc, id_hex, fail);
  if (!r) return r.err();
  if (r->plain_len != out_size)
    return fail("holds " + std::to_string(r->plain_len) + " bytes, the manifest says " +
                std::to_string(out_size));
  return open_record(*r, record, id_hex, pack_path, keys, out, fail);
}

} // namespace dsmil
