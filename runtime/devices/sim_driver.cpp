#include "runtime/devices/sim_driver.hpp"

#include <algorithm>
#include <cstdio>

#include "runtime/base/coding.hpp"
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

// State file: header, then two slots per device in device-map order. Every
// integer is little-endian (base/coding.hpp).
//   header := "DSMSIM01" u64 seed u32 devices u32 slot_bytes u64 crc64(previous 24 bytes)
//   slot   := u64 sequence u64 crc64(sequence, body_len, body) u32 body_len body
//   body   := u8 enabled u8 security_level u16 registers u32 blob_len u32[registers] u8[blob_len]
// A slot with a bad CRC is ignored; the valid slot with the higher sequence
// is the state. A slot is written with one write_at(): a kill during it
// leaves a slot whose CRC fails, and the other slot stays in charge.
constexpr char sim_magic[8] = {'D', 'S', 'M', 'S', 'I', 'M', '0', '1'};
constexpr size_t header_bytes = 64;
constexpr size_t slot_header_bytes = 20;

std::string encode_body(const device_state& s) {
  std::string b;
  b.reserve(8 + s.registers.size() * 4 + s.config_blob.size());
  coding::put<uint8_t>(b, s.enabled ? 1 : 0);
  coding::put<uint8_t>(b, s.security_level);
  coding::put<uint16_t>(b, static_cast<uint16_t>(s.registers.size()));
  coding::put<uint32_t>(b, static_cast<uint32_t>(s.config_blob.size()));
  for (auto r : s.registers)
    coding::put<uint32_t>(b, r);
  b.append(reinterpret_cast<const char*>(s.config_blob.data()), s.config_blob.size());
  return b;
}

bool decode_body(const char* b, uint32_t len, device_state& s) {
  if (len < 8) return false;
  const uint16_t regs = coding::decode_fixed16(b + 2);
  const uint32_t blob = coding::decode_fixed32(b + 4);
  const auto level = static_cast<uint8_t>(b[1]);
  if (len != 8 + size_t{regs} * 4 + blob || level > max_security_level) return false;
  s.enabled = b[0] == 1;
  s.security_level = level;
  s.registers.resize(regs);
  for (size_t i = 0; i < regs; ++i)
    s.registers[i] = coding::decode_fixed32(b + 8 + i * 4);
  const char* blob_at = b + 8 + size_t{regs} * 4;
  s.config_blob.assign(blob_at, blob_at + blob);
  return true;
}

uint64_t slot_crc(uint64_t sequence, std::string_view body) {
  char head[12];
  coding::encode_fixed64(head, sequence);
  coding::encode_fixed32(head + 8, static_cast<uint32_t>(body.size()));
  return simd::crc64(body.data(), body.size(), simd::crc64(head, sizeof(head)));
}

} // namespace

struct sim_driver::state_file {
  std::string path;
  std::unique_ptr<random_rw_file> file;
  size_t slot_bytes = 0;
  std::vector<uint64_t> sequence; ///< newest sequence per device

  uint64_t slot_offset(size_t device, int which) const {
    return header_bytes + (device * 2 + static_cast<size_t>(which)) * slot_bytes;
  }
};

sim_driver::~sim_driver() = default;

status sim_driver::store_slot(size_t index, const device_state& s) {
  auto& f = *file_;
  const uint64_t seq = f.sequence[index] + 1;
  const std::string body = encode_body(s);
  // The slot not holding the newest state, in one write.
  std::string slot;
  slot.reserve(slot_header_bytes + body.size());
  coding::put_fixed64(slot, seq);
  coding::put_fixed64(slot, slot_crc(seq, body));
  coding::put_fixed32(slot, static_cast<uint32_t>(body.size()));
  slot += body;
  if (auto err = f.file->write_at(f.slot_offset(index, static_cast<int>(seq & 1)), slot))
    return make_error(errc::driver_error, "device " + format_device_id(s.id) +
                                              ": its state could not be stored (" + err.message +
                                              ")");
  f.sequence[index] = seq;
  return {};
}

status sim_driver::persist_to(const std::string& path) {
  std::lock_guard<std::mutex> guard(mu_);
  auto fail = [&](const std::string& what) {
    return make_error(errc::io_error, "device state file " + path + ": " + what);
  };
  auto f = std::make_unique<state_file>();
  f->path = path;
  {
    // Same layout as the caller's map: slots sized for its largest device.
    size_t most = 0;
    for (auto& [id, d] : devices_)
      most = std::max(most, 8 + d.state.registers.size() * 4 + d.state.config_blob.size());
    f->slot_bytes = (slot_header_bytes + most + 63) / 64 * 64;
  }
  const uint64_t bytes = header_bytes + devices_.size() * 2 * f->slot_bytes;
  auto opened = env_.open_random_rw_file(path, 0600);
  if (!opened) return fail(opened.err().message);
  f->file = std::move(*opened);
  auto size = f->file->size();
  if (!size) return fail(size.err().message);
  const bool fresh = *size == 0;
  if (!fresh && *size != bytes)
    return fail("has " + std::to_string(*size) + " bytes, this device map needs " +
                std::to_string(bytes) + "; it was made for another device map (move it away " +
                "to start the devices from the seed)");
  f->sequence.assign(devices_.size(), 0);

  std::string header(sim_magic, 8);
  coding::put_fixed64(header, seed_);
  coding::put_fixed32(header, static_cast<uint32_t>(devices_.size()));
  coding::put_fixed32(header, static_cast<uint32_t>(f->slot_bytes));
  coding::put_fixed64(header, simd::crc64(header.data(), 24));

  size_t index = 0;
  for (auto& [id, d] : devices_)
    d.slot = index++;
  if (fresh) {
    if (auto err = f->file->truncate(bytes)) return fail(err.message);
    file_ = std::move(f);
    for (auto& [id, d] : devices_)
      if (auto err = store_slot(d.slot, d.state)) return fail(err.message);
    // The header last, and everything fsynced: a file with a header is whole.
    if (auto err = file_->file->write_at(0, header)) return fail(err.message);
    if (auto err = file_->file->sync()) return fail(err.message);
    return {};
  }
  auto image = f->file->read_at(0, bytes);
  if (!image) return fail(image.err().message);
  if (image->compare(0, 8, sim_magic, 8) != 0) return fail("is not a device state file");
  if (image->compare(0, header.size(), header) != 0)
    return fail("was made for another seed or device map (move it away to start the devices "
                "from the seed)");
  std::map<device_id, device_state> loaded;
  for (auto& [id, d] : devices_) {
    int best = -1;
    uint64_t best_seq = 0;
    for (int w = 0; w < 2; ++w) {
      const char* p = image->data() + f->slot_offset(d.slot, w);
      const uint64_t seq = coding::decode_fixed64(p);
      const uint64_t crc = coding::decode_fixed64(p + 8);
      const uint32_t len = coding::decode_fixed32(p + 16);
      if (seq == 0 || len > f->slot_bytes - slot_header_bytes) continue;
      if (slot_crc(seq, std::string_view(p + slot_header_bytes, len)) != crc) continue;
      if (best < 0 || seq > best_seq) best = w, best_seq = seq;
    }
    device_state s = d.state;
    bool intact = false;
    if (best >= 0) {
      const char* p = image->data() + f->slot_offset(d.slot, best);
      intact = decode_body(p + slot_header_bytes, coding::decode_fixed32(p + 16), s) &&
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

sim_driver::sim_driver(const device_map& map, uint64_t seed, env& e, double critical_c)
    : env_(e), critical_c_(critical_c), seed_(seed) {
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
  if (d.calls_until_fault > 0 && --d.calls_until_fault == 0) d.fault = d.next_fault;
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
  ++it->second.reads;
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
  device_state next = d.state;
  for (size_t i = 0; i < p.register_index.size(); ++i) {
    auto idx = p.register_index[i];
    if (static_cast<int32_t>(idx) == d.fault.stuck_register) continue; // the fault: write lost
    if (idx < next.registers.size()) next.registers[idx] = p.register_value[i];
  }
  if (p.set_blob) next.config_blob = p.config_blob;
  if (p.enabled >= 0) next.enabled = p.enabled == 1;
  if (p.security_level >= 0) next.security_level = static_cast<uint8_t>(p.security_level);
  next.last_activity_ns = env_.now_unix_ns();
  // Stored first: a write the state file did not take did not happen.
  if (file_)
    if (auto err = store_slot(d.slot, next)) return err;
  d.state = std::move(next);
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

void sim_driver::set_fault_after(device_id id, uint32_t calls, const fault_spec& f) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  if (it == devices_.end()) return;
  it->second.calls_until_fault = calls;
  it->second.next_fault = f;
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

uint64_t sim_driver::read_count(device_id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  return it == devices_.end() ? 0 : it->second.reads;
}

uint64_t sim_driver::write_count(device_id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = devices_.find(id);
  return it == devices_.end() ? 0 : it->second.writes;
}

} // namespace dsmil
