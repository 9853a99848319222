#include "runtime/sim_driver.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simd/crc64.hpp"

namespace dsmil {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {

constexpr double spike_temperature_c = 105.0;

// State file: header, then two slots per device in device-map order.
//   header := "DSMSIM01" u64 seed u32 devices u32 slot_bytes u64 crc64(previous 24 bytes)
//   slot   := u64 sequence u64 crc64(sequence, body) u32 body_len body
//   body   := u8 enabled u8 security_level u16 registers u32 blob_len u32[registers] u8[blob_len]
// A slot with a bad CRC is ignored; the valid slot with the higher sequence is the state.
constexpr char sim_magic[8] = {'D', 'S', 'M', 'S', 'I', 'M', '0', '1'};
constexpr size_t header_bytes = 64;
constexpr size_t slot_header_bytes = 20;

std::vector<uint8_t> encode_body(const device_state& s) {
  std::vector<uint8_t> b(8 + s.registers.size() * 4 + s.config_blob.size());
  b[0] = s.enabled ? 1 : 0;
  b[1] = s.security_level;
  uint16_t regs = static_cast<uint16_t>(s.registers.size());
  uint32_t blob = static_cast<uint32_t>(s.config_blob.size());
  std::memcpy(&b[2], &regs, 2);
  std::memcpy(&b[4], &blob, 4);
  if (!s.registers.empty()) std::memcpy(&b[8], s.registers.data(), s.registers.size() * 4);
  if (!s.config_blob.empty())
    std::memcpy(&b[8 + s.registers.size() * 4], s.config_blob.data(), s.config_blob.size());
  return b;
}

bool decode_body(const uint8_t* b, uint32_t len, device_state& s) {
  if (len < 8) return false;
  uint16_t regs;
  uint32_t blob;
  std::memcpy(&regs, b + 2, 2);
  std::memcpy(&blob, b + 4, 4);
  if (len != 8 + size_t{regs} * 4 + blob || b[1] > max_security_level) return false;
  s.enabled = b[0] == 1;
  s.security_level = b[1];
  s.registers.resize(regs);
  if (regs) std::memcpy(s.registers.data(), b + 8, size_t{regs} * 4);
  s.config_blob.assign(b + 8 + size_t{regs} * 4, b + len);
  return true;
}

uint64_t slot_crc(uint64_t sequence, const uint8_t* body, uint32_t len) {
  uint64_t c = simd::crc64(&sequence, sizeof(sequence));
  c = simd::crc64(&len, sizeof(len), c);
  return simd::crc64(body, len, c);
}

} // namespace

struct sim_driver::mapped_file {
  std::string path;
  int fd = -1;
  uint8_t* base = nullptr;
  size_t bytes = 0;
  size_t slot_bytes = 0;
  std::vector<uint64_t> sequence; ///< newest sequence per device

  ~mapped_file() {
    if (base) ::munmap(base, bytes);
    if (fd >= 0) ::close(fd);
  }
  uint8_t* slot(size_t device, int which) {
    return base + header_bytes + (device * 2 + static_cast<size_t>(which)) * slot_bytes;
  }
};

sim_driver::~sim_driver() = default;

void sim_driver::store_slot(size_t index, const device_state& s) {
  auto& f = *file_;
  uint64_t seq = f.sequence[index] + 1;
  auto body = encode_body(s);
  uint32_t len = static_cast<uint32_t>(body.size());
  // The slot not holding the newest state; the sequence is written last so a
  // kill before it leaves the newest slot in charge.
  uint8_t* p = f.slot(index, static_cast<int>(seq & 1));
  uint64_t crc = slot_crc(seq, body.data(), len);
  std::memcpy(p + 16, &len, 4);
  std::memcpy(p + slot_header_bytes, body.data(), len);
  std::memcpy(p + 8, &crc, 8);
  __atomic_store_n(reinterpret_cast<uint64_t*>(p), seq, __ATOMIC_RELEASE);
  f.sequence[index] = seq;
}

status sim_driver::persist_to(const std::string& path) {
  std::lock_guard<std::mutex> guard(mu_);
  auto fail = [&](const std::string& what) {
    return make_error(errc::io_error, "device state file " + path + ": " + what);
  };
  auto f = std::make_unique<mapped_file>();
  f->path = path;
  size_t slot_bytes = 0;
  {
    // Same layout as the caller's map: slots sized for its largest device.
    size_t most = 0;
    for (auto& [id, d] : devices_)
      most = std::max(most, 8 + d.state.registers.size() * 4 + d.state.config_blob.size());
    slot_bytes = (slot_header_bytes + most + 63) / 64 * 64;
  }
  f->slot_bytes = slot_bytes;
  f->bytes = header_bytes + devices_.size() * 2 * slot_bytes;
  f->fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f->fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(f->fd, &st) != 0) return fail(std::strerror(errno));
  const bool fresh = st.st_size == 0;
  if (fresh) {
    if (::ftruncate(f->fd, static_cast<off_t>(f->bytes)) != 0) return fail(std::strerror(errno));
  } else if (static_cast<size_t>(st.st_size) != f->bytes) {
    return fail("has " + std::to_string(st.st_size) + " bytes, this device map needs " +
                std::to_string(f->bytes) + "; it was made for another device map (move it away " +
                "to start the devices from the seed)");
  }
  void* m = ::mmap(nullptr, f->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
  if (m == MAP_FAILED) return fail(std::strerror(errno));
  f->base = static_cast<uint8_t*>(m);
  f->sequence.assign(devices_.size(), 0);

  uint8_t header[32] = {};
  std::memcpy(header, sim_magic, 8);
  uint32_t count = static_cast<uint32_t>(devices_.size());
  uint32_t sb = static_cast<uint32_t>(slot_bytes);
  std::memcpy(header + 8, &seed_, 8);
  std::memcpy(header + 16, &count, 4);
  std::memcpy(header + 20, &sb, 4);
  uint64_t hcrc = simd::crc64(header, 24);
  std::memcpy(header + 24, &hcrc, 8);

  size_t index = 0;
  for (auto& [id, d] : devices_)
    d.slot = index++;
  if (fresh) {
    file_ = std::move(f);
    for (auto& [id, d] : devices_)
      store_slot(d.slot, d.state);
    std::memcpy(file_->base, header, sizeof(header));
    if (::msync(file_->base, file_->bytes, MS_SYNC) != 0 || ::fsync(file_->fd) != 0)
      return fail(std::strerror(errno));
    return {};
  }
  if (std::memcmp(f->base, sim_magic, 8) != 0) return fail("is not a device state file");
  if (std::memcmp(f->base, header, sizeof(header)) != 0)
    return fail("was made for another seed or device map (move it away to start the devices "
                "from the seed)");
  std::map<device_id, device_state> loaded;
  for (auto& [id, d] : devices_) {
    int best = -1;
    uint64_t best_seq = 0;
    for (int w = 0; w < 2; ++w) {
      uint8_t* p = f->slot(d.slot, w);
      uint64_t seq, crc;
      uint32_t len;
      std::memcpy(&seq, p, 8);
      std::memcpy(&crc, p + 8, 8);
      std::memcpy(&len, p + 16, 4);
      if (seq == 0 || len > slot_bytes - slot_header_bytes) continue;
      if (slot_crc(seq, p + slot_header_bytes, len) != crc) continue;
      if (best < 0 || seq > best_seq) best = w, best_seq = seq;
    }
    device_state s = d.state;
    bool intact = false;
    if (best >= 0) {
      const uint8_t* p = f->slot(d.slot, best);
      uint32_t len;
      std::memcpy(&len, p + 16, 4);
      intact = decode_body(p + slot_header_bytes, len, s) &&
               s.registers.size() == d.state.registers.size() &&
               s.config_blob.size() == d.state.config_blob.size();
    }
    if (!intact)
      return fail("device " + format_device_id(id) + " has no intact state (move the file away " +
                  "to start the devices from the seed)");
    f->sequence[d.slot] = best_seq;
    loaded[id] = std::move(s);
  }
  for (auto& [id, d] : devices_) {
    auto& s = loaded[id];
    d.state.registers = std::move(s.registers);
    d.state.config_blob = std::move(s.config_blob);
    d.state.enabled = s.enabled;
    d.state.security_level = s.security_level;
  }
  file_ = std::move(f);
  return {};
}

sim_driver::sim_driver(const device_map& map, uint64_t seed, env& clock, double critical_c)
    : clock_(clock), critical_c_(critical_c), seed_(seed) {
  for (auto& info : map.devices()) {
    sim_device d;
    uint64_t s = seed ^ (static_cast<uint64_t>(info.id) << 32);
    d.state.id = info.id;
    d.state.registers.resize(info.register_count);
    for (auto& r : d.state.registers)
      r = static_cast<uint32_t>(splitmix64(s));
    d.state.config_blob.resize(info.config_blob_size);
    for (auto& b : d.state.config_blob)
      b = static_cast<uint8_t>(splitmix64(s));
    d.state.enabled = info.group != 6 && !info.quarantined; // training group starts disabled
    d.state.security_level = static_cast<uint8_t>(splitmix64(s) % (max_security_level + 1));
    d.base_temperature = 40.0 + static_cast<double>(splitmix64(s) % 200) / 10.0;
    d.state.temperature_c = d.base_temperature;
    d.rng = splitmix64(s);
    devices_.emplace(info.id, std::move(d));
  }
}

status sim_driver::inject(sim_device& d) {
  if (d.fault.offline)
    return make_error(errc::device_offline,
                      "device " + format_device_id(d.state.id) + " is offline");
  if (d.fault.error_rate > 0) {
    double roll = static_cast<double>(splitmix64(d.rng) >> 11) / static_cast<double>(1ull << 53);
    if (roll < d.fault.error_rate)
      return make_error(errc::driver_error,
                        "driver error on " + format_device_id(d.state.id) + " (injected fault)");
  }
  return {};
}

result<device_state> sim_driver::read(device_id id) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  if (it == devices_.end())
    return make_error(errc::no_such_device, "no such device " + format_device_id(id));
  if (auto err = inject(it->second)) return err;
  return it->second.state;
}

status sim_driver::write(const device_patch& p) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(p.id);
  if (it == devices_.end())
    return make_error(errc::no_such_device, "no such device " + format_device_id(p.id));
  auto& d = it->second;
  ++d.writes;
  if (auto err = inject(d)) return err;
  if (d.state.temperature_c > critical_c_) {
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  "device %s is at %.1f C, above the critical limit %.1f C: writes refused",
                  format_device_id(p.id).c_str(), d.state.temperature_c, critical_c_);
    return make_error(errc::permission_denied, buf);
  }
  for (size_t i = 0; i < p.register_index.size(); ++i) {
    auto idx = p.register_index[i];
    if (static_cast<int32_t>(idx) == d.fault.stuck_register) continue; // the fault: write lost
    if (idx < d.state.registers.size()) d.state.registers[idx] = p.register_value[i];
  }
  if (p.set_blob) d.state.config_blob = p.config_blob;
  if (p.enabled >= 0) d.state.enabled = p.enabled == 1;
  if (p.security_level >= 0) d.state.security_level = static_cast<uint8_t>(p.security_level);
  d.state.last_activity_ns = clock_.now_unix_ns();
  if (file_) store_slot(d.slot, d.state);
  return {};
}

status sim_driver::scramble(device_id id, uint64_t& seed) {
  device_patch p;
  p.id = id;
  {
    std::lock_guard<std::mutex> guard(mu_);
    auto it = devices_.find(id);
    if (it == devices_.end())
      return make_error(errc::no_such_device, "no such device " + format_device_id(id));
    auto& s = it->second.state;
    for (uint32_t i = 0; i < s.registers.size(); ++i) {
      p.register_index.push_back(i);
      p.register_value.push_back(static_cast<uint32_t>(splitmix64(seed)));
    }
    p.set_blob = true;
    p.config_blob.resize(s.config_blob.size());
    for (auto& b : p.config_blob)
      b = static_cast<uint8_t>(splitmix64(seed));
    p.enabled = s.enabled ? 0 : 1;
    p.security_level = static_cast<int8_t>((s.security_level + 1) % (max_security_level + 1));
  }
  return write(p);
}

uint32_t sim_driver::latency_ms(device_id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  return it == devices_.end() ? 0 : it->second.fault.latency_ms;
}

void sim_driver::set_fault(device_id id, const fault_spec& f) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  if (it == devices_.end()) return;
  it->second.fault = f;
  it->second.state.temperature_c =
      f.thermal_spike ? spike_temperature_c : it->second.base_temperature;
}

fault_spec sim_driver::fault(device_id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  return it == devices_.end() ? fault_spec{} : it->second.fault;
}

uint64_t sim_driver::write_count() const {
  std::lock_guard<std::mutex> guard(mu_);
  uint64_t n = 0;
  for (auto& [id, d] : devices_)
    n += d.writes;
  return n;
}

uint64_t sim_driver::write_count(device_id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  return it == devices_.end() ? 0 : it->second.writes;
}

} // namespace dsmil
