// Helpers shared by the tests.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>
#include <fstream>
#include <sstream>
#include <string>

namespace dsmil::test {

/// A fresh directory under /tmp, removed when the object goes out of scope.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/dsmil-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// A tmpfs of `size` (e.g. "4m") mounted on a fresh directory, unmounted at the
/// end. Mounting needs root (CI runs as root): mounted() says whether it is.
class small_tmpfs {
public:
  explicit small_tmpfs(const std::string& size)
      : mounted_(::geteuid() == 0 &&
                 ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0) {
  }
  ~small_tmpfs() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }

private:
  temp_dir dir_;
  bool mounted_;
};

/// Every pack file of the store in `dir`, sorted.
inline std::vector<std::string> all_packs(const std::string& dir) {
  std::vector<std::string> out;
  const std::string base = dir + "/packs";
  DIR* d = ::opendir(base.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string sub = base + "/" + e->d_name;
    DIR* inner = ::opendir(sub.c_str());
    if (!inner) continue;
    while (auto* f = ::readdir(inner)) {
      std::string name = f->d_name;
      if (name.size() > 5 && name.substr(name.size() - 5) == ".pack")
        out.push_back(sub + "/" + name);
    }
    ::closedir(inner);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

} // namespace dsmil::test
