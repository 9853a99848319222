// checkpoint_store: the local, content-addressed checkpoint store (format v1,
// see DESIGN.md). Chunks are named by SHA-256 (HMAC when encrypted) and stored once; a checkpoint
// exists once its manifest and signature are durably in place.
//
// Changes run one at a time (the store serialises them); see the class.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/system_config.hpp"

#include "runtime/store/chunker.hpp"
#include "runtime/keys/cipher.hpp"
#include "runtime/os/env.hpp"
#include "runtime/keys/key_provider.hpp"
#include "runtime/store/manifest.hpp"
#include "runtime/store/pack.hpp"
#include "runtime/store/stream_types.hpp"
#include "runtime/base/uuid.hpp"

namespace dsmil {

struct checkpoint_request {
  std::string name;
  std::string description;
  checkpoint_type type = checkpoint_type::manual;
  /// What write_stream() stored anew for this checkpoint's streams
  /// (stream_stats::new_bytes, summed): counted in its new_bytes.
  uint64_t streams_new_bytes = 0;
};

/// How a new store cuts, compresses and packs data. Kept in store.toml at
/// creation: reopening uses the stored values so that chunk ids stay stable.
struct store_options {
  chunker_params chunking;
  int deflate_level = 1;                  ///< ISA-L level 0-3
  uint64_t pack_target_bytes = 16u << 20; ///< a pack is sealed once this large
  unsigned threads = 0;                   ///< pipeline workers; 0 = all cores
  /// Encryption at rest: AES-256-GCM records, HMAC-SHA-256 chunk ids, with a
  /// data key in keys/data.key (mode 0600). Chosen at creation.
  bool encrypt = false;
  /// Open an existing store without changing a byte of it (no lock file, no
  /// key generation, no clean-up): for verifying a copy. Every change is
  /// refused. Not recorded in store.toml.
  bool read_only = false;
  /// Software key only: wrap the data key under the passphrase in this file
  /// (scrypt, AES-256-GCM) instead of keeping it in a 0600 file.
  std::string passphrase_file;
};

/// One change to a stream since a checkpoint stored it (dirty tracking):
/// `old_length` bytes at `offset` of the stored stream were replaced by
/// `new_length` bytes. An overwrite has equal lengths, an insertion
/// old_length 0, a deletion new_length 0. Offsets are in the stored stream.
struct stream_edit {
  uint64_t offset = 0;
  uint64_t old_length = 0;
  uint64_t new_length = 0;
};

/// One stream for write_streams(): whole from `source`, or, with a
/// `parent`, as the parent's chunks with `edits` applied, the bytes around
/// them read through `read` (see write_stream_changes()).
struct stream_write {
  std::string name;
  byte_source source;
  const stream_ref* parent = nullptr;
  std::vector<stream_edit> edits;
  byte_reader read;
  /// The stream's own chunk sizes (validated), else the store's. Give a
  /// stream the same ones every time: its chunks dedup with its last
  /// version's only then (any sizes read back the same bytes).
  std::optional<chunker_params> chunking;
};

/// New chunk records write_streams() kept in memory for the create() that
/// follows, instead of a pack of their own: a small checkpoint's new chunks
/// go into create()'s pack, one round of fsyncs fewer. Nothing of them is
/// stored until that create() succeeds.
struct held_records {
  uint64_t limit = 0; ///< bytes held at most; what does not fit goes to packs as usual
  uint64_t bytes = 0;
  std::vector<std::pair<std::string, std::string>> records; ///< chunk id (hex), encoded record
};

struct stream_stats {
  uint64_t bytes = 0; ///< stream length
  uint64_t chunks = 0;
  uint64_t new_chunks = 0;   ///< not stored before
  uint64_t new_bytes = 0;    ///< plaintext bytes of the new chunks
  uint64_t stored_bytes = 0; ///< bytes the new records take in packs
};

/// Signed record naming the newest checkpoint after the previous newest was
/// deleted (head.json + head.sig), with the counter value advanced for it.
struct head_record {
  std::string head;
  uint64_t counter = 0;
  std::string ak_key_id;
};

struct checkpoint_contents {
  checkpoint_info info;
  std::vector<device_state> devices; ///< sorted by id
  system_config configuration;
  std::vector<stream_ref> streams; ///< chunk lists; read with read_stream()
  platform_evidence security;      ///< PCRs, quote, counter, when signed in a TPM
};

/// A chunk that failed a store check, and the checkpoints that need it.
struct damaged_chunk {
  std::string chunk_id;
  std::string pack; ///< relative path of its pack, empty when in no index
  uint64_t offset = 0;
  std::string problem;
  std::vector<std::string> checkpoints;
};

struct store_check_report {
  bool read_data = false;
  size_t packs = 0;
  size_t chunks = 0;
  uint64_t bytes_read = 0;
  std::vector<damaged_chunk> damaged;
  std::set<std::string> damaged_checkpoints;
  std::vector<std::string> problems; ///< manifests that do not verify
  bool clean() const { return damaged.empty() && problems.empty(); }
};

struct gc_report {
  size_t packs_removed = 0;        ///< held nothing any checkpoint needs
  size_t packs_rewritten = 0;      ///< mostly garbage: live records moved to a new pack
  size_t orphan_packs_removed = 0; ///< left without an index by a process that died
  size_t chunks_dropped = 0;
  uint64_t bytes_reclaimed = 0;
};

/// What a verification checked, one line each, for the user.
struct verify_report {
  std::vector<std::string> checks;
};

/// Threads: changes (write_stream, write_stream_changes, create, remove,
/// pin, gc) run one at a time (the store serialises them; a caller that
/// writes streams for a create() keeps gc away until that create() runs). Reads may run on
/// any thread, many at once, beside a change: list, resolve, info and
/// chunk_count wait at most for a catalog update, never for a change's
/// I/O; load, read_stream, restore_stream and verify_chain read chunks
/// beside a checkpoint being written, waiting only for gc; verify, check
/// and verify_files see the store's files still, so they wait for a change
/// in progress and hold off the next one (never list or status).
class checkpoint_store {
public:
  /// Opens (creating when absent) the store in `dir`: sweeps tmp/, loads the
  /// indexes and manifests, and opens the software signing key.
  /// `signing_key` signs the manifests (a TPM key, say); without one the
  /// store's software key (keys/signing.key) does. Either way the public key
  /// is kept in keys/<key_id>.pem, so verification needs nothing else.
  static result<std::unique_ptr<checkpoint_store>>
  open(env& e, const std::string& dir, const store_options& opts = {},
       std::unique_ptr<key_provider> signing_key = nullptr);

  /// Cuts `src` into chunks and stores those not stored yet, on all worker
  /// threads with bounded queues (memory does not grow with the stream).
  /// The chunks are durable when this returns; they belong to a checkpoint
  /// once create() names the returned stream_ref.
  /// REQUIRES: no gc() between this and that create() (gc would collect the
  /// chunks no manifest names yet; create() then fails instead of committing).
  result<stream_ref> write_stream(const std::string& name, const byte_source& src,
                                  stream_stats* stats = nullptr);
  /// Several streams through one pipeline, in order: their new chunks share
  /// packs, so many small streams (one per agent) cost one set of pack
  /// fsyncs instead of one each. Each is written whole from its `source`,
  /// or, with a `parent`, as write_stream_changes() writes it. `stats` sums
  /// them all.
  /// With `hold`, new chunks up to its limit are kept there for create().
  result<std::vector<stream_ref>> write_streams(const std::vector<stream_write>& streams,
                                                stream_stats* stats = nullptr,
                                                held_records* hold = nullptr);
  /// The same stream_ref write_stream() would return for the stream `read`
  /// gives, for a component that knows what changed since `parent` was
  /// stored: only the bytes around each edit are read, cut, hashed and
  /// stored; the parent's chunks elsewhere are reused. `edits` are sorted by
  /// offset and do not overlap (an invalid_argument error says which does).
  /// An edit the component forgot is a stream the checkpoint does not hold:
  /// the list must be complete.
  result<stream_ref> write_stream_changes(const std::string& name, const stream_ref& parent,
                                          const std::vector<stream_edit>& edits,
                                          const byte_reader& read, stream_stats* stats = nullptr);
  /// Streams a stored stream back in order, checking every chunk. `sink` is
  /// called with runs of about 1 MiB, in order, one call at a time, from
  /// the read workers' threads.
  status read_stream(const stream_ref& s, const byte_sink& sink) {
    std::shared_lock<std::shared_mutex> files(files_mu_);
    return read_stream_locked(s, sink);
  }
  /// Several whole streams into memory (a component image's), each
  /// decoded straight into its string, the streams spread over the worker
  /// threads; every chunk is checked as read_stream() checks it. For
  /// streams that fit in memory; read_stream() streams a large one.
  result<std::vector<std::string>> read_streams(const std::vector<const stream_ref*>& streams);
  /// Restores a stream into the file `path`, durably: written beside it
  /// (`path`.partial, bypassing the page cache where it can), fsynced, then
  /// renamed over `path`. On error `path` is untouched and nothing is left.
  status restore_stream(const stream_ref& s, const std::string& path);

  /// Writes the chunks this checkpoint needs that are not stored yet (and
  /// the `held` records of the write_streams() before), then the signed
  /// manifest. On error nothing visible changes.
  result<checkpoint_info> create(const checkpoint_request& req,
                                 const std::vector<device_state>& devices,
                                 const system_config& configuration,
                                 const std::vector<stream_ref>& streams = {},
                                 const held_records* held = nullptr);

  /// All checkpoints, oldest first.
  std::vector<checkpoint_info> list() const;
  /// An id, or a unique prefix of one (at least 4 characters).
  result<std::string> resolve(const std::string& id_or_prefix) const;
  result<checkpoint_info> info(const std::string& id) const;

  /// Loads a checkpoint after verifying its signature and every chunk it reads.
  result<checkpoint_contents> load(const std::string& id);
  /// Full verification: signature, roots, parent link, and every byte of
  /// every chunk (CRC64, decode, SHA-256). With `quick`: signature, roots,
  /// parent link, and every chunk indexed in a pack that is there; no data
  /// read. Errors name the damaged file.
  result<verify_report> verify(const std::string& id, bool quick = false);
  /// Checks every file under the store directory except tmp/, journal/, the
  /// lock file and private keys (verify() runs it): each is a file this store
  /// makes, with the bytes it writes (see verify_files.cpp); with
  /// `read_headers`, every index entry names the record at its offset.
  status verify_files(verify_report& report, bool read_headers) {
    std::unique_lock<std::shared_mutex> files(files_mu_);
    return verify_files_locked(report, read_headers);
  }
  // One index file of verify_files; `entries` gets its entry count.
  status check_index(const std::string& rel, const std::string& pack_name, bool read_headers,
                     size_t& entries);
  /// Follows parent links from `id` to the root, checking every signature and
  /// that each parent is the manifest its child recorded.
  result<verify_report> verify_chain(const std::string& id);
  /// Checks the whole store: every manifest's signature, every chunk a
  /// checkpoint needs is indexed, every pack is present; with `read_data`,
  /// every record's CRC64, decoding and SHA-256.
  result<store_check_report> check(bool read_data);
  /// Reclaims the space of chunks no checkpoint needs: packs with nothing
  /// live are removed, packs with less than `rewrite_below` of their bytes
  /// live are rewritten. Safe to kill at any instant; the next gc finishes.
  result<gc_report> gc(double rewrite_below = 0.5);
  /// Pins or unpins a checkpoint: pinned ones are never removed (delete
  /// refuses them; retention skips them).
  status pin(const std::string& id, bool on);
  /// Removes the checkpoint's manifest and signature, durably. Chunks stay
  /// until garbage collection.
  status remove(const std::string& id);

  const std::string& dir() const { return dir_; }
  const key_provider& key() const { return *key_; }
  key_provider& key() { return *key_; }
  const store_options& options() const { return opts_; }
  /// The id a chunk with this content has in this store.
  digest chunk_id(std::string_view plain) const;
  /// False for an encrypted store opened without its data key: structure and
  /// CRC64 can be checked, content cannot, and nothing can be written.
  bool can_read_content() const { return !opts_.encrypt || keys_ != nullptr; }
  /// What refuses content access when !can_read_content().
  error no_key_error() const {
    if (!key_problem_.empty())
      return make_error(errc::unavailable,
                        "store " + dir_ +
                            " is encrypted and its data key cannot be opened: " + key_problem_);
    return make_error(errc::unavailable, "store " + dir_ +
                                             " is encrypted and its data key (keys/data.key) is "
                                             "not available; restore the key");
  }
  /// Whether every chunk of `s` is stored (in an index).
  bool has_chunks(const stream_ref& s) const {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (auto& c : s.chunks)
      if (!index_.count(c.id)) return false;
    return true;
  }
  size_t chunk_count() const {
    std::lock_guard<std::mutex> guard(index_mu_);
    return index_.size();
  }
  /// The keys of an encrypted store opened with its data key; null otherwise.
  const store_keys* data_keys() const { return keys_.get(); }

private:
  class stream_pipeline;
  friend class stream_pipeline;
  // Feeds the stream `w` describes with a parent into `pipe`: its edits
  // checked, the parent's chunks away from them reused, the rest cut.
  status feed_changes(stream_pipeline& pipe, const stream_write& w);

  checkpoint_store(env& e, std::string dir, store_options opts)
      : env_(e), dir_(std::move(dir)), opts_(opts) {}

  status init();
  // The bodies of read_stream and verify_files, for callers that hold
  // files_mu_ already (shared, or unique).
  status read_stream_locked(const stream_ref& s, const byte_sink& sink);
  status verify_files_locked(verify_report& report, bool read_headers);
  status init_read_only();
  // Checks store.toml.sig against `text` (store.toml's bytes); a store
  // without one gets it signed when `may_sign` (a new store, or one made
  // before store.toml was signed), else it is an error.
  status check_store_toml(const std::string& text, bool may_sign);
  // Opens keys/data.key.sealed (through the key provider) or keys/data.key.
  void load_data_key();
  // Loads indexes and manifests.
  status load_catalog();
  status refuse_if_read_only() const;
  // The one check before a change: refuses it when the store is read-only,
  // after a background error, or (for writes of content) without the data
  // key. `what` is "writes" or "deletes", for the message.
  status check_writable(const char* what) const;
  // The one setter of the background error: the first failure that leaves
  // what is on disk in doubt (EIO, a failed rename or directory fsync) is
  // kept under the lock and refuses every change until the store is
  // reopened. Returns `err`.
  error record_background_error(const error& err);
  // For a failed durable write: a full file system (errc::no_space) while
  // only tmp files were written is not a background error (nothing visible
  // changed, the tmp files are removed, deletes and gc still work so space
  // can be freed); anything else is. Returns `err`.
  error record_write_error(const error& err);
  // Reads and decodes chunks [from, to) of `s` into `dst` (room for them
  // all), checking each.
  status decode_batch(const stream_ref& s, size_t from, size_t to, char* dst);
  // Reads the signature file `sig_rel` and checks that it signs exactly
  // `bytes` with a key kept in keys/ (its id matching the PEM); when the
  // signature is good but the bytes are not the signed ones, the error says
  // `modified`.
  result<signature_file> check_signature(const std::string& sig_rel, const std::string& bytes,
                                         const std::string& modified);
  // Reads the manifest of `id`, checks its signature; `sha_out` gets the body's SHA-256.
  result<manifest> read_verified_manifest(const std::string& id, verify_report* report,
                                          std::string* sha_out);
  status write_head_record(const std::string& removed);
  result<head_record> read_head_record();
  // The verify line for the anti-replay counter of `info`, or the error
  // saying that an old checkpoint is presented as the newest.
  result<std::string> check_not_replayed(const checkpoint_info& info);
  // Reads and checks one chunk: CRC64, decode, SHA-256.
  result<std::string> read_chunk(const std::string& id_hex);
  /// The plaintext of many chunks, in order; records that lie close together
  /// in one pack are read with one pread.
  /// With `plain`, the content of plain records is read also when the
  /// store's data key is not available (chunk lists).
  result<std::vector<std::string>> read_chunks(const std::vector<std::string>& ids_hex,
                                               bool plain = false);
  // The bytes of a list's chunks `refs`, concatenated, each checked.
  result<std::string> list_bytes(const std::vector<chunk_ref>& refs);
  // Reads the lists of `m`'s listed streams from the store into their
  // `chunks`, checked against count, size and root. Errors name `rel`.
  status resolve_lists(manifest& m, const std::string& rel);
  // For create(): gives the large stream `e` (chunks set) a stored list, a
  // base with an edit script when the last base of its name is close, else
  // a new base; `add` stores a list chunk (plain) and returns its ref.
  status list_stream(stream_entry& e, const std::function<chunk_ref(const std::string&)>& add);
  // The newest base of each listed stream name (list chunks and entries):
  // from the checkpoints this process wrote, or read from the newest
  // manifest on first use.
  struct list_base {
    std::vector<chunk_ref> refs;
    std::vector<chunk_ref> entries;
  };
  std::map<std::string, list_base> list_bases_;
  bool list_bases_loaded_ = false;
  status write(const std::string& path, const std::string& data, unsigned mode = private_file_mode);
  // A pack written record by record into tmp/; finish_pack makes pack and
  // index durable, and only then its chunks visible to manifests.
  static std::string new_pack_name();            // 64 random hex digits
  status make_pack_dir(const std::string& pack); // packs/<first two digits>, durably
  result<std::unique_ptr<open_pack>> start_pack();
  status finish_pack(open_pack& p);
  std::string rel(const std::string& path) const;

  env& env_;
  std::string dir_;
  store_options opts_;
  mutable std::mutex index_mu_; // guards index_ (pipeline workers add to it)
  // Lock order: change_mu_, files_mu_, catalog_mu_, index_mu_.
  // Taken by every change (write_streams, create, remove, pin, gc): changes
  // run one at a time even when callers overlap (a component writing its
  // streams during a capture its caller gave up on, beside the caller's
  // next command). Recursive: a change may call another.
  std::recursive_mutex change_mu_;
  // Shared by whatever reads or adds chunks; unique for gc (which moves and
  // removes packs) and for the whole-store checks.
  mutable std::shared_mutex files_mu_;
  // Guards checkpoints_ against readers: a change (one at a time) reads it
  // freely and takes this unique only to modify it.
  mutable std::shared_mutex catalog_mu_;
  std::unique_ptr<key_provider> key_;
  std::unique_ptr<store_keys> keys_;
  std::string key_problem_; // why a sealed data key could not be opened            // data keys of
                            // an encrypted store, when available
  std::map<std::string, chunk_location> index_;        // chunk id hex -> location
  std::map<std::string, checkpoint_info> checkpoints_; // by id; UUIDv7 sorts by time
  uuid_v7_generator ids_;
  std::pair<std::string, std::string> newest_written_; // id and manifest SHA-256 (hex) of the
                                                       // last checkpoint create() wrote
  mutable std::mutex bg_mu_;   // guards bg_error_ (pipeline workers and sealers set it)
  error bg_error_;             // see record_background_error()
  std::shared_ptr<void> lock_; // one process per store
};

} // namespace dsmil
