#include "runtime/components/configuration_component.hpp"

#include "runtime/components/system_config_ops.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil {

namespace {
constexpr const char* record = "configuration";
}

component_image configuration_component::encode(const system_config& c) {
  component_image image;
  image.records.emplace(record, encode_config(c));
  return image;
}

result<system_config> configuration_component::decode(const component_image& image) {
  auto it = image.records.find(record);
  if (it == image.records.end())
    return make_error(errc::integrity_error, "the configuration record is missing");
  return decode_config(it->second);
}

result<component_image> configuration_component::capture() {
  return encode(get());
}

result<component_plan> configuration_component::plan(const component_image& now,
                                                     const component_image& target,
                                                     const plan_request& request) {
  auto n = decode(now);
  if (!n) return n.err();
  auto t = decode(target);
  if (!t) return t.err();
  component_plan out;
  out.differs = !n->same_restorable(*t);
  const bool restore = request.whole && (request.type != rollback_type::incremental || out.differs);
  if (restore) out.steps.push_back({name(), "configuration", {}});
  out.plan_detail = {{"configuration", restore}, {"configuration_differs", out.differs}};
  return out;
}

std::vector<failed_item> configuration_component::apply(const saga_step&,
                                                        const component_image& target) {
  auto t = decode(target);
  if (!t) return {{name(), t.err().message}};
  std::lock_guard<std::mutex> lock(mu_);
  restore_config(live_, *t);
  return {};
}

std::vector<failed_item> configuration_component::read_back(const saga_step&,
                                                            const component_image& target) {
  auto t = decode(target);
  if (!t) return {{name(), t.err().message}};
  if (!get().same_restorable(*t)) return {{name(), "differs after restore"}};
  return {};
}

system_config configuration_component::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

status configuration_component::set(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  return set_config_value(live_, key, value);
}

} // namespace dsmil
