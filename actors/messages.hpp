// Every message type the actors exchange, with its inspect() and its type id.
// Registering them (see make_actor_config()) lets any actor live on another node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "dsmil/device.hpp"
#include "runtime/config/node_config.hpp"

namespace dsmil {

/// Health of one device as its group supervisor sees it.
struct device_health {
  device_id id = 0;
  uint32_t restarts = 0; ///< restarts of its actor since the node started
  std::string breaker;   ///< closed, open, half-open
  uint32_t failures = 0; ///< consecutive driver failures
  bool given_up = false; ///< restart intensity exceeded: escalated, not restarted
};

/// A command from dsmilctl (or any client) to a node. `args` is a JSON object.
struct control_request {
  std::string command; ///< e.g. "device.set", "checkpoint.create", "rollback"
  std::string args;
};

/// The node's answer. `code` is a dsmil::errc; `body` is a JSON document.
struct control_reply {
  uint8_t code = 0;
  std::string message; ///< one line for the user when code != 0
  std::string body;
};

/// Progress of a rollback saga, sent to the client that asked for it while
/// the saga runs. `body` is a JSON object: saga, phase, component,
/// devices_done, devices_total.
struct rollback_progress {
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rollback_progress& x) {
  return f(caf::meta::type_name("rollback_progress"), x.body);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, device_state& x) {
  return f(caf::meta::type_name("device_state"), x.id, x.registers, x.config_blob, x.enabled,
           x.security_level, x.temperature_c, x.last_activity_ns);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, device_patch& x) {
  return f(caf::meta::type_name("device_patch"), x.id, x.register_index, x.register_value,
           x.set_blob, x.config_blob, x.enabled, x.security_level);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, fault_spec& x) {
  return f(caf::meta::type_name("fault_spec"), x.error_rate, x.latency_ms, x.offline,
           x.stuck_register, x.thermal_spike);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, device_health& x) {
  return f(caf::meta::type_name("device_health"), x.id, x.restarts, x.breaker, x.failures,
           x.given_up);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, control_request& x) {
  return f(caf::meta::type_name("control_request"), x.command, x.args);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, control_reply& x) {
  return f(caf::meta::type_name("control_reply"), x.code, x.message, x.body);
}

} // namespace dsmil

CAF_BEGIN_TYPE_ID_BLOCK(dsmil, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_state))
CAF_ADD_TYPE_ID(dsmil, (std::vector<dsmil::device_state>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_patch))
CAF_ADD_TYPE_ID(dsmil, (dsmil::fault_spec))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_health))
CAF_ADD_TYPE_ID(dsmil, (std::vector<dsmil::device_health>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::control_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::control_reply))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_progress))
CAF_END_TYPE_ID_BLOCK(dsmil)

namespace dsmil {

using read_atom = caf::atom_constant<caf::atom("read")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;       ///< the node went away
using ready_atom = caf::atom_constant<caf::atom("ready")>;     ///< start-up recovery is done
using preempt_atom = caf::atom_constant<caf::atom("preempt")>; ///< an emergency takes over

} // namespace dsmil
