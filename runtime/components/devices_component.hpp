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

private:
  /// The step's devices and their states in `target`, decoding only those
  /// records; items it cannot resolve go to `failed`, named.
  std::map<device_id, device_state> step_states(const saga_step& step,
                                                const component_image& target,
                                                std::vector<failed_item>& failed) const;

  const device_map& map_;
  device_port& port_;
};

} // namespace dsmil
