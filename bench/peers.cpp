#include "bench/peers.hpp"

#include <cstdio>
#include <cstdlib>

#include "bench/bench_util.hpp"

#ifndef DSMIL_SOURCE_DIR
#define DSMIL_SOURCE_DIR "."
#endif

namespace dsmil::bench {

using nlohmann::json;

namespace {

std::string first_line_of(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return "";
  char buf[256] = {0};
  if (std::fgets(buf, sizeof(buf), p) == nullptr) buf[0] = 0;
  ::pclose(p);
  std::string s = buf;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Times `command`; fills `out[key]` with GB/s over `bytes`, or an error.
bool timed(json& out, const char* key, const std::string& command, const std::string& log,
           uint64_t bytes) {
  std::fprintf(stderr, "  %s\n", command.c_str());
  double t0 = now_s();
  int rc = sh(command, log);
  double t = now_s() - t0;
  if (rc != 0) {
    out["error"] = std::string(key) + " failed (exit " + std::to_string(rc) + "); see " + log;
    return false;
  }
  out[key] = static_cast<double>(bytes) / t / 1e9;
  out[std::string(key) + "_seconds"] = t;
  return true;
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

} // namespace

bool ensure_peers() {
  if (std::system("command -v restic >/dev/null && command -v borg >/dev/null") == 0) return true;
  std::string script = std::string(DSMIL_SOURCE_DIR) + "/bench/install-peers";
  std::fprintf(stderr, "dsmil-bench: installing restic and borg with %s\n", script.c_str());
  if (std::system(script.c_str()) != 0) {
    std::fprintf(stderr, "dsmil-bench: could not install restic and borg; run %s as root\n",
                 script.c_str());
    return false;
  }
  return true;
}

json run_restic(const std::string& dir, const std::string& input, const std::string& changed,
                uint64_t size) {
  json r;
  r["version"] = first_line_of("restic version");
  const std::string repo = dir + "/restic-repo", work = dir + "/restic-work",
                    log = dir + "/restic.log", restore = dir + "/restic-restore";
  const std::string env =
      "RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=" + q(dir + "/restic-cache") + " ";
  sh("rm -rf " + q(repo) + " " + q(work) + " " + q(restore) + "; mkdir -p " + q(work), log);
  if (sh(env + "restic init --repo " + q(repo), log) != 0) return {{"error", "restic init failed"}};
  sh("cp " + q(input) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "full_gbps",
             "cd " + q(work) + " && " + env + "restic -r " + q(repo) +
                 " backup --host bench data.bin",
             log, size))
    return r;
  uint64_t after_full = dir_bytes(repo);
  r["full_stored_bytes"] = after_full;
  sh("cp " + q(changed) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "incremental_gbps",
             "cd " + q(work) + " && " + env + "restic -r " + q(repo) +
                 " backup --host bench data.bin",
             log, size))
    return r;
  r["incremental_new_bytes"] = dir_bytes(repo) - after_full;
  std::string first =
      first_line_of(env + "restic -r " + q(repo) +
                    " snapshots --json | python3 -c 'import json,sys; "
                    "print(sorted(json.load(sys.stdin), key=lambda s: s[\"time\"])[0][\"id\"])'");
  if (first.empty()) return r["error"] = "cannot list restic snapshots", r;
  if (!timed(r, "restore_gbps",
             env + "restic -r " + q(repo) + " restore " + first + " --target " + q(restore), log,
             size))
    return r;
  timed(r, "verify_gbps", env + "restic -r " + q(repo) + " check --read-data", log, size);
  sh("rm -rf " + q(restore) + " " + q(work), log);
  return r;
}

json run_borg(const std::string& dir, const std::string& input, const std::string& changed,
              uint64_t size) {
  json r;
  r["version"] = first_line_of("borg --version");
  const std::string repo = dir + "/borg-repo", work = dir + "/borg-work", log = dir + "/borg.log",
                    restore = dir + "/borg-restore";
  const std::string env = "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes "
                          "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR=" +
                          q(dir + "/borg-base") + " ";
  sh("rm -rf " + q(repo) + " " + q(work) + " " + q(restore) + "; mkdir -p " + q(work) + " " +
         q(restore),
     log);
  if (sh(env + "borg init --encryption=none " + q(repo), log) != 0)
    return {{"error", "borg init failed"}};
  sh("cp " + q(input) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "full_gbps",
             "cd " + q(work) + " && " + env + "borg create --compression lz4 " + q(repo) +
                 "::full data.bin",
             log, size))
    return r;
  uint64_t after_full = dir_bytes(repo);
  r["full_stored_bytes"] = after_full;
  sh("cp " + q(changed) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "incremental_gbps",
             "cd " + q(work) + " && " + env + "borg create --compression lz4 " + q(repo) +
                 "::inc data.bin",
             log, size))
    return r;
  r["incremental_new_bytes"] = dir_bytes(repo) - after_full;
  if (!timed(r, "restore_gbps",
             "cd " + q(restore) + " && " + env + "borg extract " + q(repo) + "::full", log, size))
    return r;
  timed(r, "verify_gbps", env + "borg check --verify-data " + q(repo), log, size);
  sh("rm -rf " + q(restore) + " " + q(work), log);
  return r;
}

} // namespace dsmil::bench
