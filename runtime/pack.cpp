#include "runtime/pack.hpp"

#include <cstring>
#include <sstream>

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

pack_builder::pack_builder() {
  bytes_.append(pack_magic, sizeof(pack_magic));
}

std::string encode_record(const digest& id, const std::string& plain, simd::deflater* d) {
  std::string packed;
  bool deflated = d != nullptr &&
                  d->compress(reinterpret_cast<const uint8_t*>(plain.data()), plain.size(), packed);
  const std::string& stored = deflated ? packed : plain;
  std::string r;
  r.reserve(record_header_size + stored.size());
  r.append(record_magic, 4);
  put<uint8_t>(r, record_version);
  put<uint8_t>(r, static_cast<uint8_t>(deflated ? chunk_codec::deflate : chunk_codec::none));
  put<uint8_t>(r, static_cast<uint8_t>(chunk_cipher::none));
  put<uint8_t>(r, 0);
  put<uint32_t>(r, static_cast<uint32_t>(plain.size()));
  put<uint32_t>(r, static_cast<uint32_t>(stored.size()));
  put<uint64_t>(r, simd::crc64(stored.data(), stored.size()));
  r.append(reinterpret_cast<const char*>(id.data()), id.size());
  r.append(stored);
  return r;
}

void pack_builder::append(const digest& id, const std::string& record) {
  uint64_t offset = bytes_.size();
  bytes_.append(record);
  entries_.push_back({id, {offset, record.size()}});
}

std::string pack_builder::index_text() const {
  std::string out;
  for (auto& [id, loc] : entries_)
    out += to_hex(id) + " " + std::to_string(loc.first) + " " + std::to_string(loc.second) + "\n";
  return out;
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

bool is_pack_header(const std::string& head) {
  return head.size() >= pack_header_size &&
         std::memcmp(head.data(), pack_magic, pack_header_size) == 0;
}

result<std::string> decode_record(const std::string& record, const chunk_location& loc,
                                  const std::string& id_hex, const std::string& pack_path) {
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
  if ((codec != chunk_codec::none && codec != chunk_codec::deflate) ||
      h[6] != static_cast<char>(chunk_cipher::none))
    return fail("unknown codec or cipher");
  auto plain_len = get<uint32_t>(h + 8);
  auto stored_len = get<uint32_t>(h + 12);
  auto crc = get<uint64_t>(h + 16);
  if (stored_len != loc.length - record_header_size ||
      (codec == chunk_codec::none && plain_len != stored_len))
    return fail("record length does not match the index");
  std::string stored_id = to_hex(reinterpret_cast<const uint8_t*>(h + 24), 32);
  if (stored_id != id_hex)
    return fail("record holds chunk " + stored_id.substr(0, 16) + " instead");
  const char* payload = h + record_header_size;
  if (simd::crc64(payload, stored_len) != crc) return fail("CRC64 mismatch (stored bytes damaged)");
  std::string plain;
  if (codec == chunk_codec::deflate) {
    plain.resize(plain_len);
    if (!simd::inflate(reinterpret_cast<const uint8_t*>(payload), stored_len,
                       reinterpret_cast<uint8_t*>(plain.data()), plain_len))
      return fail("cannot inflate the stored bytes");
  } else {
    plain.assign(payload, stored_len);
  }
  if (sha256_hex(plain) != id_hex) return fail("SHA-256 mismatch (content damaged)");
  return plain;
}

} // namespace dsmil
