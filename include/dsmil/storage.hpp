// The checkpoint store for programs that embed dsmil-recovery: store, load and
// verify checkpoints, and turn one checkpoint into a single compressed or
// encrypted blob (to ship it elsewhere) and back. This is the seed's
// checkpoint_storage interface; the node (dsmild) uses the same store.
//
// REQUIRES: external synchronization (one owner at a time; one process per
// store directory, enforced by a lock file).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/result.hpp"
#include "dsmil/system_config.hpp"

namespace dsmil {

/// How a new store is made; an existing store keeps what it was made with.
struct storage_options {
  int deflate_level = 1; ///< ISA-L deflate level 0-3; 0 stores raw
  unsigned threads = 0;  ///< pipeline workers; 0 = all cores
  /// AES-256-GCM at rest with a data key in the store's keys/ (mode 0600).
  bool encrypt = false;
};

/// A named byte stream of a checkpoint (a database dump, an agent's context).
struct checkpoint_stream {
  std::string name;
  std::string bytes;
};

/// A checkpoint as a caller builds it and gets it back (the seed's
/// system_checkpoint_t). The store sets id, created_at and parent_id.
struct checkpoint {
  std::string id; ///< UUIDv7
  std::string name;
  std::string description;
  std::string type = "manual"; ///< manual, automatic, emergency, pre-rollback
  std::string created_at;      ///< RFC 3339, UTC
  std::string parent_id;       ///< empty for the first one
  std::vector<device_state> devices;
  system_config configuration;
  std::vector<checkpoint_stream> streams;
};

/// What verify_storage_integrity() found.
struct integrity_report {
  size_t packs = 0;
  size_t chunks = 0;
  uint64_t bytes_read = 0;           ///< 0 unless the data was read
  std::vector<std::string> damaged;  ///< one line per damaged chunk, naming pack and offset
  std::vector<std::string> affected; ///< checkpoints that need a damaged chunk
  std::vector<std::string> problems; ///< manifests that do not verify
  bool clean() const { return damaged.empty() && problems.empty(); }
};

class storage {
public:
  /// Opens the store in `dir`, creating it (and a software signing key) when absent.
  static result<std::unique_ptr<storage>> open(const std::string& dir,
                                               const storage_options& options = {});
  ~storage();
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;

  /// Stores `c` (devices, configuration, streams) as a signed checkpoint,
  /// deduplicated against what the store holds; durable when this returns.
  /// Returns its id.
  result<std::string> store_checkpoint(const checkpoint& c);
  /// Loads a checkpoint (an id or a unique prefix of one), checking its
  /// signature and every byte read.
  result<checkpoint> load_checkpoint(const std::string& id);
  /// Writes stream `stream` of checkpoint `id` to the file `path` (mode 0600),
  /// checking every byte, durably: `path` is replaced only once the whole
  /// stream is on disk. For streams too large to load into memory.
  status restore_stream(const std::string& id, const std::string& stream, const std::string& path);
  /// Every checkpoint, oldest first, without devices, configuration or streams.
  std::vector<checkpoint> list() const;
  /// Checks every manifest's signature and that every chunk a checkpoint
  /// needs is there; with `read_data`, every stored byte too (CRC64, inflate,
  /// SHA-256). Damage is reported, not an error.
  result<integrity_report> verify_storage_integrity(bool read_data = true);
  /// Verifies one checkpoint; one line per check. `quick` reads no data.
  result<std::vector<std::string>> verify_checkpoint(const std::string& id, bool quick = false);
  /// Removes a checkpoint and reclaims the space nothing else needs.
  status remove_checkpoint(const std::string& id);

  /// `c` as one self-contained blob: framed, DEFLATE-compressed (ISA-L),
  /// with a CRC64. Readable by decompress_checkpoint() of any store.
  result<std::string> compress_checkpoint(const checkpoint& c) const;
  result<checkpoint> decompress_checkpoint(std::string_view blob) const;
  /// `c` compressed, then sealed with AES-256-GCM under this store's data key
  /// (an encrypted store only). Only a store with the same data key opens it.
  result<std::string> encrypt_checkpoint(const checkpoint& c) const;
  result<checkpoint> decrypt_checkpoint(std::string_view blob) const;

private:
  struct impl;
  explicit storage(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace dsmil
