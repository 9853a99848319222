// dsmild: runs a node (devices, store, control endpoint for dsmilctl): a
// thin user of the embedding API (dsmil/node.hpp).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "dsmil/node.hpp"
#include "dsmil/version.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/os/malloc_tuning.hpp"

namespace {

int die(const std::string& line, int code) {
  std::fprintf(stderr, "dsmild: %s\n", line.c_str());
  return code;
}

// CAF 0.17 keeps a silent connection open for good (it has no idle
// timeout): a peer that connects and says nothing holds one descriptor.
// The soft limit goes up to the hard one, so that such peers exhaust it
// much later than the default 1024; the log says what it is.
rlim_t raise_open_file_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    rlimit want = r;
    want.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return want.rlim_cur;
  }
  return r.rlim_cur;
}

} // namespace

int main(int argc, char** argv) {
  dsmil::keep_large_allocations_in_heap();
  CLI::App app{"dsmild " DSMIL_VERSION ": the dsmil-recovery node. Runs the 84 DSMIL devices "
               "(simulated by default), the checkpoint store and the control endpoint that "
               "dsmilctl talks to."};
  std::string config_file, data_dir, listen, log_level, keys, tcti;
  app.add_option("--config", config_file, "node configuration (TOML); default: the embedded one");
  app.add_option("--data-dir", data_dir, "where the store lives (overrides [node] data_dir)");
  app.add_option("--listen", listen,
                 "HOST:PORT of the control endpoint, mutual TLS (default 127.0.0.1:7411; port 0 "
                 "picks one; 0.0.0.0:PORT for every interface)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.add_option("--keys", keys,
                 "signing key provider: software or tpm (overrides [keys] provider)");
  app.add_option("--tcti", tcti,
                 "TPM TCTI, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 "
                 "(overrides [keys] tcti)");
  app.footer("Exit codes: 0 stopped cleanly (SIGINT/SIGTERM), 2 bad configuration or arguments, "
             "1 the node could not start (store, port in use).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return die(std::string(e.what()) + "; see 'dsmild --help'", 2);
  }

  // Flags are named in what is wrong with them; the configuration by its file.
  if (!keys.empty() && !dsmil::parse_enum<dsmil::key_provider_kind>(keys))
    return die("--keys must be " + dsmil::enum_choices<dsmil::key_provider_kind>() + ", got '" +
                   keys + "'",
               2);
  if (!log_level.empty() && spdlog::level::from_str(log_level) == spdlog::level::off &&
      log_level != "off")
    return die(
        "--log-level must be trace, debug, info, warn, error or off, got '" + log_level + "'", 2);
  dsmil::node_options opts;
  opts.config_file = config_file;
  opts.data_dir = data_dir;
  opts.key_provider = keys;
  opts.tcti = tcti;
  opts.log_level = log_level.empty() ? "config" : log_level;
  if (auto err = dsmil::node::check(opts)) return die(err.message, 2);
  std::string listen_host;
  uint16_t listen_port = 0;
  if (!listen.empty())
    if (auto err = dsmil::parse_host_port(listen, listen_host, listen_port))
      return die("--listen: " + err.message, 2);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals are taken by sigwait() below; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const rlim_t open_files = raise_open_file_limit();
  auto started = dsmil::node::start(opts);
  if (!started) return die(started.err().message, 1);
  auto& node = **started;
  const auto& desc = node.description();
  if (listen.empty()) {
    listen_host = desc.listen_host;
    listen_port = desc.listen_port;
  }
  auto port = node.listen(listen_host, listen_port);
  if (!port) {
    node.stop();
    return die(port.err().message + " (dsmild --listen HOST:PORT)", 1);
  }
  const std::string endpoint = listen_host + ":" + std::to_string(*port);
  spdlog::info("dsmild {} listening on {} ({} devices, store {}/store, config {}, open-file "
               "limit {})",
               DSMIL_VERSION, endpoint, desc.devices, desc.data_dir, desc.config_source,
               static_cast<unsigned long long>(open_files));
  std::printf("dsmild listening on %s\n", endpoint.c_str());
  std::printf("use it with: dsmilctl --node %s --data-dir %s status   (stop with Ctrl-C)\n",
              endpoint.c_str(), desc.data_dir.c_str());
  std::printf("mutual TLS: admin credential and CA in %s/tls; more with 'dsmilctl tls issue'\n",
              desc.data_dir.c_str());
  std::fflush(stdout);

  // A node that stops on its own (its supervision gave up) ends the
  // process with an error, so that a service manager starts it again.
  std::atomic<bool> node_down{false};
  std::mutex down_mu;
  std::string down_reason;
  node.on_down([&](const std::string& reason) {
    {
      std::lock_guard<std::mutex> lock(down_mu);
      down_reason = reason;
    }
    node_down = true;
    kill(getpid(), SIGTERM); // wakes sigwait() below
  });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (node_down) {
    std::lock_guard<std::mutex> lock(down_mu);
    die("the node stopped (" + down_reason + "); exiting so that it can be started again", 1);
    // Without waiting for actors that outlived it: everything the node
    // writes is durable before it is acknowledged, as for a kill -9.
    std::fflush(nullptr);
    _exit(1);
  }
  spdlog::info("signal {}: shutting down", sig);
  node.stop();
  return 0;
}
