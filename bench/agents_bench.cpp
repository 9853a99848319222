#include "bench/agents_bench.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/agents/sim_agents.hpp"
#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node/node.hpp"
#include "bench/bench_util.hpp"
#include "bench/node_client.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/os/env.hpp"

namespace dsmil::bench {

using nlohmann::json;

result<json> run_agents_bench(const agents_bench_options& o) {
  auto work = work_dir::make("agents-bench", o.dir);
  if (!work) return work.err();

  spdlog::set_level(spdlog::level::warn);
  auto cfg = node_config::embedded();
  if (!cfg) return cfg.err();
  cfg->data_dir = (*work)->path();
  cfg->agents.backend = "sim";
  cfg->agents.count = o.agents;
  cfg->agents.state_kib = o.state_kib;
  // The benchmark gives the agents their work, so that it knows what changed.
  cfg->agents.tasks_per_second = 0;
  caf::actor_system_config caf_cfg;
  configure_actor_system(caf_cfg, false);
  caf::actor_system sys{caf_cfg};
  auto node = start_node(sys, *cfg, env::posix());
  if (!node) return node.err();
  struct stop_node {
    node_handles& n;
    ~stop_node() { caf::anon_send_exit(*n.control, caf::exit_reason::user_shutdown); }
  } stopper{*node};
  auto call = [&](const std::string& command, const json& args) {
    return ask(sys, *node->control, command, args);
  };
  auto& host = *node->agents_sim;
  std::vector<std::string> ids;
  for (auto& a : host.list())
    ids.push_back(a.id);
  // `n` agents (spread over all of them) each do one task.
  auto work_on = [&](size_t n, size_t round) -> status {
    for (size_t k = 0; k < n; ++k)
      if (auto err = host.run_tasks(ids[(round * 7 + k * ids.size() / n) % ids.size()], 1))
        return err;
    return {};
  };

  auto first = call("checkpoint.create", {{"name", "bench"}});
  if (!first) return first.err();
  const std::string target = (*first)["id"];
  std::vector<double> cp_ms, incr_ms, rb_ms, cp_new, incr_new;
  double max_pause = 0;
  std::map<std::string, std::vector<double>> phases;
  // The first rounds also pay for first use (the heap grows to its steady
  // size, the stream cache fills): run, not counted.
  for (unsigned i = 0; i < o.warmup + o.runs; ++i) {
    if (i == o.warmup) {
      cp_ms.clear(), incr_ms.clear(), rb_ms.clear(), cp_new.clear(), incr_new.clear();
      phases.clear(); // the longest pause counts the warm-up's too
    }
    // Every agent changed.
    if (auto err = work_on(ids.size(), i)) return err;
    auto t0 = now_s();
    auto r = call("checkpoint.create", {{"name", "bench"}});
    cp_ms.push_back((now_s() - t0) * 1e3);
    if (!r) return r.err();
    cp_new.push_back((*r)["new_bytes"].get<double>());
    max_pause = std::max(max_pause, (*r)["capture"]["agents"]["max_pause_ms"].get<double>());
    // Eight agents changed.
    if (auto err = work_on(8, i)) return err;
    t0 = now_s();
    r = call("checkpoint.create", {{"name", "bench"}});
    incr_ms.push_back((now_s() - t0) * 1e3);
    if (!r) return r.err();
    incr_new.push_back((*r)["new_bytes"].get<double>());
    max_pause = std::max(max_pause, (*r)["capture"]["agents"]["max_pause_ms"].get<double>());
    // Every agent back to the first checkpoint, with the devices.
    if (auto err = work_on(ids.size(), i + 1)) return err;
    t0 = now_s();
    r = call("rollback", {{"id", target}, {"type", "full"}, {"ack_critical", true}});
    rb_ms.push_back((now_s() - t0) * 1e3);
    if (!r) return r.err();
    if ((*r)["rolled_back"]["agents"].size() != ids.size())
      return make_error(errc::internal, "a full rollback did not restore every agent: " +
                                            (*r)["rolled_back"].dump());
    for (auto& [k, v] : (*r)["phase_ms"].items())
      phases[k].push_back(v.get<double>());
    // Keep the store from growing without end: retention would, in a node.
    if (i % 10 == 9) {
      auto list = call("checkpoint.list", json::object());
      if (!list) return list.err();
      for (auto& c : (*list)["checkpoints"])
        if (c["id"] != target) call("checkpoint.delete", {{"id", c["id"]}});
      call("store.gc", json::object());
    }
  }
  json phase_p50 = json::object();
  for (auto& [k, v] : phases)
    phase_p50[k] = percentile(v, 0.5);
  return json{{"runs", o.runs},
              {"warmup", o.warmup},
              {"agents", ids.size()},
              {"state_kib", o.state_kib},
              {"checkpoint_p50_ms", percentile(cp_ms, 0.5)},
              {"checkpoint_p99_ms", percentile(cp_ms, 0.99)},
              {"checkpoint_max_ms", percentile(cp_ms, 1)},
              {"incremental_p50_ms", percentile(incr_ms, 0.5)},
              {"incremental_p99_ms", percentile(incr_ms, 0.99)},
              {"incremental_max_ms", percentile(incr_ms, 1)},
              {"rollback_p50_ms", percentile(rb_ms, 0.5)},
              {"rollback_p99_ms", percentile(rb_ms, 0.99)},
              {"rollback_max_ms", percentile(rb_ms, 1)},
              {"max_pause_ms", max_pause},
              {"checkpoint_new_bytes_p50", percentile(cp_new, 0.5)},
              {"incremental_new_bytes_p50", percentile(incr_new, 0.5)},
              {"rollback_phase_p50_ms", phase_p50}};
}

void print_agents_report(const json& r) {
  std::printf("agents component, reference host: %zu agents of %u KiB, with the 84 devices and "
              "the configuration, %u runs each after %u warm-up rounds (client request to "
              "answer)\n",
              r["agents"].get<size_t>(), r["state_kib"].get<unsigned>(), r["runs"].get<unsigned>(),
              r["warmup"].get<unsigned>());
  auto line = [&](const char* what, const char* key, double target) {
    double p50 = r[std::string(key) + "_p50_ms"].get<double>();
    double p99 = r[std::string(key) + "_p99_ms"].get<double>();
    double max = r[std::string(key) + "_max_ms"].get<double>();
    std::printf("%-34s p50 %7.2f ms, p99 %7.2f ms, max %7.2f ms (target p99 < %.0f ms: %s)\n", what,
                p50, p99, max, target, p99 < target ? "met" : "NOT met");
  };
  line("checkpoint, every agent changed", "checkpoint", 100);
  line("checkpoint, 8 agents changed", "incremental", 25);
  line("full rollback of every agent", "rollback", 150);
  const double pause = r["max_pause_ms"].get<double>();
  std::printf("longest pause one agent saw: %.2f ms (target < 100 ms: %s)\n", pause,
              pause < 100 ? "met" : "NOT met");
  std::printf("new bytes per checkpoint (p50): %s every agent changed, %s 8 agents changed\n",
              human(r["checkpoint_new_bytes_p50"].get<double>()).c_str(),
              human(r["incremental_new_bytes_p50"].get<double>()).c_str());
  std::printf("rollback phases (p50):");
  for (auto& [phase, ms] : r["rollback_phase_p50_ms"].items())
    std::printf(" %s %.2f ms", phase.c_str(), ms.get<double>());
  std::printf("\n");
}

} // namespace dsmil::bench
