// fault_env: an env that forwards to another (the POSIX env, or a memory env)
// and fails chosen fsyncs, for tests of the store's error behaviour. A full
// disk is tested with memory_env's byte quota and for real on a small tmpfs;
// a power cut with memory_env's crash image.
#pragma once

#include <atomic>
#include <string>

#include "runtime/os/env.hpp"

namespace dsmil {

class fault_env final : public env {
public:
  /// `base` must outlive this object.
  explicit fault_env(env& base) : base_(base) {}

  /// After `n` more successful fsyncs (files or directories), every fsync
  /// fails with EIO until clear() is called. n = 0 fails the next one.
  void fail_sync_after(int n) { sync_budget_ = n; }
  void clear() { sync_budget_ = -1; }

  result<std::unique_ptr<writable_file>> new_writable_file(const std::string& path,
                                                           unsigned mode) override;
  result<std::unique_ptr<writable_file>> new_appendable_file(const std::string& path,
                                                             unsigned mode) override;
  result<std::unique_ptr<random_rw_file>> open_random_rw_file(const std::string& path,
                                                              unsigned mode) override {
    return base_.open_random_rw_file(path, mode);
  }
  result<std::unique_ptr<random_access_file>>
  new_random_access_file(const std::string& path) override {
    return base_.new_random_access_file(path);
  }
  result<std::string> read_file(const std::string& path) override { return base_.read_file(path); }
  result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t size) override {
    return base_.read_range(path, offset, size);
  }
  status rename(const std::string& from, const std::string& to) override {
    return base_.rename(from, to);
  }
  status remove(const std::string& path) override { return base_.remove(path); }
  status sync_dir(const std::string& dir) override;
  status create_dirs(const std::string& dir) override { return base_.create_dirs(dir); }
  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    return base_.list_dir(dir);
  }
  bool exists(const std::string& path) override { return base_.exists(path); }
  result<fs_space> space(const std::string& path) override { return base_.space(path); }
  result<unsigned> permissions(const std::string& path) override { return base_.permissions(path); }
  result<std::shared_ptr<void>> lock_file(const std::string& path) override {
    return base_.lock_file(path);
  }
  int64_t now_unix_ns() override { return base_.now_unix_ns(); }
  int64_t steady_ns() override { return base_.steady_ns(); }

  /// Consumes one unit of the sync budget; true when this fsync must fail.
  bool take_sync_fault();

private:
  env& base_;
  std::atomic<int> sync_budget_{-1};
};

} // namespace dsmil
