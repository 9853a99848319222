// The devices component: one record per device (its registers, config blob,
// enabled flag and security level), restored group by group in dependency
// order; quarantined devices are never written, and a change to a critical
// device needs the operator's acknowledgement.
#pragma once

#include <map>

#include "runtime/components/component.hpp"
#include "runtime/components/device_port.hpp"
#include "runtime/devices/device_map.hpp"

namespace dsmil {

class devices_component final : public component {
public:
  /// `map` and `port` must outlive this object.
  devices_component(const device_map& map, device_port& port) : map_(map), port_(port) {}

  std::string name() const override { return "devices"; }
  /// Every device, read at once. Fails when any cannot be read, naming it.
  result<component_image> capture() override;
  /// Selection items: device ids ("0x8031") and groups ("group:3"); the
  /// groups that depend on a selected one follow it.
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override;
  std::vector<failed_item> apply(const saga_step& step, const component_image& target) override;
  std::vector<failed_item> read_back(const saga_step& step, const component_image& target) override;

  /// A device state as the image holds it, and back.
  static std::string record_name(device_id id);
  static result<std::vector<device_state>> decode(const component_image& image);

  // The same work in stages, for a caller that reads and writes the devices
  // itself, asynchronously (the saga's devices handler): the synchronous
  // methods above are these stages around their port's calls.

  /// Every device, to read for capture().
  std::vector<device_id> all_ids() const;
  /// capture() from what reading `all_ids()` gave.
  static result<component_image> image_of(const std::vector<device_state>& states,
                                          const device_errors& errors);

  /// One step's restore (apply) or check (read_back) in progress.
  struct step_job {
    std::map<device_id, device_state> states; ///< each device's state in the target
    std::vector<device_id> wanted;            ///< to read first
    std::vector<failed_item> failed;          ///< so far
  };
  /// The step's devices and their states in `target`, decoding only those
  /// records; items it cannot resolve are in `failed`, named.
  step_job start_step(const saga_step& step, const component_image& target) const;
  /// apply(), after reading `wanted`: the writes to make (a device already
  /// in its state is not written, one that could not be read not blindly).
  static std::vector<device_patch> patches_after_read(step_job& job,
                                                      const std::vector<device_state>& read,
                                                      const device_errors& errors);
  /// apply(), after the writes: what could not be put back.
  static std::vector<failed_item> after_write(step_job& job, const device_errors& errors);
  /// read_back(), after reading `wanted`: what is not in its state.
  static std::vector<failed_item> compare(step_job& job, const std::vector<device_state>& read,
                                          const device_errors& errors);

private:
  const device_map& map_;
  device_port& port_;
};

} // namespace dsmil
