// Embedding a node: the C++ API a runtime uses to run dsmil-recovery in its
// own process (dsmild is one such user). The node runs inside the host's
// caf::actor_system, which the host prepares with dsmil::prepare() before
// building it, or inside one of its own. It listens for dsmilctl only when
// asked (listen()).
//
//   caf::actor_system_config cfg;
//   dsmil::prepare(cfg);
//   caf::actor_system sys{cfg};
//   dsmil::node_options opts;
//   opts.data_dir = "/var/lib/myruntime/dsmil";
//   opts.agents = my_agent_host; // a dsmil::agent_host (dsmil/agents.hpp)
//   auto n = dsmil::node::start(sys, opts);
//   if (!n) { std::cerr << n.err().message << "\n"; return 1; }
//   auto cp = (*n)->checkpoint({"before-upgrade"}).get();
//   ...
//   (*n)->rollback(req, [](const dsmil::rollback_event& e) { ... }).get();
//
// Every command of dsmil/control.hpp can be sent with ask() (callback),
// ask_future() or call() (waits); its answer is answer<Reply>
// (dsmil/control_replies.hpp): a code, a line, and the reply's body. The
// callbacks and progress events run on one of the actor system's threads:
// keep them short and never wait in them for another answer of this node.
// Nothing here throws, besides std::bad_alloc.
//
// This header includes no CAF header; a program that passes its own actor
// system includes CAF itself and links it (pkg-config dsmil says how).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "dsmil/agents.hpp"
#include "dsmil/control.hpp"
#include "dsmil/result.hpp"

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf

namespace dsmil {

/// Registers dsmil's message types, its error category and CAF's middleman
/// with the host's configuration. Call it once, before the
/// caf::actor_system is built from `cfg`. A node in such a system runs but
/// cannot listen(): use the overload below for that.
void prepare(caf::actor_system_config& cfg);

struct node_options;
/// The same, and CAF's OpenSSL module with the TLS files of the node
/// `opts` describes ([tls], or <data_dir>/tls, made by start()), so that
/// listen() serves mutual TLS. One node per actor system listens.
status prepare(caf::actor_system_config& cfg, const node_options& opts);

struct node_options {
  /// The node's configuration (TOML, see config/dsmil.toml): a file, or
  /// the text itself; neither: the embedded defaults (simulated devices,
  /// local store, software keys).
  std::string config_file;
  std::string config_text;
  /// Overrides [node] data_dir when not empty.
  std::string data_dir;
  /// Overrides [keys] provider ("software" or "tpm") and [keys] tcti.
  std::string key_provider;
  std::string tcti;
  /// trace, debug, info, warn, error or off: the level of spdlog's default
  /// logger, which the node logs to; "config": the config's [node]
  /// log_level. Empty: leave it as the host set it.
  std::string log_level;
  /// The host's agents, checkpointed and rolled back as the component
  /// "agents". Null: [agents] backend decides (none, or the reference host
  /// "sim"); given with backend "sim", start() refuses.
  std::shared_ptr<agent_host> agents;
  /// How long an answer may take; zero: as long as it takes (a rollback
  /// ends by itself, compensating when a step runs past its own timeout).
  std::chrono::milliseconds request_timeout{0};
  /// The name this host's rollbacks are recorded under in the rollback
  /// history (dsmilctl's are recorded under their certificate's name).
  std::string identity = "embedded";
};

/// What a node runs with, once started.
struct node_description {
  std::string data_dir;
  std::string config_source; ///< the file, "embedded" or "text"
  size_t devices = 0;
  size_t agents = 0; ///< of the agents component; 0 without one
  /// [node] listen: where dsmild listens (an embedded node only when asked).
  std::string listen_host;
  uint16_t listen_port = 0;
};

/// A rollback as it runs: one per phase and component (from
/// rollback_request.progress; rollback() asks for it).
struct rollback_event {
  std::string saga;
  std::string phase;     ///< validation, preparation, execution, verification, cleanup
  std::string component; ///< empty for a phase's start
  int64_t devices_done = 0;
  int64_t devices_total = 0;
};

class node {
public:
  /// Starts a node in the host's actor system, which must have been built
  /// from a configuration given to prepare() (else: one line saying so).
  /// Opens the store (finishing or compensating a rollback a crash
  /// interrupted) and spawns the node's actors. The actor system must
  /// outlive the node.
  static result<std::unique_ptr<node>> start(caf::actor_system& sys, const node_options& opts);
  /// The same in an actor system of the node's own, stopped with it.
  static result<std::unique_ptr<node>> start(const node_options& opts);
  /// What start() checks before it starts anything: the configuration
  /// loads and the options fit it. Errors are one line each.
  static status check(const node_options& opts);

  /// Stops the node (stop()).
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Publishes the control endpoint for dsmilctl and remote nodes on
  /// HOST:PORT (port 0 picks a free one), mutual TLS only, every request
  /// signed and checked (see actors/node/control_gate.hpp); returns the
  /// port. Once only; the actor system must have been prepared with this
  /// node's options.
  result<uint16_t> listen(const std::string& host, uint16_t port);

  const node_description& description() const;

  /// Sends a command; `done` gets its answer (or the error that kept one
  /// from coming, as an answer without body).
  template <class R> void ask(R request, std::function<void(answer<typename R::reply>)> done);
  template <class R> std::future<answer<typename R::reply>> ask_future(R request);
  /// Sends a command and waits for the answer. Not from an actor's thread.
  template <class R> answer<typename R::reply> call(R request);

  /// The commands an embedding runtime uses most, by name.
  std::future<answer<checkpoint_create_reply>> checkpoint(checkpoint_create_request req);
  answer<checkpoint_list_reply> checkpoints();
  answer<checkpoint_show_reply> show(const std::string& checkpoint_id);
  answer<checkpoint_verify_reply> verify(const std::string& checkpoint_id, bool chain = false);
  std::future<answer<checkpoint_delete_reply>> remove(const std::string& checkpoint_id);
  /// A dry run of `req`: what it would do, changing nothing.
  answer<rollback_reply> plan(rollback_request req);
  /// Runs `req` as a saga; `progress` (optional) gets its events as it
  /// runs, `done` its answer. The history names `initiated_by`, or
  /// node_options::identity when it is empty.
  void rollback_async(rollback_request req, std::function<void(const rollback_event&)> progress,
                      std::function<void(answer<rollback_reply>)> done,
                      const std::string& initiated_by = {});
  std::future<answer<rollback_reply>>
  rollback(rollback_request req, std::function<void(const rollback_event&)> progress = {},
           const std::string& initiated_by = {});
  answer<rollback_history_reply> history(int64_t limit = 50);
  answer<agent_list_reply> agents();

  /// Calls `f` once, from another thread, when the node stops by itself
  /// (its supervision gave up), with the reason; not after stop().
  void on_down(std::function<void(const std::string& reason)> f);

  /// Stops the node's actors and waits for them (never call it from a
  /// callback of this node); a rollback running then is finished or
  /// compensated when the node next starts. Idempotent.
  void stop();

  /// The node's innards, for the library's own C API.
  struct impl;
  impl& internals() { return *p_; }

private:
  explicit node(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

} // namespace dsmil
