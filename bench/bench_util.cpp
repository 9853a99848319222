#include "bench/bench_util.hpp"

#include "runtime/os/env.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/resource.h>
#include <sys/wait.h>

#include <openssl/evp.h>

namespace dsmil::bench {

void settle() {
  ::sync();
}

result<std::unique_ptr<work_dir>> work_dir::make(const std::string& name, const std::string& dir,
                                                 bool keep) {
  if (!dir.empty()) {
    if (auto err = env::posix().create_dirs(dir)) return err;
    return std::unique_ptr<work_dir>(new work_dir(dir, false));
  }
  std::string tmpl = "/var/tmp/dsmil-" + name + ".XXXXXX"; // mkdtemp fills in the X's
  if (::mkdtemp(tmpl.data()) == nullptr)
    return make_error(errc::io_error, "cannot create a work directory under /var/tmp");
  return std::unique_ptr<work_dir>(new work_dir(tmpl, !keep));
}

work_dir::~work_dir() {
  if (remove_) std::system(("rm -rf '" + path_ + "'").c_str());
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(k, v.size() - 1)];
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

result<uint64_t> parse_size(const std::string& text) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    pos = 0;
  }
  std::string unit = text.substr(pos);
  double mul = 0;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "KiB" || unit == "K")
    mul = 1024.0;
  else if (unit == "MiB" || unit == "M")
    mul = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G")
    mul = 1024.0 * 1024 * 1024;
  else if (unit == "KB")
    mul = 1e3;
  else if (unit == "MB")
    mul = 1e6;
  else if (unit == "GB")
    mul = 1e9;
  if (pos == 0 || mul == 0 || v <= 0)
    return make_error(errc::invalid_argument,
                      "'" + text + "' is not a size; use e.g. 1GiB, 256MiB, 100MB or bytes");
  return static_cast<uint64_t>(v * mul);
}

result<double> parse_percent(const std::string& text) {
  std::string t = text;
  if (!t.empty() && t.back() == '%') t.pop_back();
  size_t pos = 0;
  double v = -1;
  try {
    v = std::stod(t, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != t.size() || v < 0 || v > 100)
    return make_error(errc::invalid_argument, "'" + text + "' is not a percentage 0-100 (e.g. 1%)");
  return v / 100.0;
}

result<std::string> file_sha256(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return make_error(errc::io_error, "cannot read " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::string buf(1 << 20, '\0');
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
    EVP_DigestUpdate(ctx, buf.data(), n);
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::fclose(f);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f %s", bytes, units[u]);
  return buf;
}

int sh(const std::string& command, const std::string& log) {
  std::string full = "(" + command + ") >>'" + log + "' 2>&1";
  int rc = std::system(full.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

} // namespace dsmil::bench
