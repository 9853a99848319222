#include "bench/soak_bench.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "bench/bench_util.hpp"
#include "bench/node_client.hpp"
#include "actors/remote_client.hpp"
#include "runtime/auth/node_pki.hpp"

namespace dsmil::bench {

using nlohmann::json;

namespace {

constexpr double target_bytes = 64; // per operation, after the warm-up

// dsmild as a child process, its stdout on a pipe.
class node_process {
public:
  ~node_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (out_ >= 0) ::close(out_);
  }

  status start(const std::string& dsmild, const std::string& data_dir, std::string& endpoint) {
    int fds[2];
    if (::pipe(fds) != 0) return make_error(errc::io_error, "pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(dsmild.c_str(), dsmild.c_str(), "--data-dir", data_dir.c_str(), "--listen",
              "127.0.0.1:0", "--log-level", "warn", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    // "dsmild listening on HOST:PORT"
    std::string line;
    char c;
    while (::read(out_, &c, 1) == 1) {
      if (c != '\n') {
        line += c;
        continue;
      }
      const std::string mark = "dsmild listening on ";
      if (line.rfind(mark, 0) == 0) {
        endpoint = line.substr(mark.size());
        return {};
      }
      line.clear();
    }
    return make_error(errc::unavailable, dsmild + " did not start (run it by hand to see why)");
  }

  // Resident set size from /proc, bytes.
  uint64_t rss() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string key;
    while (in >> key) {
      if (key == "VmRSS:") {
        uint64_t kib = 0;
        in >> kib;
        return kib * 1024;
      }
      std::string rest;
      std::getline(in, rest);
    }
    return 0;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
};

// One request over a connection of its own, as a dsmilctl invocation makes it.
result<json> call(const credential_files& cred, const std::string& host, uint16_t port,
                  const std::string& command, const json& args) {
  caf::actor_system_config cfg;
  configure_client(cfg, cred);
  caf::actor_system sys{cfg};
  auto signer = load_signer(cred);
  if (!signer) return signer.err();
  auto remote = connect_node(sys, host, port);
  if (!remote) return remote.err();
  return ask(sys, *remote, *signer, command, args, std::chrono::seconds(60));
}

// The admin credential dsmild makes in its data dir.
credential_files admin_of(const std::string& data_dir) {
  return {data_dir + "/" + tls_layout::admin_cert, data_dir + "/" + tls_layout::admin_key,
          data_dir + "/" + tls_layout::ca_cert};
}

std::string default_dsmild() {
  char buf[4096];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "dsmild";
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.find_last_of('/')) + "/../cli/dsmild";
}

} // namespace

result<json> run_soak_bench(const soak_bench_options& o) {
  auto work = work_dir::make("soak-bench", o.dir);
  if (!work) return work.err();
  spdlog::set_level(spdlog::level::warn);
  node_process node;
  std::string endpoint;
  const std::string dsmild = o.dsmild.empty() ? default_dsmild() : o.dsmild;
  if (auto err = node.start(dsmild, (*work)->path() + "/data", endpoint)) return err;
  const std::string host = endpoint.substr(0, endpoint.rfind(':'));
  const auto port = static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));

  // A checkpoint that stays, as on a node in use.
  const auto cred = admin_of((*work)->path() + "/data");
  if (auto r = call(cred, host, port, "checkpoint.create", {{"name", "kept"}}); !r) return r.err();
  const uint64_t rss_start = node.rss();

  // Requests over one long-lived connection (an embedding host, a fleet
  // peer), and connections of one request each (dsmilctl invocations).
  caf::actor_system_config client_cfg;
  configure_client(client_cfg, cred);
  caf::actor_system client{client_cfg};
  auto signer = load_signer(cred);
  if (!signer) return signer.err();
  auto remote = connect_node(client, host, port);
  if (!remote) return remote.err();
  auto cycle = [&]() -> status {
    auto c = ask(client, *remote, *signer, "checkpoint.create", {{"name", "soak"}});
    if (!c) return c.err();
    auto d = ask(client, *remote, *signer, "checkpoint.delete", {{"id", (*c)["id"]}});
    return d ? status{} : d.err();
  };
  auto request = [&]() -> status {
    auto r = ask(client, *remote, *signer, "status", json::object());
    return r ? status{} : r.err();
  };
  // A dsmilctl process per connection: each is a new CAF node to dsmild.
  const std::string ctl = dsmild.substr(0, dsmild.find_last_of('/') + 1) + "dsmilctl";
  const std::string ctl_cmd = "'" + ctl + "' --node " + endpoint + " --data-dir '" +
                              (*work)->path() + "/data' status >/dev/null 2>&1";
  auto connection = [&]() -> status {
    if (std::system(ctl_cmd.c_str()) != 0)
      return make_error(errc::unavailable, ctl + " status failed against " + endpoint);
    return {};
  };
  // Growth per operation between the end of the warm-up and the end.
  auto slope = [&](unsigned n, const std::function<status()>& op) -> result<double> {
    for (unsigned i = 0; i < o.warmup; ++i)
      if (auto err = op()) return err;
    const uint64_t before = node.rss();
    for (unsigned i = 0; i < n; ++i)
      if (auto err = op()) return err;
    const uint64_t after = node.rss();
    return n == 0 ? 0.0
                  : (static_cast<double>(after) - static_cast<double>(before)) /
                        static_cast<double>(n);
  };
  auto per_cycle = slope(o.cycles, cycle);
  if (!per_cycle) return per_cycle.err();
  auto per_request = slope(o.requests, request);
  if (!per_request) return per_request.err();
  auto per_connection = slope(o.connections, connection);
  if (!per_connection) return per_connection.err();
  return json{{"cycles", o.cycles},
              {"requests", o.requests},
              {"warmup", o.warmup},
              {"rss_start_bytes", rss_start},
              {"rss_end_bytes", node.rss()},
              {"rss_growth_per_cycle_bytes", *per_cycle},
              {"connections", o.connections},
              {"rss_growth_per_request_bytes", *per_request},
              {"rss_growth_per_connection_bytes", *per_connection},
              {"target_bytes", target_bytes}};
}

void print_soak_report(const json& r) {
  std::printf("dsmild resident set size: %.1f MiB at the start, %.1f MiB at the end\n",
              r["rss_start_bytes"].get<double>() / 1048576,
              r["rss_end_bytes"].get<double>() / 1048576);
  auto line = [&](const char* what, const char* key, const char* count) {
    const double v = r[key].get<double>();
    std::printf("%-40s %8.1f bytes each over %u after %u warm-up (target < %.0f: %s)\n", what, v,
                r[count].get<unsigned>(), r["warmup"].get<unsigned>(),
                r["target_bytes"].get<double>(),
                v < r["target_bytes"].get<double>() ? "met" : "NOT met");
  };
  line("growth per checkpoint create + delete", "rss_growth_per_cycle_bytes", "cycles");
  line("growth per client request (status)", "rss_growth_per_request_bytes", "requests");
  const double conn = r["rss_growth_per_connection_bytes"].get<double>();
  std::printf("%-40s %8.1f bytes each over %u after %u warm-up (CAF 0.17's middleman keeps a "
              "helper actor per client node it has seen; see README)\n",
              "growth per connection (one request each)", conn, r["connections"].get<unsigned>(),
              r["warmup"].get<unsigned>());
}

} // namespace dsmil::bench
