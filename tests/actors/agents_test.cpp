// The agents component with the reference host ([agents] backend = "sim")
// under load: checkpoints hold what each agent had when it parked, rollbacks
// put it back bit for bit (or, when a restore fails, put every agent back to
// its pre-rollback state), and every agent runs again before the reply.
#include <fstream>

#include "actors/agents/sim_agents.hpp"
#include "runtime/base/coding.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

constexpr uint32_t agent_count = 12;

struct agents_node {
  explicit agents_node(uint32_t stop_timeout_ms = 30000)
      : f(false, 0, [stop_timeout_ms](node_config& c) {
          c.agents.backend = "sim";
          c.agents.count = agent_count;
          c.agents.state_kib = 64;
          c.agents.tasks_per_second = 3000; // about 250 tasks a second for each agent
          c.agents.stop_timeout_ms = stop_timeout_ms;
        }) {
    REQUIRE(f.node.agents_sim);
    host().record_states(true);
  }
  sim_agent_host& host() { return *f.node.agents_sim; }

  std::vector<std::string> ids() {
    std::vector<std::string> out;
    for (auto& a : host().list())
      out.push_back(a.id);
    return out;
  }
  std::map<std::string, std::string> parked() {
    std::map<std::string, std::string> out;
    for (auto& id : ids())
      out[id] = host().parked_state(id);
    return out;
  }
  std::map<std::string, std::string> resumed() {
    std::map<std::string, std::string> out;
    for (auto& id : ids())
      out[id] = host().resumed_state(id);
    return out;
  }
  // Waits until every agent has done more than `n` tasks.
  void let_work(uint64_t n) {
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (auto& a : host().list())
        all = all && a.tasks_done > n;
      if (all) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("the agents do not work");
  }
  void check_all_running() {
    for (auto& a : host().list()) {
      CAPTURE(a.id);
      CHECK(a.state == agent_state::running);
    }
  }
  node_fixture f;
};

uint64_t max_tasks(agents_node& n) {
  uint64_t m = 0;
  for (auto& a : n.host().list())
    m = std::max(m, a.tasks_done);
  return m;
}

} // namespace

TEST_CASE("a checkpoint holds each agent as it parked, and a rollback puts back every agent") {
  agents_node n;
  n.let_work(5);
  auto cp = n.f.ok("checkpoint.create");
  CHECK(cp["components"] == json({"agents", "configuration", "devices", "security"}));
  CHECK(cp["capture"]["agents"]["count"] == agent_count);
  CHECK(cp["capture"]["agents"]["max_pause_ms"].get<double>() > 0);
  const auto at_checkpoint = n.parked();
  n.check_all_running();

  // What the store holds is what each agent had when it parked.
  {
    store_options ro;
    ro.read_only = true;
    auto s = checkpoint_store::open(test_env(), n.f.ncfg.data_dir + "/store", ro);
    REQUIRE_MESSAGE(s.ok(), s.err().message);
    auto contents = (*s)->load(cp["id"].get<std::string>());
    REQUIRE_MESSAGE(contents.ok(), contents.err().message);
    auto image = image_of(**s, *contents);
    REQUIRE(image.ok());
    std::map<std::string, std::string> stored;
    for (auto& [agent, bytes] : (*image)["agents"].streams)
      stored.emplace(agent, bytes.str());
    CHECK(stored == at_checkpoint);
  }
  // `agent list` hashes each agent's state as it is now.
  auto list = n.f.ok("agent.list");
  REQUIRE(list["agents"].size() == agent_count);
  CHECK(list["agents"][0]["id"] == "agent-00");
  CHECK(list["agents"][0]["state_sha256"].get<std::string>().size() == 64);
  CHECK(n.f.ok("agent.show", {{"id", "agent-03"}})["id"] == "agent-03");
  auto missing = n.f.ctl("agent.show", {{"id", "agent-99"}});
  CHECK(missing.code == static_cast<uint8_t>(errc::not_found));
  CHECK(missing.message.find("no agent 'agent-99'") != std::string::npos);

  n.let_work(max_tasks(n) + 5); // every agent moved on
  const auto id = cp["id"].get<std::string>();

  SUBCASE("full: every agent back, running, bit for bit") {
    auto r = n.f.ok("rollback", {{"id", id}, {"ack_critical", true}});
    CHECK(r["rolled_back"]["agents"].size() == agent_count);
    n.check_all_running();
    CHECK(n.resumed() == at_checkpoint);
    // The pre-rollback checkpoint holds the state the agents were held at.
    const auto held_at = n.parked();
    for (auto& [agent, bytes] : held_at)
      CHECK(bytes != at_checkpoint.at(agent));
    auto undo = n.f.ok("rollback", {{"undo", true}, {"ack_critical", true}});
    CHECK(n.resumed() == held_at);
    n.check_all_running();
  }
  SUBCASE("selective: only the agents named") {
    auto before = n.f.ok("agent.show", {{"id", "agent-05"}});
    auto r = n.f.ok("rollback", {{"id", id}, {"agents", {"agent-02", "agent-07"}}});
    CHECK(r["rolled_back"]["agents"] == json({"agent-02", "agent-07"}));
    CHECK(r["rolled_back"]["components"] == json({"agents"}));
    const auto resumed = n.resumed();
    CHECK(resumed.at("agent-02") == at_checkpoint.at("agent-02"));
    CHECK(resumed.at("agent-07") == at_checkpoint.at("agent-07"));
    CHECK(resumed.at("agent-05") != at_checkpoint.at("agent-05"));
    n.check_all_running();
    auto bad = n.f.ctl("rollback", {{"id", id}, {"agents", {"agent-42"}}});
    CHECK(bad.code == static_cast<uint8_t>(errc::invalid_argument));
    CHECK(bad.message.find("no agent 'agent-42' in the checkpoint") != std::string::npos);
  }
  SUBCASE("incremental: only the agents whose state differs") {
    auto r = n.f.ok("rollback", {{"id", id}, {"type", "incremental"}, {"ack_critical", true}});
    CHECK(r["rolled_back"]["agents"].size() == agent_count); // all of them worked meanwhile
    CHECK(n.resumed() == at_checkpoint);
  }
}

TEST_CASE("an agent whose restore fails leaves every agent at its pre-rollback state, running") {
  agents_node n;
  n.let_work(3);
  auto cp = n.f.ok("checkpoint.create");
  const auto at_checkpoint = n.parked();
  n.let_work(max_tasks(n) + 5);
  REQUIRE_FALSE(n.host().set_fail_restore("agent-06", true));
  auto r = n.f.ctl("rollback", {{"id", cp["id"]}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::rollback_failed));
  auto body = json::parse(r.body);
  CHECK(body["outcome"] == "compensated");
  CHECK(body["failed"].dump().find("agent-06") != std::string::npos);
  CHECK(body["failed"].dump().find("injected restore failure") != std::string::npos);
  n.check_all_running();
  // Held at the rollback's start (parked), given back that very state.
  const auto held_at = n.parked();
  CHECK(n.resumed() == held_at);
  for (auto& [agent, bytes] : held_at)
    CHECK(bytes != at_checkpoint.at(agent));
  auto history = n.f.ok("rollback.history");
  CHECK(history["rollbacks"][0]["outcome"] == "compensated");
}

TEST_CASE("an agent that never quiesces is cancelled and named; the rollback completes") {
  agents_node n(200);
  n.let_work(3);
  auto cp = n.f.ok("checkpoint.create");
  const auto at_checkpoint = n.parked();
  n.let_work(max_tasks(n) + 5);
  REQUIRE_FALSE(n.host().set_never_quiesce("agent-04", true));
  auto r = n.f.ok("rollback", {{"id", cp["id"]}, {"ack_critical", true}});
  CHECK(r["outcome"] == "completed");
  CHECK(r["warnings"].dump().find("agent agent-04 did not quiesce") != std::string::npos);
  CHECK(n.resumed() == at_checkpoint);
  n.check_all_running();
  // A checkpoint names it too, and still holds every agent.
  auto again = n.f.ok("checkpoint.create");
  CHECK(again["warnings"].dump().find("agent agent-04 did not quiesce") != std::string::npos);
  CHECK(again["capture"]["agents"]["count"] == agent_count);
}

TEST_CASE("agent load sets the reference host's work; a node without it says so") {
  agents_node n;
  n.let_work(2); // working once start-up recovery is done
  CHECK(n.f.ok("agent.load")["tasks_per_second"] == 3000);
  CHECK(n.f.ok("agent.load", {{"tasks_per_second", 0}})["tasks_per_second"] == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // tasks already sent run
  const auto stopped = n.host().list();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto later = n.host().list();
  for (size_t i = 0; i < later.size(); ++i)
    CHECK(later[i].tasks_done == stopped[i].tasks_done);
  n.f.ok("agent.load", {{"tasks_per_second", 3000}});
  n.let_work(max_tasks(n) + 2);

  auto bad = n.f.ctl("agent.load", {{"tasks_per_second", -1}});
  CHECK(bad.code == static_cast<uint8_t>(errc::invalid_argument));
  CHECK(bad.message.find("tasks_per_second must be 0") != std::string::npos);

  node_fixture plain;
  auto none = plain.ctl("agent.load", {{"tasks_per_second", 0}});
  CHECK(none.code == static_cast<uint8_t>(errc::not_found));
  CHECK(none.message.find("[agents] backend = \"sim\"") != std::string::npos);
}

TEST_CASE("an agent whose version did not change is not snapshotted again; a restore changes it") {
  agents_node n;
  n.let_work(2);
  n.f.ok("agent.load", {{"tasks_per_second", 0}});
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // tasks already sent run
  auto image_of_checkpoint = [&](const std::string& id) {
    store_options ro;
    ro.read_only = true;
    auto store = checkpoint_store::open(test_env(), n.f.ncfg.data_dir + "/store", ro);
    REQUIRE_MESSAGE(store.ok(), store.err().message);
    auto contents = (*store)->load(id);
    REQUIRE_MESSAGE(contents.ok(), contents.err().message);
    auto image = image_of(**store, *contents);
    REQUIRE_MESSAGE(image.ok(), image.err().message);
    std::map<std::string, std::string> out;
    for (auto& [agent, bytes] : (*image)["agents"].streams)
      out.emplace(agent, bytes.str());
    return out;
  };
  auto first = n.f.ok("checkpoint.create");
  const auto at_first = n.parked();
  CHECK(image_of_checkpoint(first["id"]) == at_first);
  // Two agents work: only they are snapshotted.
  REQUIRE_FALSE(n.host().run_tasks("agent-03", 2));
  REQUIRE_FALSE(n.host().run_tasks("agent-08", 1));
  auto second = n.f.ok("checkpoint.create");
  CHECK(second["capture"]["agents"]["unchanged"] == agent_count - 2);
  const auto at_second = n.parked();
  CHECK(at_second.at("agent-03") != at_first.at("agent-03"));
  CHECK(image_of_checkpoint(second["id"]) == at_second);
  // Back to the first: the restored agents' next snapshot is their
  // restored state, not the one taken before the rollback.
  n.f.ok("rollback", {{"id", first["id"]}, {"ack_critical", true}});
  auto third = n.f.ok("checkpoint.create");
  CHECK(third["capture"]["agents"]["unchanged"] == agent_count - 2);
  CHECK(image_of_checkpoint(third["id"]) == at_first);
}

TEST_CASE("the reference host's state files: a restart loads the newest whole slot") {
  temp_dir dir;
  caf::actor_system_config cfg;
  configure_actor_system(cfg, false);
  caf::actor_system sys{cfg};
  sim_agents_config c;
  c.count = 2;
  c.state_kib = 16;
  c.tasks_per_second = 0;
  c.state_dir = dir.path() + "/agents.sim";
  const auto deadline = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(5); };
  auto snapshot_of = [](sim_agent_host& h, const std::string& id) {
    std::string out;
    REQUIRE_FALSE(h.snapshot(id, [&](std::string_view b) -> status {
      out.append(b);
      return {};
    }));
    return out;
  };
  const std::string file = c.state_dir + "/agent-00.state";
  std::string first, second;
  {
    auto h = sim_agent_host::start(sys, c, env::posix());
    REQUIRE(h.ok());
    auto& host = **h;
    // Parked twice after work: both slots written.
    REQUIRE_FALSE(host.run_tasks("agent-00", 3));
    REQUIRE_FALSE(host.quiesce("agent-00", deadline()));
    first = snapshot_of(host, "agent-00");
    REQUIRE_FALSE(host.resume("agent-00"));
    REQUIRE_FALSE(host.run_tasks("agent-00", 2));
    REQUIRE_FALSE(host.quiesce("agent-00", deadline()));
    second = snapshot_of(host, "agent-00");
    CHECK(first != second);
    CHECK(*sim_agent_host::read_state_file(env::posix(), file) == second);
    host.stop();
  }
  {
    auto h = sim_agent_host::start(sys, c, env::posix());
    REQUIRE(h.ok());
    CHECK(snapshot_of(**h, "agent-00") == second);
    (*h)->stop();
  }
  // A kill during a slot's write leaves it torn: the other slot is the state.
  auto bytes = slurp(file);
  const size_t slot = (bytes.size() - 24) / 2;
  const size_t newest =
      coding::decode_fixed64(bytes.data() + 24) > coding::decode_fixed64(bytes.data() + 24 + slot)
          ? 0
          : 1;
  bytes[24 + newest * slot + slot / 2] ^= 0x01;
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
  CHECK(*sim_agent_host::read_state_file(env::posix(), file) == first);
  {
    auto h = sim_agent_host::start(sys, c, env::posix());
    REQUIRE(h.ok());
    CHECK(snapshot_of(**h, "agent-00") == first);
    (*h)->stop();
  }
  // Both slots torn: one line naming the file and what to do.
  bytes[24 + (1 - newest) * slot + slot / 2] ^= 0x01;
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
  auto broken = sim_agent_host::start(sys, c, env::posix());
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.err().message.find(file) != std::string::npos);
  CHECK(broken.err().message.find("remove " + c.state_dir) != std::string::npos);

  // A file of the first format (one snapshot) loads, and is replaced whole
  // by the next write.
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << first; }
  auto h = sim_agent_host::start(sys, c, env::posix());
  REQUIRE(h.ok());
  CHECK(snapshot_of(**h, "agent-00") == first);
  REQUIRE_FALSE((*h)->run_tasks("agent-00", 1));
  REQUIRE_FALSE((*h)->quiesce("agent-00", deadline()));
  const auto third = snapshot_of(**h, "agent-00");
  CHECK(slurp(file).substr(0, 8) == "DSAGST02");
  CHECK(*sim_agent_host::read_state_file(env::posix(), file) == third);
  (*h)->stop();
}
