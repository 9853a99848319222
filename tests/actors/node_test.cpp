// A whole node in-process (real scheduler, real store on disk): checkpoint,
// change, rollback, and what the rollback refuses or reports.
#include <map>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "dsmil/fields_json.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;
using nlohmann::json;

TEST_CASE(
    "checkpoint, change everything, roll back: every register, blob, flag and level is restored") {
  node_fixture f;
  auto before = f.snapshot();
  auto cp = f.ok("checkpoint.create", {{"name", "base"}});
  const std::string id = cp["id"];
  CHECK(cp["devices"] == 84);

  f.scramble(99);
  f.ok("config.set", {{"key", "agent_concurrency_limit"}, {"value", "7"}});
  f.ok("config.set", {{"key", "config_data"}, {"value", "changed"}});
  auto changed = f.snapshot();
  for (auto& d : f.map.devices())
    if (!d.quarantined) CHECK_FALSE(same_restorable_state(changed[d.id], before[d.id]));

  auto plan = f.ok("rollback", {{"id", id}, {"dry_run", true}});
  CHECK(plan["plan"]["differences"].size() == 79);
  CHECK(plan["plan"]["order"].size() == 79);
  CHECK(plan["skipped_quarantined"].size() == 5);
  check_equal(f.snapshot(), changed); // a dry run changes nothing

  auto r = f.ok("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r["success"] == true);
  CHECK(r["phases_completed"] ==
        json({"validation", "preparation", "execution", "verification", "cleanup"}));
  CHECK(r["rolled_back"]["devices"].size() == 79);
  CHECK(r["duration_ms"].get<double>() > 0);
  check_equal(f.snapshot(), before);
  auto cfg = f.ok("config.show");
  CHECK(cfg["agent_concurrency_limit"] == 80);
  CHECK(cfg["config_data"] == "profile=standard;audit=on");
  CHECK(cfg["config_version"] == 1);
  CHECK(f.quarantined_writes() == 0);
}

TEST_CASE("restore order follows the group dependencies") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  auto plan = f.ok("rollback", {{"id", id}, {"dry_run", true}});
  int last_group = -1;
  std::vector<int> seen;
  for (auto& d : plan["plan"]["order"]) {
    int g = (std::stoi(d.get<std::string>(), nullptr, 16) >> 4) & 0xF;
    if (g != last_group) seen.push_back(g);
    last_group = g;
  }
  auto& order = f.map.restore_order();
  CHECK(seen == std::vector<int>(order.begin(), order.end()));
}

TEST_CASE("a selective rollback restores only the chosen groups and devices") {
  node_fixture f;
  auto before = f.snapshot();
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(5, 1);
  f.scramble(6, 3);
  f.ok("config.set", {{"key", "thermal_threshold_c"}, {"value", "90"}});
  auto mid = f.snapshot();
  auto r = f.ok("rollback", {{"id", id}, {"groups", {3}}});
  CHECK(r["type"] == "selective");
  CHECK(r["plan"]["dependents"] == json({4})); // group 4 depends on group 3
  CHECK(r["rolled_back"]["devices"].size() == 24);
  auto now = f.snapshot();
  check_equal(now, before, 3);
  check_equal(now, mid, 1);
  CHECK(f.ok("config.show")["thermal_threshold_c"] == 90.0); // not part of the selection

  // One device of group 1: group 2 depends on group 1 and follows it.
  auto one = f.ok("rollback", {{"id", id}, {"devices", {"0x8013"}}});
  CHECK(one["plan"]["dependents"] == json({2}));
  CHECK(one["rolled_back"]["devices"].size() == 12); // 0x8013 and group 2's 11 writable ones
  CHECK(one["rolled_back"]["devices"][0] == "0x8013");
  CHECK(same_restorable_state(*f.node.sim->read(0x8013), before[0x8013]));
  CHECK_FALSE(same_restorable_state(*f.node.sim->read(0x8014), before[0x8014]));
}

TEST_CASE("a rollback that would change a critical device is refused without acknowledgement") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.ok("device.set", {{"id", "0x8005"}, {"security_level", 0}});
  f.ok("device.set", {{"id", "0x8031"}, {"register", 1}, {"value", 5}});
  auto writes = f.node.sim->write_count();
  auto r = f.ctl("rollback", {{"id", id}});
  CHECK(r.code == static_cast<uint8_t>(errc::critical_unacknowledged));
  CHECK(r.message.find("0x8005 (TPM interface controller)") != std::string::npos);
  CHECK(r.message.find("--ack-critical") != std::string::npos);
  CHECK(f.node.sim->write_count() == writes);
  CHECK(f.node.sim->read(0x8031)->registers[1] == 5);
  // The history has it as refused, with what was asked (its journal, made
  // while validation ran, has a begin record too).
  auto h = f.ok("rollback.history")["rollbacks"][0];
  CHECK(h["outcome"] == "refused");
  CHECK(h["type"] == "full");
  CHECK(h["target"] == id);
  auto warn = f.ok("rollback", {{"id", id}, {"dry_run", true}});
  bool level_warning = false;
  for (auto& w : warn["warnings"])
    level_warning |= w.get<std::string>().find("0x8005") != std::string::npos;
  CHECK(level_warning);
}

TEST_CASE("validation warns about devices that will be disabled or lose security level") {
  node_fixture f;
  f.ok("device.set", {{"id", "0x8031"}, {"enabled", false}, {"security_level", 1}});
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.ok("device.set", {{"id", "0x8031"}, {"enabled", true}, {"security_level", 4}});
  auto plan = f.ok("rollback", {{"id", id}, {"dry_run", true}});
  std::string all = plan["warnings"].dump();
  CHECK(all.find("0x8031 (DSMIL3D1) will be disabled") != std::string::npos);
  CHECK(all.find("0x8031 (DSMIL3D1) security level will drop from 4 to 1") != std::string::npos);
}

TEST_CASE("verification reads back and names a register that did not take the write") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.ok("device.set", {{"id", "0x8042"}, {"register", 3}, {"value", 1234}});
  fault_spec stuck;
  stuck.stuck_register = 3;
  f.node.sim->set_fault(0x8042, stuck);
  auto r = f.ctl("rollback", {{"id", id}});
  CHECK(r.code == static_cast<uint8_t>(errc::rollback_failed));
  auto body = json::parse(r.body);
  CHECK(body["failed_phase"] == "verification");
  CHECK(r.message.find("0x8042: register 3 reads 0x000004d2") != std::string::npos);
}

TEST_CASE("a device that refuses writes stops the rollback and everything is put back") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(11);
  auto scrambled = f.snapshot();
  fault_spec hot;
  hot.thermal_spike = true;
  f.node.sim->set_fault(0x8003, hot); // group 0: everything depends on it
  auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::rollback_failed));
  auto body = json::parse(r.body);
  CHECK(body["failed_phase"] == "execution");
  CHECK(body["failed"][0]["id"] == "0x8003");
  CHECK(body["outcome"] == "compensated");
  CHECK(r.message.find("critical limit") != std::string::npos);
  CHECK(r.message.find("put back to the pre-rollback state") != std::string::npos);
  check_equal(f.snapshot(), scrambled); // group 0's other 8 devices were written and put back
}

TEST_CASE("a saga whose third component fails puts the first two back, verified, and says so") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(12);
  f.ok("config.set", {{"key", "agent_concurrency_limit"}, {"value", "9"}});
  auto scrambled = f.snapshot();
  // Steps: configuration, group 0, then the second group in restore order.
  const uint8_t third = f.map.restore_order()[1];
  device_id victim = 0;
  for (auto& d : f.map.devices())
    if (d.group == third && !d.quarantined) victim = victim ? victim : d.id;
  fault_spec hot; // readable, so validation passes; writes refused
  hot.thermal_spike = true;
  f.node.sim->set_fault(victim, hot);
  auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}, {"reason", "test"}});
  CHECK(r.code == static_cast<uint8_t>(errc::rollback_failed));
  auto body = json::parse(r.body);
  CHECK(body["failed_phase"] == "execution");
  CHECK(body["compensated"]["ok"] == true);
  CHECK(body["compensated"]["steps"] ==
        json({"group " + std::to_string(third), "group 0", "configuration"}));
  check_equal(f.snapshot(), scrambled);
  CHECK(f.ok("config.show")["agent_concurrency_limit"] == 9);

  auto h = f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 1);
  CHECK(h[0]["outcome"] == "compensated");
  CHECK(h[0]["failed_phase"] == "execution");
  CHECK(h[0]["reason"] == "test");
  CHECK(h[0]["target"] == id);
  CHECK(h[0]["steps_done"] == json({"configuration", "group 0"}));
  CHECK(h[0]["compensated"] == true);
  auto shown = f.ok("rollback.show", {{"id", h[0]["id"]}});
  std::vector<std::string> kinds;
  for (auto& rec : shown["journal"])
    kinds.push_back(rec["t"]);
  CHECK(kinds == std::vector<std::string>{"begin", "phase", "step_start", "step_done", "step_start",
                                          "step_done", "step_start", "step_failed",
                                          "compensate_start", "compensate_done", "end"});
  // The pre-rollback checkpoint is the state the saga was compensated to.
  auto pre = f.ok("checkpoint.show", {{"id", h[0]["pre_rollback"]}});
  CHECK(pre["type"] == "pre-rollback");
}

TEST_CASE("undo rolls back to the state before the last rollback; dry runs estimate from history") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  auto plan = f.ok("rollback", {{"id", id}, {"dry_run", true}, {"type", "incremental"}});
  CHECK(plan["estimate"]["duration_ms"].is_null());
  f.scramble(21, 3);
  auto scrambled = f.snapshot();
  auto r = f.ok("rollback", {{"id", id}, {"type", "incremental"}});
  CHECK(r["rolled_back"]["devices"].size() == 12); // only what differs
  auto before = f.snapshot();
  auto undo = f.ok("rollback", {{"undo", true}, {"ack_critical", true}});
  CHECK(undo["undoes"] == r["saga"]);
  CHECK(undo["checkpoint"] == r["pre_rollback"]);
  check_equal(f.snapshot(), scrambled);
  f.ok("rollback", {{"id", id}, {"type", "incremental"}});
  check_equal(f.snapshot(), before);
  auto again = f.ok("rollback", {{"id", id}, {"dry_run", true}, {"type", "incremental"}});
  CHECK(again["estimate"]["duration_ms"].get<double>() > 0);
  CHECK(again["estimate"]["basis"].get<std::string>().find("median of") != std::string::npos);
  CHECK(f.ok("rollback.history")["total"] == 3);
}

TEST_CASE("one rollback at a time: a second is refused naming the first; emergency pre-empts") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(31);
  auto scrambled = f.snapshot();
  fault_spec slow;
  slow.latency_ms = 400;
  for (auto& d : f.map.devices())
    if (d.group == 5) f.node.sim->set_fault(d.id, slow);
  caf::scoped_actor client{*f.sys};
  json args = {{"id", id}, {"ack_critical", true}};
  rollback_request first_rollback;
  first_rollback.id = id;
  first_rollback.ack_critical = true;
  auto first = client->request(*f.node.control, std::chrono::seconds(60), first_rollback);
  // Wait until it runs.
  std::string running;
  for (int i = 0; i < 200 && running.empty(); ++i) {
    auto st = f.ok("status");
    if (!st["rollback"].is_null())
      running = st["rollback"]["id"];
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE_FALSE(running.empty());
  auto second = f.ctl("rollback", args);
  CHECK(second.code == static_cast<uint8_t>(errc::busy));
  CHECK(second.message.find("rollback " + running) != std::string::npos);
  auto set = f.ctl("device.set", {{"id", "0x8031"}, {"register", 1}, {"value", 5}});
  CHECK(set.code == static_cast<uint8_t>(errc::busy));

  json em = {{"id", id}, {"type", "emergency"}};
  auto emergency = f.ctl("rollback", em);
  CHECK_MESSAGE(emergency.code == 0, emergency.message);
  answer<rollback_reply> first_reply;
  first.receive([&](answer<rollback_reply>& r) { first_reply = std::move(r); },
                [&](caf::error& e) { FAIL(caf::to_string(e)); });
  auto fb = to_json_answer(first_reply);
  CHECK(fb["outcome"] == "preempted");
  CHECK(fb["compensated"]["ok"] == true);
  auto h = f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 2);
  CHECK(h[0]["type"] == "emergency");
  CHECK(h[0]["outcome"] == "completed");
  CHECK(h[1]["outcome"] == "preempted");
  for (auto& d : f.map.devices())
    f.node.sim->set_fault(d.id, fault_spec{});
  auto now = f.snapshot();
  for (auto& d : f.map.devices())
    if (!d.quarantined) CHECK_FALSE(same_restorable_state(now[d.id], scrambled[d.id]));
}

TEST_CASE(
    "a rollback to a damaged checkpoint fails validation, names the file, and writes nothing") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(3);
  const std::string manifest = f.dir.path() + "/store/manifests/" + id + ".json";
  auto body = test::read(manifest);
  body[body.find("\"type\": \"manual\"") + 10] = 'M';
  test::write(manifest, body);
  auto writes = f.node.sim->write_count();
  auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::integrity_error));
  CHECK(r.message.find("manifests/" + id + ".json") != std::string::npos);
  CHECK(json::parse(r.body)["failed_phase"] == "validation");
  CHECK(f.node.sim->write_count() == writes);
  auto v = f.ctl("checkpoint.verify", {{"id", id}});
  CHECK(v.code == static_cast<uint8_t>(errc::integrity_error));
  CHECK(v.message.find(".json: manifest was modified") != std::string::npos);
}

TEST_CASE("bad requests get one clear line and change nothing") {
  node_fixture f;
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  auto before = f.snapshot();
  auto writes = f.node.sim->write_count();
  struct bad_case {
    std::string command;
    json args;
    errc code;
    std::string text;
  } cases[] = {
      {"device.show", {{"id", "0x800C"}}, errc::no_such_device, "no such device 0x800C"},
      {"device.set", {{"id", "0x8009"}, {"enabled", true}}, errc::quarantined, "quarantined"},
      {"device.set", {{"id", "0x8031"}}, errc::invalid_argument, "nothing to set"},
      {"checkpoint.show", {{"id", "0190ffff"}}, errc::not_found, "no checkpoint '0190ffff'"},
      {"rollback", {{"id", "0190ffff"}}, errc::not_found, "no checkpoint"},
      {"rollback", {{"id", id}, {"devices", {"0x80FF"}}}, errc::no_such_device, "no such device"},
      {"rollback", {{"id", id}, {"groups", {9}}}, errc::invalid_argument, "no such group 9"},
      {"config.set",
       {{"key", "agent_concurrency_limit"}, {"value", "many"}},
       errc::invalid_argument,
       "whole number"},
      {"config.set", {{"key", "config_data"}}, errc::invalid_argument, "argument 'value'"},
  };
  for (auto& c : cases) {
    CAPTURE(c.command);
    auto r = f.ctl(c.command, c.args);
    CHECK(r.code == static_cast<uint8_t>(c.code));
    CHECK(r.message.find(c.text) != std::string::npos);
    CHECK(r.message.find('\n') == std::string::npos);
  }
  check_equal(f.snapshot(), before);
  CHECK(f.node.sim->write_count() == writes);
  CHECK(f.ok("checkpoint.list")["checkpoints"].size() == 1);
  CHECK(f.ok("config.show")["config_version"] == 1);
}

TEST_CASE("a node with an encrypted store checkpoints and rolls back the same way") {
  node_fixture f(true);
  auto before = f.snapshot();
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(17);
  auto r = f.ok("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r["success"] == true);
  check_equal(f.snapshot(), before);
  CHECK(test::read(f.dir.path() + "/store/store.toml").find("cipher = 'aes-256-gcm'") !=
        std::string::npos);
  CHECK(f.ok("checkpoint.verify", {{"id", id}})["valid"] == true);
}

TEST_CASE("retention removes older automatic checkpoints and nothing else") {
  node_fixture f;
  for (auto [k, v] : {std::pair{"keep_last", "2"}, std::pair{"keep_hourly", "0"},
                      std::pair{"keep_daily", "0"}, std::pair{"keep_weekly", "0"}})
    f.ok("retention", {{"key", k}, {"value", v}});
  auto manual = f.ok("checkpoint.create", {{"name", "keep me"}})["id"].get<std::string>();
  std::vector<std::string> autos;
  for (int i = 0; i < 4; ++i) {
    auto r = f.ok("checkpoint.create", {{"type", "automatic"}});
    autos.push_back(r["id"]);
    CHECK(r["pruned"].size() == (i >= 2 ? 1u : 0u));
  }
  auto list = f.ok("checkpoint.list")["checkpoints"];
  std::set<std::string> ids;
  for (auto& c : list)
    ids.insert(c["id"].get<std::string>());
  CHECK(ids == std::set<std::string>{manual, autos[2], autos[3]});
  for (auto& id : ids)
    CHECK(f.ok("checkpoint.verify", {{"id", id}})["valid"] == true);
  auto bad = f.ctl("retention", {{"key", "keep_daily"}, {"value", "lots"}});
  CHECK(bad.code == static_cast<uint8_t>(errc::invalid_argument));
  CHECK(f.ok("retention")["keep_last"] == 2);
  auto bad_type = f.ctl("checkpoint.create", {{"type", "sometimes"}});
  CHECK(bad_type.code == static_cast<uint8_t>(errc::invalid_argument));
}

TEST_CASE("a node with an automatic interval takes checkpoints by itself") {
  node_fixture f(false, 1);
  size_t n = 0;
  for (int i = 0; i < 100 && n < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    n = f.ok("checkpoint.list")["checkpoints"].size();
  }
  REQUIRE(n >= 2);
  auto list = f.ok("checkpoint.list"); // kept: a range over a temporary's member dangles
  for (auto& c : list["checkpoints"])
    CHECK(c["type"] == "automatic");
}

TEST_CASE("a step that runs past step_timeout_ms fails the saga, which compensates") {
  node_fixture f(false, 0, [](node_config& c) { c.rollback_step_timeout_ms = 100; });
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(41);
  auto scrambled = f.snapshot();
  fault_spec slow;
  slow.latency_ms = 150; // every call after validation's: the group's step takes longer
  for (auto& d : f.map.devices())
    if (d.group == 3) f.node.sim->set_fault_after(d.id, 2, slow);
  auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::timeout));
  CHECK(r.message.find("group 3 took longer than step_timeout_ms (100 ms)") != std::string::npos);
  auto body = json::parse(r.body);
  CHECK(body["outcome"] == "compensated");
  CHECK(body["compensated"]["ok"] == true);
  check_equal(f.snapshot(), scrambled);
}

TEST_CASE("a device that never answers is abandoned at step_timeout_ms; the saga names it") {
  node_fixture f(false, 0, [](node_config& c) {
    c.rollback_step_timeout_ms = 300;
    c.rollback_compensation_step_timeout_ms = 300;
  });
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(43);
  auto scrambled = f.snapshot();
  fault_spec hung;
  hung.latency_ms = 600000; // answers in ten minutes: as good as never
  SUBCASE("silent from the start: validation cannot capture it, and nothing changes") {
    f.node.sim->set_fault(0x8031, hung);
    auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
    CHECK(r.code == static_cast<uint8_t>(errc::timeout));
    CHECK(r.message.find("device 0x8031 cannot be read (the request timed out)") !=
          std::string::npos);
    CHECK(json::parse(r.body)["outcome"] == "refused");
    // Its history says so, with what was asked.
    auto h = f.ok("rollback.history")["rollbacks"][0];
    CHECK(h["outcome"] == "refused");
    CHECK(h["type"] == "full");
    f.node.sim->set_fault(0x8031, fault_spec{});
    check_equal(f.snapshot(), scrambled);
    return;
  }
  // Read once for the pre-rollback checkpoint, then silent: the step hangs.
  f.node.sim->set_fault_after(0x8031, 2, hung);
  auto r = f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::timeout));
  CHECK(r.message.find("group 3 took longer than step_timeout_ms (300 ms): 0x8031") == 0);
  auto body = json::parse(r.body);
  // Everything else was put back; the silent device is named, not waited for.
  CHECK(body["outcome"] == "compensation_failed");
  REQUIRE(body["compensated"]["failed"].size() == 1);
  CHECK(body["compensated"]["failed"][0]["id"] == "0x8031");
  CHECK(body["compensated"]["failed"][0]["error"].get<std::string>().find(
            "took longer than compensation_step_timeout_ms, 300 ms") != std::string::npos);
  check_equal(f.snapshot(), scrambled);
  auto h = f.ok("rollback.history")["rollbacks"][0];
  CHECK(h["outcome"] == "compensation_failed");
  // Status keeps saying so until a later rollback settles it.
  auto st = f.ok("status");
  CHECK(st["compensation_incomplete"]["saga"] == h["id"]);
  CHECK(st["compensation_incomplete"]["failed"][0]["id"] == "0x8031");
  CHECK(st["warnings"].dump().find("could not put back 0x8031") != std::string::npos);
  f.node.sim->set_fault(0x8031, fault_spec{}); // the device answers again
  CHECK(f.ok("rollback", {{"id", id}, {"ack_critical", true}})["success"] == true);
  CHECK(f.ok("status")["compensation_incomplete"].is_null());
}

TEST_CASE("an emergency rollback does not wait for a step that hangs: the running saga "
          "compensates at once, then the emergency runs") {
  node_fixture f(false, 0, [](node_config& c) {
    c.rollback_step_timeout_ms = 120000; // the step would wait this long for 0x8031
    c.rollback_timeout_ms = 240000;
  });
  auto id = f.ok("checkpoint.create")["id"].get<std::string>();
  f.scramble(47);
  fault_spec slow;
  slow.latency_ms = 2000; // compensation and the emergency wait for it; the step must not
  const auto reads_before = f.node.sim->read_count(0x8031);
  const auto writes_before = f.node.sim->write_count(0x8031);
  f.node.sim->set_fault_after(0x8031, 2, slow); // after validation's read
  caf::scoped_actor client{*f.sys};
  json args = {{"id", id}, {"ack_critical", true}};
  rollback_request first_rollback;
  first_rollback.id = id;
  first_rollback.ack_critical = true;
  auto first = client->request(*f.node.control, std::chrono::seconds(120), first_rollback);
  // Barrier: the saga has read 0x8031 for validation and again in its group 3
  // step, whose answer now takes 2 s.
  for (int i = 0; i < 4000 && f.node.sim->read_count(0x8031) < reads_before + 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(f.node.sim->read_count(0x8031) == reads_before + 2);
  auto emergency = f.ctl("rollback", {{"id", id}, {"type", "emergency"}});
  CHECK_MESSAGE(emergency.code == 0, emergency.message);
  answer<rollback_reply> first_reply;
  first.receive([&](answer<rollback_reply>& r) { first_reply = std::move(r); },
                [&](caf::error& e) { FAIL(caf::to_string(e)); });
  auto fb = to_json_answer(first_reply);
  CHECK(fb["outcome"] == "preempted");
  CHECK(fb["compensated"]["ok"] == true);
  // The hung step never finished: it was abandoned, not waited for.
  auto h = f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 2);
  CHECK(h[1]["outcome"] == "preempted");
  CHECK(h[1]["steps_done"] == json({"configuration", "group 0", "group 1", "group 2"}));
  CHECK(h[0]["type"] == "emergency");
  CHECK(h[0]["outcome"] == "completed");
  // 0x8031 was written once, by the emergency rollback: the pre-empted step
  // stopped waiting for its read, so it never wrote it (and compensation
  // found it in place).
  CHECK(f.node.sim->write_count(0x8031) == writes_before + 1);
  f.node.sim->set_fault(0x8031, fault_spec{});
}
