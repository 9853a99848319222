#include "runtime/store/state_codec.hpp"

#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/base/coding.hpp"

namespace dsmil {

namespace {

constexpr char device_magic[4] = {'D', 'S', 'D', 'V'};
constexpr uint8_t device_format = 1;

using coding::put;

class reader {
public:
  explicit reader(const std::string& s) : s_(s) {}
  template <class T> bool get(T& v) {
    if (s_.size() - pos_ < sizeof(T)) return false;
    v = coding::get<T>(s_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool bytes(void* dst, size_t n) {
    if (s_.size() - pos_ < n) return false;
    std::memcpy(dst, s_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == s_.size(); }
  size_t left() const { return s_.size() - pos_; }

private:
  const std::string& s_;
  size_t pos_ = 0;
};

} // namespace

std::string encode_device(const device_state& s) {
  std::string out;
  out.reserve(32 + s.registers.size() * 4 + s.config_blob.size());
  out.append(device_magic, 4);
  put<uint8_t>(out, device_format);
  put<uint16_t>(out, s.id);
  put<uint8_t>(out, s.enabled ? 1 : 0);
  put<uint8_t>(out, s.security_level);
  put<uint32_t>(out, static_cast<uint32_t>(s.registers.size()));
  for (auto r : s.registers)
    put<uint32_t>(out, r);
  put<uint32_t>(out, static_cast<uint32_t>(s.config_blob.size()));
  out.append(reinterpret_cast<const char*>(s.config_blob.data()), s.config_blob.size());
  put<double>(out, s.temperature_c);
  put<int64_t>(out, s.last_activity_ns);
  return out;
}

result<device_state> decode_device(const std::string& bytes) {
  auto bad = make_error(errc::integrity_error, "device record is malformed");
  reader r(bytes);
  char magic[4];
  uint8_t version, enabled, level;
  uint32_t nregs, nblob;
  device_state s;
  if (!r.bytes(magic, 4) || std::memcmp(magic, device_magic, 4) != 0 || !r.get(version) ||
      version != device_format || !r.get(s.id) || !r.get(enabled) || !r.get(level) ||
      !r.get(nregs) || nregs > r.left() / 4)
    return bad;
  s.enabled = enabled != 0;
  s.security_level = level;
  s.registers.resize(nregs);
  for (auto& reg : s.registers)
    if (!r.get(reg)) return bad;
  if (!r.get(nblob) || nblob > r.left()) return bad;
  s.config_blob.resize(nblob);
  if (!r.bytes(s.config_blob.data(), nblob) || !r.get(s.temperature_c) ||
      !r.get(s.last_activity_ns) || !r.done() || level > max_security_level)
    return bad;
  return s;
}

std::string encode_config(const system_config& c) {
  nlohmann::json j = {
      {"config_version", c.config_version},
      {"avx512_present", c.avx512_present},
      {"agent_concurrency_limit", c.agent_concurrency_limit},
      {"thermal_threshold_c", c.thermal_threshold_c},
      {"config_data", c.config_data},
  };
  return j.dump(); // nlohmann::json objects keep keys sorted: canonical
}

result<system_config> decode_config(const std::string& bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::integrity_error, "configuration record is not JSON");
  try {
    system_config c;
    c.config_version = j.at("config_version").get<uint32_t>();
    c.avx512_present = j.at("avx512_present").get<bool>();
    c.agent_concurrency_limit = j.at("agent_concurrency_limit").get<uint32_t>();
    c.thermal_threshold_c = j.at("thermal_threshold_c").get<double>();
    c.config_data = j.at("config_data").get<std::string>();
    return c;
  } catch (const nlohmann::json::exception& e) {
    return make_error(errc::integrity_error,
                      std::string("configuration record is malformed: ") + e.what());
  }
}

} // namespace dsmil
