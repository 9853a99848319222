// env: every OS effect of the runtime goes through this interface (files,
// fsync, rename, directories, clocks), so tests can inject faults.
#pragma once

#include <cstdint>
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

class env {
public:
  virtual ~env() = default;

  /// Creates or truncates `path` with permission bits `mode`.
  virtual result<std::unique_ptr<writable_file>> new_writable_file(const std::string& path,
                                                                   unsigned mode = 0644) = 0;
  /// For large output written once, front to back (a restored stream): the
  /// data may bypass the page cache (O_DIRECT) where the file system allows.
  /// Appends of any size; durable after sync(), like any writable_file.
  virtual result<std::unique_ptr<writable_file>> new_sequential_file(const std::string& path,
                                                                     unsigned mode = 0644) {
    return new_writable_file(path, mode);
  }
  /// Opens `path` for appending, creating it when absent (a journal).
  virtual result<std::unique_ptr<writable_file>> new_appendable_file(const std::string& path,
                                                                     unsigned mode = 0644) = 0;
  virtual result<std::string> read_file(const std::string& path) = 0;
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
  /// Takes an exclusive advisory lock on `path` (created if absent) for as
  /// long as the returned object lives; busy when another process holds it.
  virtual result<std::shared_ptr<void>> lock_file(const std::string& path) = 0;
  /// Wall-clock time, nanoseconds since the Unix epoch.
  virtual int64_t now_unix_ns() = 0;
  /// Monotonic time in nanoseconds, for durations.
  virtual int64_t steady_ns() = 0;

  /// The process-wide POSIX environment.
  static env& posix();
};

/// Writes `data` to `path` so that after return either the old file or the
/// complete new one exists, durably: tmp file in `tmp_dir`, fsync, rename,
/// fsync of the target directory.
status write_durable(env& e, const std::string& tmp_dir, const std::string& path,
                     std::string_view data, unsigned mode = 0644);

/// Creates `path` with `data` and fsyncs it (the first half of write_durable,
/// for a file renamed into place later). Removes it on failure.
status write_synced(env& e, const std::string& path, std::string_view data, unsigned mode = 0644);

/// One file for write_durable_pair.
struct durable_file {
  std::string path;
  std::string_view data;
  unsigned mode = 0644;
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
