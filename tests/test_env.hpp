// The env the runtime tests run on: the POSIX env, or, with
// DSMIL_TEST_ENV=memory, one memory env for the whole process (meson runs the
// store and node suites both ways). Files the tests read or damage go through
// it as well.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/os/env.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/memory_env.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_util.hpp"

namespace dsmil::test {

inline bool on_memory_env() {
  const char* v = std::getenv("DSMIL_TEST_ENV");
  return v != nullptr && std::string(v) == "memory";
}

inline env& test_env() {
  if (!on_memory_env()) return env::posix();
  static memory_env mem(env::posix());
  return mem;
}

/// `n` bytes that do not compress, the same for the same `seed`.
inline std::string random_bytes_of(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = splitmix64(seed);
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

/// `n` bytes of words and line ends (compressible, like logs and
/// configuration), the same for the same `seed`.
inline std::string text_of(size_t n, uint64_t seed) {
  static const char* words[] = {"device", "rollback", "checkpoint", "0x8031",   "enabled",
                                "level",  "register", "agent",      "workflow", "RUNNING"};
  std::string s;
  while (s.size() < n) {
    s += words[splitmix64(seed) % 10];
    s += (splitmix64(seed) % 8 == 0) ? '\n' : ' ';
  }
  s.resize(n);
  return s;
}

/// A stream's source over `data` (which must outlive it), at most `step`
/// bytes a call.
inline byte_source source_of(const std::string& data, size_t step = 100000) {
  auto pos = std::make_shared<size_t>(0);
  return [&data, pos, step](uint8_t* buf, size_t cap) -> result<size_t> {
    size_t n = std::min({cap, step, data.size() - *pos});
    std::memcpy(buf, data.data() + *pos, n);
    *pos += n;
    return n;
  };
}

/// A fresh directory on test_env(); its files are removed at the end.
class env_dir {
public:
  env_dir() {
    if (on_memory_env()) {
      static std::atomic<int> n{0};
      path_ = "/mem/dsmil-test." + std::to_string(++n);
      test_env().create_dirs(path_);
    } else {
      disk_ = std::make_unique<temp_dir>();
      path_ = disk_->path();
    }
  }
  ~env_dir() {
    if (on_memory_env()) remove_all(path_);
  }
  env_dir(const env_dir&) = delete;
  env_dir& operator=(const env_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  static void remove_all(const std::string& dir) {
    auto names = test_env().list_dir(dir);
    if (!names) return;
    for (auto& n : *names) {
      const std::string p = dir + "/" + n;
      if (test_env().list_dir(p).ok())
        remove_all(p);
      else
        test_env().remove(p);
    }
  }
  std::string path_;
  std::unique_ptr<temp_dir> disk_;
};

/// The bytes of `path` on test_env() (empty when it cannot be read).
inline std::string read(const std::string& path) {
  auto r = test_env().read_file(path);
  return r ? *r : std::string();
}

/// Replaces `path` on test_env() with `data` (not durably: a test's damage).
inline void write(const std::string& path, const std::string& data) {
  auto f = test_env().new_writable_file(path, 0644);
  if (!f) return;
  (*f)->append(data);
  (*f)->close();
}

/// Every pack file of the store in `dir` on test_env(), sorted.
inline std::vector<std::string> packs(const std::string& dir) {
  std::vector<std::string> out;
  auto subs = test_env().list_dir(dir + "/packs");
  if (!subs) return out;
  for (auto& sub : *subs) {
    auto names = test_env().list_dir(dir + "/packs/" + sub);
    if (!names) continue;
    for (auto& n : *names)
      if (n.size() > 5 && n.substr(n.size() - 5) == ".pack")
        out.push_back(dir + "/packs/" + sub + "/" + n);
  }
  return out;
}

/// SHA-256 of checkpoint `id`'s one stream as the store gives it back, or
/// "unreadable": what a crash oracle compares with what it checkpointed.
inline std::string content_digest(checkpoint_store& s, const std::string& id) {
  auto c = s.load(id);
  if (!c || c->streams.size() != 1) return "unreadable";
  std::string bytes;
  if (s.read_stream(c->streams[0], [&](std::string_view b) {
        bytes.append(b.data(), b.size());
        return status{};
      }))
    return "unreadable";
  return sha256_hex(bytes);
}

} // namespace dsmil::test
