// Every message type the actors exchange, with its inspect() and its type id.
// Registering them (see make_actor_config()) lets any actor live on another node.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "actors/inspect_fields.hpp"
#include "dsmil/control.hpp"
#include "dsmil/device.hpp"
#include "runtime/components/component.hpp"
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

/// Health of one component's handler (the devices have device_health).
struct component_health {
  std::string name;
  bool optional = false;
  std::string breaker;         ///< closed, open, half-open
  uint32_t failures = 0;       ///< consecutive failed calls
  uint32_t restarts = 0;       ///< of its worker, since the node started
  uint32_t in_flight = 0;      ///< calls asked and not answered yet
  uint64_t oldest_call_ms = 0; ///< how long the oldest of those has waited
};

/// An answer as its JSON: what a client makes of answer<T> to print it
/// (actors/node_client.hpp), and what a rollback saga answers dsmil.control
/// with. `code` is a dsmil::errc; `body` is a JSON document.
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

/// The control endpoint's handshake per request (actors/node/control_gate.hpp):
/// a client asks for a nonce, then sends its request signed over it.
struct challenge_request {};
/// A rollback with the identity that asked for it (the rollback history
/// names it): the endpoint's verified certificate CN, or what the
/// embedding host names itself. A remote client cannot send it.
struct rollback_by {
  std::string identity;
  rollback_request request;
};
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, rollback_by& x) {
  return f(caf::meta::type_name("rollback_by"), x.identity, x.request);
}
struct challenge {
  std::string nonce; ///< single use, valid 30 s
};
/// A command as a remote client sends it: the typed request encoded with
/// CAF's binary serializer, the client's certificate (DER) and its ECDSA
/// signature over nonce || SHA-256(command '\0' request).
struct signed_request {
  std::string command;
  std::string request;
  std::string cert;
  std::string nonce;
  std::string signature;
};
/// The gate's answer to a signed_request, with a fresh nonce for the next
/// request on this connection (one round trip per command after the first).
struct signed_reply {
  control_reply reply;
  std::string next_nonce; ///< empty when the node has none to give now
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, challenge_request&) {
  return f(caf::meta::type_name("challenge_request"));
}
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, signed_reply& x) {
  return f(caf::meta::type_name("signed_reply"), x.reply, x.next_nonce);
}
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, challenge& x) {
  return f(caf::meta::type_name("challenge"), x.nonce);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signed_request& x) {
  return f(caf::meta::type_name("signed_request"), x.command, x.request, x.cert, x.nonce,
           x.signature);
}

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

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, control_reply& x) {
  return f(caf::meta::type_name("control_reply"), x.code, x.message, x.body);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, component_health& x) {
  return f(caf::meta::type_name("component_health"), x.name, x.optional, x.breaker, x.failures,
           x.restarts, x.in_flight, x.oldest_call_ms);
}

// What a saga and a checkpoint say to a component's handler (see
// actors/node/component_handler.hpp).

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, saga_step& x) {
  return f(caf::meta::type_name("saga_step"), x.component, x.name, x.items);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, failed_item& x) {
  return f(caf::meta::type_name("failed_item"), x.id, x.error);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, stream_bytes& x) {
  std::string bytes = x.str(); // a copy only when sent to another process
  return f(caf::meta::type_name("stream_bytes"), bytes,
           caf::meta::load_callback([&]() -> caf::error {
             x = stream_bytes(std::move(bytes));
             return caf::none;
           }));
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, chunk_ref& x) {
  return f(caf::meta::type_name("chunk_ref"), x.id, x.size);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, stream_ref& x) {
  return f(caf::meta::type_name("stream_ref"), x.name, x.size, x.chunks);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, component_image& x) {
  std::string detail = x.detail.dump();
  return f(caf::meta::type_name("component_image"), x.records, x.streams, x.stored, x.warnings,
           detail, caf::meta::load_callback([&]() -> caf::error {
             x.detail = nlohmann::json::parse(detail, nullptr, false);
             return caf::none;
           }));
}

/// A component image passed between actors (capture, plan, apply, read
/// back) by reference: an agent host's state (tens of MiB) is not copied at
/// every hop. Serialized as the image itself.
struct image_ref {
  std::shared_ptr<component_image> image;
  static image_ref of(component_image img) {
    return {std::make_shared<component_image>(std::move(img))};
  }
  const component_image& operator*() const { return *image; }
  /// The image, moved out when this is its only reference.
  component_image take() && {
    if (image.use_count() == 1) return std::move(*image);
    return *image;
  }
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, image_ref& x) {
  if (!x.image) x.image = std::make_shared<component_image>();
  return f(caf::meta::type_name("image_ref"), *x.image);
}

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, plan_request& x) {
  auto type = static_cast<uint8_t>(x.type);
  return f(caf::meta::type_name("plan_request"), type, x.whole, x.items,
           caf::meta::load_callback([&]() -> caf::error {
             x.type = static_cast<rollback_type>(type);
             return caf::none;
           }));
}

/// The JSON details travel as their text.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, component_plan& x) {
  std::string plan_detail = x.plan_detail.dump(), reply_detail = x.reply_detail.dump();
  return f(caf::meta::type_name("component_plan"), x.steps, x.differs, x.warnings, x.needs_ack,
           plan_detail, reply_detail, caf::meta::load_callback([&]() -> caf::error {
             x.plan_detail = nlohmann::json::parse(plan_detail, nullptr, false);
             x.reply_detail = nlohmann::json::parse(reply_detail, nullptr, false);
             return caf::none;
           }));
}

} // namespace dsmil

CAF_BEGIN_TYPE_ID_BLOCK(dsmil, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_state))
CAF_ADD_TYPE_ID(dsmil, (std::vector<dsmil::device_state>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_patch))
CAF_ADD_TYPE_ID(dsmil, (dsmil::fault_spec))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_health))
CAF_ADD_TYPE_ID(dsmil, (std::vector<dsmil::device_health>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::control_reply))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_progress))
CAF_ADD_TYPE_ID(dsmil, (dsmil::saga_step))
CAF_ADD_TYPE_ID(dsmil, (dsmil::failed_item))
CAF_ADD_TYPE_ID(dsmil, (std::vector<dsmil::failed_item>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::component_image))
CAF_ADD_TYPE_ID(dsmil, (dsmil::image_ref))
CAF_ADD_TYPE_ID(dsmil, (dsmil::plan_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::component_plan))
CAF_ADD_TYPE_ID(dsmil, (dsmil::component_health))
// The typed commands (dsmil/control.hpp) and their answers.
CAF_ADD_TYPE_ID(dsmil, (dsmil::status_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_list_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_set_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_fault_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::device_crash_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::config_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::config_set_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::agent_list_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::agent_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::agent_load_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_create_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_list_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_verify_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_delete_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::checkpoint_pin_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::store_check_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::store_gc_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::store_prune_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::retention_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::keys_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::keys_init_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_history_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_show_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_cancel_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::status_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::device_list_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::device_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::agent_list_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::agent_view>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::agent_load_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::device_fault_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::device_crash_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::system_config>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_create_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_list_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_show_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_verify_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_delete_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::checkpoint_pin_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::store_check_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::store_gc_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::store_prune_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::retention_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::keys_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::rollback_history_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::rollback_show_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::rollback_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::rollback_cancel_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::tls_issue_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::tls_revoke_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::tls_list_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::audit_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::audit_verify_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::tls_issue_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::tls_revoke_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::tls_list_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::audit_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::answer<dsmil::audit_verify_reply>))
CAF_ADD_TYPE_ID(dsmil, (dsmil::challenge_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::challenge))
CAF_ADD_TYPE_ID(dsmil, (dsmil::signed_request))
CAF_ADD_TYPE_ID(dsmil, (dsmil::rollback_by))
CAF_ADD_TYPE_ID(dsmil, (dsmil::signed_reply))
CAF_END_TYPE_ID_BLOCK(dsmil)

namespace dsmil {

using read_atom = caf::atom_constant<caf::atom("read")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;   ///< the node went away
using ready_atom = caf::atom_constant<caf::atom("ready")>; ///< start-up recovery is done
using capture_atom = caf::atom_constant<caf::atom("capture")>;
using plan_atom = caf::atom_constant<caf::atom("plan")>;
using apply_atom = caf::atom_constant<caf::atom("apply")>;
using read_back_atom = caf::atom_constant<caf::atom("readback")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;       ///< a rollback starts
using release_atom = caf::atom_constant<caf::atom("release")>; ///< a rollback ended
using preempt_atom = caf::atom_constant<caf::atom("preempt")>; ///< an emergency takes over

} // namespace dsmil
