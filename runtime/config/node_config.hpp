// node_config: the settings of one node, read from dsmil.toml.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dsmil/device.hpp"
#include "runtime/devices/circuit_breaker.hpp"
#include "runtime/devices/device_map.hpp"
#include "runtime/devices/fault_spec.hpp"
#include "runtime/keys/key_settings.hpp"
#include "runtime/saga/saga_types.hpp"
#include "runtime/store/retention.hpp"
#include "dsmil/result.hpp"

namespace dsmil {
class env;
}

namespace dsmil {

struct supervision_config {
  uint32_t max_restarts = 5;
  uint32_t window_ms = 10000;
};

/// Initial values of the `configuration` component.
struct system_config_defaults {
  uint32_t config_version = 1;
  uint32_t agent_concurrency_limit = 80;
  double thermal_threshold_c = 85.0;
  std::string config_data;
};

/// The agents component ([agents]).
struct agents_config {
  std::string backend = "none"; ///< "none", or "sim": the reference host (actors/agents/)
  uint32_t stop_timeout_ms = 30000;
  uint32_t count = 80;
  uint32_t state_kib = 256;
  uint32_t tasks_per_second = 4000;
  std::string state_dir = "agents.sim"; ///< relative to data_dir; empty: memory only
  uint32_t chunk_kib = 16; ///< average chunk of an agent's state in the store; a power of two
};

/// The database component ([database]); none without a conninfo.
struct database_config {
  std::string conninfo;            ///< libpq connection string; a password in it is refused
  std::string passfile;            ///< libpq password file (else PGPASSFILE, ~/.pgpass)
  std::vector<std::string> tables; ///< empty: every user table
  bool optional = false;
  uint32_t failure_threshold = 3; ///< failed calls before its breaker opens
  uint32_t chunk_kib = 4;         ///< average chunk of a table's rows; a power of two
};

/// Whether a libpq connection string holds a password (key=value or URI
/// form), told without libpq: the configuration refuses one at load.
bool conninfo_has_password(const std::string& conninfo);

/// [tls] ca_file, cert_file, key_file, crl_file (paths as given).
struct tls_config {
  std::string ca_file, cert_file, key_file, crl_file;
  bool own_pki() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

struct node_config {
  std::string source; ///< file the config came from, or "embedded dsmil.toml"
  std::string data_dir = "data";
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 7411;
  std::string log_level = "info";
  std::string backend = "sim"; ///< "sim": the only driver so far
  uint64_t seed = 5450;
  /// The simulator's device state file, relative to data_dir; empty: memory only.
  std::string sim_state_file = "devices.sim";
  std::map<device_id, fault_spec> faults;
  breaker_config breaker;
  retry_config retry;
  supervision_config supervision;
  double thermal_warn_c = 85.0;
  double thermal_critical_c = 100.0;
  system_config_defaults configuration;
  agents_config agents;
  database_config database;
  key_provider_kind key_provider = key_provider_kind::software;
  std::string key_tcti = "device:/dev/tpmrm0";
  std::string key_passphrase_file; ///< software: wraps an encrypted store's data key
  tpm_failure_policy key_on_tpm_failure = tpm_failure_policy::fail;
  std::vector<int> key_seal_pcrs;   ///< tpm: PCR policy of the sealed data key; empty: none
  uint32_t key_handle = 0x81010001; ///< persistent handle of the TPM signing key
  std::vector<int> key_pcrs = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                               12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  /// [tls]: an operator's own PKI for the control endpoint; all empty:
  /// the node's own CA under <data_dir>/tls (made on first start).
  tls_config tls;
  uint32_t automatic_interval_s = 0;
  uint32_t rollback_step_timeout_ms = 10000; ///< one saga step (a group, the configuration)
  uint32_t rollback_timeout_ms = 30000;      ///< a whole saga
  uint32_t rollback_compensation_step_timeout_ms = 30000; ///< putting one step back
  interrupted_policy rollback_on_interrupted = interrupted_policy::compensate;
  /// One call to a component's handler (a capture for a checkpoint, a plan)
  /// when no saga deadline is shorter.
  uint32_t component_call_timeout_ms = 60000;
  retention_policy retention;
  bool store_encrypt = false;
  int store_deflate_level = 1;
  uint32_t chunk_min_kib = 16, chunk_avg_kib = 64, chunk_max_kib = 256;
  uint32_t pack_target_mib = 16;
  uint32_t store_threads = 0;
  /// Room held back for a rollback's safety net, KiB; 0 = automatic
  /// (automatic_reserve_bytes). A node setting: not in store.toml.
  uint32_t store_reserve_kib = 0;
  /// Older versions of the streams kept decoded in memory besides the newest
  /// (stream_cache): a rollback to a recent checkpoint reads none of its
  /// streams back from the packs.
  uint32_t store_cache_mib = 128;
  device_map devices;

  /// Reads and validates a config file (through `e`); the device map is
  /// resolved relative to the file, falling back to the embedded one.
  static result<node_config> load_file(env& e, const std::string& path);
  /// The embedded defaults (config/dsmil.toml and config/devices.toml).
  static result<node_config> embedded();
  /// `files` reads a device map named relative to `base_dir`; without it
  /// (or with an empty base_dir) the embedded map is used.
  static result<node_config> parse(const std::string& text, const std::string& source,
                                   const std::string& base_dir, env* files = nullptr);
};

/// Splits "HOST:PORT"; errors name the text.
status parse_host_port(const std::string& text, std::string& host, uint16_t& port);

/// The texts of config/dsmil.toml and config/devices.toml, compiled in.
const char* embedded_node_toml();
const char* embedded_devices_toml();

} // namespace dsmil
