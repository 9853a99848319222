// Where each component's image lives in a checkpoint (store format v1):
// the devices' records in the manifest's devices section, the configuration
// in its own chunk, the security component's PCRs in the signed evidence the
// store takes while signing, and every other component's records and
// streams as the checkpoint's streams "<component>/records/<name>" and
// "<component>/streams/<name>" (cut into chunks, deduplicated). This file is
// the one place that knows it: components, sagas and commands speak images.
#pragma once

#include <mutex>
#include <optional>

#include "runtime/components/component.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

/// The bytes of the streams checkpoints wrote last, by stream name: a
/// stream whose bytes did not change (an agent that did nothing) is not cut
/// and hashed again, one that changed in places is cut and hashed only
/// around the bytes that differ, and a checkpoint's stream that is here is
/// not read back and decoded (a rollback to the newest checkpoint). Its
/// chunk ids are the SHA-256 of these very bytes, so using them is reading
/// the chunks. Thread-safe.
class stream_cache {
public:
  /// The stream written last as `name`, and its bytes.
  std::optional<std::pair<stream_ref, stream_bytes>> last(const std::string& name) const;
  /// The bytes of `ref`, when the stream written last under its name had
  /// its very chunks.
  std::optional<stream_bytes> bytes_of(const stream_ref& ref) const;
  void put(const stream_ref& ref, const stream_bytes& bytes);

private:
  mutable std::mutex mu_;
  std::map<std::string, std::pair<stream_ref, stream_bytes>> streams_;
};

/// Takes checkpoint `req` of `image` (every component captured at one
/// instant). REQUIRES: the store's external synchronisation.
result<checkpoint_info> create_checkpoint(checkpoint_store& store, const checkpoint_request& req,
                                          const system_image& image, stream_cache* cache = nullptr);

/// The system image checkpoint `contents` holds (load() verified it; its
/// streams are read and checked here). Components it has nothing of are
/// absent from the map.
result<system_image> image_of(checkpoint_store& store, const checkpoint_contents& contents,
                              const stream_cache* cache = nullptr);

} // namespace dsmil
