// Error codes of dsmil-recovery, shared by the library, the node and the CLI.
#pragma once

#include <cstdint>
#include <string>

namespace dsmil {

/// Every failure a caller can see. Values are stable: they cross the wire
/// between nodes and map onto `dsmilctl` exit codes (see exit_code()).
enum class errc : uint8_t {
  none = 0,
  invalid_argument,        ///< malformed input from the user
  config_error,            ///< a configuration file is invalid
  no_such_device,          ///< id outside the device map (e.g. 0x800C)
  quarantined,             ///< write to a quarantined device: refused below every caller
  permission_denied,       ///< other refused operations (thermal limit, read-only key)
  device_offline,          ///< the device does not answer
  driver_error,            ///< transient driver failure (retried)
  circuit_open,            ///< the device's breaker is open: failing fast
  not_found,               ///< unknown checkpoint id or file
  integrity_error,         ///< signature, hash or CRC mismatch
  io_error,                ///< a file operation failed
  critical_unacknowledged, ///< rollback changes a critical device without --ack-critical
  rollback_failed,         ///< a rollback did not reach its target
  busy,                    ///< another operation holds the resource
  timeout,                 ///< an operation ran past its deadline
  unavailable,             ///< a node or actor is not reachable
  internal,                ///< a bug: please report
  no_space,                ///< the file system is full (ENOSPC, EDQUOT): free space and retry
  database_unavailable,    ///< the database server is down, unreachable or refuses the session
};

/// Short stable name, e.g. "no_such_device".
const char* to_string(errc code) noexcept;

/// Process exit code for a failure of this kind. 0 only for errc::none.
/// 2 usage/bad input, 3 not found, 4 refused (quarantine, permission, critical),
/// 5 integrity, 6 node unreachable, 7 device or database failure, 1 anything else.
int exit_code(errc code) noexcept;

/// A failure: what kind and one line saying what is wrong and what to do.
struct error {
  errc code = errc::none;
  std::string message;

  explicit operator bool() const noexcept { return code != errc::none; }
};

} // namespace dsmil
