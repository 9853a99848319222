#include "runtime/pack.hpp"

#include <cstring>
#include <sstream>

#include "runtime/cipher.hpp"
#include "simd/crc64.hpp"

namespace dsmil {

namespace {

constexpr char pack_magic[8] = {'D', 'S', 'M', 'P', 'A', 'C', 'K', '1'};
constexpr char record_magic[4] = {'D', 'S', 'M', 'C'};
constexpr uint8_t record_version = 1;

template <class T> void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

template <class T> T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

} // namespace

std::string pack_header() {
  return std::string(pack_magic, sizeof(pack_magic));
}

std::string index_line(const std::string& id_hex, uint64_t offset, uint64_t length) {
  return id_hex + " " + std::to_string(offset) + " " + std::to_string(length) + "\n";
}

void encode_record(const digest& id, const std::string& plain, simd::deflater* d, std::string& out,
                   const store_keys* keys) {
  const size_t size = plain.size();
  out.resize(record_header_size + size);
  char* payload = out.data() + record_header_size;
  size_t packed = 0;
  if (d != nullptr && size > 1)
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
  auto put_at = [](char* p, auto v) { std::memcpy(p, &v, sizeof(v)); };
  std::memcpy(h, record_magic, 4);
  h[4] = static_cast<char>(record_version);
  h[5] = static_cast<char>(packed > 0 ? chunk_codec::deflate : chunk_codec::none);
  h[6] = static_cast<char>(keys != nullptr ? chunk_cipher::aes_256_gcm : chunk_cipher::none);
  h[7] = 0;
  put_at(h + 8, static_cast<uint32_t>(size));
  put_at(h + 12, static_cast<uint32_t>(stored));
  put_at(h + 16, simd::crc64(h + record_header_size, stored));
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

result<std::string> decode_record(const std::string& record, const chunk_location& loc,
                                  const std::string& id_hex, const std::string& pack_path,
                                  const store_keys* keys, bool content) {
  auto fail = [&](const std::string& what) {
    return make_error(errc::integrity_error, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                                 " at offset " + std::to_string(loc.offset) + ": " +
                                                 what);
  };
  if (record.size() != loc.length || loc.length < record_header_size)
    return fail("record extends past the end of the pack (truncated?)");
  const char* h = record.data();
  if (std::memcmp(h, record_magic, 4) != 0) return fail("bad record magic");
  if (static_cast<uint8_t>(h[4]) != record_version) return fail("unknown record version");
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
  std::string stored_id = to_hex(reinterpret_cast<const uint8_t*>(h + 24), 32);
  if (stored_id != id_hex)
    return fail("record holds chunk " + stored_id.substr(0, 16) + " instead");
  const char* payload = h + record_header_size;
  if (simd::crc64(payload, stored_len) != crc) return fail("CRC64 mismatch (stored bytes damaged)");
  if (!content) return std::string();
  std::string opened;
  size_t payload_len = stored_len;
  if (cipher == chunk_cipher::aes_256_gcm) {
    if (keys == nullptr)
      return make_error(errc::unavailable, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                               " is encrypted and the store's data key is not "
                                               "available");
    auto o =
        aes_gcm_open(keys->enc, payload, stored_len, reinterpret_cast<const uint8_t*>(h + 24), 32);
    if (!o) return fail(o.err().message);
    opened = std::move(*o);
    payload = opened.data();
    payload_len = opened.size();
  }
  std::string plain;
  if (codec == chunk_codec::deflate) {
    plain.resize(plain_len);
    if (!simd::inflate(reinterpret_cast<const uint8_t*>(payload), payload_len,
                       reinterpret_cast<uint8_t*>(plain.data()), plain_len))
      return fail("cannot inflate the stored bytes");
  } else {
    if (payload_len != plain_len) return fail("record length does not match its header");
    plain.assign(payload, payload_len);
  }
  const std::string got =
      keys != nullptr ? to_hex(hmac_sha256(keys->mac, plain)) : sha256_hex(plain);
  if (got != id_hex)
    return fail(keys != nullptr ? "HMAC mismatch (content damaged)"
                                : "SHA-256 mismatch (content damaged)");
  return plain;
}

} // namespace dsmil
