#include "runtime/sim_driver.hpp"

#include <cstdio>

namespace dsmil {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {

constexpr double spike_temperature_c = 105.0;

} // namespace

sim_driver::sim_driver(const device_map& map, uint64_t seed, env& clock, double critical_c)
    : clock_(clock), critical_c_(critical_c) {
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
  return {};
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
