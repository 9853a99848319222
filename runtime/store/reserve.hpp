// space_reserve: room held back on the store's file system for a rollback's
// safety net, so that a full disk never stops a rollback in preparation. The
// reserve is a preallocated file outside <store>/ (verification does not cover
// it, and nothing in the store names it): written with zeros and fsynced, so
// its blocks are really taken. A rollback whose pre-rollback checkpoint and
// journal would not fit in the free space alone releases it (removes the
// file) first; it is held again after the saga, or after a delete or gc
// frees room.
//
// REQUIRES: hold() and release() from one thread at a time (the node's
// writer); held() and wanted() from any.
#pragma once

#include <atomic>

#include <cstdint>
#include <string>

#include "dsmil/result.hpp"

namespace dsmil {

class env;

class space_reserve {
public:
  /// The reserve file is `path`; `e` must outlive this object.
  space_reserve(env& e, std::string path) : env_(e), path_(std::move(path)) {}

  /// Makes the reserve `bytes` long (0 removes it). On failure (a full file
  /// system: errc::no_space) a reserve that was growing keeps what it held
  /// before; otherwise no partial file is left and held() is 0.
  status hold(uint64_t bytes);
  /// Removes the reserve, freeing its space for what comes next.
  status release();
  /// Bytes held now. held() and wanted() may be read from any thread; the
  /// changes come from one at a time.
  uint64_t held() const { return held_.load(); }
  /// Bytes the reserve should hold (hold() failed when held() is less).
  uint64_t wanted() const { return wanted_.load(); }
  const std::string& path() const { return path_; }

private:
  /// Cuts the file back to its first `bytes`, durably.
  status keep_first(uint64_t bytes);

  env& env_;
  std::string path_;
  std::atomic<uint64_t> held_{0};
  std::atomic<uint64_t> wanted_{0};
};

/// The automatic size of the reserve ([store] reserve_kib = 0): twice what
/// the newest checkpoint added plus a journal, and never less than
/// `safety_net` (what a rollback writes before it can compensate) or 64 KiB;
/// at most 5% of a file system of `fs_bytes`.
uint64_t automatic_reserve_bytes(uint64_t newest_new_bytes, uint64_t safety_net, uint64_t fs_bytes);

/// What a rollback writes at most before it can compensate: its pre-rollback
/// checkpoint (every device state new, the manifest, signature and index)
/// and its journal, for `devices` device states of `state_bytes` in all.
uint64_t rollback_safety_net_bytes(size_t devices, uint64_t state_bytes);

} // namespace dsmil
