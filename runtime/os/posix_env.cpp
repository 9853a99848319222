// The only file in the project that calls POSIX file functions and clocks.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <functional>
#include <future>
#include <thread>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

error io_fail(const std::string& what, const std::string& path) {
  return make_error(errc::io_error, what + " " + path + ": " + std::strerror(errno));
}

// A failure writing a file's data (create, write, fsync, close): a full file
// system or quota is errc::no_space, which callers may treat as soft.
error write_fail(const std::string& what, const std::string& path) {
  if (errno == ENOSPC || errno == EDQUOT)
    return make_error(errc::no_space, what + " " + path + ": no space left on device (" +
                                          (errno == ENOSPC ? "ENOSPC" : "EDQUOT") +
                                          "); free space (delete checkpoints, then store gc) "
                                          "and try again");
  return io_fail(what, path);
}

// Up to `size` bytes at `offset` of `fd`; fewer only at the end of the file.
result<std::string> pread_all(int fd, const std::string& path, uint64_t offset, uint64_t size) {
  std::string out(size, '\0');
  uint64_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_fail("cannot read", path);
    }
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  out.resize(got);
  return out;
}

class posix_file final : public writable_file {
public:
  posix_file(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~posix_file() override {
    if (fd_ >= 0) ::close(fd_);
  }

  status append(std::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return write_fail("cannot write", path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
      written_ += static_cast<uint64_t>(n);
    }
    // Start writing back every few MiB (RocksDB's bytes_per_sync): the disk
    // works while the file fills, and the final fsync has little left to do.
    if (written_ - started_ >= writeback_step) {
      ::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(written_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
    return {};
  }

  status sync() override {
    if (::fsync(fd_) != 0) return write_fail("fsync failed for", path_);
    return {};
  }

  status close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return write_fail("cannot close", path_);
    return {};
  }

private:
  static constexpr uint64_t writeback_step = 4u << 20;
  int fd_;
  std::string path_;
  uint64_t written_ = 0; // bytes appended
  uint64_t started_ = 0; // bytes whose writeback was started
};

// Writes whole aligned blocks with O_DIRECT from two aligned staging buffers:
// while one is written (on a helper thread), the caller fills the other, so
// the disk and the producer of the data work at the same time. A large
// restore streams to the disk without filling the page cache (on a VM,
// first-touch page cache allocation costs more than the disk write). The
// unaligned tail, and everything after a file system refuses O_DIRECT, goes
// through the page cache.
class posix_direct_file final : public writable_file {
public:
  static constexpr size_t block = 4u << 20; // a multiple of every logical block size

  using aligned = std::unique_ptr<char, decltype(&std::free)>;

  posix_direct_file(int fd, std::string path, aligned a, aligned b)
      : fd_(fd), path_(std::move(path)), fill_buf_(std::move(a)), spare_buf_(std::move(b)) {}
  ~posix_direct_file() override {
    wait();
    if (fd_ >= 0) ::close(fd_);
  }

  status append(std::string_view data) override {
    while (!data.empty()) {
      if (!direct_) {
        if (auto err = wait()) return err;
        return write_all(data.data(), data.size());
      }
      size_t n = std::min(block - fill_, data.size());
      std::memcpy(fill_buf_.get() + fill_, data.data(), n);
      fill_ += n;
      data.remove_prefix(n);
      if (fill_ == block) {
        if (auto err = wait()) return err; // the spare buffer is free again
        std::swap(fill_buf_, spare_buf_);
        fill_ = 0;
        const char* full = spare_buf_.get();
        pending_ = std::async(std::launch::async, [this, full] { return write_all(full, block); });
      }
    }
    return {};
  }

  status sync() override {
    if (auto err = flush_tail()) return err;
    if (::fsync(fd_) != 0) return write_fail("fsync failed for", path_);
    return {};
  }

  status close() override {
    status err = fd_ >= 0 ? flush_tail() : wait();
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0 && !err) return write_fail("cannot close", path_);
    return err;
  }

private:
  // The result of the write in flight, if any.
  status wait() { return pending_.valid() ? pending_.get() : status{}; }

  void go_buffered() {
    if (!direct_.exchange(false)) return;
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
  }

  status flush_tail() {
    if (auto err = wait()) return err;
    go_buffered();
    size_t n = fill_;
    fill_ = 0;
    return n > 0 ? write_all(fill_buf_.get(), n) : status{};
  }

  status write_all(const char* p, size_t left) {
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL && direct_) { // the file system takes no O_DIRECT I/O
          go_buffered();
          continue;
        }
        return write_fail("cannot write", path_);
      }
      if (static_cast<size_t>(n) < left) go_buffered(); // keep offsets simple after a short write
      p += n;
      left -= static_cast<size_t>(n);
    }
    return {};
  }

  int fd_;
  std::string path_;
  aligned fill_buf_;  // being filled by append()
  aligned spare_buf_; // being written by pending_, or free
  size_t fill_ = 0;
  std::atomic<bool> direct_{true};
  std::future<status> pending_;
};

class posix_rw_file final : public random_rw_file {
public:
  posix_rw_file(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~posix_rw_file() override { ::close(fd_); }

  status write_at(uint64_t offset, std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return write_fail("cannot write", path_);
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }
  result<std::string> read_at(uint64_t offset, uint64_t size) override {
    return pread_all(fd_, path_, offset, size);
  }
  result<uint64_t> size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return io_fail("cannot stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }
  status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return write_fail("cannot resize", path_);
    return {};
  }
  status sync() override {
    if (::fsync(fd_) != 0) return write_fail("fsync failed for", path_);
    return {};
  }

private:
  int fd_;
  std::string path_;
};

class posix_reader final : public random_access_file {
public:
  posix_reader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~posix_reader() override { ::close(fd_); }
  result<std::string> read_at(uint64_t offset, uint64_t size) override {
    return pread_all(fd_, path_, offset, size);
  }

private:
  int fd_;
  std::string path_;
};

class posix_env final : public env {
public:
  result<std::unique_ptr<random_access_file>>
  new_random_access_file(const std::string& path) override {
    auto fd = open_read(path);
    if (!fd) return fd.err();
    return std::unique_ptr<random_access_file>(new posix_reader(*fd, path));
  }

  result<std::unique_ptr<random_rw_file>> open_random_rw_file(const std::string& path,
                                                              unsigned mode) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0) return write_fail("cannot open", path);
    return std::unique_ptr<random_rw_file>(new posix_rw_file(fd, path));
  }

  result<std::unique_ptr<writable_file>> new_sequential_file(const std::string& path,
                                                             unsigned mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, mode);
    void *a = nullptr, *b = nullptr;
    if (fd < 0 || ::posix_memalign(&a, 4096, posix_direct_file::block) != 0 ||
        ::posix_memalign(&b, 4096, posix_direct_file::block) != 0) {
      std::free(a);
      if (fd >= 0) ::close(fd);
      return new_writable_file(path, mode); // e.g. tmpfs: no O_DIRECT
    }
    ::fchmod(fd, mode);
    return std::unique_ptr<writable_file>(new posix_direct_file(
        fd, path, {static_cast<char*>(a), &std::free}, {static_cast<char*>(b), &std::free}));
  }

  result<std::unique_ptr<writable_file>> new_writable_file(const std::string& path,
                                                           unsigned mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return write_fail("cannot create", path);
    ::fchmod(fd, mode); // open() applies the umask; the mode is a contract
    return std::unique_ptr<writable_file>(new posix_file(fd, path));
  }

  result<std::unique_ptr<writable_file>> new_appendable_file(const std::string& path,
                                                             unsigned mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    if (fd < 0) return io_fail("cannot open", path);
    return std::unique_ptr<writable_file>(new posix_file(fd, path));
  }

  result<std::string> read_file(const std::string& path) override {
    auto fd = open_read(path);
    if (!fd) return fd.err();
    struct stat st;
    if (::fstat(*fd, &st) != 0) {
      auto e = io_fail("cannot stat", path);
      ::close(*fd);
      return e;
    }
    return read_at(*fd, path, 0, static_cast<uint64_t>(st.st_size));
  }

  result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t size) override {
    auto fd = open_read(path);
    if (!fd) return fd.err();
    return read_at(*fd, path, offset, size);
  }

  status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return io_fail("cannot rename to " + to + ":", from);
    return {};
  }

  status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_fail("cannot remove", path);
    return {};
  }

  status sync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_fail("cannot open directory", dir);
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return io_fail("fsync failed for directory", dir);
    return {};
  }

  status create_dirs(const std::string& dir) override {
    std::string cur;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      cur = dir.substr(0, pos);
      if (cur.empty()) continue;
      if (::mkdir(cur.c_str(), private_dir_mode) != 0 && errno != EEXIST)
        return io_fail("cannot create directory", cur);
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return make_error(errc::io_error, dir + " exists and is not a directory");
    return {};
  }

  result<unsigned> permissions(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return io_fail("cannot stat", path);
    return static_cast<unsigned>(st.st_mode & 07777);
  }

  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return make_error(errc::not_found, "no such directory " + dir);
      return io_fail("cannot list", dir);
    }
    std::vector<std::string> names;
    while (auto* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  result<fs_space> space(const std::string& path) override {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) != 0) return io_fail("cannot stat the file system of", path);
    return fs_space{uint64_t{st.f_blocks} * st.f_frsize, uint64_t{st.f_bavail} * st.f_frsize};
  }

  result<std::shared_ptr<void>> lock_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, private_file_mode);
    if (fd < 0) return io_fail("cannot open lock file", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return make_error(errc::busy, path + " is locked by another process");
    }
    return std::shared_ptr<void>(nullptr, [fd](void*) { ::close(fd); });
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  int64_t now_unix_ns() override {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
  }

  int64_t steady_ns() override {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  }

private:
  static result<int> open_read(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno == ENOENT) return make_error(errc::not_found, "no such file " + path);
    return io_fail("cannot open", path);
  }

  // Reads up to `size` bytes at `offset` (fewer only at the end), then closes `fd`.
  static result<std::string> read_at(int fd, const std::string& path, uint64_t offset,
                                     uint64_t size) {
    auto out = pread_all(fd, path, offset, size);
    ::close(fd);
    return out;
  }
};

} // namespace

env& env::posix() {
  static posix_env instance;
  return instance;
}

} // namespace dsmil
