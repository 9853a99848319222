#include "bench/rollback_bench.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node/node.hpp"
#include "bench/bench_util.hpp"
#include "bench/node_client.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"

namespace dsmil::bench {

using nlohmann::json;

namespace {

// Every device the node may write gets new contents behind its back, or
// just `only`: a rollback then has that much to restore.
void scramble(sim_driver& sim, const device_map& map, uint64_t& seed, device_id only = 0) {
  for (auto& d : map.devices())
    if (!d.quarantined && (only == 0 || d.id == only)) sim.scramble(d.id, seed);
}

} // namespace

result<json> run_rollback_bench(const rollback_bench_options& o) {
  auto work = work_dir::make("rollback-bench", o.dir);
  if (!work) return work.err();

  spdlog::set_level(spdlog::level::warn);
  auto cfg = node_config::embedded();
  if (!cfg) return cfg.err();
  cfg->data_dir = (*work)->path();
  caf::actor_system_config caf_cfg;
  configure_actor_system(caf_cfg, false);
  caf::actor_system sys{caf_cfg};
  auto node = start_node(sys, *cfg, env::posix());
  if (!node) return node.err();
  auto call = [&](const std::string& command, const json& args) {
    return ask(sys, *node->control, command, args);
  };
  struct stop_node {
    node_handles& n;
    ~stop_node() { caf::anon_send_exit(*n.control, caf::exit_reason::user_shutdown); }
  } stopper{*node};

  auto cp = call("checkpoint.create", {{"name", "bench"}});
  if (!cp) return cp.err();
  const std::string id = (*cp)["id"];
  const device_map& map = cfg->devices;
  device_id one = 0;
  for (auto& d : map.devices())
    if (!d.quarantined && !d.critical && d.group == 3) one = one ? one : d.id;

  uint64_t seed = 5450;
  std::vector<double> full_ms, incr_ms;
  std::map<std::string, std::vector<double>> full_phase, incr_phase; // the saga's own timing
  auto add_phases = [](std::map<std::string, std::vector<double>>& to, const json& r) {
    if (r.contains("phase_ms"))
      for (auto& [k, v] : r["phase_ms"].items())
        to[k].push_back(v.get<double>());
  };
  size_t full_devices = 0, incr_devices = 0, journal_records = 0;
  for (unsigned i = 0; i < o.runs; ++i) {
    scramble(*node->sim, map, seed);
    auto t0 = now_s();
    auto r = call("rollback", {{"id", id}, {"type", "full"}, {"ack_critical", true}});
    full_ms.push_back((now_s() - t0) * 1e3);
    if (!r) return r.err();
    full_devices = (*r)["rolled_back"]["devices"].size();
    add_phases(full_phase, *r);
    if (i == 0) {
      auto shown = call("rollback.show", {{"id", (*r)["saga"]}});
      if (!shown) return shown.err();
      journal_records = (*shown)["journal"].size();
    }

    scramble(*node->sim, map, seed, one);
    t0 = now_s();
    r = call("rollback", {{"id", id}, {"type", "incremental"}, {"ack_critical", true}});
    incr_ms.push_back((now_s() - t0) * 1e3);
    if (!r) return r.err();
    incr_devices = (*r)["rolled_back"]["devices"].size();
    add_phases(incr_phase, *r);
  }
  auto medians = [](const std::map<std::string, std::vector<double>>& m) {
    json j = json::object();
    for (auto& [k, v] : m)
      j[k] = percentile(v, 0.5);
    return j;
  };
  return json{{"runs", o.runs},
              {"full_p50_ms", percentile(full_ms, 0.5)},
              {"full_p99_ms", percentile(full_ms, 0.99)},
              {"incremental_p50_ms", percentile(incr_ms, 0.5)},
              {"incremental_p99_ms", percentile(incr_ms, 0.99)},
              {"full_devices", full_devices},
              {"incremental_devices", incr_devices},
              {"full_journal_records", journal_records},
              {"full_phase_p50_ms", medians(full_phase)},
              {"incremental_phase_p50_ms", medians(incr_phase)}};
}

void print_rollback_report(const json& r) {
  std::printf("rollback sagas on the simulator, %u runs each: request to answer, with the "
              "pre-rollback checkpoint, the journal (%zu records for a full one, fsynced with "
              "each step) and read-back verification\n",
              r["runs"].get<unsigned>(), r["full_journal_records"].get<size_t>());
  auto line = [&](const char* what, const char* key, size_t devices, double target) {
    double p50 = r[std::string(key) + "_p50_ms"].get<double>();
    double p99 = r[std::string(key) + "_p99_ms"].get<double>();
    std::printf("%-12s %2zu devices: p50 %6.2f ms, p99 %6.2f ms (target p99 < %.0f ms: %s)\n", what,
                devices, p50, p99, target, p99 < target ? "met" : "NOT met");
  };
  line("full", "full", r["full_devices"].get<size_t>(), 100); // 84 less the 5 quarantined
  line("incremental", "incremental", r["incremental_devices"].get<size_t>(), 20);
  for (auto key : {"full", "incremental"}) {
    std::printf("%-12s phases (p50):", key);
    for (auto& [phase, ms] : r[std::string(key) + "_phase_p50_ms"].items())
      std::printf(" %s %.2f ms", phase.c_str(), ms.get<double>());
    std::printf("\n");
  }
}

} // namespace dsmil::bench
