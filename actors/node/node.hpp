// A node: device supervisor, devices, store and the control actor that
// dsmilctl talks to. start_node() wires them up inside an actor system.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/node_api.hpp"

#include "runtime/config/node_config.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

class agent_host;
class audit_log;
class component;
class node_pki;
class env;
class sim_driver;
class sim_agent_host;

/// Where the control endpoint listens ("HOST:PORT"), once it does; empty
/// before (an embedded node listens only when asked).
class published_endpoint {
public:
  void set(const std::string& host, uint16_t port) {
    std::lock_guard<std::mutex> lock(mu_);
    text_ = host + ":" + std::to_string(port);
  }
  std::string get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }

private:
  mutable std::mutex mu_;
  std::string text_;
};

struct node_handles {
  /// Answers every command of dsmil/control.hpp. It routes each to a
  /// worker (reads beside changes; see node_actor.cpp) or starts a saga,
  /// and does no work itself. Once start-up recovery is done, reads are
  /// answered at once, even while a checkpoint or a rollback runs.
  std::shared_ptr<node_api> control;
  /// The simulator behind the guard, for tests that count backend writes.
  std::shared_ptr<sim_driver> sim;
  /// The reference agent host ([agents] backend = "sim"), else null: for
  /// tests that inject agent faults or read agents behind the node's back.
  std::shared_ptr<sim_agent_host> agents_sim;
  /// Where the control actor was published, once it is (for status).
  std::shared_ptr<published_endpoint> endpoint;
  /// The endpoint's TLS files and request checks, and the audit log: what
  /// the control gate (actors/node/control_gate.hpp) works with.
  std::shared_ptr<node_pki> pki;
  std::shared_ptr<audit_log> audit;
  /// For tests of supervision: the node's actor of that name now
  /// ("dsmil.reader", "dsmil.writer", "dsmil.scheduler", "dsmil.saga": the
  /// running rollback's),
  /// or an invalid handle.
  std::function<caf::actor(const std::string& name)> find_actor;
};

/// Opens the store under cfg.data_dir/store, builds the simulator with the
/// configured faults, and spawns the actor tree. Errors leave nothing running.
/// Every file, clock and thread effect of the node goes through `e`, which
/// must outlive the node (programs pass the POSIX env; tests may pass a
/// memory or fault env). `components` are checkpointed and rolled back
/// after the node's own (configuration, security, devices), in this order;
/// their names must differ from those and from each other.
/// `agents`, when given, is an embedding runtime's agent host: the node
/// checkpoints and rolls back its agents (then [agents] backend must be
/// "none").
result<node_handles> start_node(caf::actor_system& sys, const node_config& cfg, env& e,
                                std::vector<std::shared_ptr<component>> components = {},
                                std::shared_ptr<agent_host> agents = nullptr);

} // namespace dsmil
