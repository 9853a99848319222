#include "runtime/components/security_component.hpp"
#include <algorithm>

namespace dsmil {

namespace {
constexpr const char* prefix = "pcr:";
constexpr const char* read_error = "error";
} // namespace

component_image security_component::encode(const pcr_list& pcrs) {
  component_image image;
  for (auto& [index, value] : pcrs)
    image.records.emplace(prefix + std::to_string(index), value);
  return image;
}

result<component_image> security_component::capture() {
  auto pcrs = read_pcrs_();
  if (!pcrs) {
    component_image image;
    image.records.emplace(read_error, pcrs.err().message);
    return image;
  }
  return encode(*pcrs);
}

result<component_plan> security_component::plan(const component_image& now,
                                                const component_image& target,
                                                const plan_request& request) {
  component_plan out;
  if (request.type == rollback_type::emergency || target.records.empty()) return out;
  if (auto e = now.records.find(read_error); e != now.records.end()) {
    out.warnings.push_back("PCRs could not be read to compare with the checkpoint's (" + e->second +
                           ")");
    return out;
  }
  if (now.records.empty()) return out; // no TPM today
  std::string differ;
  std::vector<std::pair<int, std::string>> changed;
  for (auto& [name, value] : target.records) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto it = now.records.find(name);
    if (it != now.records.end() && it->second != value)
      changed.emplace_back(std::stoi(name.substr(std::string(prefix).size())), name);
  }
  std::sort(changed.begin(), changed.end());
  for (auto& [index, name] : changed)
    differ += (differ.empty() ? "" : ", ") + std::to_string(index);
  out.differs = !changed.empty();
  if (out.differs)
    out.warnings.push_back("platform state differs from the checkpoint's: PCR " + differ +
                           " changed since it was taken");
  return out;
}

} // namespace dsmil
