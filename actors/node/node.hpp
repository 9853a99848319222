// A node: device supervisor, devices, store and the control actor that
// dsmilctl talks to. start_node() wires them up inside an actor system.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/node_api.hpp"

#include "runtime/config/node_config.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

class component;
class env;
class sim_driver;
class sim_agent_host;

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
  /// The port the control actor was published on, once known (for status).
  std::shared_ptr<std::atomic<uint16_t>> published_port;
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
result<node_handles> start_node(caf::actor_system& sys, const node_config& cfg, env& e,
                                std::vector<std::shared_ptr<component>> components = {});

} // namespace dsmil
