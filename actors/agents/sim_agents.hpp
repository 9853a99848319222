// The reference agent host ([agents] backend = "sim"): a coordination runtime
// of `count` agents on CAF, each an actor that keeps taking tasks from a
// coordinator (its state sits beside it, under a lock of its own, so the
// node's threads snapshot and restore it between two tasks without a
// message round trip). A task rewrites a random 4 KiB of the agent's state
// (`state_kib`) and counts itself in tasks_done; both are the agent's
// snapshot, so a rollback sets them back. Tasks that reach a quiesced agent
// wait as its pending work (dropped by cancel_pending, run on resume).
//
// Like the device simulator, the agents can outlive the process: with a
// state directory (<data_dir>/agents.sim), an agent's state is written there
// when it quiesces and when it is restored (in place, into the slot not
// holding the newest state, as the device simulator does: a killed process
// leaves the one before or the one after, never one in between), and loaded
// on start. A node killed during a rollback finds every agent at the state
// it was held at or at the one a restore finished.
//
// Faults, for tests: an agent that never quiesces (it is stuck in a task
// until cancel_pending), an agent whose restore fails.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "dsmil/agents.hpp"

namespace dsmil {

class env;

struct sim_agents_config {
  uint32_t count = 80;
  uint32_t state_kib = 256;
  uint32_t tasks_per_second = 4000; ///< the coordinator's load over all agents; 0: none
  uint64_t seed = 5450;
  std::string state_dir; ///< empty: memory only
};

class sim_agent_host final : public agent_host {
public:
  /// Loads or creates every agent's state and starts the agents and the
  /// coordinator in `sys`. They stop with stop(), or when the actor linked
  /// by link_to() stops. Errors name the state file.
  static result<std::shared_ptr<sim_agent_host>> start(caf::actor_system& sys,
                                                       const sim_agents_config& cfg, env& e);
  ~sim_agent_host() override;

  std::vector<agent_info> list() override;
  status quiesce(const std::string& agent, std::chrono::steady_clock::time_point deadline) override;
  status cancel_pending(const std::string& agent) override;
  status snapshot(const std::string& agent, const agent_sink& sink) override;
  status restore(const std::string& agent, std::string_view bytes) override;
  status resume(const std::string& agent) override;

  /// The agents and the coordinator stop when `a` does (the node's control).
  void link_to(const caf::actor& a);
  /// Stops the agents and the coordinator. Idempotent.
  void stop();

  /// The coordinator's load from now on: tasks per second over all agents
  /// (0: no more tasks; those already sent still run).
  void set_load(uint32_t tasks_per_second);
  uint32_t load() const;

  /// Runs `n` tasks on a running agent now, on the calling thread: a
  /// benchmark or test that wants to know which agents changed.
  status run_tasks(const std::string& agent, uint64_t n);

  /// Faults, for tests.
  status set_never_quiesce(const std::string& agent, bool on);
  status set_fail_restore(const std::string& agent, bool on);
  /// From now on, each agent keeps a copy of its snapshot as it was when it
  /// last parked (quiesced) and when it was last resumed, for tests that
  /// compare states while the agents keep working.
  void record_states(bool on);
  std::string parked_state(const std::string& agent) const;
  std::string resumed_state(const std::string& agent) const;

  /// The snapshot format: "DSAG" v1, tasks_done, then the state bytes.
  static constexpr size_t header_size = 16;
  /// The snapshot an agent's state file holds (what a restart loads), for
  /// a harness that reads the files of a killed node.
  static result<std::string> read_state_file(env& e, const std::string& path);

  struct shared; ///< what the agents' actors and the host share

private:
  explicit sim_agent_host(std::shared_ptr<shared> s) : s_(std::move(s)) {}
  result<size_t> find(const std::string& agent) const;

  std::shared_ptr<shared> s_;
};

} // namespace dsmil
