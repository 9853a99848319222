// Checkpoint manifests: the signed JSON body that names every chunk of a
// checkpoint, and the signature file beside it.
#pragma once

#include "runtime/store/checkpoint_type.hpp"
#include <cstdint>
#include <string>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/result.hpp"
#include "runtime/keys/tpm_quote.hpp"
#include "runtime/store/stream_types.hpp"

namespace dsmil {

/// Format 1: every chunk list in the body. Format 2: a large stream's list
/// kept in the store (stream_entry::listed(), chunk_lists.hpp); written only
/// by a checkpoint that has such a stream. Both are read.
constexpr int manifest_format = 2;

struct device_chunk {
  device_id device = 0;
  chunk_ref chunk;
};

/// What `checkpoint list` and `show` print about a checkpoint.
struct checkpoint_info {
  std::string id; ///< UUIDv7
  std::string name;
  std::string description;
  checkpoint_type type = checkpoint_type::manual;
  std::string created_at; ///< RFC 3339, UTC, milliseconds
  int64_t created_unix_ns = 0;
  std::string parent_id; ///< empty for a root
  std::string parent_manifest_sha256;
  uint32_t device_count = 0;
  uint64_t logical_bytes = 0; ///< bytes of state captured
  uint64_t new_bytes = 0;     ///< bytes this checkpoint added to packs (dedup)
  std::string key_id;
  std::string provider;
  bool pinned = false;   ///< a pin file beside the manifest; not part of the signed body
  uint64_t counter = 0;  ///< TPM anti-replay counter when signed in a TPM; 0 otherwise
  std::string ak_key_id; ///< the TPM's attestation key, whose counter `counter` is
};

struct stream_entry {
  std::string name;
  uint64_t size = 0;
  std::vector<chunk_ref> chunks; ///< of a listed stream: empty until the store resolves the list
  std::string root;
  /// A listed stream's list: the chunks of its base and of its edit script
  /// (none: the base is the list), and how many entries the list has.
  std::vector<chunk_ref> list_base, list_edits;
  uint64_t count = 0;
  bool listed() const { return !list_base.empty(); }
  bool resolved() const { return !listed() || chunks.size() == count; }
};

struct manifest {
  checkpoint_info info;
  chunk_ref configuration;
  std::vector<device_chunk> devices; ///< sorted by id
  std::vector<stream_entry> streams;
  /// Security component, when the signing key is in a TPM: PCR values, the
  /// quote over them and the merkle root, the anti-replay counter (the AK's
  /// public key is in keys/<ak_key_id>.pem, not here).
  platform_evidence security;
  std::string configuration_root;
  std::string devices_root;
  std::string merkle_root;
};

/// Component roots and Merkle root from the chunk lists: root of a component
/// = SHA-256 over its chunk ids (raw) in order; Merkle root = SHA-256 over the
/// component roots in the order configuration, devices, then each stream.
/// An unresolved listed stream keeps the root its entry states (the store
/// checks it against the list when it resolves it).
void compute_roots(manifest& m);

/// SHA-256 over the raw ids of `chunks` in order (a component's root).
std::string chunks_root(const std::vector<chunk_ref>& chunks);

/// Every chunk the checkpoint needs: configuration, devices, then streams
/// (a listed stream's list chunks, then its data chunks once resolved).
/// The pointers point into `m`.
std::vector<const chunk_ref*> chunk_refs(const manifest& m);

/// The exact bytes that are signed.
std::string encode_manifest(const manifest& m);
/// Parses and checks the structure and the roots. Errors name `path`.
result<manifest> decode_manifest(const std::string& body, const std::string& path);

struct signature_file {
  std::string scheme;
  std::string provider;
  std::string key_id;
  std::string manifest_sha256;
  std::string value_hex; ///< DER signature over the manifest body's SHA-256
};

std::string encode_signature(const signature_file& s);
result<signature_file> decode_signature(const std::string& text, const std::string& path);

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-27T14:03:05.123Z.
std::string format_time(int64_t unix_ns);

} // namespace dsmil
