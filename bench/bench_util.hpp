// Timing, sizes and file helpers for dsmil-bench.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil::bench {

/// A benchmark's work directory: `dir` when one is given (created if
/// missing, kept), else a fresh /var/tmp/dsmil-<name>.<random>, removed with
/// this object unless `keep`.
class work_dir {
public:
  static result<std::unique_ptr<work_dir>> make(const std::string& name, const std::string& dir,
                                                bool keep = false);
  ~work_dir();
  work_dir(const work_dir&) = delete;
  work_dir& operator=(const work_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  work_dir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::string path_;
  bool remove_;
};

/// Seconds on the monotonic clock.
double now_s();
/// The `p` quantile (0-1) of `v`, nearest rank; 0 for an empty `v`.
double percentile(std::vector<double> v, double p);
/// Writes back every dirty page (sync(2)): each timed step, ours and the
/// peers' alike, starts without the previous step's writeback in its way.
void settle();
/// Bytes under a directory (files only), recursively.
uint64_t dir_bytes(const std::string& dir);
/// Peak resident set size of this process, in bytes.
uint64_t peak_rss_bytes();
/// "1GiB", "512MiB", "100MB", "4096" -> bytes.
result<uint64_t> parse_size(const std::string& text);
/// "1%", "0.5%" -> 0.01, 0.005.
result<double> parse_percent(const std::string& text);
/// SHA-256 of a file, hex (streamed).
result<std::string> file_sha256(const std::string& path);
/// Human size: "1.00 GiB".
std::string human(double bytes);
/// Runs a shell command with stdout and stderr appended to `log`; returns its exit code.
int sh(const std::string& command, const std::string& log);

} // namespace dsmil::bench
