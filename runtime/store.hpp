// checkpoint_store: the local, content-addressed checkpoint store (format v1,
// see DESIGN.md). Chunks are named by SHA-256 and stored once; a checkpoint
// exists once its manifest and signature are durably in place.
//
// REQUIRES: external synchronization (one owner, e.g. one actor).
#pragma once

#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/system_config.hpp"
#include "runtime/env.hpp"
#include "runtime/key_provider.hpp"
#include "runtime/manifest.hpp"
#include "runtime/pack.hpp"
#include "runtime/uuid.hpp"

namespace dsmil {

struct checkpoint_request {
  std::string name;
  std::string description;
  std::string type = "manual";
};

struct checkpoint_contents {
  checkpoint_info info;
  std::vector<device_state> devices; ///< sorted by id
  system_config configuration;
};

/// What a verification checked, one line each, for the user.
struct verify_report {
  std::vector<std::string> checks;
};

class checkpoint_store {
public:
  /// Opens (creating when absent) the store in `dir`: sweeps tmp/, loads the
  /// indexes and manifests, and opens the software signing key.
  static result<std::unique_ptr<checkpoint_store>> open(env& e, const std::string& dir);

  /// Writes the chunks this checkpoint needs that are not stored yet, then
  /// the signed manifest. On error nothing visible changes.
  result<checkpoint_info> create(const checkpoint_request& req,
                                 const std::vector<device_state>& devices,
                                 const system_config& configuration);

  /// All checkpoints, oldest first.
  std::vector<checkpoint_info> list() const;
  /// An id, or a unique prefix of one (at least 4 characters).
  result<std::string> resolve(const std::string& id_or_prefix) const;
  result<checkpoint_info> info(const std::string& id) const;

  /// Loads a checkpoint after verifying its signature and every chunk it reads.
  result<checkpoint_contents> load(const std::string& id);
  /// Full verification: signature, roots, parent link, and every byte of
  /// every chunk (CRC64 and SHA-256). Errors name the damaged file.
  result<verify_report> verify(const std::string& id);
  /// Removes the checkpoint's manifest and signature, durably. Chunks stay
  /// until garbage collection.
  status remove(const std::string& id);

  const std::string& dir() const { return dir_; }
  const key_provider& key() const { return *key_; }
  size_t chunk_count() const { return index_.size(); }

private:
  checkpoint_store(env& e, std::string dir) : env_(e), dir_(std::move(dir)) {}

  status init();
  // Reads the manifest of `id`, checks its signature; `sha_out` gets the body's SHA-256.
  result<manifest> read_verified_manifest(const std::string& id, verify_report* report,
                                          std::string* sha_out);
  // Reads and checks one chunk: CRC64, decode, SHA-256.
  result<std::string> read_chunk(const std::string& id_hex);
  status write(const std::string& path, const std::string& data, unsigned mode = 0644);
  std::string rel(const std::string& path) const;

  env& env_;
  std::string dir_;
  std::mutex index_mu_; // guards index_ (pipeline workers add to it)
  std::unique_ptr<key_provider> key_;
  std::map<std::string, chunk_location> index_;        // chunk id hex -> location
  std::map<std::string, checkpoint_info> checkpoints_; // by id; UUIDv7 sorts by time
  uuid_v7_generator ids_;
  error sticky_;               // set by a failed durable write; refuses changes until reopened
  std::shared_ptr<void> lock_; // one process per store
};

} // namespace dsmil
