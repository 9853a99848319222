// The agent host interface: what a runtime that embeds dsmil-recovery
// implements so that its agents are checkpointed with the devices and rolled
// back with them (the agents component, runtime/components/agents_component).
//
// How the node uses it. A checkpoint quiesces every agent (all together,
// bounded by [agents] stop_timeout_ms), snapshots each, and resumes them; the
// pause each agent saw is reported. A rollback quiesces every agent when it
// starts, keeps them quiesced while it restores, verifies (snapshot again,
// compared bit for bit) or compensates, and resumes every agent before it
// answers, whichever way it ended. An agent that does not quiesce in time has
// its pending work cancelled (cancel_pending) and is named in the warnings.
//
// Threads: the node calls these methods from threads of its own, several at
// once (for different agents: the quiesce of many agents runs in parallel),
// never from a thread of the host's. Implementations must be thread-safe.
// No method may throw; failures are errors, which name the agent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil {

enum class agent_state : uint8_t { running, paused, stopped, failed };

/// "running", "paused", "stopped", "failed".
inline const char* agent_state_name(agent_state s) {
  switch (s) {
  case agent_state::running:
    return "running";
  case agent_state::paused:
    return "paused";
  case agent_state::stopped:
    return "stopped";
  case agent_state::failed:
    return "failed";
  }
  return "?";
}

struct agent_info {
  std::string id; ///< stable across restarts of the host; no '/' and not empty
  agent_state state = agent_state::running;
  uint64_t tasks_done = 0; ///< work items it finished, when the host counts them; part of
                           ///< its snapshot, so a rollback sets it back
  /// Changes whenever the agent's state does (a counter the host bumps on
  /// every change, restore() included); 0 when the host does not track it.
  /// A quiesced agent listed with the version of its last snapshot is not
  /// snapshotted again: the checkpoint takes that snapshot, so an unchanged
  /// agent costs neither a copy nor a comparison. Never the same for two
  /// different states, or a checkpoint holds a stale one.
  uint64_t version = 0;
};

/// Takes the bytes of a snapshot in order, one call at a time; an error
/// stops the snapshot and is what snapshot() returns.
using agent_sink = std::function<status(std::string_view bytes)>;

class agent_host {
public:
  virtual ~agent_host() = default;

  /// Every agent, in a stable order.
  virtual std::vector<agent_info> list() = 0;

  /// The agent finishes or parks its in-flight work and accepts none until
  /// resume(). Returns once it is quiesced, or errc::timeout at `deadline`
  /// when it is not; the node then calls cancel_pending(). Quiescing a
  /// quiesced agent succeeds.
  virtual status quiesce(const std::string& agent,
                         std::chrono::steady_clock::time_point deadline) = 0;
  /// Drops the agent's pending and in-flight work; it is quiesced afterwards.
  virtual status cancel_pending(const std::string& agent) = 0;
  /// The agent's whole state, consistent at one instant, to `sink` (any
  /// size: the node cuts it into deduplicated chunks, so an agent whose
  /// state did not change costs no space in the next checkpoint).
  virtual status snapshot(const std::string& agent, const agent_sink& sink) = 0;
  /// Replaces a quiesced agent's state with a snapshot's bytes. On error the
  /// agent's state is as before. Durable by the time it returns, as far as
  /// the host keeps state across restarts (the reference host: across a
  /// kill of its process, as the device simulator).
  virtual status restore(const std::string& agent, std::string_view bytes) = 0;
  /// Sets the agent running again (from paused, stopped or failed too).
  virtual status resume(const std::string& agent) = 0;
};

} // namespace dsmil
