// Where each component's image lives in a checkpoint (store format v1):
// the devices' records in the manifest's devices section, the configuration
// in its own chunk, the security component's PCRs in the signed evidence the
// store takes while signing, and every other component's records and
// streams as the checkpoint's streams "<component>/records/<name>" and
// "<component>/streams/<name>" (cut into chunks, deduplicated), and the
// streams a component stored itself as "<component>/stored/<name>" (left in
// the store when read back: the image has their refs). This file is
// the one place that knows it: components, sagas and commands speak images.
#pragma once

#include <mutex>
#include <optional>

#include "runtime/components/component.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

/// The bytes of recent versions of the streams checkpoints hold, by stream
/// name: a stream whose bytes did not change (an agent that did nothing, or
/// one back at a version a rollback restored) is not cut and hashed again,
/// one that changed in places is cut and hashed only around the bytes that
/// differ, and a checkpoint's stream that is here is not read back and
/// decoded (a rollback to a recent checkpoint). Its chunk ids are the
/// SHA-256 of these very bytes, so using them is reading the chunks.
///
/// Memory: the newest version of every stream, plus older ones (written
/// earlier, or read back for a rollback) up to a budget, the least recently
/// used dropped first. Thread-safe.
class stream_cache {
public:
  struct version {
    stream_ref ref;
    stream_bytes bytes;
    uint64_t crc = 0; ///< simd::crc64 of the bytes: versions told apart without comparing them
  };
  explicit stream_cache(uint64_t older_budget_bytes = uint64_t{128} << 20)
      : budget_(older_budget_bytes) {}
  void set_budget(uint64_t older_budget_bytes);
  /// The versions kept of stream `name`, the one written last first.
  std::vector<version> versions(const std::string& name) const;
  /// The version kept whose bytes are `bytes` themselves (shared, not only
  /// equal), made the newest: nothing to compare.
  std::optional<stream_ref> sharing(const std::string& name, const stream_bytes& bytes);
  /// The bytes of `ref`, when a version kept has its very chunks.
  std::optional<stream_bytes> bytes_of(const stream_ref& ref) const;
  /// `ref` was written with `bytes` (`crc` theirs): the newest version of its name.
  void put(const stream_ref& ref, const stream_bytes& bytes, uint64_t crc);
  /// `ref` was read back as `bytes` (a rollback's target): an older version.
  void remember(const stream_ref& ref, const stream_bytes& bytes);
  /// Bytes of the older versions kept.
  uint64_t older_bytes() const;

private:
  struct entry {
    stream_ref ref;
    stream_bytes bytes;
    uint64_t crc = 0;
    mutable uint64_t used = 0;
  };
  // REQUIRES: mu_ held. Drops the least recently used older versions until
  // they fit the budget.
  void evict();
  mutable std::mutex mu_;
  uint64_t budget_;
  mutable uint64_t tick_ = 0;
  uint64_t older_ = 0;
  std::map<std::string, std::vector<entry>> streams_; ///< [0]: written last
};

/// A component's way to the store (see stream_port): `store` must outlive it.
class store_stream_port final : public stream_port {
public:
  explicit store_stream_port(checkpoint_store& store) : store_(store) {}
  result<stream_ref> write(const std::string& name, const byte_source& src,
                           const std::optional<chunker_params>& chunking) override;
  result<std::vector<stream_ref>> write_all(const std::vector<input>& streams) override;
  status read(const stream_ref& s, const byte_sink& sink) override;

private:
  checkpoint_store& store_;
};

/// Takes checkpoint `req` of `image` (every component captured at one
/// instant). REQUIRES: the store's external synchronisation.
result<checkpoint_info> create_checkpoint(checkpoint_store& store, const checkpoint_request& req,
                                          const system_image& image, stream_cache* cache = nullptr);

/// The system image checkpoint `contents` holds (load() verified it; its
/// streams are read and checked here). Components it has nothing of are
/// absent from the map.
result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents,
                              stream_cache* cache = nullptr);

} // namespace dsmil
