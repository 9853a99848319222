// memory_env: an env whose files live in memory, for tests of the store and
// the node without a disk. It models what a power cut keeps (LevelDB's
// fault-injection test is the model):
//
//   - a file's bytes survive only up to its last sync(); bytes appended after
//     it are lost;
//   - a name (a created, renamed or removed file) survives only once its
//     directory was synced with sync_dir(); before, the directory entry
//     reverts to what it was at the last sync_dir() of that directory;
//   - directories themselves are durable once created (create_dirs).
//
// crash_after(n) takes that image at a chosen instant: after n more changing
// calls the durable state is frozen into the crash image and every later
// change fails (the process is "dead"); restart() then makes the crash image
// the live state, as a machine coming back up finds its disk. A byte quota
// makes writes fail with errc::no_space, as a full file system does.
//
// Thread-safe. Time comes from `clock` (the file system is simulated, the
// clock need not be).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "runtime/os/env.hpp"

namespace dsmil {

class memory_env final : public env {
public:
  /// `clock` gives the time and must outlive this object.
  explicit memory_env(env& clock);
  ~memory_env() override;

  /// Writes beyond `bytes` of file data in all (live files) fail with
  /// errc::no_space. 0 = no limit.
  void set_quota(uint64_t bytes);
  /// Bytes of file data in live files.
  uint64_t used_bytes() const;
  /// After `n` more changing calls (create, append, sync, rename, remove,
  /// sync_dir, write_at...), the crash image is taken and every further
  /// change fails with io_error. n = 0 crashes before the next change.
  void crash_after(uint64_t n);
  /// Takes the crash image now (as crash_after(0) at this instant).
  void crash_now();
  /// True once the crash image is taken.
  bool crashed() const;
  /// Changing calls so far (to choose an instant for crash_after).
  uint64_t change_count() const;
  /// Comes back up after a crash: the crash image becomes the live state,
  /// changes work again, locks are released. Open files of before the crash
  /// must not be used any more.
  void restart();

  result<std::unique_ptr<writable_file>> new_writable_file(const std::string& path,
                                                           unsigned mode) override;
  result<std::unique_ptr<writable_file>> new_appendable_file(const std::string& path,
                                                             unsigned mode) override;
  result<std::unique_ptr<random_rw_file>> open_random_rw_file(const std::string& path,
                                                              unsigned mode) override;
  result<std::unique_ptr<random_access_file>>
  new_random_access_file(const std::string& path) override;
  result<std::string> read_file(const std::string& path) override;
  result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t size) override;
  status rename(const std::string& from, const std::string& to) override;
  status remove(const std::string& path) override;
  status sync_dir(const std::string& dir) override;
  status create_dirs(const std::string& dir) override;
  result<std::vector<std::string>> list_dir(const std::string& dir) override;
  bool exists(const std::string& path) override;
  /// The quota as the size (1 TiB without one), less the live data.
  result<fs_space> space(const std::string& path) override;
  result<std::shared_ptr<void>> lock_file(const std::string& path) override;
  int64_t now_unix_ns() override { return clock_.now_unix_ns(); }
  int64_t steady_ns() override { return clock_.steady_ns(); }

  struct inode;
  struct state;

private:
  env& clock_;
  std::shared_ptr<state> s_;
};

} // namespace dsmil
