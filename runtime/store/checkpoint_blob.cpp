#include "runtime/store/checkpoint_blob.hpp"

#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/base/coding.hpp"
#include "runtime/keys/cipher.hpp"
#include "runtime/store/state_codec.hpp"
#include "simd/crc64.hpp"
#include "simd/deflate.hpp"

namespace dsmil {

namespace {

constexpr char blob_magic[4] = {'D', 'S', 'M', 'B'};
constexpr uint8_t blob_version = 1;
constexpr size_t blob_header_size = 24;
constexpr size_t blob_aad_size = 16; // magic, version, codec, cipher, plain_len

enum section_kind : uint8_t { meta = 1, device = 2, configuration = 3, stream = 4 };

using coding::put;

void put_section(std::string& out, section_kind kind, std::string_view name,
                 std::string_view bytes) {
  put<uint8_t>(out, kind);
  put<uint32_t>(out, static_cast<uint32_t>(name.size()));
  out += name;
  put<uint64_t>(out, bytes.size());
  out += bytes;
}

// Reads sections, checking every length against what is left.
class section_reader {
public:
  explicit section_reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  bool next(uint8_t& kind, std::string_view& name, std::string_view& bytes) {
    uint32_t name_len = 0;
    uint64_t size = 0;
    if (!get(kind) || !get(name_len) || !take(name_len, name) || !get(size) || !take(size, bytes))
      return false;
    return true;
  }

private:
  template <class T> bool get(T& v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    v = coding::get<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool take(uint64_t n, std::string_view& out) {
    if (in_.size() - pos_ < n) return false;
    out = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
};

error bad_blob(const std::string& what) {
  return make_error(errc::integrity_error, "checkpoint blob: " + what);
}

} // namespace

std::string encode_checkpoint_blob(const checkpoint& c, const store_keys* keys) {
  std::string plain;
  const nlohmann::json m = {{"id", c.id},
                            {"name", c.name},
                            {"description", c.description},
                            {"type", c.type},
                            {"created_at", c.created_at},
                            {"parent_id", c.parent_id}};
  put_section(plain, meta, "", m.dump());
  for (auto& d : c.devices)
    put_section(plain, device, "", encode_device(d));
  put_section(plain, configuration, "", encode_config(c.configuration));
  for (auto& s : c.streams)
    put_section(plain, stream, s.name, s.bytes);

  std::string payload(plain.size(), '\0');
  simd::deflater d(1);
  size_t packed = plain.size() > 1
                      ? d.compress(reinterpret_cast<const uint8_t*>(plain.data()), plain.size(),
                                   reinterpret_cast<uint8_t*>(payload.data()), plain.size() - 1)
                      : 0;
  if (packed > 0)
    payload.resize(packed);
  else
    payload = plain;

  std::string blob(blob_magic, sizeof(blob_magic));
  put<uint8_t>(blob, blob_version);
  put<uint8_t>(blob, packed > 0 ? 1 : 0);
  put<uint8_t>(blob, keys != nullptr ? 1 : 0);
  put<uint8_t>(blob, 0);
  put<uint64_t>(blob, plain.size());
  if (keys != nullptr) {
    std::string sealed;
    aes_gcm_seal(keys->enc, payload.data(), payload.size(),
                 reinterpret_cast<const uint8_t*>(blob.data()), blob_aad_size, sealed);
    payload = std::move(sealed);
  }
  put<uint64_t>(blob, simd::crc64(payload.data(), payload.size()));
  blob += payload;
  return blob;
}

result<checkpoint> decode_checkpoint_blob(std::string_view blob, const store_keys* keys) {
  if (blob.size() < blob_header_size || std::memcmp(blob.data(), blob_magic, 4) != 0)
    return make_error(errc::invalid_argument,
                      "not a checkpoint blob (no DSMB header); pass what compress_checkpoint or "
                      "encrypt_checkpoint returned");
  const uint8_t version = static_cast<uint8_t>(blob[4]);
  const uint8_t codec = static_cast<uint8_t>(blob[5]);
  const uint8_t cipher = static_cast<uint8_t>(blob[6]);
  uint64_t plain_len = 0, crc = 0;
  plain_len = coding::decode_fixed64(blob.data() + 8);
  crc = coding::decode_fixed64(blob.data() + 16);
  if (version != blob_version || codec > 1 || cipher > 1)
    return bad_blob("unknown version, codec or cipher");
  std::string_view payload = blob.substr(blob_header_size);
  if (simd::crc64(payload.data(), payload.size()) != crc)
    return bad_blob("CRC64 mismatch (the blob was damaged or truncated)");
  std::string opened;
  if (cipher == 1) {
    if (keys == nullptr)
      return make_error(errc::unavailable,
                        "the checkpoint blob is encrypted: open it with decrypt_checkpoint on a "
                        "store that has its data key");
    auto o = aes_gcm_open(keys->enc, payload.data(), payload.size(),
                          reinterpret_cast<const uint8_t*>(blob.data()), blob_aad_size);
    if (!o) return bad_blob("cannot decrypt: not sealed with this store's data key, or altered");
    opened = std::move(*o);
    payload = opened;
  }
  // DEFLATE expands at most 1032:1; a larger claim is a damaged header.
  if (plain_len > UINT32_MAX || (codec == 0 && plain_len != payload.size()) ||
      (codec == 1 && plain_len > payload.size() * 1032 + 1024))
    return bad_blob("its length field does not match its payload");
  std::string plain;
  if (codec == 1) {
    plain.resize(static_cast<size_t>(plain_len));
    if (!simd::inflate(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                       reinterpret_cast<uint8_t*>(plain.data()), plain.size()))
      return bad_blob("cannot inflate its payload");
  } else {
    plain.assign(payload);
  }

  checkpoint c;
  section_reader in(plain);
  bool have_meta = false, have_config = false;
  while (!in.done()) {
    uint8_t kind = 0;
    std::string_view name, bytes;
    if (!in.next(kind, name, bytes)) return bad_blob("a section runs past the end");
    switch (kind) {
    case meta: {
      auto m = nlohmann::json::parse(bytes, nullptr, false);
      if (m.is_discarded() || !m.is_object()) return bad_blob("malformed metadata");
      c.id = m.value("id", "");
      c.name = m.value("name", "");
      c.description = m.value("description", "");
      c.type = m.value("type", "manual");
      c.created_at = m.value("created_at", "");
      c.parent_id = m.value("parent_id", "");
      have_meta = true;
      break;
    }
    case device: {
      auto d = decode_device(std::string(bytes));
      if (!d) return bad_blob(d.err().message);
      c.devices.push_back(std::move(*d));
      break;
    }
    case configuration: {
      auto cfg = decode_config(std::string(bytes));
      if (!cfg) return bad_blob(cfg.err().message);
      c.configuration = std::move(*cfg);
      have_config = true;
      break;
    }
    case stream:
      c.streams.push_back({std::string(name), std::string(bytes)});
      break;
    default:
      return bad_blob("unknown section kind " + std::to_string(kind));
    }
  }
  if (!have_meta || !have_config) return bad_blob("metadata or configuration missing");
  return c;
}

} // namespace dsmil
