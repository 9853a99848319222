// A component reached from more than one thread (a node's control actor and
// its saga): every call holds one mutex, so the component sees one call at a
// time, as component.hpp promises it.
#pragma once

#include <memory>
#include <mutex>

#include "runtime/components/component.hpp"

namespace dsmil {

class serialized_component final : public component {
public:
  explicit serialized_component(std::shared_ptr<component> c) : c_(std::move(c)) {}

  std::string name() const override { return c_->name(); }
  bool optional() const override { return c_->optional(); }
  result<component_image> capture() override {
    std::lock_guard<std::mutex> lock(mu_);
    return c_->capture();
  }
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    return c_->plan(now, target, request);
  }
  std::vector<failed_item> apply(const saga_step& step, const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    return c_->apply(step, target);
  }
  std::vector<failed_item> read_back(const saga_step& step,
                                     const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    return c_->read_back(step, target);
  }

private:
  std::shared_ptr<component> c_;
  std::mutex mu_;
};

} // namespace dsmil
