// The security component: the platform's PCR values. A checkpoint signed in
// a TPM holds them with a quote (the store takes both while signing); a
// rollback restores nothing here and warns when the platform has changed
// since the checkpoint (another boot chain, another kernel).
#pragma once

#include <functional>
#include <utility>

#include "runtime/components/component.hpp"

namespace dsmil {

class security_component final : public component {
public:
  using pcr_list = std::vector<std::pair<int, std::string>>;
  /// `read_pcrs` reads the PCRs today (empty: no TPM), serialised with the
  /// store's other uses of the key by whoever provides it.
  explicit security_component(std::function<result<pcr_list>()> read_pcrs)
      : read_pcrs_(std::move(read_pcrs)) {}

  std::string name() const override { return "security"; }
  /// The PCRs today; an image without records when there is no TPM. A PCR
  /// read that fails is not a failed capture: the image holds why (record
  /// "error"), and the plan warns.
  result<component_image> capture() override;
  /// No steps. Warns about every PCR that differs from the checkpoint's
  /// (not for an emergency rollback, which skips what it can).
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override;
  std::vector<failed_item> apply(const saga_step&, const component_image&) override { return {}; }
  std::vector<failed_item> read_back(const saga_step&, const component_image&) override {
    return {};
  }

  static component_image encode(const pcr_list& pcrs);

private:
  std::function<result<pcr_list>()> read_pcrs_;
};

} // namespace dsmil
