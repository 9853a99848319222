// env: every file and clock effect of the runtime goes through this interface
// (files, fsync, rename, directories, clocks), so that tests can run the store
// and the node in memory (memory_env.hpp), fail chosen calls (fault_env.hpp)
// and drop what was not fsynced, as a power cut would. The programs choose the
// POSIX env (env::posix); nothing else names it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil {

/// A file being written. Data is durable only after sync() returned success.
class writable_file {
public:
  virtual ~writable_file() = default;
  virtual status append(std::string_view data) = 0;
  virtual status sync() = 0; ///< fsync (data and metadata of this file)
  virtual status close() = 0;
};

/// A file read and written in place, at offsets (the simulator's state file).
class random_rw_file {
public:
  virtual ~random_rw_file() = default;
  /// Writes `data` at `offset`, growing the file when needed. A process
  /// killed during the call may leave any part of it written.
  virtual status write_at(uint64_t offset, std::string_view data) = 0;
  /// `size` bytes at `offset`; fewer only at the end of the file.
  virtual result<std::string> read_at(uint64_t offset, uint64_t size) = 0;
  virtual result<uint64_t> size() = 0;
  /// Sets the size; bytes added read as zero.
  virtual status truncate(uint64_t size) = 0;
  virtual status sync() = 0; ///< fsync
};

/// Size and free space of a file system, in bytes.
struct fs_space {
  uint64_t total = 0;
  uint64_t free = 0; ///< what an unprivileged writer may still use
};

/// A thread started by env::start_thread(). Destroying the handle joins it.
class thread_handle {
public:
  virtual ~thread_handle() = default;
  virtual void join() = 0; ///< waits for the thread; idempotent
};

/// A file read at offsets, opened once (a pack whose records are checked one
/// by one).
class random_access_file {
public:
  virtual ~random_access_file() = default;
  /// `size` bytes at `offset`; fewer only at the end of the file.
  virtual result<std::string> read_at(uint64_t offset, uint64_t size) = 0;
};

/// Everything the node writes is private to its user (as restic and borg
/// keep their repositories): a store holds every device's registers and the
/// system configuration.
constexpr unsigned private_file_mode = 0600;
constexpr unsigned private_dir_mode = 0700; ///< create_dirs() makes directories so

class env {
public:
  virtual ~env() = default;

  /// Creates or truncates `path` with permission bits `mode`.
  virtual result<std::unique_ptr<writable_file>>
  new_writable_file(const std::string& path, unsigned mode = private_file_mode) = 0;
  /// For large output written once, front to back (a restored stream): the
  /// data may bypass the page cache (O_DIRECT) where the file system allows.
  /// Appends of any size; durable after sync(), like any writable_file.
  virtual result<std::unique_ptr<writable_file>>
  new_sequential_file(const std::string& path, unsigned mode = private_file_mode) {
    return new_writable_file(path, mode);
  }
  /// Opens `path` for appending, creating it when absent (a journal).
  virtual result<std::unique_ptr<writable_file>>
  new_appendable_file(const std::string& path, unsigned mode = private_file_mode) = 0;
  /// Opens `path` for reading and writing in place, creating it (empty) when
  /// absent.
  virtual result<std::unique_ptr<random_rw_file>> open_random_rw_file(const std::string& path,
                                                                      unsigned mode = 0600) = 0;
  /// Opens `path` for reading at offsets; not_found when it does not exist.
  virtual result<std::unique_ptr<random_access_file>>
  new_random_access_file(const std::string& path) = 0;
  virtual result<std::string> read_file(const std::string& path) = 0;
  /// The permission bits of `path` (e.g. 0600); errc::unavailable from an
  /// env that keeps none.
  virtual result<unsigned> permissions(const std::string& path) {
    return make_error(errc::unavailable, "no permission bits kept for " + path);
  }
  /// `size` bytes at `offset`; fewer only at the end of the file.
  virtual result<std::string> read_range(const std::string& path, uint64_t offset,
                                         uint64_t size) = 0;
  virtual status rename(const std::string& from, const std::string& to) = 0;
  virtual status remove(const std::string& path) = 0;
  /// fsync of a directory, making renames and removals inside it durable.
  virtual status sync_dir(const std::string& dir) = 0;
  /// mkdir -p; succeeds when the directory exists.
  virtual status create_dirs(const std::string& dir) = 0;
  /// Names (not paths) of the entries of `dir`, sorted.
  virtual result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  virtual bool exists(const std::string& path) = 0;
  /// The file system holding `path` (statvfs).
  virtual result<fs_space> space(const std::string& path) = 0;
  /// Takes an exclusive advisory lock on `path` (created if absent) for as
  /// long as the returned object lives; busy when another process holds it.
  virtual result<std::shared_ptr<void>> lock_file(const std::string& path) = 0;
  /// Wall-clock time, nanoseconds since the Unix epoch.
  virtual int64_t now_unix_ns() = 0;
  /// Monotonic time in nanoseconds, for durations.
  virtual int64_t steady_ns() = 0;

  /// The one way the runtime runs work on other threads. Runs fn(0) ..
  /// fn(n - 1) at once, fn(0) on the calling thread, and returns when every
  /// one has returned.
  virtual void run_parallel(size_t n, const std::function<void(size_t)>& fn);
  /// Starts `fn` on a thread of its own (a pipeline's long-lived workers).
  virtual std::unique_ptr<thread_handle> start_thread(std::function<void()> fn);
  /// Threads worth running at once (the CPUs this process may use).
  virtual unsigned cpu_count();

  /// The process-wide POSIX environment. Only the programs (cli/, bench/)
  /// and tests name it; everything else uses the env it was handed.
  static env& posix();
};

/// Writes `data` to `path` so that after return either the old file or the
/// complete new one exists, durably: tmp file in `tmp_dir`, fsync, rename,
/// fsync of the target directory.
status write_durable(env& e, const std::string& tmp_dir, const std::string& path,
                     std::string_view data, unsigned mode = private_file_mode);

/// Creates `path` with `data` and fsyncs it (the first half of write_durable,
/// for a file renamed into place later). Removes it on failure.
status write_synced(env& e, const std::string& path, std::string_view data,
                    unsigned mode = private_file_mode);

/// The files and directories under `dir` (and `dir` itself) that others
/// than the owner may use: their paths relative to `dir` with their bits.
/// Empty where `e` keeps no permission bits.
std::vector<std::pair<std::string, unsigned>> loose_modes(env& e, const std::string& dir);

/// One file for write_durable_pair.
struct durable_file {
  std::string path;
  std::string_view data;
  unsigned mode = private_file_mode;
};

/// write_durable of two files whose tmp files are written and fsynced
/// concurrently: `first` is durably in place before `second` is renamed, so
/// a crash never leaves the second without the first.
status write_durable_pair(env& e, const std::string& tmp_dir, const durable_file& first,
                          const durable_file& second);

/// write_durable of files in ordered stages, with as few fsync round trips as
/// the order allows: every tmp file is written and fsynced at once (one
/// thread each); then, stage by stage, the stage's files are renamed into
/// place and their directories fsynced at once. A crash may leave any part
/// of a stage in place, but only once every earlier stage is durably in
/// place. On failure the tmp files not yet renamed are removed; files of the
/// stages already done stay.
status write_durable_stages(env& e, const std::string& tmp_dir,
                            const std::vector<std::vector<durable_file>>& stages);

/// Renames each (from, to) and then fsyncs their target directories at once:
/// afterwards every rename is durable; a crash before may keep any of them.
status rename_durable(env& e, const std::vector<std::pair<std::string, std::string>>& moves);

/// Removes `path` and makes the removal durable (fsync of its directory).
status remove_durable(env& e, const std::string& path);

/// Directory part of a path ("a/b/c" -> "a/b").
std::string parent_dir(const std::string& path);

} // namespace dsmil
