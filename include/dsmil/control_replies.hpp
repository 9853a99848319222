// The replies of the node's commands (dsmil/control.hpp has the requests):
// each a plain struct whose fields() list its members once, for CAF's
// inspect() and for the JSON `dsmilctl --json` prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsmil/agent_replies.hpp"
#include "dsmil/database_replies.hpp"

#include "dsmil/errors.hpp"
#include "dsmil/fields.hpp"
#include "dsmil/system_config.hpp"

namespace dsmil {

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
  std::string listen; ///< HOST:PORT of the control endpoint; empty when it listens nowhere
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
  /// What capturing saw, by component, when a component says (the agents:
  /// count, snapshot_ms, max_pause_ms: the longest pause one agent saw).
  std::optional<nlohmann::json> capture;
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
  std::optional<std::vector<agent_image_view>> agents; ///< when it holds the agents component
  std::optional<database_image_view> database;         ///< when it holds the database component
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

struct rollback_cancel_reply {
  std::string saga; ///< the rollback told to stop
  std::string phase;
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
      DSMIL_F(prune_error), DSMIL_F(capture);
}
template <class F> void fields(F& f, device_image_view& x) {
  DSMIL_F(id), DSMIL_F(enabled), DSMIL_F(security_level), DSMIL_F(registers);
}
template <class F> void fields(F& f, checkpoint_show_reply& x) {
  fields(f, static_cast<checkpoint_view&>(x));
  DSMIL_F(configuration), DSMIL_F(device_states), DSMIL_F(agents), DSMIL_F(database);
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
template <class F> void fields(F& f, rollback_cancel_reply& x) {
  DSMIL_F(saga), DSMIL_F(phase);
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

#undef DSMIL_F

} // namespace dsmil
