// The node's control protocol: one request type per command, each naming
// its reply type, its command name (what dsmilctl, logs and the audit call
// it) and its kind (which lane of the node serves it). The node's typed
// actor interface, node_api (actors/node_api.hpp), is generated from
// `node_requests` below; `dsmilctl --json` prints the reply's fields
// (runtime/base/fields_json.hpp), so a reply's JSON shape is its type.
//
// Every reply comes as answer<Reply> (dsmil/control_replies.hpp): an error
// code and line, and the body when there is one (a failed verification
// still names what it checked).
//
// Device and checkpoint ids in requests are what the user typed ("0x8005",
// a checkpoint id prefix): the node resolves them and says what is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "dsmil/access_replies.hpp"
#include "dsmil/control_replies.hpp"
#include "dsmil/fields.hpp"

namespace dsmil {

/// How the node serves a command. Reads change nothing and are answered
/// beside whatever else runs; levers are the simulator's test controls,
/// served like reads; long reads and changes are served one at a time,
/// and changes are refused while a rollback runs, naming it.
enum class command_kind : uint8_t { read, lever, long_read, change };

// -- requests -----------------------------------------------------------------------

#define DSMIL_COMMAND(name_, kind_, reply_)                                                        \
  static constexpr const char* command = name_;                                                    \
  static constexpr command_kind kind = command_kind::kind_;                                        \
  using reply = reply_

struct status_request {
  DSMIL_COMMAND("status", read, status_reply);
};

struct device_list_request {
  DSMIL_COMMAND("device.list", read, device_list_reply);
};

struct device_show_request {
  DSMIL_COMMAND("device.show", read, device_reply);
  std::string id;
};

/// Only what is given is written; register and value go together.
struct device_set_request {
  DSMIL_COMMAND("device.set", change, device_reply);
  std::string id;
  std::optional<int64_t> register_index;
  std::optional<int64_t> value;
  std::optional<bool> enabled;
  std::optional<int64_t> security_level;
};

/// Faults of a simulated device: `clear` first, then what is given.
struct device_fault_request {
  DSMIL_COMMAND("device.fault", lever, device_fault_reply);
  std::string id;
  bool clear = false;
  std::optional<double> error_rate;
  std::optional<int64_t> latency_ms;
  std::optional<bool> offline;
  std::optional<int64_t> stuck_register;
  std::optional<bool> thermal_spike;
};

struct device_crash_request {
  DSMIL_COMMAND("device.crash", lever, device_crash_reply);
  std::string id;
};

struct config_show_request {
  DSMIL_COMMAND("config.show", read, system_config);
};

struct config_set_request {
  DSMIL_COMMAND("config.set", change, system_config);
  std::string key;
  std::optional<std::string> value; ///< required; may be empty (config_data)
};

struct agent_list_request {
  DSMIL_COMMAND("agent.list", read, agent_list_reply);
};

struct agent_show_request {
  DSMIL_COMMAND("agent.show", read, agent_view);
  std::string id;
};

/// The reference host's load (backend "sim"): tasks per second over all
/// its agents, 0 stopping the work; without a value, only shows it.
struct agent_load_request {
  DSMIL_COMMAND("agent.load", lever, agent_load_reply);
  std::optional<int64_t> tasks_per_second;
};

struct checkpoint_create_request {
  DSMIL_COMMAND("checkpoint.create", change, checkpoint_create_reply);
  std::string name;
  std::string description;
  std::string type = "manual"; ///< manual, automatic or emergency
};

struct checkpoint_list_request {
  DSMIL_COMMAND("checkpoint.list", read, checkpoint_list_reply);
};

struct checkpoint_show_request {
  DSMIL_COMMAND("checkpoint.show", read, checkpoint_show_reply);
  std::string id;
};

struct checkpoint_verify_request {
  DSMIL_COMMAND("checkpoint.verify", long_read, checkpoint_verify_reply);
  std::string id;
  bool chain = false; ///< every parent to the root
  bool quick = false; ///< signatures, roots and indexes only
};

struct checkpoint_delete_request {
  DSMIL_COMMAND("checkpoint.delete", change, checkpoint_delete_reply);
  std::string id;
};

struct checkpoint_pin_request {
  DSMIL_COMMAND("checkpoint.pin", change, checkpoint_pin_reply);
  std::string id;
  bool pin = true; ///< false unpins
};

struct store_check_request {
  DSMIL_COMMAND("store.check", long_read, store_check_reply);
  bool read_data = false;
};

struct store_gc_request {
  DSMIL_COMMAND("store.gc", change, store_gc_reply);
};

struct store_prune_request {
  DSMIL_COMMAND("store.prune", change, store_prune_reply);
};

/// Shows the policy; with a key, changes that rule first (a change, then).
struct retention_request {
  DSMIL_COMMAND("retention", change, retention_reply);
  std::string key;
  std::string value;
};

struct keys_show_request {
  DSMIL_COMMAND("keys.show", read, keys_reply);
};

struct keys_init_request {
  DSMIL_COMMAND("keys.init", change, keys_reply);
};

struct rollback_history_request {
  DSMIL_COMMAND("rollback.history", read, rollback_history_reply);
  int64_t limit = 50; ///< the newest this many
};

struct rollback_show_request {
  DSMIL_COMMAND("rollback.show", read, rollback_show_reply);
  std::string id; ///< or a unique prefix
};

/// Rolls back to `id` (or, `undo`, to the state before the newest
/// completed rollback). A dry run plans and changes nothing; anything else
/// runs as a saga, one at a time (an emergency pre-empts the one running).
struct rollback_request {
  DSMIL_COMMAND("rollback", change, rollback_reply);
  std::string id;   ///< checkpoint id or unique prefix
  std::string type; ///< full, incremental, selective, emergency; empty: from the selection
  std::optional<std::vector<std::string>> components;
  std::optional<std::vector<std::string>> devices; ///< device ids as typed
  std::optional<std::vector<int64_t>> groups;
  std::optional<std::vector<std::string>> agents; ///< agent ids (the agents component)
  std::string reason;
  bool dry_run = false;
  bool ack_critical = false; ///< allow changes to critical devices
  bool undo = false;
  bool progress = false; ///< send rollback_progress to the asking actor as it runs
};

/// Stops the running rollback: it compensates (outcome "preempted") and
/// its caller gets that answer. Served beside the saga, as a lever is.
struct rollback_cancel_request {
  DSMIL_COMMAND("rollback.cancel", lever, rollback_cancel_reply);
};

/// A client certificate signed by the node's CA for `public_key` (the
/// client keeps its private key). Credentials are issued and revoked
/// beside a running rollback (served as a lever is): revoking one must not
/// wait for it.
struct tls_issue_request {
  DSMIL_COMMAND("tls.issue", lever, tls_issue_reply);
  std::string name;       ///< the certificate's CN
  std::string role;       ///< viewer, operator or admin
  std::string public_key; ///< PEM
  int64_t days = 365;
};

/// Every certificate issued to `name` is refused from its next request on.
struct tls_revoke_request {
  DSMIL_COMMAND("tls.revoke", lever, tls_revoke_reply);
  std::string name;
};

struct tls_list_request {
  DSMIL_COMMAND("tls.list", read, tls_list_reply);
};

struct audit_request {
  DSMIL_COMMAND("audit", read, audit_reply);
  std::string since; ///< RFC 3339 UTC (or a prefix, e.g. 2026-12-03); empty: all
  int64_t limit = 0; ///< the newest this many; 0: all
};

struct audit_verify_request {
  DSMIL_COMMAND("audit.verify", read, audit_verify_reply);
};

#undef DSMIL_COMMAND

/// Every command, in the order `dsmilctl --help` has them.
using node_requests =
    std::tuple<status_request, device_list_request, device_show_request, device_set_request,
               device_fault_request, device_crash_request, config_show_request, config_set_request,
               agent_list_request, agent_show_request, agent_load_request,
               checkpoint_create_request, checkpoint_list_request, checkpoint_show_request,
               checkpoint_verify_request, checkpoint_delete_request, checkpoint_pin_request,
               store_check_request, store_gc_request, store_prune_request, retention_request,
               keys_show_request, keys_init_request, rollback_history_request,
               rollback_show_request, rollback_request, rollback_cancel_request, tls_issue_request,
               tls_revoke_request, tls_list_request, audit_request, audit_verify_request>;

/// True when serving `r` changes something (and so waits for no rollback).
template <class R> bool changes_state(const R&) {
  return R::kind == command_kind::change;
}
inline bool changes_state(const retention_request& r) {
  return !r.key.empty();
}
inline bool changes_state(const rollback_request& r) {
  return !r.dry_run;
}

/// Calls `f(R{})` for the request type whose command is `name`; false when
/// none is.
template <class F> bool with_request_type(const std::string& name, F&& f) {
  bool found = false;
  std::apply(
      [&](auto... rs) {
        ((!found && name == decltype(rs)::command ? (found = true, f(rs), 0) : 0), ...);
      },
      node_requests{});
  return found;
}

// -- fields -------------------------------------------------------------------------

#define DSMIL_F(m) f(#m, x.m)

template <class F> void fields(F&, status_request&) {}
template <class F> void fields(F&, device_list_request&) {}
template <class F> void fields(F& f, device_show_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F& f, device_set_request& x) {
  DSMIL_F(id);
  f("register", x.register_index);
  DSMIL_F(value), DSMIL_F(enabled), DSMIL_F(security_level);
}
template <class F> void fields(F& f, device_fault_request& x) {
  DSMIL_F(id), DSMIL_F(clear), DSMIL_F(error_rate), DSMIL_F(latency_ms), DSMIL_F(offline),
      DSMIL_F(stuck_register), DSMIL_F(thermal_spike);
}
template <class F> void fields(F& f, device_crash_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F&, config_show_request&) {}
template <class F> void fields(F& f, config_set_request& x) {
  DSMIL_F(key), DSMIL_F(value);
}
template <class F> void fields(F&, agent_list_request&) {}
template <class F> void fields(F& f, agent_show_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F& f, agent_load_request& x) {
  DSMIL_F(tasks_per_second);
}
template <class F> void fields(F& f, checkpoint_create_request& x) {
  DSMIL_F(name), DSMIL_F(description), DSMIL_F(type);
}
template <class F> void fields(F&, checkpoint_list_request&) {}
template <class F> void fields(F& f, checkpoint_show_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F& f, checkpoint_verify_request& x) {
  DSMIL_F(id), DSMIL_F(chain), DSMIL_F(quick);
}
template <class F> void fields(F& f, checkpoint_delete_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F& f, checkpoint_pin_request& x) {
  DSMIL_F(id), DSMIL_F(pin);
}
template <class F> void fields(F& f, store_check_request& x) {
  DSMIL_F(read_data);
}
template <class F> void fields(F&, store_gc_request&) {}
template <class F> void fields(F&, store_prune_request&) {}
template <class F> void fields(F& f, retention_request& x) {
  DSMIL_F(key), DSMIL_F(value);
}
template <class F> void fields(F&, keys_show_request&) {}
template <class F> void fields(F&, keys_init_request&) {}
template <class F> void fields(F& f, rollback_history_request& x) {
  DSMIL_F(limit);
}
template <class F> void fields(F& f, rollback_show_request& x) {
  DSMIL_F(id);
}
template <class F> void fields(F& f, rollback_request& x) {
  DSMIL_F(id), DSMIL_F(type), DSMIL_F(components), DSMIL_F(devices), DSMIL_F(groups),
      DSMIL_F(agents), DSMIL_F(reason), DSMIL_F(dry_run), DSMIL_F(ack_critical), DSMIL_F(undo),
      DSMIL_F(progress);
}

template <class F> void fields(F&, rollback_cancel_request&) {}
template <class F> void fields(F& f, tls_issue_request& x) {
  DSMIL_F(name), DSMIL_F(role), DSMIL_F(public_key), DSMIL_F(days);
}
template <class F> void fields(F& f, tls_revoke_request& x) {
  DSMIL_F(name);
}
template <class F> void fields(F&, tls_list_request&) {}
template <class F> void fields(F& f, audit_request& x) {
  DSMIL_F(since), DSMIL_F(limit);
}
template <class F> void fields(F&, audit_verify_request&) {}

#undef DSMIL_F

} // namespace dsmil
