#include "dsmil/errors.hpp"

namespace dsmil {

const char* to_string(errc code) noexcept {
  switch (code) {
  case errc::none:
    return "none";
  case errc::invalid_argument:
    return "invalid_argument";
  case errc::config_error:
    return "config_error";
  case errc::no_such_device:
    return "no_such_device";
  case errc::quarantined:
    return "quarantined";
  case errc::permission_denied:
    return "permission_denied";
  case errc::device_offline:
    return "device_offline";
  case errc::driver_error:
    return "driver_error";
  case errc::circuit_open:
    return "circuit_open";
  case errc::not_found:
    return "not_found";
  case errc::integrity_error:
    return "integrity_error";
  case errc::io_error:
    return "io_error";
  case errc::critical_unacknowledged:
    return "critical_unacknowledged";
  case errc::rollback_failed:
    return "rollback_failed";
  case errc::busy:
    return "busy";
  case errc::timeout:
    return "timeout";
  case errc::unavailable:
    return "unavailable";
  case errc::internal:
    return "internal";
  case errc::no_space:
    return "no_space";
  case errc::database_unavailable:
    return "database_unavailable";
  }
  return "unknown";
}

int exit_code(errc code) noexcept {
  switch (code) {
  case errc::none:
    return 0;
  case errc::invalid_argument:
  case errc::config_error:
  case errc::no_such_device:
    return 2;
  case errc::not_found:
    return 3;
  case errc::quarantined:
  case errc::permission_denied:
  case errc::critical_unacknowledged:
  case errc::busy:
    return 4;
  case errc::integrity_error:
    return 5;
  case errc::unavailable:
    return 6;
  case errc::device_offline:
  case errc::driver_error:
  case errc::circuit_open:
  case errc::rollback_failed:
  case errc::database_unavailable:
    return 7;
  default:
    return 1;
  }
}

} // namespace dsmil
