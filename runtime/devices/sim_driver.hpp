// sim_driver: the in-process DSMIL simulator. Deterministic: the initial
// state of every device is a pure function of the seed, and injected errors
// come from a per-device generator seeded the same way.
//
// Like real hardware, the simulated devices can outlive the process: with a
// state file (persist_to), every write lands in a file (through the env), so a
// node killed with SIGKILL and started again finds its devices as the last
// completed write left them. Each device has two slots; a write fills the
// older one and then publishes it by its sequence number, so a kill at any
// instant leaves every device either before or after a write, never inside.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <mutex>

#include "runtime/devices/driver.hpp"
#include "runtime/devices/fault_spec.hpp"
#include "runtime/os/env.hpp"
#include "runtime/devices/device_map.hpp"

namespace dsmil {

class sim_driver final : public driver {
public:
  /// `map` and `e` must outlive this object; the clock and the state file go
  /// through `e`. Writes are refused while a device's temperature is above
  /// `critical_c`.
  sim_driver(const device_map& map, uint64_t seed, env& e, double critical_c = 100.0);

  result<device_state> read(device_id id) override;
  status write(const device_patch& patch) override;
  uint32_t latency_ms(device_id id) const override;

  /// Replaces the faults of one device (fault_spec{} clears them).
  void set_fault(device_id id, const fault_spec& f);
  fault_spec fault(device_id id) const;

  /// Writes that reached the simulator (after the guard), for tests.
  uint64_t write_count() const;
  uint64_t write_count(device_id id) const;
  /// Reads that reached the simulator, for tests (retries count each).
  uint64_t read_count(device_id id) const;
  /// From the `calls`-th next read or write of device `id` on (1: the next
  /// one), its faults are `f`: a device that hangs in the middle of a saga,
  /// say. For tests.
  void set_fault_after(device_id id, uint32_t calls, const fault_spec& f);

  /// Changes every restorable field of one device (fresh registers and
  /// config blob from `seed`, enabled flipped, security level + 1) through
  /// write(), as a component misbehaving behind the node's back would. For
  /// tests and benchmarks.
  status scramble(device_id id, uint64_t& seed);

  /// Keeps device state in `path`, created from the current state when it
  /// does not exist and loaded from it when it does. Errors name the file:
  /// unreadable, damaged, or made for another device map or seed.
  status persist_to(const std::string& path);

  ~sim_driver() override;

private:
  struct sim_device {
    device_state state;
    fault_spec fault;
    uint64_t rng = 0;
    uint64_t writes = 0;
    uint64_t reads = 0;
    double base_temperature = 0;
    size_t slot = 0;                ///< index of its slot pair in the state file
    uint32_t calls_until_fault = 0; ///< > 0: `next_fault` takes effect after so many calls
    fault_spec next_fault;
  };

  // REQUIRES: mu_ held. Rolls the injected-error dice for one call.
  status inject(sim_device& d);
  // REQUIRES: mu_ held. Publishes one device's state to the state file.
  status store_slot(size_t index, const device_state& s);

  struct state_file;

  mutable std::mutex mu_;
  std::map<device_id, sim_device> devices_;
  env& env_;
  double critical_c_;
  uint64_t seed_;
  std::unique_ptr<state_file> file_;
};

/// splitmix64: the simulator's deterministic generator.
uint64_t splitmix64(uint64_t& state);

} // namespace dsmil
