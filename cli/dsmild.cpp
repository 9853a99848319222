// dsmild: runs a node (devices, store, control endpoint for dsmilctl).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/node.hpp"
#include "runtime/os/env.hpp"
#include "dsmil/version.hpp"

namespace {

int die(const std::string& line, int code) {
  std::fprintf(stderr, "dsmild: %s\n", line.c_str());
  return code;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"dsmild " DSMIL_VERSION ": the dsmil-recovery node. Runs the 84 DSMIL devices "
               "(simulated by default), the checkpoint store and the control endpoint that "
               "dsmilctl talks to."};
  std::string config_file, data_dir, listen, log_level, keys, tcti;
  app.add_option("--config", config_file, "node configuration (TOML); default: the embedded one");
  app.add_option("--data-dir", data_dir, "where the store lives (overrides [node] data_dir)");
  app.add_option("--listen", listen,
                 "HOST:PORT of the control endpoint (default 127.0.0.1:7411; port 0 picks one)");
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

  auto cfg = config_file.empty() ? dsmil::node_config::embedded()
                                 : dsmil::node_config::load_file(dsmil::env::posix(), config_file);
  if (!cfg) return die(cfg.err().message, 2);
  if (!data_dir.empty()) cfg->data_dir = data_dir;
  if (!listen.empty())
    if (auto err = dsmil::parse_host_port(listen, cfg->listen_host, cfg->listen_port))
      return die("--listen: " + err.message, 2);
  if (!log_level.empty()) cfg->log_level = log_level;
  if (!keys.empty()) {
    auto kind = dsmil::parse_enum<dsmil::key_provider_kind>(keys);
    if (!kind)
      return die("--keys must be " + dsmil::enum_choices<dsmil::key_provider_kind>() + ", got '" +
                     keys + "'",
                 2);
    cfg->key_provider = *kind;
  }
  if (!tcti.empty()) cfg->key_tcti = tcti;
  auto level = spdlog::level::from_str(cfg->log_level);
  if (level == spdlog::level::off && cfg->log_level != "off")
    return die("--log-level must be trace, debug, info, warn or error", 2);
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals are taken by sigwait() below; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  caf::actor_system_config caf_cfg;
  dsmil::configure_actor_system(caf_cfg);
  caf::actor_system sys{caf_cfg};

  auto node = dsmil::start_node(sys, *cfg, dsmil::env::posix());
  if (!node) return die(node.err().message, 1);
  // SO_REUSEADDR: a node restarted right after a kill -9 binds its port
  // although connections of the old process still linger (FIN-WAIT-2, a
  // client that never closed). Linux still refuses a second listener on it.
  auto port =
      sys.middleman().publish(*node->control, cfg->listen_port, cfg->listen_host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(*node->control, caf::exit_reason::user_shutdown);
    return die("cannot listen on " + cfg->listen_host + ":" + std::to_string(cfg->listen_port) +
                   " (port in use or not permitted); is another dsmild running? pick another "
                   "with --listen HOST:PORT",
               1);
  }
  node->published_port->store(*port);
  const std::string endpoint = cfg->listen_host + ":" + std::to_string(*port);
  spdlog::info("dsmild {} listening on {} ({} devices, store {}/store, config {})", DSMIL_VERSION,
               endpoint, cfg->devices.devices().size(), cfg->data_dir, cfg->source);
  std::printf("dsmild listening on %s\n", endpoint.c_str());
  std::printf("use it with: dsmilctl --node %s status   (stop with Ctrl-C)\n", endpoint.c_str());
  std::fflush(stdout);

  // A node that stops on its own (its supervision gave up) ends the
  // process with an error, so that a service manager starts it again.
  std::atomic<bool> node_down{false};
  std::string down_reason;
  std::thread watcher([&] {
    caf::scoped_actor self{sys};
    self->monitor(*node->control);
    self->receive([&](caf::down_msg& dm) { down_reason = caf::to_string(dm.reason); });
    node_down = true;
    kill(getpid(), SIGTERM); // wakes sigwait() below
  });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  const bool failed = node_down;
  if (!failed) spdlog::info("signal {}: shutting down", sig);
  caf::anon_send_exit(*node->control, caf::exit_reason::user_shutdown);
  watcher.join();
  if (failed) {
    die("the node stopped (" + down_reason + "); exiting so that it can be started again", 1);
    // Without waiting for actors that outlived it: everything the node
    // writes is durable before it is acknowledged, as for a kill -9.
    std::fflush(nullptr);
    _exit(1);
  }
  return 0;
}
