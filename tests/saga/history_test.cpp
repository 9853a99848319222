#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "runtime/saga/history.hpp"

using namespace dsmil;
using nlohmann::json;

namespace {

begin_record begin(std::vector<saga_step> steps) {
  begin_record b;
  b.saga = "s";
  b.type = rollback_type::full;
  b.target = "target";
  b.pre_rollback = "pre";
  b.initiated_by = "dsmilctl";
  b.reason = "why";
  b.started_at = 7;
  b.steps = std::move(steps);
  return b;
}

const std::vector<saga_step> two_steps = {{"configuration", "configuration", {}},
                                          {"devices", "group 0", {"0x8000", "0x8001", "0x8002"}}};

} // namespace

TEST_CASE("a completed saga: every phase, every step, its duration") {
  end_record end;
  end.duration_ms = 9.5;
  std::vector<journal_record> rs = {begin(two_steps),
                                    phase_record{saga_phase::execution},
                                    step_start_record{0},
                                    step_done_record{0},
                                    step_start_record{1},
                                    step_done_record{1},
                                    phase_record{saga_phase::verification},
                                    phase_record{saga_phase::cleanup},
                                    end};
  auto s = summarize_saga("s", rs);
  CHECK(s["outcome"] == "completed");
  CHECK(s["type"] == "full");
  CHECK(s["pre_rollback"] == "pre");
  CHECK(s["devices_planned"] == 3);
  CHECK(s["steps_done"] == json({"configuration", "group 0"}));
  CHECK(s["phases_completed"] ==
        json({"validation", "preparation", "execution", "verification", "cleanup"}));
  CHECK(s["duration_ms"] == 9.5);
  CHECK_FALSE(s.contains("failed_phase"));
  CHECK_FALSE(s.contains("compensated"));
}

TEST_CASE("a compensated saga: the step that ran, what failed, and that compensation held") {
  end_record end;
  end.outcome = saga_outcome::compensated;
  end.failed_phase = "execution";
  end.error = "device 0x8001 refused";
  end.failed = {{"0x8001", "refused"}};
  std::vector<journal_record> rs = {begin(two_steps),
                                    phase_record{saga_phase::execution},
                                    step_start_record{0},
                                    step_done_record{0},
                                    step_start_record{1},
                                    step_failed_record{1, {{"0x8001", "refused"}}},
                                    compensate_start_record{{1, 0}, "device 0x8001 refused"},
                                    compensate_done_record{true, {}},
                                    end};
  auto s = summarize_saga("s", rs);
  CHECK(s["outcome"] == "compensated");
  CHECK(s["failed_phase"] == "execution");
  CHECK(s["steps_done"] == json({"configuration"}));
  CHECK(s["compensated"] == true);
  CHECK(s["compensation_failed"] == json::array());
  CHECK(s["failed"] == json({{{"id", "0x8001"}, {"error", "refused"}}}));
  CHECK(s["phases_completed"] == json({"validation", "preparation"}));
}

TEST_CASE("a saga without an end record is interrupted; start-up recovery is noted") {
  std::vector<journal_record> rs = {begin(two_steps), phase_record{saga_phase::execution},
                                    step_start_record{0}};
  CHECK(summarize_saga("s", rs)["outcome"] == "interrupted");
  rs.push_back(recovered_record{interrupted_policy::compensate});
  rs.push_back(compensate_start_record{{0}, "interrupted"});
  rs.push_back(compensate_done_record{false, {{"configuration", "differs after restore"}}});
  auto s = summarize_saga("s", rs);
  CHECK(s["outcome"] == "interrupted"); // compensation failed: the next start tries again
  CHECK(s["recovered"] == true);
  CHECK(s["compensated"] == false);
  CHECK(s["compensation_failed"][0]["id"] == "configuration");
}

TEST_CASE("a journal without its begin record says only that it was interrupted") {
  CHECK(summarize_saga("s", {}) == json({{"id", "s"}, {"outcome", "interrupted"}}));
  CHECK(summarize_saga("s", {step_start_record{0}}) ==
        json({{"id", "s"}, {"outcome", "interrupted"}}));
}

TEST_CASE("a refused saga has no steps and no pre-rollback checkpoint") {
  auto b = begin({});
  b.pre_rollback.clear();
  end_record end;
  end.outcome = saga_outcome::refused;
  end.failed_phase = "validation";
  end.error = "no such checkpoint";
  auto s = summarize_saga("s", {b, end});
  CHECK(s["outcome"] == "refused");
  CHECK(s["devices_planned"] == 0);
  CHECK_FALSE(s.contains("pre_rollback"));
  CHECK(s["error"] == "no such checkpoint");
}

TEST_CASE("a step index outside the plan is not a crash") {
  auto s = summarize_saga("s", {begin(two_steps), step_done_record{9}});
  CHECK(s["steps_done"] == json::array());
}

TEST_CASE("a saga whose compensation failed and was settled later says what was put back") {
  end_record end;
  end.outcome = saga_outcome::compensation_failed;
  end.failed_phase = "execution";
  end.error = "group 0 took longer than step_timeout_ms";
  std::vector<journal_record> rs = {begin(two_steps),
                                    phase_record{saga_phase::execution},
                                    step_start_record{0},
                                    compensate_start_record{{0}, "timeout"},
                                    compensate_done_record{false, {{"0x8001", "timed out"}}},
                                    end};
  auto before = summarize_saga("s", rs);
  CHECK(before["outcome"] == "compensation_failed");
  CHECK_FALSE(before.contains("settled"));
  rs.push_back(settled_record{{"0x8001"}});
  auto s = summarize_saga("s", rs);
  CHECK(s["outcome"] == "compensation_failed");
  CHECK(s["settled"] == json({"0x8001"}));
  // The record reads back as written.
  auto j = to_json(rs.back());
  CHECK(j["t"] == "settled");
  auto back = record_from_json(j, "journal");
  REQUIRE(back.ok());
  REQUIRE(back->get<settled_record>() != nullptr);
  CHECK(back->get<settled_record>()->items == std::vector<std::string>{"0x8001"});
}
