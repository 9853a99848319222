// The node's control protocol: one request type per command, each naming
// its reply type, its command name (what dsmilctl, logs and the audit call
// it) and its kind (which lane of the node serves it). The node's typed
// actor interface, node_api (actors/node_api.hpp), is generated from
// `node_requests` below; `dsmilctl --json` prints the reply's fields
// (runtime/base/fields_json.hpp), so a reply's JSON shape is its type.
//
// Every reply comes as answer<Reply>: an error code and line, and the body
// when there is one (a failed verification still names what it checked).
//
// Device and checkpoint ids in requests are what the user typed ("0x8005",
// a checkpoint id prefix): the node resolves them and says what is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsmil/errors.hpp"
#include "dsmil/fields.hpp"
#include "dsmil/system_config.hpp"

namespace dsmil {

/// How the node serves a command. Reads change nothing and are answered
/// beside whatever else runs; levers are the simulator's test controls,
/// served like reads; long reads and changes are served one at a time,
/// and changes are refused while a rollback runs, naming it.
enum class command_kind : uint8_t { read, lever, long_read, change };

/// The reply to any request: `code` errc::none with a body, or an error
/// with its one line for the user and, for some commands, a body saying
/// what was found.
template <class T> struct answer {
  errc code = errc::none;
  std::string message;
  std::optional<T> body;
};

// -- replies ------------------------------------------------------------------------

struct node_summary {
  int64_t pid = 0;
  std::string listen; ///< HOST:PORT of the control endpoint
  std::string data_dir;
  std::string config; ///< where the configuration came from
  int64_t uptime_s = 0;
  std::string cpu;
};

struct devices_summary {
  uint64_t total = 0;
  std::string backend;
  int64_t quarantined = 0;
  int64_t critical = 0;
  int64_t breakers_not_closed = 0;
  uint64_t actor_restarts = 0;
  int64_t given_up = 0;
};

struct checkpoints_summary {
  uint64_t count = 0;
  nullable<std::string> latest;
  std::string store; ///< the store's directory
  uint64_t chunks = 0;
};

struct key_summary {
  std::string provider;
  std::string key_id;
};

/// A saga that could not put everything back, until a later one settles it.
struct compensation_view {
  std::string saga;
  nlohmann::json failed; ///< [{"id", "error"}] as its journal has them
};

/// A component's handler as status shows it; `error` alone when the handler
/// did not answer.
struct component_status {
  std::string name;
  bool optional = false;
  std::string breaker;
  uint32_t failures = 0;
  uint32_t restarts = 0;
  uint32_t in_flight = 0;
  uint64_t oldest_call_ms = 0;
  std::optional<std::string> error;
};

/// The rollback that runs now.
struct running_rollback {
  std::string id;
  std::string type;
  std::string target;
  std::string phase;
  bool emergency_waiting = false;
};

struct status_reply {
  node_summary node;
  devices_summary devices;
  checkpoints_summary checkpoints;
  key_summary keys;
  system_config configuration;
  nullable<uint64_t> store_free_bytes;
  uint64_t store_reserve_bytes = 0;
  nullable<compensation_view> compensation_incomplete;
  std::vector<component_status> components;
  std::vector<std::string> warnings;
  nullable<running_rollback> rollback;
};

/// One row of `device list`: the state fields when the device answered,
/// else `error`.
struct device_row {
  std::string id;
  std::string name;
  int64_t group = 0;
  bool quarantined = false;
  bool critical = false;
  std::optional<bool> enabled;
  std::optional<int64_t> security_level;
  std::optional<double> temperature_c;
  std::optional<std::string> error;
  std::string breaker;
  uint32_t restarts = 0;
};

struct device_list_reply {
  std::vector<device_row> devices;
};

struct device_health_view {
  std::string breaker = "unknown";
  uint32_t restarts = 0;
  uint32_t failures = 0;
  bool given_up = false;
};

struct device_faults {
  double error_rate = 0;
  uint32_t latency_ms = 0;
  bool offline = false;
  int32_t stuck_register = -1;
  bool thermal_spike = false;
};

/// `device show` and `device set`: one device as it is now.
struct device_reply {
  std::string id;
  std::string name;
  int64_t group = 0;
  std::string group_role;
  bool quarantined = false;
  bool critical = false;
  bool enabled = false;
  int64_t security_level = 0;
  double temperature_c = 0;
  nullable<std::string> last_activity;
  std::vector<uint32_t> registers;
  std::string config_blob; ///< hex
  std::string config_blob_sha256;
  device_health_view health;
  device_faults faults;
  std::optional<std::string> quarantine_reason;
  std::optional<std::string> critical_role;
};

struct device_fault_reply {
  std::string id;
  device_faults faults;
};

struct device_crash_reply {
  std::string id;
  bool crashed = false;
};

struct keys_reply {
  std::string provider;
  std::string scheme;
  std::string key_id;
  std::string pem; ///< path of the exported public key
  std::optional<std::string> tcti;
  std::optional<std::string> handle;
  std::optional<std::string> attestation_key_id;
  std::optional<std::string> attestation_pem;
  std::optional<uint64_t> counter;
  std::optional<std::string> private_key;           ///< software keys: its path
  std::optional<std::vector<std::string>> exported; ///< keys init: PEMs written now
};

/// A checkpoint as `checkpoint list` shows it.
struct checkpoint_view {
  std::string id;
  std::string name;
  std::string description;
  std::string type;
  std::string created_at;
  nullable<std::string> parent;
  uint32_t devices = 0;
  uint64_t logical_bytes = 0;
  uint64_t new_bytes = 0;
  std::string key_id;
  bool pinned = false;
  std::string provider;
};

struct checkpoint_list_reply {
  std::vector<checkpoint_view> checkpoints;
};

struct checkpoint_create_reply : checkpoint_view {
  double duration_ms = 0;
  std::vector<std::string> components;
  std::optional<std::vector<std::string>> warnings;
  std::optional<std::vector<std::string>> pruned; ///< automatic checkpoints: retention's work
  std::optional<std::string> prune_error;
};

struct device_image_view {
  std::string id;
  bool enabled = false;
  int64_t security_level = 0;
  std::vector<uint32_t> registers;
};

struct checkpoint_show_reply : checkpoint_view {
  system_config configuration;
  std::vector<device_image_view> device_states;
};

struct checkpoint_verify_reply {
  std::string id;
  bool valid = false;
  bool chain = false;
  std::optional<std::vector<std::string>> checks;
};

struct checkpoint_delete_reply {
  std::string id;
  bool deleted = false;
  std::optional<uint64_t> bytes_reclaimed;
  std::optional<std::string> gc_error; ///< the checkpoint is gone; the next gc finishes
};

struct checkpoint_pin_reply {
  std::string id;
  bool pinned = false;
};

struct damaged_chunk_view {
  std::string chunk;
  std::string pack;
  uint64_t offset = 0;
  std::string problem;
  std::vector<std::string> checkpoints;
};

struct store_check_reply {
  bool read_data = false;
  uint64_t packs = 0;
  uint64_t chunks = 0;
  uint64_t bytes_read = 0;
  std::vector<damaged_chunk_view> damaged;
  std::vector<std::string> damaged_checkpoints;
  std::vector<std::string> problems;
  bool clean = false;
};

struct store_gc_reply {
  uint64_t packs_removed = 0;
  uint64_t packs_rewritten = 0;
  uint64_t orphan_packs_removed = 0;
  uint64_t chunks_dropped = 0;
  uint64_t bytes_reclaimed = 0;
};

struct store_prune_reply {
  std::vector<std::string> pruned;
};

struct retention_reply {
  uint32_t keep_last = 0;
  uint32_t keep_hourly = 0;
  uint32_t keep_daily = 0;
  uint32_t keep_weekly = 0;
  uint32_t max_count = 0;
};

/// One rollback as its journal tells it. A saga whose journal has no begin
/// record has only id and outcome ("interrupted"); one whose journal
/// cannot be read has "unreadable" and the error.
struct saga_summary {
  std::string id;
  std::string outcome; ///< completed, failed, compensated, refused, interrupted, ...
  std::optional<std::string> type;
  std::optional<std::string> target;
  std::optional<std::string> pre_rollback; ///< the checkpoint taken before it changed anything
  std::optional<std::string> initiated_by;
  std::optional<std::string> reason;
  std::optional<int64_t> started_at; ///< Unix ns
  std::optional<uint64_t> devices_planned;
  std::optional<nlohmann::json> steps; ///< `rollback show` only: the planned steps
  std::optional<std::vector<std::string>> phases_completed;
  std::optional<std::vector<std::string>> steps_done;
  std::optional<bool> compensated;
  std::optional<nlohmann::json> compensation_failed; ///< [{"id", "error"}]
  std::optional<bool> recovered;                     ///< settled by a start-up
  std::optional<std::vector<std::string>> settled;   ///< put back later by the settler
  std::optional<std::string> failed_phase;
  std::optional<std::string> error;
  std::optional<nlohmann::json> failed; ///< [{"id", "error"}]
  std::optional<double> duration_ms;
};

struct rollback_history_reply {
  std::vector<saga_summary> rollbacks; ///< newest first
  uint64_t total = 0;
};

struct rollback_show_reply : saga_summary {
  nlohmann::json journal; ///< every record, oldest first, as the journal holds it
};

/// What a rollback did, or (a dry run) would do. Documents whose shape is
/// the components' (the plan, what each rolled back) are JSON.
struct rollback_reply {
  std::optional<std::string> saga; ///< its id; none for a dry run
  bool dry_run = false;
  bool success = false;
  std::optional<std::string> outcome; ///< completed, failed, compensated, preempted, refused
  std::optional<std::string> type;
  std::optional<std::string> checkpoint; ///< the target, resolved
  std::optional<std::string> undoes;     ///< rollback undo: the rollback it undoes
  std::optional<std::string> pre_rollback;
  std::vector<std::string> phases_completed;
  nullable<std::string> failed_phase;
  std::optional<nlohmann::json> plan; ///< per component: its steps and what differs
  std::optional<std::vector<std::string>> warnings;
  std::optional<nlohmann::json> estimate;    ///< {"duration_ms", "basis"}
  std::optional<nlohmann::json> rolled_back; ///< {"components": [...], name: [items]}
  std::optional<nlohmann::json> failed;      ///< [{"id", "error"}]
  std::optional<nlohmann::json> compensated; ///< {"steps", "ok", "failed"}
  std::optional<nlohmann::json> phase_ms;    ///< {phase: ms}
  std::optional<double> duration_ms;
  std::optional<std::string> journal_error; ///< its end record could not be written
  /// What components add (the devices: "skipped_quarantined").
  extra_fields details;
};

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
  std::string value;
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
  std::string reason;
  std::string initiated_by = "dsmilctl";
  bool dry_run = false;
  bool ack_critical = false; ///< allow changes to critical devices
  bool undo = false;
  bool progress = false; ///< send rollback_progress to the asking actor as it runs
};

#undef DSMIL_COMMAND

/// Every command, in the order `dsmilctl --help` has them.
using node_requests =
    std::tuple<status_request, device_list_request, device_show_request, device_set_request,
               device_fault_request, device_crash_request, config_show_request, config_set_request,
               checkpoint_create_request, checkpoint_list_request, checkpoint_show_request,
               checkpoint_verify_request, checkpoint_delete_request, checkpoint_pin_request,
               store_check_request, store_gc_request, store_prune_request, retention_request,
               keys_show_request, keys_init_request, rollback_history_request,
               rollback_show_request, rollback_request>;

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

template <class F, class T> void fields(F& f, answer<T>& x) {
  DSMIL_F(code), DSMIL_F(message), DSMIL_F(body);
}

template <class F> void fields(F& f, node_summary& x) {
  DSMIL_F(pid), DSMIL_F(listen), DSMIL_F(data_dir), DSMIL_F(config), DSMIL_F(uptime_s),
      DSMIL_F(cpu);
}
template <class F> void fields(F& f, devices_summary& x) {
  DSMIL_F(total), DSMIL_F(backend), DSMIL_F(quarantined), DSMIL_F(critical),
      DSMIL_F(breakers_not_closed), DSMIL_F(actor_restarts), DSMIL_F(given_up);
}
template <class F> void fields(F& f, checkpoints_summary& x) {
  DSMIL_F(count), DSMIL_F(latest), DSMIL_F(store), DSMIL_F(chunks);
}
template <class F> void fields(F& f, key_summary& x) {
  DSMIL_F(provider), DSMIL_F(key_id);
}
template <class F> void fields(F& f, compensation_view& x) {
  DSMIL_F(saga), DSMIL_F(failed);
}
template <class F> void fields(F& f, component_status& x) {
  DSMIL_F(name), DSMIL_F(optional), DSMIL_F(breaker), DSMIL_F(failures), DSMIL_F(restarts),
      DSMIL_F(in_flight), DSMIL_F(oldest_call_ms), DSMIL_F(error);
}
template <class F> void fields(F& f, running_rollback& x) {
  DSMIL_F(id), DSMIL_F(type), DSMIL_F(target), DSMIL_F(phase), DSMIL_F(emergency_waiting);
}
template <class F> void fields(F& f, status_reply& x) {
  DSMIL_F(node), DSMIL_F(devices), DSMIL_F(checkpoints), DSMIL_F(keys), DSMIL_F(configuration),
      DSMIL_F(store_free_bytes), DSMIL_F(store_reserve_bytes), DSMIL_F(compensation_incomplete),
      DSMIL_F(components), DSMIL_F(warnings), DSMIL_F(rollback);
}
template <class F> void fields(F& f, device_row& x) {
  DSMIL_F(id), DSMIL_F(name), DSMIL_F(group), DSMIL_F(quarantined), DSMIL_F(critical),
      DSMIL_F(enabled), DSMIL_F(security_level), DSMIL_F(temperature_c), DSMIL_F(error),
      DSMIL_F(breaker), DSMIL_F(restarts);
}
template <class F> void fields(F& f, device_list_reply& x) {
  DSMIL_F(devices);
}
template <class F> void fields(F& f, device_health_view& x) {
  DSMIL_F(breaker), DSMIL_F(restarts), DSMIL_F(failures), DSMIL_F(given_up);
}
template <class F> void fields(F& f, device_faults& x) {
  DSMIL_F(error_rate), DSMIL_F(latency_ms), DSMIL_F(offline), DSMIL_F(stuck_register),
      DSMIL_F(thermal_spike);
}
template <class F> void fields(F& f, device_reply& x) {
  DSMIL_F(id), DSMIL_F(name), DSMIL_F(group), DSMIL_F(group_role), DSMIL_F(quarantined),
      DSMIL_F(critical), DSMIL_F(enabled), DSMIL_F(security_level), DSMIL_F(temperature_c),
      DSMIL_F(last_activity), DSMIL_F(registers), DSMIL_F(config_blob), DSMIL_F(config_blob_sha256),
      DSMIL_F(health), DSMIL_F(faults), DSMIL_F(quarantine_reason), DSMIL_F(critical_role);
}
template <class F> void fields(F& f, device_fault_reply& x) {
  DSMIL_F(id), DSMIL_F(faults);
}
template <class F> void fields(F& f, device_crash_reply& x) {
  DSMIL_F(id), DSMIL_F(crashed);
}
template <class F> void fields(F& f, keys_reply& x) {
  DSMIL_F(provider), DSMIL_F(scheme), DSMIL_F(key_id), DSMIL_F(pem), DSMIL_F(tcti), DSMIL_F(handle),
      DSMIL_F(attestation_key_id), DSMIL_F(attestation_pem), DSMIL_F(counter), DSMIL_F(private_key),
      DSMIL_F(exported);
}
template <class F> void fields(F& f, checkpoint_view& x) {
  DSMIL_F(id), DSMIL_F(name), DSMIL_F(description), DSMIL_F(type), DSMIL_F(created_at),
      DSMIL_F(parent), DSMIL_F(devices), DSMIL_F(logical_bytes), DSMIL_F(new_bytes),
      DSMIL_F(key_id), DSMIL_F(pinned), DSMIL_F(provider);
}
template <class F> void fields(F& f, checkpoint_list_reply& x) {
  DSMIL_F(checkpoints);
}
template <class F> void fields(F& f, checkpoint_create_reply& x) {
  fields(f, static_cast<checkpoint_view&>(x));
  DSMIL_F(duration_ms), DSMIL_F(components), DSMIL_F(warnings), DSMIL_F(pruned),
      DSMIL_F(prune_error);
}
template <class F> void fields(F& f, device_image_view& x) {
  DSMIL_F(id), DSMIL_F(enabled), DSMIL_F(security_level), DSMIL_F(registers);
}
template <class F> void fields(F& f, checkpoint_show_reply& x) {
  fields(f, static_cast<checkpoint_view&>(x));
  DSMIL_F(configuration), DSMIL_F(device_states);
}
template <class F> void fields(F& f, checkpoint_verify_reply& x) {
  DSMIL_F(id), DSMIL_F(valid), DSMIL_F(chain), DSMIL_F(checks);
}
template <class F> void fields(F& f, checkpoint_delete_reply& x) {
  DSMIL_F(id), DSMIL_F(deleted), DSMIL_F(bytes_reclaimed), DSMIL_F(gc_error);
}
template <class F> void fields(F& f, checkpoint_pin_reply& x) {
  DSMIL_F(id), DSMIL_F(pinned);
}
template <class F> void fields(F& f, damaged_chunk_view& x) {
  DSMIL_F(chunk), DSMIL_F(pack), DSMIL_F(offset), DSMIL_F(problem), DSMIL_F(checkpoints);
}
template <class F> void fields(F& f, store_check_reply& x) {
  DSMIL_F(read_data), DSMIL_F(packs), DSMIL_F(chunks), DSMIL_F(bytes_read), DSMIL_F(damaged),
      DSMIL_F(damaged_checkpoints), DSMIL_F(problems), DSMIL_F(clean);
}
template <class F> void fields(F& f, store_gc_reply& x) {
  DSMIL_F(packs_removed), DSMIL_F(packs_rewritten), DSMIL_F(orphan_packs_removed),
      DSMIL_F(chunks_dropped), DSMIL_F(bytes_reclaimed);
}
template <class F> void fields(F& f, store_prune_reply& x) {
  DSMIL_F(pruned);
}
template <class F> void fields(F& f, retention_reply& x) {
  DSMIL_F(keep_last), DSMIL_F(keep_hourly), DSMIL_F(keep_daily), DSMIL_F(keep_weekly),
      DSMIL_F(max_count);
}

template <class F> void fields(F& f, saga_summary& x) {
  DSMIL_F(id), DSMIL_F(outcome), DSMIL_F(type), DSMIL_F(target), DSMIL_F(pre_rollback),
      DSMIL_F(initiated_by), DSMIL_F(reason), DSMIL_F(started_at), DSMIL_F(devices_planned),
      DSMIL_F(steps), DSMIL_F(phases_completed), DSMIL_F(steps_done), DSMIL_F(compensated),
      DSMIL_F(compensation_failed), DSMIL_F(recovered), DSMIL_F(settled), DSMIL_F(failed_phase),
      DSMIL_F(error), DSMIL_F(failed), DSMIL_F(duration_ms);
}
template <class F> void fields(F& f, rollback_history_reply& x) {
  DSMIL_F(rollbacks), DSMIL_F(total);
}
template <class F> void fields(F& f, rollback_reply& x) {
  DSMIL_F(saga), DSMIL_F(dry_run), DSMIL_F(success), DSMIL_F(outcome), DSMIL_F(type),
      DSMIL_F(checkpoint), DSMIL_F(undoes), DSMIL_F(pre_rollback), DSMIL_F(phases_completed),
      DSMIL_F(failed_phase), DSMIL_F(plan), DSMIL_F(warnings), DSMIL_F(estimate),
      DSMIL_F(rolled_back), DSMIL_F(failed), DSMIL_F(compensated), DSMIL_F(phase_ms),
      DSMIL_F(duration_ms), DSMIL_F(journal_error), DSMIL_F(details);
}
template <class F> void fields(F& f, rollback_show_reply& x) {
  fields(f, static_cast<saga_summary&>(x));
  DSMIL_F(journal);
}

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
      DSMIL_F(reason), DSMIL_F(initiated_by), DSMIL_F(dry_run), DSMIL_F(ack_critical),
      DSMIL_F(undo), DSMIL_F(progress);
}

#undef DSMIL_F

} // namespace dsmil
