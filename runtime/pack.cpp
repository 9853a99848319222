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

void pack_builder::add(const digest& id, const std::string& plain) {
  uint64_t offset = bytes_.size();
  bytes_.append(record_magic, 4);
  put<uint8_t>(bytes_, record_version);
  put<uint8_t>(bytes_, static_cast<uint8_t>(chunk_codec::none));
  put<uint8_t>(bytes_, static_cast<uint8_t>(chunk_cipher::none));
  put<uint8_t>(bytes_, 0);
  put<uint32_t>(bytes_, static_cast<uint32_t>(plain.size()));
  put<uint32_t>(bytes_, static_cast<uint32_t>(plain.size()));
  put<uint64_t>(bytes_, simd::crc64(plain.data(), plain.size()));
  bytes_.append(reinterpret_cast<const char*>(id.data()), id.size());
  bytes_.append(plain);
  entries_.push_back({id, {offset, bytes_.size() - offset}});
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

result<std::string> read_record(const std::string& pack_bytes, const chunk_location& loc,
                                const std::string& id_hex, const std::string& pack_path) {
  auto fail = [&](const std::string& what) {
    return make_error(errc::integrity_error, pack_path + ": chunk " + id_hex.substr(0, 16) +
                                                 " at offset " + std::to_string(loc.offset) + ": " +
                                                 what);
  };
  if (pack_bytes.size() < pack_header_size ||
      std::memcmp(pack_bytes.data(), pack_magic, sizeof(pack_magic)) != 0)
    return make_error(errc::integrity_error, pack_path + ": not a pack file (bad magic)");
  if (loc.offset + loc.length > pack_bytes.size() || loc.length < record_header_size)
    return fail("record extends past the end of the pack (truncated?)");
  const char* h = pack_bytes.data() + loc.offset;
  if (std::memcmp(h, record_magic, 4) != 0) return fail("bad record magic");
  if (static_cast<uint8_t>(h[4]) != record_version) return fail("unknown record version");
  if (h[5] != static_cast<char>(chunk_codec::none) || h[6] != static_cast<char>(chunk_cipher::none))
    return fail("unknown codec or cipher");
  auto plain_len = get<uint32_t>(h + 8);
  auto stored_len = get<uint32_t>(h + 12);
  auto crc = get<uint64_t>(h + 16);
  if (stored_len != loc.length - record_header_size || plain_len != stored_len)
    return fail("record length does not match the index");
  std::string stored_id = to_hex(reinterpret_cast<const uint8_t*>(h + 24), 32);
  if (stored_id != id_hex)
    return fail("record holds chunk " + stored_id.substr(0, 16) + " instead");
  const char* payload = h + record_header_size;
  if (simd::crc64(payload, stored_len) != crc) return fail("CRC64 mismatch (stored bytes damaged)");
  std::string plain(payload, stored_len);
  if (sha256_hex(plain) != id_hex) return fail("SHA-256 mismatch (content damaged)");
  return plain;
}

} // namespace dsmil
