// The rollback saga actor under CAF's deterministic scheduler: its worker and
// its components' handlers are fakes, time is the test clock. A step that
// hangs is abandoned at its limit, an emergency pre-empts a step at once, and
// the emergency saga runs after the pre-empted one has compensated: each
// checked by what has happened when the clock reaches a given instant, with
// no wall-clock sleep anywhere.
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/caf_glue.hpp"
#include "actors/node/saga_protocol.hpp"
#include "actors/devices/supervisors.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/state_codec.hpp"

using namespace dsmil;
using namespace std::chrono_literals;

namespace {

// What happened, in order, across the fakes: "alpha apply target",
// "beta read_back current", "journal step_start 1", "prepare", ...
using event_log = std::vector<std::string>;

// What a fake component does with each apply, in turn: "ok", "hang" (never
// answers), "fail" (every item fails); "ok" once the script ends.
using script = std::vector<std::string>;

struct fake_component_state {
  std::string name;
  event_log* log = nullptr;
  script applies;
  size_t next = 0;
  std::vector<caf::typed_response_promise<std::vector<failed_item>>> hung; ///< kept unanswered
};

using fake_ptr = component_handler::stateful_pointer<fake_component_state>;

// Which image a step is asked against, by its value of the component's item.
std::string which(const component_image& img) {
  return img.records.begin()->second == "new" ? "target" : "current";
}

component_handler::behavior_type fake_component(fake_ptr self, std::string name, event_log* log,
                                                script applies) {
  self->state.name = std::move(name);
  self->state.log = log;
  self->state.applies = std::move(applies);
  self->set_exit_handler([self](caf::exit_msg& m) { self->quit(m.reason); }); // ends with its saga
  return {
      [](capture_atom) -> caf::result<component_image> {
        return to_caf(make_error(errc::internal, "not asked by sagas"));
      },
      [](plan_atom, const component_image&, const component_image&,
         const plan_request&) -> caf::result<component_plan> {
        return to_caf(make_error(errc::internal, "not asked by sagas"));
      },
      [self](apply_atom, const saga_step& st, const component_image& img,
             caf::timespan) -> caf::result<std::vector<failed_item>> {
        auto& s = self->state;
        s.log->push_back(s.name + " apply " + which(img));
        const std::string what = s.next < s.applies.size() ? s.applies[s.next] : "ok";
        ++s.next;
        if (what == "hang") {
          s.hung.push_back(self->make_response_promise<std::vector<failed_item>>());
          return s.hung.back();
        }
        if (what == "fail") return every_item_failed(st, "injected failure");
        return std::vector<failed_item>{};
      },
      [self](read_back_atom, const saga_step&, const component_image& img,
             caf::timespan) -> caf::result<std::vector<failed_item>> {
        self->state.log->push_back(self->state.name + " read_back " + which(img));
        return std::vector<failed_item>{};
      },
      [self](health_atom) {
        component_health h;
        h.name = self->state.name;
        return h;
      },
      [](tick_atom, uint64_t) {},
  };
}

// The saga's worker: a prepared rollback of two components, one step each;
// journal appends are logged. With `hold`, validation answers only when the
// worker is sent tick_atom.
using plan_fn = std::function<saga_prepared_ptr(const std::string& id)>;

// Two components, alpha and beta, one step each.
saga_prepared_ptr two_components(const std::string& id) {
  auto p = std::make_shared<saga_prepared>();
  p->result = {{"saga", id}, {"phases_completed", json::array()}};
  p->v.type = rollback_type::full;
  p->v.target_id = "checkpoint";
  for (std::string c : {"alpha", "beta"}) {
    p->v.steps.push_back({c, c, {}});
    p->v.target[c].records["item"] = "new";
    p->v.current[c].records["item"] = "old";
  }
  p->pre_rollback = "pre";
  return p;
}

// `fail_commit`: the journal append that fails (1 the first; 0 none), as a
// full disk would fail it.
caf::behavior fake_io(caf::event_based_actor* self, event_log* log, std::string id, bool hold,
                      plan_fn plan, int fail_commit) {
  auto prepared = [id, plan] { return plan(id); };
  auto commits = std::make_shared<int>(0);
  auto held = std::make_shared<caf::response_promise>();
  self->set_exit_handler([self](caf::exit_msg& m) { self->quit(m.reason); }); // ends with its saga
  return {
      [=](prepare_atom, const std::string&) -> caf::result<saga_prepared_ptr> {
        log->push_back("prepare " + id);
        if (!hold) return prepared();
        *held = self->make_response_promise();
        return caf::delegated<saga_prepared_ptr>{};
      },
      [=](tick_atom) { held->deliver(prepared()); },
      [=](commit_atom, journal_batch& batch) -> caf::result<commit_atom> {
        if (++*commits == fail_commit) {
          log->push_back("journal " + id + " FAILED");
          return to_caf(make_error(errc::no_space, "no space left on device"));
        }
        for (auto& r : *batch) {
          auto j = to_json(r);
          std::string line = "journal " + id + " " + j["t"].get<std::string>();
          if (j.contains("step")) line += " " + std::to_string(j["step"].get<size_t>());
          if (j.contains("outcome")) line += " " + j["outcome"].get<std::string>();
          log->push_back(line);
        }
        return commit_atom::value;
      },
      [](finish_atom) { return finish_atom::value; },
  };
}

struct saga_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<node_context> ctx = std::make_shared<node_context>();
  std::unique_ptr<caf::scoped_actor> self;
  event_log log;
  std::vector<settle_job> settled;
  // How the next saga's components and worker behave.
  script alpha, beta;
  bool hold_validation = false;
  int fail_commit = 0; ///< see fake_io
  plan_fn plan = two_components;
  /// The handlers of a saga's components; alpha and beta unless set.
  std::function<std::vector<handler_ref>(caf::event_based_actor*)> components;
  caf::actor io; ///< the last saga's worker

  saga_fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    configure_actor_system(cfg, false);
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    self = std::make_unique<caf::scoped_actor>(*sys);
    ctx->os = &env::posix();
    ctx->cfg.rollback_step_timeout_ms = 1000;
    ctx->cfg.rollback_compensation_step_timeout_ms = 1000;
    ctx->cfg.rollback_timeout_ms = 60000;
  }

  struct started {
    caf::actor saga;
    std::shared_ptr<saga_status> st;
  };

  // A saga, asked to roll back; it runs as far as it can without time passing.
  started start(const std::string& id, bool emergency = false) {
    auto st = std::make_shared<saga_status>();
    st->id = id;
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      if (!ctx->running)
        ctx->running = st;
      else
        ctx->emergency_waiting = emergency;
    }
    saga_setup s;
    s.ctx = ctx;
    s.st = st;
    s.io = [this, id](caf::event_based_actor* saga) {
      return io = saga->spawn<caf::linked>(fake_io, &log, id, hold_validation, plan, fail_commit);
    };
    if (components)
      s.components = components;
    else
      s.components = [this](caf::event_based_actor* saga) {
        std::vector<handler_ref> all;
        all.push_back(
            {"alpha", false, saga->spawn<caf::linked>(fake_component, "alpha", &log, alpha)});
        all.push_back(
            {"beta", false, saga->spawn<caf::linked>(fake_component, "beta", &log, beta)});
        return all;
      };
    s.settle = [this](settle_job job) { settled.push_back(std::move(job)); };
    auto saga = spawn_saga(*sys, std::move(s));
    (*self)->send(saga, control_request{"rollback", "{}"}, caf::actor{});
    sched->run();
    return {saga, st};
  }

  // Advances the test clock by `d`, running whatever falls due. What that
  // work starts starts at the new time: advance in steps no longer than the
  // intervals a test relies on.
  void advance(caf::timespan d) {
    sched->clock().advance_time(d);
    sched->run();
  }

  // The reply a saga sent the test, when it has answered.
  std::optional<control_reply> reply() {
    std::optional<control_reply> out;
    if ((*self)->mailbox().size() == 0) return out;
    (*self)->receive([&](control_reply& r) { out = std::move(r); });
    return out;
  }

  bool logged(const std::string& line) const {
    return std::find(log.begin(), log.end(), line) != log.end();
  }
  // Position of `line` in the log (its first occurrence).
  size_t at(const std::string& line) const {
    auto it = std::find(log.begin(), log.end(), line);
    REQUIRE_MESSAGE(it != log.end(), line);
    return static_cast<size_t>(it - log.begin());
  }
};

} // namespace

TEST_CASE("a saga runs its steps in order, each durable before it starts, and verifies them") {
  saga_fixture f;
  f.start("s1");
  auto r = f.reply();
  REQUIRE(r);
  CHECK_MESSAGE(r->code == 0, r->message);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "completed");
  CHECK(body["phases_completed"] ==
        json({"validation", "preparation", "execution", "verification", "cleanup"}));
  // The read-backs go out together: in either order.
  event_log want = {"prepare s1", "journal s1 begin", "journal s1 phase", "journal s1 step_start 0",
                    "alpha apply target", "journal s1 step_done 0", "journal s1 step_start 1",
                    "beta apply target", "alpha read_back target", "beta read_back target",
                    // Durable with the end record (group commit): reading
                    // back changes nothing.
                    "journal s1 step_done 1", "journal s1 phase", "journal s1 phase",
                    "journal s1 end completed"};
  auto got = f.log;
  REQUIRE(got.size() == want.size());
  if (got[8] == "beta read_back target") std::swap(got[8], got[9]);
  CHECK_MESSAGE(got == want, json(f.log).dump());
  CHECK_FALSE(f.sched->has_pending_timeout()); // answered requests leave no timer behind
  std::lock_guard<std::mutex> lock(f.ctx->saga_mu);
  CHECK_FALSE(f.ctx->running); // the node is released
}

TEST_CASE("a step that never answers is abandoned at its limit on the actor clock, and the "
          "saga compensates") {
  saga_fixture f;
  f.beta = {"hang"}; // beta's step never answers; its putting back does
  f.start("s1");
  CHECK(f.logged("beta apply target"));
  // The handler answers at the limit itself; one that does not is given
  // handler_grace more.
  f.advance(1000ms + handler_grace - 1ms);
  CHECK_FALSE(f.reply());
  CHECK_FALSE(f.logged("beta apply current"));
  f.advance(1ms);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(r->code == static_cast<uint8_t>(errc::timeout));
  CHECK(r->message.find("beta took longer than step_timeout_ms (1000 ms): component beta did "
                        "not answer in time") == 0);
  CHECK(json::parse(r->body)["outcome"] == "compensated");
  // Put back newest first, each verified, after the compensation was journalled.
  CHECK(f.at("journal s1 compensate_start") < f.at("beta apply current"));
  CHECK(f.at("beta apply current") < f.at("beta read_back current"));
  CHECK(f.at("beta read_back current") < f.at("alpha apply current"));
  CHECK(f.at("alpha apply current") < f.at("alpha read_back current"));
  CHECK(f.logged("journal s1 end compensated"));
  CHECK(f.settled.empty());
}

TEST_CASE("the saga's own limit, timeout_ms, interrupts a step that the step limit would not") {
  saga_fixture f;
  f.ctx->cfg.rollback_step_timeout_ms = 600000;
  f.ctx->cfg.rollback_timeout_ms = 5000;
  f.beta = {"hang"};
  f.start("s1");
  f.advance(5000ms + handler_grace);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(r->message.find("the rollback took longer than timeout_ms (5000 ms) in beta") == 0);
}

TEST_CASE("an emergency pre-empts a hung step at once; the running saga compensates, then the "
          "emergency runs") {
  saga_fixture f;
  f.beta = {"hang"};
  auto first = f.start("s1");
  CHECK(f.logged("beta apply target"));
  // What dsmil.control does when an emergency rollback comes.
  first.st->preempt = true;
  (*f.self)->send(first.saga, preempt_atom::value);
  f.beta = {};
  auto emergency = f.start("s2", true);
  // No time has passed: the hung step was not waited for.
  auto r = f.reply();
  REQUIRE(r);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "preempted");
  CHECK(r->message.find("pre-empted by an emergency rollback; every step that ran was put back") ==
        0);
  CHECK(body["failed"][0]["error"] == "abandoned: an emergency rollback pre-empts this one");
  CHECK(f.logged("journal s1 step_failed 1"));
  // Barriers: the emergency validated only after the first saga had put
  // everything back and journalled its end.
  CHECK(f.at("alpha apply current") < f.at("prepare s2"));
  CHECK(f.at("journal s1 end preempted") < f.at("prepare s2"));
  auto r2 = f.reply();
  REQUIRE(r2);
  CHECK_MESSAGE(r2->code == 0, r2->message);
  CHECK(f.logged("journal s2 end completed"));
  (void)emergency;
}

TEST_CASE("a pre-emption that comes while the saga validates is acted on at its first step") {
  saga_fixture f;
  f.hold_validation = true;
  auto first = f.start("s1");
  CHECK(f.logged("prepare s1"));
  first.st->preempt = true;
  (*f.self)->send(first.saga, preempt_atom::value);
  f.sched->run();
  CHECK_FALSE(f.reply()); // still validating
  (*f.self)->send(f.io, tick_atom::value);
  f.sched->run();
  auto r = f.reply();
  REQUIRE(r);
  CHECK(json::parse(r->body)["outcome"] == "preempted");
  CHECK_FALSE(f.logged("alpha apply target")); // nothing was changed
  CHECK_FALSE(f.logged("journal s1 step_start 0"));
}

TEST_CASE("a failed step is compensated; a compensation that never answers ends the saga as "
          "compensation_failed, naming the component, and the node keeps trying") {
  saga_fixture f;
  f.beta = {"fail"};
  SUBCASE("put back") {
    f.start("s1");
    auto r = f.reply();
    REQUIRE(r);
    CHECK(json::parse(r->body)["outcome"] == "compensated");
    CHECK(r->message.find("rollback stopped in beta (beta): injected failure") == 0);
    CHECK(f.settled.empty());
  }
  SUBCASE("alpha's putting back hangs") {
    f.alpha = {"ok", "hang"};
    f.start("s1");
    CHECK(f.logged("alpha apply current"));
    CHECK_FALSE(f.reply());
    f.advance(1000ms + handler_grace);
    auto r = f.reply();
    REQUIRE(r);
    auto body = json::parse(r->body);
    CHECK(body["outcome"] == "compensation_failed");
    REQUIRE(body["compensated"]["failed"].size() == 1);
    CHECK(body["compensated"]["failed"][0]["id"] == "alpha");
    CHECK(body["compensated"]["failed"][0]["error"].get<std::string>().find(
              "took longer than compensation_step_timeout_ms, 1000 ms") != std::string::npos);
    // Not read back while its apply is outstanding.
    CHECK_FALSE(f.logged("alpha read_back current"));
    REQUIRE(f.settled.size() == 1);
    CHECK(f.settled[0].items == std::vector<std::string>{"alpha"});
    CHECK(f.settled[0].order == std::vector<size_t>{1, 0});
  }
}

TEST_CASE("a journal that cannot be written stops the saga before the step it would announce") {
  saga_fixture f;
  SUBCASE("the first step's record: nothing is changed, the saga is refused") {
    f.fail_commit = 1;
    f.start("s1");
    auto r = f.reply();
    REQUIRE(r);
    CHECK(r->code == static_cast<uint8_t>(errc::no_space));
    auto body = json::parse(r->body);
    CHECK(body["outcome"] == "refused");
    CHECK(body["failed_phase"] == "preparation");
    CHECK_FALSE(f.logged("alpha apply target"));
    // Its journal says who asked, and that it was refused.
    CHECK(f.at("journal s1 FAILED") < f.at("journal s1 begin"));
    CHECK(f.at("journal s1 begin") < f.at("journal s1 end refused"));
  }
  SUBCASE("the second step's record: the first step is put back, the second never runs") {
    f.fail_commit = 2;
    f.start("s1");
    auto r = f.reply();
    REQUIRE(r);
    CHECK(r->message.find("no space left on device; every step that ran was put back") == 0);
    CHECK(json::parse(r->body)["outcome"] == "compensated");
    CHECK(f.logged("alpha apply target"));
    CHECK_FALSE(f.logged("beta apply target"));
    CHECK(f.at("journal s1 FAILED") < f.at("alpha apply current"));
    CHECK_FALSE(f.logged("beta apply current"));
  }
}

TEST_CASE("a saga told to stop (its node stops) ends at once with its worker and handlers, "
          "its journal left for the next start to settle") {
  saga_fixture f;
  f.beta = {"hang"};
  auto first = f.start("s1");
  CHECK(f.logged("beta apply target"));
  (*f.self)->monitor(first.saga);
  (*f.self)->monitor(f.io);
  (*f.self)->send_exit(first.saga, caf::exit_reason::user_shutdown);
  f.sched->run();
  int downs = 0;
  while ((*f.self)->mailbox().size() > 0)
    (*f.self)->receive([&](caf::down_msg&) { ++downs; }, [](control_reply&) {});
  CHECK(downs == 2);
  // No end record: start-up recovery finds the saga and compensates it.
  for (auto& line : f.log)
    CHECK(line.find("journal s1 end") == std::string::npos);
  CHECK_FALSE(f.logged("alpha apply current"));
}

// -- the devices' own handler, with device actors on the test clock ---------------

namespace {

struct device_saga_fixture : saga_fixture {
  std::shared_ptr<const device_map> map;
  std::shared_ptr<sim_driver> sim;
  device_state before_31, before_32; ///< now: what compensation puts back

  device_saga_fixture() {
    map = std::make_shared<const device_map>(*device_map::parse(embedded_devices_toml(), "d"));
    sim = std::make_shared<sim_driver>(*map, 7, env::posix());
    supervisor_config sc;
    sc.drv = std::make_shared<guarded_driver>(map, sim);
    sc.map = map;
    sc.retry = {1, 100, 100, 0};
    sc.supervision = {2, 5000};
    ctx->cfg.devices = *map;
    ctx->cfg.retry = sc.retry;
    ctx->devices = spawn_root_supervisor(*sys, sc);
    sched->run();
    before_31 = *sim->read(0x8031);
    before_32 = *sim->read(0x8032);
    // One step: group 3's 0x8031 and 0x8032, each with register 0 changed.
    plan = [this](const std::string& id) {
      auto p = std::make_shared<saga_prepared>();
      p->result = {{"saga", id}, {"phases_completed", json::array()}};
      p->v.type = rollback_type::selective;
      p->v.target_id = "checkpoint";
      p->v.steps.push_back({"devices", "group 3", {"0x8031", "0x8032"}});
      for (auto s : {before_31, before_32}) {
        const auto name = devices_component::record_name(s.id);
        p->v.current["devices"].records[name] = encode_device(s);
        s.registers[0] ^= 0xff;
        p->v.target["devices"].records[name] = encode_device(s);
      }
      return p;
    };
    components = [this](caf::event_based_actor* saga) {
      return std::vector<handler_ref>{spawn_devices_handler(saga, ctx)};
    };
  }

  ~device_saga_fixture() {
    (*self)->send_exit(ctx->devices, caf::exit_reason::user_shutdown);
    sched->run();
  }

  uint32_t register0(device_id id) { return sim->read(id)->registers[0]; }
};

} // namespace

TEST_CASE("a device that never answers fails its step at step_timeout_ms on the actor clock, "
          "named; the rest is put back") {
  device_saga_fixture f;
  fault_spec hung;
  hung.latency_ms = 600000; // answers in ten minutes
  f.sim->set_fault(0x8031, hung);
  const auto writes_31 = f.sim->write_count(0x8031);
  f.start("s1");
  f.advance(999ms);
  CHECK_FALSE(f.reply());
  // Its read gives up at the step's limit, and 0x8032 is written; putting
  // them back waits for 0x8031 again, until compensation_step_timeout_ms.
  f.advance(1ms);
  CHECK_FALSE(f.reply());
  CHECK(f.register0(0x8032) == (f.before_32.registers[0] ^ 0xff));
  f.advance(1000ms);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(r->code == static_cast<uint8_t>(errc::timeout));
  CHECK(r->message.find("group 3 took longer than step_timeout_ms (1000 ms): 0x8031: cannot read "
                        "it before restoring it") == 0);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "compensation_failed");
  REQUIRE(body["compensated"]["failed"].size() == 1);
  CHECK(body["compensated"]["failed"][0]["id"] == "0x8031");
  CHECK(f.sim->write_count(0x8031) == writes_31); // never written blind
  CHECK(f.register0(0x8032) == f.before_32.registers[0]);
  REQUIRE(f.settled.size() == 1);
  CHECK(f.settled[0].items == std::vector<std::string>{"0x8031"});
}

TEST_CASE("an emergency pre-empts a step waiting for a silent device with no time passing; the "
          "abandoned step writes nothing, and the emergency restores it") {
  device_saga_fixture f;
  f.ctx->cfg.rollback_step_timeout_ms = 120000;
  fault_spec hung;
  hung.latency_ms = 600000;
  f.sim->set_fault(0x8031, hung);
  const auto writes_31 = f.sim->write_count(0x8031);
  const auto writes_32 = f.sim->write_count(0x8032);
  auto first = f.start("s1");
  CHECK_FALSE(f.reply()); // waiting for 0x8031
  first.st->preempt = true;
  (*f.self)->send(first.saga, preempt_atom::value);
  f.sim->set_fault(0x8031, fault_spec{}); // answers again (its pending reply stays late)
  f.start("s2", true);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(json::parse(r->body)["outcome"] == "preempted");
  CHECK(json::parse(r->body)["compensated"]["ok"] == true);
  auto r2 = f.reply();
  REQUIRE(r2);
  CHECK_MESSAGE(r2->code == 0, r2->message);
  // Written once each, by the emergency: the pre-empted step never wrote.
  CHECK(f.sim->write_count(0x8031) == writes_31 + 1);
  CHECK(f.sim->write_count(0x8032) == writes_32 + 1);
  CHECK(f.register0(0x8031) == (f.before_31.registers[0] ^ 0xff));
  CHECK(f.at("journal s1 end preempted") < f.at("prepare s2"));
  // The abandoned step's late answer, when it comes, changes nothing.
  f.advance(600000ms);
  CHECK(f.sim->write_count(0x8031) == writes_31 + 1);
  CHECK(f.sim->write_count(0x8032) == writes_32 + 1);
  CHECK(f.register0(0x8032) == (f.before_32.registers[0] ^ 0xff));
}

TEST_CASE("a step abandoned by a pre-emption never writes, even when its reads answer while "
          "the compensation still runs") {
  device_saga_fixture f;
  f.ctx->cfg.rollback_step_timeout_ms = 120000;
  f.ctx->cfg.rollback_compensation_step_timeout_ms = 30000;
  fault_spec slow;
  slow.latency_ms = 5000;
  f.sim->set_fault(0x8031, slow);
  const auto writes_31 = f.sim->write_count(0x8031);
  const auto writes_32 = f.sim->write_count(0x8032);
  auto first = f.start("s1");
  first.st->preempt = true;
  (*f.self)->send(first.saga, preempt_atom::value);
  // Putting back waits for 0x8032 now; 0x8031 answers the step at 5 s.
  fault_spec slower;
  slower.latency_ms = 10000;
  f.sim->set_fault(0x8031, fault_spec{});
  f.sim->set_fault(0x8032, slower);
  f.sched->run();
  f.advance(5000ms);
  CHECK_FALSE(f.reply());
  // 0x8032 answers the putting back at 10 s, and its read-back at 20 s.
  f.advance(5000ms);
  CHECK_FALSE(f.reply());
  f.advance(10000ms);
  auto r = f.reply();
  REQUIRE(r);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "preempted");
  CHECK(body["compensated"]["ok"] == true);
  // Neither was written: the abandoned step's reads came back, and it wrote nothing.
  CHECK(f.sim->write_count(0x8031) == writes_31);
  CHECK(f.sim->write_count(0x8032) == writes_32);
  CHECK(f.register0(0x8031) == f.before_31.registers[0]);
  CHECK(f.register0(0x8032) == f.before_32.registers[0]);
}
