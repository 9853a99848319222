// The agents component: the agents of a runtime that embeds the node, through
// its agent host (dsmil/agents.hpp). Its image holds one record, "agents"
// (every agent's id and state when captured), and one stream per agent, named
// by its id: the agent's snapshot, cut into deduplicated chunks.
//
// A checkpoint quiesces every agent at once (in parallel, up to
// stop_timeout_ms; one that is late has its pending work cancelled and is
// named in the warnings), snapshots each, then resumes them; the detail says
// the longest pause one saw. A rollback holds the agents (quiesced) from its
// start until it ends; its plan restores every agent (full, emergency), those
// whose state differs (incremental) or those it names ("agent:ID" items, or
// the whole component when selected). Apply restores an agent only when its
// state differs, so repeating a step writes nothing.
#pragma once

#include <memory>
#include <mutex>
#include <set>

#include "dsmil/agents.hpp"
#include "runtime/components/component.hpp"

namespace dsmil {

class env;

struct agents_settings {
  uint32_t stop_timeout_ms = 30000; ///< quiesce, before pending work is cancelled
  uint32_t threads = 8;             ///< agents quiesced, snapshotted, restored at once
  uint32_t chunk_kib = 16;          ///< average chunk of an agent's state in the store
};

class agents_component final : public component {
public:
  /// `e` gives the clock and the threads; it must outlive the component.
  agents_component(std::shared_ptr<agent_host> host, agents_settings s, env& e);

  std::string name() const override { return "agents"; }
  result<component_image> capture() override;
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override;
  std::vector<failed_item> apply(const saga_step& step, const component_image& target) override;
  std::vector<failed_item> read_back(const saga_step& step, const component_image& target) override;
  result<std::vector<std::string>> hold() override;
  std::vector<std::string> release() override;

  /// The prefix of an item that names an agent: "agent:ID".
  static constexpr const char* item_prefix = "agent:";

private:
  // Quiesces `ids` in parallel by one deadline; those late are cancelled
  // and named in `warnings`. Returns the agents now quiesced.
  result<std::vector<std::string>> quiesce_all(const std::vector<std::string>& ids,
                                               std::vector<std::string>& warnings);
  // Resumes `ids`; what failed goes to `warnings`.
  void resume_all(const std::vector<std::string>& ids, std::vector<std::string>& warnings);
  result<std::string> snapshot(const std::string& id);
  // Runs fn(i) for i < n on up to settings_.threads threads.
  void parallel(size_t n, const std::function<void(size_t)>& fn);

  std::shared_ptr<agent_host> host_;
  agents_settings settings_;
  env& env_;
  std::mutex mu_;
  bool holding_ = false; ///< between hold() and release(): every agent stays quiesced
  /// Each agent's last snapshot and the version it had (agent_info::version).
  std::map<std::string, std::pair<uint64_t, stream_bytes>> last_;
};

} // namespace dsmil
