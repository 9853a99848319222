// Crash harness for rollback sagas (RocksDB's crash test is the model): a
// driver starts a real dsmild, asks it for rollbacks of random types and
// targets, kills it with SIGKILL at a random instant of the saga (most of a
// saga's time is journal and checkpoint fsyncs, so most kills land inside an
// fsync window), starts it again, and checks with an oracle kept outside the
// store (one restart in five is killed again, while it settles the saga):
//   - the devices, read straight from the simulator's state file (the
//     hardware's truth, not the node's), are bit for bit either all at the
//     pre-rollback state or exactly the pre-rollback state with the saga's
//     planned devices at the target: never a mix;
//   - the agents (the reference host, under load), read straight from their
//     state files, are each at the pre-rollback checkpoint's state, or, when
//     the saga completed and planned the agent, at the target's;
//   - the node's report (rollback history) agrees: completed means the
//     second, anything else the first; no saga is left without an end;
//   - no checkpoint the driver saw created is lost, and the store checks clean.
// DSMIL_ROLLBACK_KILLS sets the number of kills (default 200),
// DSMIL_ROLLBACK_POLICY the node's [rollback] on_interrupted (compensate, the
// default, or resume: an interrupted saga is then finished at start-up), and
// DSMIL_ROLLBACK_SEED replays a run's choices (types, targets, device
// changes, kill delays; where a delay lands in the saga depends on timing).
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "actors/agents/sim_agents.hpp"
#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node_client.hpp"
#include "dsmil/fields_json.hpp"
#include "tests/process.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/os/env.hpp"
#include "simd/crc64.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;
using nlohmann::json;

namespace {

// The restorable part of one device, as the state file holds it.
struct dev_state {
  bool enabled = false;
  uint8_t level = 0;
  std::vector<uint32_t> registers;
  std::vector<uint8_t> blob;
  bool operator==(const dev_state& o) const {
    return enabled == o.enabled && level == o.level && registers == o.registers && blob == o.blob;
  }
  bool operator!=(const dev_state& o) const { return !(*this == o); }
};
using snapshot = std::map<device_id, dev_state>;

// Reads the simulator's state file on its own terms (format in
// runtime/devices/sim_driver.cpp): per device, the intact slot with the higher sequence.
snapshot read_devices(const std::string& path, const std::vector<device_id>& ids) {
  auto bytes = test::slurp(path);
  REQUIRE(bytes.size() >= 64);
  REQUIRE(std::memcmp(bytes.data(), "DSMSIM01", 8) == 0);
  uint32_t count, slot_bytes;
  std::memcpy(&count, &bytes[16], 4);
  std::memcpy(&slot_bytes, &bytes[20], 4);
  REQUIRE(count == ids.size());
  REQUIRE(bytes.size() == 64 + size_t{count} * 2 * slot_bytes);
  snapshot out;
  for (size_t i = 0; i < count; ++i) {
    const char* best = nullptr;
    uint64_t best_seq = 0;
    for (int w = 0; w < 2; ++w) {
      const char* p = bytes.data() + 64 + (i * 2 + static_cast<size_t>(w)) * slot_bytes;
      uint64_t seq, crc;
      uint32_t len;
      std::memcpy(&seq, p, 8);
      std::memcpy(&crc, p + 8, 8);
      std::memcpy(&len, p + 16, 4);
      if (seq == 0 || len > slot_bytes - 20) continue;
      uint64_t c = simd::crc64(&seq, 8);
      c = simd::crc64(&len, 4, c);
      c = simd::crc64(p + 20, len, c);
      if (c == crc && seq > best_seq) best = p, best_seq = seq;
    }
    REQUIRE_MESSAGE(best, "device " << format_device_id(ids[i]) << " has no intact slot");
    const char* b = best + 20;
    dev_state s;
    uint16_t regs;
    uint32_t blob;
    s.enabled = b[0] == 1;
    s.level = static_cast<uint8_t>(b[1]);
    std::memcpy(&regs, b + 2, 2);
    std::memcpy(&blob, b + 4, 4);
    s.registers.resize(regs);
    std::memcpy(s.registers.data(), b + 8, size_t{regs} * 4);
    s.blob.assign(b + 8 + size_t{regs} * 4, b + 8 + size_t{regs} * 4 + blob);
    out[ids[i]] = std::move(s);
  }
  return out;
}

// Each agent's state file (actors/agents/sim_agents.cpp), hashed: the state
// it has when it parks or is restored, which a kill -9 leaves as it was.
std::map<std::string, std::string> read_agents(const std::string& dir, int count) {
  std::map<std::string, std::string> out;
  for (int i = 0; i < count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "agent-%02d", i);
    auto path = dir + "/" + id + ".state";
    if (!std::filesystem::exists(path)) continue;
    auto snapshot = sim_agent_host::read_state_file(env::posix(), path);
    out[id] = snapshot ? sha256_hex(*snapshot) : "unreadable: " + snapshot.err().message;
  }
  return out;
}

class node_driver {
public:
  node_driver(caf::actor_system& sys, std::string data_dir, std::string config)
      : sys_(sys), data_dir_(std::move(data_dir)), config_(std::move(config)) {}

  void start() {
    std::vector<std::string> argv = {
        test::program("DSMILD"), "--listen", "127.0.0.1:0", "--data-dir", data_dir_,
        "--log-level",           "warn"};
    if (!config_.empty()) {
      argv.push_back("--config");
      argv.push_back(config_);
    }
    proc_ = std::make_unique<test::child_process>(argv);
    // Log lines (a saga settled at start-up) may come before it.
    const std::string prefix = "dsmild listening on ";
    auto line = proc_->read_line();
    for (int skipped = 0;
         skipped < 100 && !line.empty() && line.compare(0, prefix.size(), prefix) != 0; ++skipped)
      line = proc_->read_line();
    REQUIRE_MESSAGE(line.compare(0, prefix.size(), prefix) == 0,
                    "dsmild did not start: '" << line << "' " << test::slurp(proc_->stderr_path()));
    auto endpoint = line.substr(prefix.size());
    auto colon = endpoint.rfind(':');
    auto remote = sys_.middleman().remote_actor<node_api>(
        endpoint.substr(0, colon), static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
    REQUIRE_MESSAGE(remote, "cannot connect to dsmild at " << endpoint);
    node_ = *remote;
  }

  int kill() {
    int rc = proc_->stop(SIGKILL);
    proc_.reset();
    return rc;
  }
  void stop() {
    if (proc_) proc_->stop(SIGTERM);
    proc_.reset();
  }

  control_reply ctl(const std::string& command, const json& args = json::object()) {
    auto r = ask_node(sys_, node_, std::chrono::seconds(60), command, args);
    if (!r) return control_reply{255, r.err().message, "{}"};
    return *r;
  }
  json ok(const std::string& command, const json& args = json::object()) {
    auto r = ctl(command, args);
    REQUIRE_MESSAGE(r.code == 0, command << ": " << r.message);
    return json::parse(r.body);
  }
  // Fire and forget: the answer is never awaited (the node is killed).
  void send(const std::string& command, const json& args) {
    REQUIRE(command == "rollback");
    rollback_request req;
    REQUIRE(from_json_fields(args, req).empty());
    caf::anon_send(node_, req);
  }

private:
  caf::actor_system& sys_;
  std::string data_dir_;
  std::string config_;
  std::unique_ptr<test::child_process> proc_;
  node_api node_;
};

} // namespace

TEST_CASE("kill -9 at random instants of rollback sagas never leaves a mixed state") {
  const char* kills_env = std::getenv("DSMIL_ROLLBACK_KILLS");
  const char* seed_env = std::getenv("DSMIL_ROLLBACK_SEED");
  const int kills = kills_env ? std::atoi(kills_env) : 200;
  const char* policy_env = std::getenv("DSMIL_ROLLBACK_POLICY");
  const std::string policy = policy_env ? policy_env : "compensate";
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10)
                                 : static_cast<uint64_t>(std::random_device{}());
  MESSAGE("rollback crash harness seed " << seed << " (replay with DSMIL_ROLLBACK_SEED=" << seed
                                         << "), " << kills
                                         << " kills, on_interrupted = " << policy);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  auto cfg = node_config::embedded();
  REQUIRE(cfg);
  std::vector<device_id> ids, writable;
  std::map<device_id, int> group_of;
  for (auto& d : cfg->devices.devices()) {
    ids.push_back(d.id);
    group_of[d.id] = d.group;
    if (!d.quarantined) writable.push_back(d.id);
  }

  caf::actor_system_config caf_cfg;
  configure_actor_system(caf_cfg);
  caf::actor_system sys{caf_cfg};
  test::temp_dir dir;
  const std::string data = dir.path() + "/data";
  const std::string devices_file = data + "/devices.sim";
  // Eight agents of the reference host, working all along.
  constexpr int agent_count = 8;
  const std::string config = dir.path() + "/dsmil.toml";
  test::spit(config, "[rollback]\non_interrupted = \"" + policy +
                         "\"\n[agents]\nbackend = \"sim\"\ncount = " + std::to_string(agent_count) +
                         "\nstate_kib = 64\ntasks_per_second = 400\n");
  const std::string agents_dir = data + "/agents.sim";
  node_driver node(sys, data, config);
  node.start();

  std::map<std::string, snapshot> checkpoints; // the oracle: what each checkpoint holds
  auto change_devices = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto id = writable[pick(writable.size())];
      node.ok("device.set", {{"id", format_device_id(id)},
                             {"register", pick(4)},
                             {"value", static_cast<uint32_t>(rng())}});
    }
  };
  auto create_checkpoint = [&] {
    auto r = node.ok("checkpoint.create", {{"name", "crash"}});
    checkpoints[r["id"].get<std::string>()] = read_devices(devices_file, ids);
  };
  for (int i = 0; i < 3; ++i) {
    change_devices(10);
    create_checkpoint();
  }

  // Calibration: how long a rollback takes from the request to its answer,
  // and how much of that the saga itself reports (the rest is transit).
  std::set<std::string> seen_sagas;
  std::vector<double> durations, transit, before_execution;
  for (int i = 0; i < 5; ++i) {
    change_devices(10);
    auto t0 = std::chrono::steady_clock::now();
    auto r = node.ok("rollback", {{"id", checkpoints.begin()->first}, {"ack_critical", true}});
    double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    durations.push_back(r["duration_ms"].get<double>());
    before_execution.push_back(r["phase_ms"].value("validation", 0.0) +
                               r["phase_ms"].value("preparation", 0.0));
    transit.push_back(std::max(0.0, wall - r["duration_ms"].get<double>()));
    seen_sagas.insert(r["saga"].get<std::string>());
  }
  std::sort(transit.begin(), transit.end());
  const double transit_ms = transit[transit.size() / 2];
  std::sort(before_execution.begin(), before_execution.end());
  const double execution_at_ms = transit_ms + before_execution[before_execution.size() / 2];
  std::map<std::string, int> outcomes;
  int mixed = 0, lost = 0, disagreements = 0, recovered = 0, second_kills = 0;
  const char* types[] = {"full", "incremental", "selective", "emergency"};
  for (int k = 0; k < kills; ++k) {
    CAPTURE(k);
    CAPTURE(seed);
    if (pick(4) == 0) {
      change_devices(static_cast<int>(1 + pick(8)));
      create_checkpoint();
    }
    change_devices(static_cast<int>(1 + pick(20)));
    auto pre = read_devices(devices_file, ids);
    auto it = checkpoints.begin();
    std::advance(it, static_cast<long>(pick(checkpoints.size())));
    const std::string target_id = it->first;
    const snapshot& target = it->second;
    std::string type = types[pick(4)];
    json args = {{"id", target_id}, {"type", type}, {"ack_critical", true}, {"reason", "crash"}};
    int group = -1;
    if (type == "selective") {
      group = static_cast<int>(pick(group_count));
      args["groups"] = {group};
    }
    // Kill somewhere in [0, transit + 1.3 x the median saga so far]; every
    // other kill in its second part, from about where execution starts
    // (the first part is validation and the pre-rollback checkpoint).
    std::sort(durations.begin(), durations.end());
    const double window_ms = transit_ms + 1.3 * durations[durations.size() / 2];
    const double from_ms = pick(2) ? 0.0 : std::min(0.8 * execution_at_ms, window_ms);
    const auto delay_us = static_cast<int64_t>(
        (from_ms + static_cast<double>(pick(10000)) / 10000.0 * (window_ms - from_ms)) * 1000.0);
    node.send("rollback", args);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    REQUIRE(node.kill() == 128 + SIGKILL);

    node.start();
    if (pick(5) == 0) {
      // Again, while the node may be settling the interrupted saga.
      std::this_thread::sleep_for(std::chrono::microseconds(pick(5000)));
      REQUIRE(node.kill() == 128 + SIGKILL);
      ++second_kills;
      node.start();
    }
    node.ok("status"); // answered only after interrupted sagas were settled
    auto now = read_devices(devices_file, ids);
    auto history = node.ok("rollback.history", {{"limit", 1000000}})["rollbacks"];
    json saga;
    int fresh = 0;
    for (auto& h : history) {
      if (h["outcome"] == "interrupted") {
        FAIL_CHECK("saga " << h["id"] << " has no end record after a restart");
        ++disagreements;
      }
      if (seen_sagas.insert(h["id"].get<std::string>()).second) {
        saga = h;
        ++fresh;
      }
    }
    CHECK(fresh <= 1);
    const std::string outcome = saga.is_null() ? "never began" : saga["outcome"].get<std::string>();
    ++outcomes[outcome];
    if (!saga.is_null() && saga.value("recovered", false)) ++recovered;

    // What the devices would be with the saga applied: its planned devices at
    // the target, everything else as before.
    snapshot applied = pre;
    std::set<device_id> planned;
    if (!saga.is_null() && outcome == "completed") {
      auto shown = node.ok("rollback.show", {{"id", saga["id"]}});
      for (auto& st : shown["steps"])
        if (st["component"] == "devices")
          for (auto& d : st["items"])
            planned.insert(static_cast<device_id>(std::stoul(d.get<std::string>(), nullptr, 16)));
      for (auto d : planned)
        applied[d] = target.at(d);
      if (saga.contains("duration_ms")) durations.push_back(saga["duration_ms"].get<double>());
      // The plan is what the type asks for.
      for (auto d : writable) {
        CAPTURE(format_device_id(d));
        if (type == "full" || type == "emergency") CHECK(planned.count(d) == 1);
        if (type == "incremental" && pre.at(d) != target.at(d)) CHECK(planned.count(d) == 1);
        if (type == "selective" && group_of[d] == group) CHECK(planned.count(d) == 1);
      }
    }
    // The agents: at the pre-rollback state, or the planned ones at the
    // target when the saga completed. A saga that never began (or was
    // refused) took no pre-rollback checkpoint to compare with: it
    // restored nothing, which the devices above show.
    if (!saga.is_null() && saga.contains("pre_rollback") && outcome != "refused") {
      auto hashes = [&](const std::string& id) {
        std::map<std::string, std::string> out;
        const auto shown = node.ok("checkpoint.show", {{"id", id}});
        for (auto& a : shown["agents"])
          out[a["id"].get<std::string>()] = a["state_sha256"].get<std::string>();
        return out;
      };
      const auto at_pre_rollback = hashes(saga["pre_rollback"].get<std::string>());
      const auto at_target_cp = hashes(target_id);
      std::set<std::string> planned_agents;
      const auto shown =
          outcome == "completed" ? node.ok("rollback.show", {{"id", saga["id"]}}) : json::object();
      if (shown.contains("steps"))
        for (auto& st : shown["steps"])
          if (st["component"] == "agents")
            for (auto& a : st["items"])
              planned_agents.insert(a.get<std::string>());
      const auto agents_now = read_agents(agents_dir, agent_count);
      std::string wrong;
      for (auto& [agent, hash] : agents_now) {
        REQUIRE_MESSAGE(at_pre_rollback.count(agent) + at_target_cp.count(agent) == 2,
                        "checkpoints " << saga.dump() << " and " << target_id
                                       << " do not both hold agent " << agent);
        const auto& want =
            planned_agents.count(agent) ? at_target_cp.at(agent) : at_pre_rollback.at(agent);
        if (hash != want) wrong += agent + " ";
      }
      CHECK(agents_now.size() == agent_count);
      if (!wrong.empty()) {
        ++mixed;
        FAIL_CHECK("agents at neither state after kill " << k << " (saga outcome '" << outcome
                                                         << "', type " << type << "): " << wrong);
      }
    }
    const bool at_pre = now == pre;
    const bool at_target = now == applied;
    if (!at_pre && !at_target) {
      ++mixed;
      std::string differ;
      for (auto d : ids)
        if (now.at(d) != pre.at(d) && now.at(d) != applied.at(d))
          differ += format_device_id(d) + " ";
      size_t at_t = 0, at_p = 0;
      for (auto d : planned) {
        at_t += now.at(d) == target.at(d);
        at_p += now.at(d) == pre.at(d);
      }
      FAIL_CHECK("mixed state after kill " << k << " (saga outcome '" << outcome << "', type "
                                           << type << "): devices at neither state: " << differ
                                           << "; planned at target " << at_t << ", at pre "
                                           << at_p);
    } else if (outcome == "completed" ? !at_target : !at_pre) {
      ++disagreements;
      FAIL_CHECK("the node reports '" << outcome << "' but the devices say otherwise");
    }

    auto list = node.ok("checkpoint.list")["checkpoints"];
    std::set<std::string> listed;
    for (auto& c : list)
      listed.insert(c["id"].get<std::string>());
    for (auto& [id, s] : checkpoints)
      if (!listed.count(id)) {
        ++lost;
        FAIL_CHECK("checkpoint " << id << " was lost");
      }
    if (k % 50 == 49) {
      auto check = node.ok("store.check", {{"read_data", false}});
      CHECK_MESSAGE(check["clean"] == true, check.dump());
    }
  }
  auto check = node.ok("store.check", {{"read_data", true}});
  CHECK_MESSAGE(check["clean"] == true, check.dump());
  for (auto& [id, s] : checkpoints)
    CHECK(node.ok("checkpoint.verify", {{"id", id}})["valid"] == true);
  node.stop();

  std::string summary;
  for (auto& [o, n] : outcomes)
    summary += o + " " + std::to_string(n) + ", ";
  MESSAGE(kills << " kills during sagas and " << second_kills << " during start-up: " << summary
                << recovered << " settled at start-up; mixed states " << mixed
                << ", node/devices disagreements " << disagreements << ", lost checkpoints " << lost
                << "; median saga " << durations[durations.size() / 2] << " ms, transit "
                << transit_ms << " ms");
  CHECK(mixed == 0);
  CHECK(lost == 0);
  CHECK(disagreements == 0);
}
