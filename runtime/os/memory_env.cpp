#include "runtime/os/memory_env.hpp"

#include <algorithm>
#include <limits>

namespace dsmil {

struct memory_env::inode {
  std::string data;   ///< what reads see
  std::string synced; ///< the bytes as of the last sync(): what a crash keeps
};

struct memory_env::state {
  mutable std::mutex mu; // guards everything below
  std::set<std::string> dirs;
  std::map<std::string, std::shared_ptr<inode>> live;    ///< names as reads see them
  std::map<std::string, std::shared_ptr<inode>> durable; ///< names as of each dir's last sync
  uint64_t quota = 0;
  uint64_t changes = 0;
  uint64_t crash_at = std::numeric_limits<uint64_t>::max();
  bool crashed = false;
  std::map<std::string, std::string> image; ///< the crash image: path -> bytes
  std::set<std::string> image_dirs;
  std::map<std::string, uint64_t> locks; ///< path -> the holder's generation
  uint64_t lock_gen = 0;

  // REQUIRES: mu held. One changing call: refused once crashed; at the
  // chosen instant, the crash image is taken first.
  status change(const std::string& path) {
    if (!crashed && changes >= crash_at) {
      image.clear();
      for (auto& [p, n] : durable)
        image[p] = n->synced;
      image_dirs = dirs;
      crashed = true;
    }
    if (crashed)
      return make_error(errc::io_error,
                        "cannot change " + path + ": Input/output error (memory_env crashed)");
    ++changes;
    return {};
  }

  // REQUIRES: mu held. Refuses growing the live data by `more` bytes past the quota.
  status room(const std::string& path, uint64_t more) const {
    if (quota == 0 || more == 0) return {};
    uint64_t used = 0;
    std::set<const inode*> seen;
    for (auto& [p, n] : live)
      if (seen.insert(n.get()).second) used += n->data.size();
    if (used + more > quota)
      return make_error(errc::no_space, "cannot write " + path +
                                            ": no space left on device (ENOSPC); free space "
                                            "(delete checkpoints, then store gc) and try again");
    return {};
  }

  bool has_dir(const std::string& d) const { return dirs.count(d) > 0; }

  // REQUIRES: mu held. The live file `p`, created empty when absent (a change).
  result<std::shared_ptr<inode>> open_or_create(const std::string& p) {
    if (!has_dir(parent_dir(p)))
      return make_error(errc::io_error, "cannot open " + p + ": No such file or directory");
    auto it = live.find(p);
    if (it != live.end()) return it->second;
    if (auto err = change(p)) return err;
    auto n = std::make_shared<inode>();
    live[p] = n;
    return n;
  }
};

namespace {

std::string trim(std::string p) {
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  return p;
}

error no_file(const std::string& path) {
  return make_error(errc::not_found, "no such file " + path);
}

class memory_file final : public writable_file {
public:
  memory_file(std::shared_ptr<memory_env::state> s, std::shared_ptr<memory_env::inode> n,
              std::string path)
      : s_(std::move(s)), n_(std::move(n)), path_(std::move(path)) {}

  status append(std::string_view data) override {
    std::lock_guard<std::mutex> guard(s_->mu);
    if (auto err = s_->room(path_, data.size())) return err;
    if (auto err = s_->change(path_)) return err;
    n_->data.append(data.data(), data.size());
    return {};
  }
  status sync() override {
    std::lock_guard<std::mutex> guard(s_->mu);
    if (auto err = s_->change(path_)) return err;
    n_->synced = n_->data;
    return {};
  }
  status close() override { return {}; }

private:
  std::shared_ptr<memory_env::state> s_;
  std::shared_ptr<memory_env::inode> n_;
  std::string path_;
};

class memory_rw_file final : public random_rw_file {
public:
  memory_rw_file(std::shared_ptr<memory_env::state> s, std::shared_ptr<memory_env::inode> n,
                 std::string path)
      : s_(std::move(s)), n_(std::move(n)), path_(std::move(path)) {}

  status write_at(uint64_t offset, std::string_view data) override {
    std::lock_guard<std::mutex> guard(s_->mu);
    const uint64_t end = offset + data.size();
    if (auto err = s_->room(path_, end > n_->data.size() ? end - n_->data.size() : 0)) return err;
    if (auto err = s_->change(path_)) return err;
    if (n_->data.size() < end) n_->data.resize(end, '\0');
    std::copy(data.begin(), data.end(), n_->data.begin() + static_cast<long>(offset));
    return {};
  }
  result<std::string> read_at(uint64_t offset, uint64_t size) override {
    std::lock_guard<std::mutex> guard(s_->mu);
    if (offset >= n_->data.size()) return std::string();
    return n_->data.substr(offset, size);
  }
  result<uint64_t> size() override {
    std::lock_guard<std::mutex> guard(s_->mu);
    return static_cast<uint64_t>(n_->data.size());
  }
  status truncate(uint64_t size) override {
    std::lock_guard<std::mutex> guard(s_->mu);
    if (auto err = s_->room(path_, size > n_->data.size() ? size - n_->data.size() : 0)) return err;
    if (auto err = s_->change(path_)) return err;
    n_->data.resize(size, '\0');
    return {};
  }
  status sync() override {
    std::lock_guard<std::mutex> guard(s_->mu);
    if (auto err = s_->change(path_)) return err;
    n_->synced = n_->data;
    return {};
  }

private:
  std::shared_ptr<memory_env::state> s_;
  std::shared_ptr<memory_env::inode> n_;
  std::string path_;
};

} // namespace

memory_env::memory_env(env& clock) : clock_(clock), s_(std::make_shared<state>()) {
  s_->dirs.insert("/");
}

memory_env::~memory_env() = default;

void memory_env::set_quota(uint64_t bytes) {
  std::lock_guard<std::mutex> guard(s_->mu);
  s_->quota = bytes;
}

uint64_t memory_env::used_bytes() const {
  std::lock_guard<std::mutex> guard(s_->mu);
  uint64_t used = 0;
  std::set<const inode*> seen;
  for (auto& [p, n] : s_->live)
    if (seen.insert(n.get()).second) used += n->data.size();
  return used;
}

void memory_env::crash_after(uint64_t n) {
  std::lock_guard<std::mutex> guard(s_->mu);
  s_->crash_at = s_->changes + n;
}

void memory_env::crash_now() {
  std::lock_guard<std::mutex> guard(s_->mu);
  s_->crash_at = s_->changes;
  s_->change("(crash)"); // takes the image
}

bool memory_env::crashed() const {
  std::lock_guard<std::mutex> guard(s_->mu);
  return s_->crashed;
}

uint64_t memory_env::change_count() const {
  std::lock_guard<std::mutex> guard(s_->mu);
  return s_->changes;
}

void memory_env::restart() {
  std::lock_guard<std::mutex> guard(s_->mu);
  if (!s_->crashed) return;
  s_->live.clear();
  s_->durable.clear();
  for (auto& [p, bytes] : s_->image) {
    auto n = std::make_shared<inode>();
    n->data = n->synced = bytes;
    s_->live[p] = n;
    s_->durable[p] = n;
  }
  s_->dirs = s_->image_dirs;
  s_->locks.clear();
  s_->crashed = false;
  s_->crash_at = std::numeric_limits<uint64_t>::max();
}

result<std::unique_ptr<writable_file>> memory_env::new_writable_file(const std::string& path,
                                                                     unsigned) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  if (!s_->has_dir(parent_dir(p)))
    return make_error(errc::io_error, "cannot create " + p + ": No such file or directory");
  if (auto err = s_->change(p)) return err;
  auto& n = s_->live[p];
  if (!n) n = std::make_shared<inode>();
  n->data.clear(); // O_TRUNC; what a crash keeps is still the last synced bytes
  return std::unique_ptr<writable_file>(new memory_file(s_, n, p));
}

result<std::unique_ptr<writable_file>> memory_env::new_appendable_file(const std::string& path,
                                                                       unsigned) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  auto n = s_->open_or_create(p);
  if (!n) return n.err();
  return std::unique_ptr<writable_file>(new memory_file(s_, *n, p));
}

result<std::unique_ptr<random_rw_file>> memory_env::open_random_rw_file(const std::string& path,
                                                                        unsigned) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  auto n = s_->open_or_create(p);
  if (!n) return n.err();
  return std::unique_ptr<random_rw_file>(new memory_rw_file(s_, *n, p));
}

namespace {

// Reads the file's bytes as they are at each read (the inode, not a copy).
class memory_reader final : public random_access_file {
public:
  memory_reader(std::shared_ptr<memory_env::state> s, std::shared_ptr<memory_env::inode> n)
      : s_(std::move(s)), n_(std::move(n)) {}
  result<std::string> read_at(uint64_t offset, uint64_t size) override;

private:
  std::shared_ptr<memory_env::state> s_;
  std::shared_ptr<memory_env::inode> n_;
};

} // namespace

result<std::string> memory_reader::read_at(uint64_t offset, uint64_t size) {
  std::lock_guard<std::mutex> guard(s_->mu);
  if (offset >= n_->data.size()) return std::string();
  return n_->data.substr(offset, size);
}

result<std::unique_ptr<random_access_file>>
memory_env::new_random_access_file(const std::string& path) {
  std::lock_guard<std::mutex> guard(s_->mu);
  auto it = s_->live.find(trim(path));
  if (it == s_->live.end()) return no_file(path);
  return std::unique_ptr<random_access_file>(new memory_reader(s_, it->second));
}

result<std::string> memory_env::read_file(const std::string& path) {
  std::lock_guard<std::mutex> guard(s_->mu);
  auto it = s_->live.find(trim(path));
  if (it == s_->live.end()) return no_file(path);
  return it->second->data;
}

result<std::string> memory_env::read_range(const std::string& path, uint64_t offset,
                                           uint64_t size) {
  std::lock_guard<std::mutex> guard(s_->mu);
  auto it = s_->live.find(trim(path));
  if (it == s_->live.end()) return no_file(path);
  const auto& d = it->second->data;
  if (offset >= d.size()) return std::string();
  return d.substr(offset, size);
}

status memory_env::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string f = trim(from), t = trim(to);
  auto it = s_->live.find(f);
  if (it == s_->live.end())
    return make_error(errc::io_error,
                      "cannot rename to " + t + ": " + f + ": No such file or directory");
  if (!s_->has_dir(parent_dir(t)))
    return make_error(errc::io_error, "cannot rename to " + t + ": No such file or directory");
  if (auto err = s_->change(t)) return err;
  auto n = it->second;
  s_->live.erase(it);
  s_->live[t] = std::move(n);
  return {};
}

status memory_env::remove(const std::string& path) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  if (!s_->live.count(p)) return {};
  if (auto err = s_->change(p)) return err;
  s_->live.erase(p);
  return {};
}

status memory_env::sync_dir(const std::string& dir) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string d = trim(dir);
  if (!s_->has_dir(d)) return make_error(errc::io_error, "cannot open directory " + d);
  if (auto err = s_->change(d)) return err;
  auto in_dir = [&](const std::string& p) { return parent_dir(p) == d; };
  for (auto it = s_->durable.begin(); it != s_->durable.end();)
    it = in_dir(it->first) ? s_->durable.erase(it) : std::next(it);
  for (auto& [p, n] : s_->live)
    if (in_dir(p)) s_->durable[p] = n;
  return {};
}

status memory_env::create_dirs(const std::string& dir) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string d = trim(dir);
  if (s_->live.count(d)) return make_error(errc::io_error, d + " exists and is not a directory");
  if (s_->has_dir(d)) return {};
  if (auto err = s_->change(d)) return err;
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = d.find('/', pos + 1);
    s_->dirs.insert(d.substr(0, pos));
  }
  return {};
}

result<std::vector<std::string>> memory_env::list_dir(const std::string& dir) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string d = trim(dir);
  if (!s_->has_dir(d)) return make_error(errc::not_found, "no such directory " + d);
  std::vector<std::string> names;
  const std::string prefix = d == "/" ? "/" : d + "/";
  auto child = [&](const std::string& p) {
    if (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
        p.find('/', prefix.size()) == std::string::npos)
      names.push_back(p.substr(prefix.size()));
  };
  for (auto& [p, n] : s_->live)
    child(p);
  for (auto& p : s_->dirs)
    child(p);
  std::sort(names.begin(), names.end());
  return names;
}

bool memory_env::exists(const std::string& path) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  return s_->live.count(p) > 0 || s_->has_dir(p);
}

result<fs_space> memory_env::space(const std::string&) {
  const uint64_t used = used_bytes();
  std::lock_guard<std::mutex> guard(s_->mu);
  const uint64_t total = s_->quota > 0 ? s_->quota : uint64_t{1} << 40;
  return fs_space{total, total > used ? total - used : 0};
}

result<std::shared_ptr<void>> memory_env::lock_file(const std::string& path) {
  std::lock_guard<std::mutex> guard(s_->mu);
  const std::string p = trim(path);
  if (s_->locks.count(p)) return make_error(errc::busy, p + " is locked by another process");
  if (!s_->live.count(p)) {
    if (auto err = s_->change(p)) return err;
    s_->live[p] = std::make_shared<inode>();
  }
  const uint64_t gen = ++s_->lock_gen;
  s_->locks[p] = gen;
  std::weak_ptr<state> weak = s_;
  return std::shared_ptr<void>(nullptr, [weak, p, gen](void*) {
    if (auto s = weak.lock()) {
      std::lock_guard<std::mutex> guard(s->mu);
      auto it = s->locks.find(p);
      if (it != s->locks.end() && it->second == gen) s->locks.erase(it); // not a later holder's
    }
  });
}

} // namespace dsmil
