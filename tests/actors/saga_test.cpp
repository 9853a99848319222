// The rollback saga actor under CAF's deterministic scheduler: its worker and
// its components' handlers are fakes, time is the test clock. A step that
// hangs is abandoned at its limit, an emergency pre-empts a step at once, and
// the emergency saga runs after the pre-empted one has compensated: each
// checked by what has happened when the clock reaches a given instant, with
// no wall-clock sleep anywhere.
#include "tests/actors/saga_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

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
  f.preempt(first);
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
  f.preempt(first);
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
