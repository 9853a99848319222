// The configuration component: the node's system configuration (agent
// concurrency limit, thermal threshold, config blob; the AVX-512 flag is
// detected, never restored). It owns the live configuration: `config show`
// and `config set` go through it too.
#pragma once

#include <mutex>

#include "dsmil/system_config.hpp"
#include "runtime/components/component.hpp"

namespace dsmil {

class configuration_component final : public component {
public:
  explicit configuration_component(system_config initial) : live_(std::move(initial)) {}

  std::string name() const override { return "configuration"; }
  result<component_image> capture() override;
  /// One step, unless an incremental rollback finds nothing different or a
  /// selective one does not name the component.
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override;
  std::vector<failed_item> apply(const saga_step& step, const component_image& target) override;
  std::vector<failed_item> read_back(const saga_step& step, const component_image& target) override;

  /// The live configuration. Thread-safe.
  system_config get() const;
  /// Sets one key (see set_config_value). Thread-safe; on error nothing changes.
  status set(const std::string& key, const std::string& value);

  /// The configuration an image holds.
  static result<system_config> decode(const component_image& image);
  static component_image encode(const system_config& c);

private:
  mutable std::mutex mu_;
  system_config live_;
};

} // namespace dsmil
