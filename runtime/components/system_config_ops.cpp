#include "runtime/components/system_config_ops.hpp"

#include <cerrno>
#include <cstdlib>

namespace dsmil {

namespace {

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && end == s.c_str() + s.size();
}

} // namespace

status set_config_value(system_config& cfg, const std::string& key, const std::string& value) {
  const std::string keys =
      "; settable keys: agent_concurrency_limit, thermal_threshold_c, config_data";
  system_config next = cfg;
  if (key == "agent_concurrency_limit") {
    double v;
    if (!parse_number(value, v) || v != static_cast<double>(static_cast<long>(v)) || v < 1 ||
        v > 100000)
      return make_error(errc::invalid_argument,
                        "agent_concurrency_limit must be a whole number 1-100000, got '" + value +
                            "'");
    next.agent_concurrency_limit = static_cast<uint32_t>(v);
  } else if (key == "thermal_threshold_c") {
    double v;
    if (!parse_number(value, v) || v < 0 || v > 150)
      return make_error(errc::invalid_argument,
                        "thermal_threshold_c must be a number 0-150 (Celsius), got '" + value +
                            "'");
    next.thermal_threshold_c = v;
  } else if (key == "config_data") {
    next.config_data = value;
  } else if (key == "avx512_present") {
    return make_error(errc::invalid_argument,
                      "avx512_present is detected from the CPU and cannot be set");
  } else if (key == "config_version") {
    return make_error(errc::invalid_argument,
                      "config_version is bumped by every change and cannot be set" + keys);
  } else {
    return make_error(errc::invalid_argument, "unknown configuration key '" + key + "'" + keys);
  }
  ++next.config_version;
  cfg = std::move(next);
  return {};
}

void restore_config(system_config& cfg, const system_config& target) {
  bool avx = cfg.avx512_present;
  cfg = target;
  cfg.avx512_present = avx;
}

} // namespace dsmil
