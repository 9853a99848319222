#include "bench/peers.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>

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
  settle();
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

namespace {

// How to drive one peer; commands run with `env` in front.
struct peer_spec {
  std::string name;
  std::string version_cmd;
  std::string env;
  std::string init;
  std::function<std::string(const std::string& label)> backup; ///< runs in the work dir
  std::function<std::string(const std::string& target)> restore_first;
  std::string verify;
};

// Full backup, incremental after the change, restore of the first backup,
// full read check: the same steps, timed the same way, for every peer.
json run_peer(const std::string& dir, const peer_spec& p, const std::string& input,
              const std::string& changed, uint64_t size) {
  json r;
  r["version"] = first_line_of(p.version_cmd);
  const std::string repo = dir + "/" + p.name + "-repo", work = dir + "/" + p.name + "-work",
                    log = dir + "/" + p.name + ".log", restore = dir + "/" + p.name + "-restore";
  sh("rm -rf " + q(repo) + " " + q(work) + " " + q(restore) + "; mkdir -p " + q(work) + " " +
         q(restore),
     log);
  if (sh(p.env + p.init, log) != 0) return {{"error", p.name + " init failed; see " + log}};
  const std::string in_work = "cd " + q(work) + " && " + p.env;
  sh("cp " + q(input) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "full_gbps", in_work + p.backup("full"), log, size)) return r;
  uint64_t after_full = dir_bytes(repo);
  r["full_stored_bytes"] = after_full;
  sh("cp " + q(changed) + " " + q(work + "/data.bin"), log);
  if (!timed(r, "incremental_gbps", in_work + p.backup("inc"), log, size)) return r;
  r["incremental_new_bytes"] = dir_bytes(repo) - after_full;
  std::string restore_cmd = p.restore_first(restore);
  if (restore_cmd.empty()) return {{"error", p.name + ": cannot find the first backup"}};
  // A restore is done when the restored file is on disk: the store's own
  // restore fsyncs, so the peers' is timed through a sync.
  if (!timed(r, "restore_gbps", restore_cmd + " && sync", log, size)) return r;
  timed(r, "verify_gbps", p.env + p.verify, log, size);
  sh("rm -rf " + q(restore) + " " + q(work), log);
  return r;
}

} // namespace

json run_restic(const std::string& dir, const std::string& input, const std::string& changed,
                uint64_t size) {
  const std::string repo = q(dir + "/restic-repo");
  peer_spec p;
  p.name = "restic";
  p.version_cmd = "restic version";
  p.env = "RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=" + q(dir + "/restic-cache") + " ";
  p.init = "restic init --repo " + repo;
  p.backup = [=](const std::string&) {
    return "restic -r " + repo + " backup --host bench data.bin";
  };
  const std::string env = p.env;
  p.restore_first = [=](const std::string& target) {
    std::string first =
        first_line_of(env + "restic -r " + repo +
                      " snapshots --json | python3 -c 'import json,sys; "
                      "print(sorted(json.load(sys.stdin), key=lambda s: s[\"time\"])[0][\"id\"])'");
    return first.empty()
               ? first
               : env + "restic -r " + repo + " restore " + first + " --target " + q(target);
  };
  p.verify = "restic -r " + repo + " check --read-data";
  return run_peer(dir, p, input, changed, size);
}

json run_borg(const std::string& dir, const std::string& input, const std::string& changed,
              uint64_t size) {
  const std::string repo = q(dir + "/borg-repo");
  peer_spec p;
  p.name = "borg";
  p.version_cmd = "borg --version";
  p.env = "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes "
          "BORG_BASE_DIR=" +
          q(dir + "/borg-base") + " ";
  p.init = "borg init --encryption=none " + repo;
  p.backup = [=](const std::string& label) {
    return "borg create --compression lz4 " + repo + "::" + label + " data.bin";
  };
  const std::string env = p.env;
  p.restore_first = [=](const std::string& target) {
    return "cd " + q(target) + " && " + env + "borg extract " + repo + "::full";
  };
  p.verify = "borg check --verify-data " + repo;
  return run_peer(dir, p, input, changed, size);
}

} // namespace dsmil::bench
