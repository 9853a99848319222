// Fixtures for the rollback saga actor under CAF's deterministic scheduler
// (saga_test.cpp, saga_devices_test.cpp): a fake worker, fake component
// handlers, and the device actors with the simulator, all on the test clock.
#pragma once

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/caf_glue.hpp"
#include "actors/devices/supervisors.hpp"
#include "actors/node/saga_protocol.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil::test {

using namespace std::chrono_literals;

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
inline std::string which(const component_image& img) {
  return img.records.begin()->second == "new" ? "target" : "current";
}

inline component_handler::behavior_type fake_component(fake_ptr self, std::string name,
                                                       event_log* log, script applies) {
  self->state.name = std::move(name);
  self->state.log = log;
  self->state.applies = std::move(applies);
  self->set_exit_handler([self](caf::exit_msg& m) { self->quit(m.reason); }); // ends with its saga
  return {
      [](capture_atom) -> caf::result<image_ref> {
        return to_caf(make_error(errc::internal, "not asked by sagas"));
      },
      [](plan_atom, const image_ref&, const image_ref&,
         const plan_request&) -> caf::result<component_plan> {
        return to_caf(make_error(errc::internal, "not asked by sagas"));
      },
      [self](apply_atom, const saga_step& st, const image_ref& ref,
             caf::timespan) -> caf::result<std::vector<failed_item>> {
        auto& s = self->state;
        s.log->push_back(s.name + " apply " + which(*ref));
        const std::string what = s.next < s.applies.size() ? s.applies[s.next] : "ok";
        ++s.next;
        if (what == "hang") {
          s.hung.push_back(self->make_response_promise<std::vector<failed_item>>());
          return s.hung.back();
        }
        if (what == "fail") return every_item_failed(st, "injected failure");
        return std::vector<failed_item>{};
      },
      [self](read_back_atom, const saga_step&, const image_ref& ref,
             caf::timespan) -> caf::result<std::vector<failed_item>> {
        self->state.log->push_back(self->state.name + " read_back " + which(*ref));
        return std::vector<failed_item>{};
      },
      [self](hold_atom) {
        self->state.log->push_back(self->state.name + " hold");
        return std::vector<std::string>{};
      },
      [self](release_atom) {
        self->state.log->push_back(self->state.name + " release");
        return std::vector<std::string>{};
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
inline saga_prepared_ptr two_components(const std::string& id) {
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
inline caf::behavior fake_io(caf::event_based_actor* self, event_log* log, std::string id,
                             bool hold, plan_fn plan, int fail_commit) {
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
      [](finish_atom) { return std::vector<std::string>{}; },
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
    (*self)->send(saga, rollback_by{"saga-test", rollback_request{}}, caf::actor{});
    sched->run();
    return {saga, st};
  }

  // What dsmil.control does when an emergency rollback comes.
  void preempt(const started& s) {
    s.st->preempt = true;
    (*self)->send(s.saga, preempt_atom::value);
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

// The same saga, with the devices' own handler and the device actors: one
// step, group 3's 0x8031 and 0x8032.
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

} // namespace dsmil::test
