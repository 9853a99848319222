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
//   - the database (a private PostgreSQL, edited between rollbacks), read
//     with its own session: every table and sequence at the state before
//     the rollback, or, when the saga completed and planned the database,
//     at the target's: a restore killed in the middle changed nothing;
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
#include "runtime/config/node_config.hpp"
#include "tests/crash/crash_node.hpp"
#include "tests/pg/pg_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;
using nlohmann::json;

namespace {

// Every table's rows and every sequence of `db`, hashed.
std::string database_digest(const pg_database& db) {
  return sha256_hex(database_contents(db.conninfo()));
}

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

  test::temp_dir dir;
  const std::string data = dir.path() + "/data";
  // The node's admin credential, made by dsmild on its first start (CAF
  // reads the files when it connects).
  caf::actor_system_config caf_cfg;
  REQUIRE_FALSE(configure_client(caf_cfg, node_driver::admin_of(data)));
  caf::actor_system sys{caf_cfg};
  const std::string devices_file = data + "/devices.sim";
  // Eight agents of the reference host, working all along.
  constexpr int agent_count = 8;
  const std::string config = dir.path() + "/dsmil.toml";
  test::spit(config, "[rollback]\non_interrupted = \"" + policy +
                         "\"\n[agents]\nbackend = \"sim\"\ncount = " + std::to_string(agent_count) +
                         "\nstate_kib = 64\ntasks_per_second = 400\n");
  // The database: accounts changed in place, events added and deleted.
  pg_database db;
  REQUIRE_FALSE(db.session()->exec(
      "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL); "
      "CREATE TABLE events (id serial PRIMARY KEY, account int REFERENCES accounts(id) "
      "DEFERRABLE, note text); "
      "INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 2000) g"));
  {
    auto text = test::slurp(config);
    test::spit(config, text + "[database]\nconninfo = \"" + db.conninfo() + "\"\n");
  }
  const std::string agents_dir = data + "/agents.sim";
  node_driver node(sys, data, config);
  node.start();

  std::map<std::string, snapshot> checkpoints;  // the oracle: what each checkpoint holds
  std::map<std::string, std::string> databases; // and its database's digest
  auto change_devices = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto id = writable[pick(writable.size())];
      node.ok("device.set", {{"id", format_device_id(id)},
                             {"register", pick(4)},
                             {"value", static_cast<uint32_t>(rng())}});
    }
  };
  auto db_session = db.session();
  auto change_database = [&] {
    const auto m = std::to_string(2 + pick(20)), r = std::to_string(pick(2));
    REQUIRE_FALSE(db_session->exec(
        "UPDATE accounts SET balance = balance + " + std::to_string(1 + pick(1000)) +
        " WHERE id % " + m + " = " + r + "; INSERT INTO events (account, note) SELECT g, 'k" +
        std::to_string(pick(1000000)) + "' FROM generate_series(1, " + std::to_string(pick(40)) +
        ") g; DELETE FROM events WHERE id % " + m + " = 1"));
  };
  auto create_checkpoint = [&] {
    auto r = node.ok("checkpoint.create", {{"name", "crash"}});
    checkpoints[r["id"].get<std::string>()] = read_devices(devices_file, ids);
    databases[r["id"].get<std::string>()] = database_digest(db);
  };
  for (int i = 0; i < 3; ++i) {
    change_devices(10);
    change_database();
    create_checkpoint();
  }

  // Calibration: how long a rollback takes from the request to its answer,
  // and how much of that the saga itself reports (the rest is transit).
  // Each on a node just restarted, as every rollback below runs: the first
  // saga of a process is slower (new database session, nothing known of
  // the tables yet, cold caches), and a window measured on a warm node
  // lands most kills before the saga begins.
  std::set<std::string> seen_sagas;
  std::vector<double> durations, transit, before_execution;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(node.kill() == 128 + SIGKILL); // idle: nothing to interrupt
    node.start();
    node.ok("status");
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
      change_database();
      create_checkpoint();
    }
    change_devices(static_cast<int>(1 + pick(20)));
    change_database();
    auto pre = read_devices(devices_file, ids);
    const auto pre_db = database_digest(db);
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
    // The database: one transaction, so all of the target or none of it.
    bool database_planned = false;
    if (!saga.is_null() && outcome == "completed") {
      const auto shown = node.ok("rollback.show", {{"id", saga["id"]}});
      for (auto& st : shown["steps"])
        database_planned = database_planned || st["component"] == "database";
    }
    if (type == "full" || type == "emergency") CHECK(database_planned == (outcome == "completed"));
    const auto now_db = database_digest(db);
    const auto& target_db = databases.at(target_id);
    if (now_db != pre_db && now_db != target_db) {
      ++mixed;
      FAIL_CHECK("database at neither state after kill " << k << " (saga outcome '" << outcome
                                                         << "', type " << type << ")");
    } else if (now_db != (database_planned ? target_db : pre_db)) {
      ++disagreements;
      FAIL_CHECK("the node reports '" << outcome << "' but the database says otherwise (kill " << k
                                      << ", type " << type << ")");
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
