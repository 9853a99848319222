#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "runtime/base/coding.hpp"
#include "runtime/os/fault_env.hpp"
#include "runtime/os/memory_env.hpp"
#include "runtime/saga/journal.hpp"
#include "simd/crc64.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;
using nlohmann::json;

namespace {

begin_record sample_begin() {
  begin_record b;
  b.saga = "s1";
  b.type = rollback_type::selective;
  b.target = "0193a0c4-0000-7000-8000-000000000001";
  b.pre_rollback = "0193a0c4-0000-7000-8000-000000000002";
  b.initiated_by = "dsmilctl";
  b.reason = "test";
  b.started_at = 1700000000000000000;
  b.steps = {{"configuration", "configuration", {}}, {"devices", "group 2", {"0x8020", "0x8021"}}};
  return b;
}

// A record framed as the journal frames it, from its JSON text.
std::string framed(const std::string& payload) {
  char head[12];
  coding::encode_fixed32(head, static_cast<uint32_t>(payload.size()));
  char len[4];
  coding::encode_fixed32(len, static_cast<uint32_t>(payload.size()));
  coding::encode_fixed64(
      head + 4, simd::crc64(payload.data(), payload.size(), simd::crc64(len, sizeof(len))));
  return std::string(head, sizeof(head)) + payload;
}

} // namespace

TEST_CASE("a saga journal reads back every record appended, in order, field for field") {
  test::temp_dir dir;
  auto j = saga_journal::create(env::posix(), dir.path(), "s1");
  REQUIRE(j);
  REQUIRE_FALSE((*j)->append(sample_begin()));
  REQUIRE_FALSE((*j)->append_all({phase_record{saga_phase::execution}, step_start_record{1},
                                  step_failed_record{1, {{"0x8021", "refused"}}},
                                  compensate_start_record{{1, 0}, "device refused"},
                                  compensate_done_record{true, {}}}));
  end_record end;
  end.outcome = saga_outcome::compensated;
  end.failed_phase = "execution";
  end.error = "rollback stopped";
  end.duration_ms = 12.5;
  REQUIRE_FALSE((*j)->append(end));
  auto records = read_journal(env::posix(), journal_path(dir.path(), "s1"));
  REQUIRE(records);
  REQUIRE(records->size() == 7);
  auto* b = (*records)[0].get<begin_record>();
  REQUIRE(b != nullptr);
  CHECK(b->type == rollback_type::selective);
  CHECK(b->pre_rollback == sample_begin().pre_rollback);
  CHECK(b->started_at == sample_begin().started_at);
  REQUIRE(b->steps.size() == 2);
  CHECK(b->steps[0].component == "configuration");
  CHECK(b->steps[1].name == "group 2");
  CHECK(b->steps[1].items == std::vector<std::string>{"0x8020", "0x8021"});
  CHECK((*records)[1].get<phase_record>()->phase == saga_phase::execution);
  CHECK((*records)[2].get<step_start_record>()->step == 1);
  REQUIRE((*records)[3].get<step_failed_record>()->failed.size() == 1);
  CHECK((*records)[3].get<step_failed_record>()->failed[0].error == "refused");
  CHECK((*records)[4].get<compensate_start_record>()->steps == std::vector<size_t>{1, 0});
  CHECK((*records)[5].get<compensate_done_record>()->ok);
  auto* e = (*records)[6].get<end_record>();
  REQUIRE(e != nullptr);
  CHECK(e->outcome == saga_outcome::compensated);
  CHECK(e->duration_ms == 12.5);
  for (auto& r : *records)
    CHECK(r.at > 0); // stamped at append
  CHECK((*j)->records().size() == 7);
  CHECK(*list_journals(env::posix(), dir.path()) == std::vector<std::string>{"s1"});
  CHECK_FALSE(saga_journal::create(env::posix(), dir.path(), "s1")); // one journal per saga
}

TEST_CASE("journal records are JSON objects tagged by t, leaving out the fields they do not have") {
  auto j = to_json(journal_record(step_done_record{3}));
  CHECK(j == json({{"t", "step_done"}, {"step", 3}}));
  end_record e;
  e.duration_ms = 4;
  CHECK(to_json(journal_record(e)) ==
        json({{"t", "end"}, {"outcome", "completed"}, {"duration_ms", 4.0}}));
  auto begin = to_json(journal_record(sample_begin()));
  CHECK(begin["type"] == "selective");
  CHECK(begin["steps"][1] ==
        json({{"component", "devices"}, {"name", "group 2"}, {"items", {"0x8020", "0x8021"}}}));
  CHECK(
      begin["steps"][0] ==
      json({{"component", "configuration"}, {"name", "configuration"}, {"items", json::array()}}));
}

TEST_CASE("a journal written before the record types existed still reads") {
  test::temp_dir dir;
  const auto path = journal_path(dir.path(), "old");
  // The exact records an earlier node wrote.
  test::spit(path,
             framed(R"({"at":1,"initiated_by":"dsmilctl","pre_rollback":"p","reason":"",)"
                    R"("saga":"old","started_at":2,"steps":[{"devices":["0x8000"],)"
                    R"("group":0,"name":"group 0"},{"configuration":true,"devices":[],)"
                    R"("name":"configuration"}],"t":"begin","target":"c","type":"full"})") +
                 framed(R"({"at":3,"phase":"execution","t":"phase"})") +
                 framed(R"({"at":4,"policy":"compensate","t":"recovered"})") +
                 framed(R"({"at":5,"duration_ms":1.5,"error":"x","failed":[],)"
                        R"("failed_phase":"interrupted","outcome":"compensated","t":"end"})"));
  auto records = read_journal(env::posix(), path);
  REQUIRE(records);
  REQUIRE(records->size() == 4);
  auto* b = (*records)[0].get<begin_record>();
  REQUIRE(b != nullptr);
  CHECK(b->type == rollback_type::full);
  REQUIRE(b->steps.size() == 2);
  CHECK(b->steps[0].component == "devices");
  CHECK(b->steps[0].items == std::vector<std::string>{"0x8000"});
  CHECK(b->steps[1].component == "configuration");
  CHECK(b->steps[1].items.empty());
  CHECK((*records)[2].get<recovered_record>()->policy == interrupted_policy::compensate);
  CHECK((*records)[3].get<end_record>()->failed_phase == "interrupted");
  CHECK((*records)[3].at == 5);
}

TEST_CASE("an intact record that is not a known record is an error naming the journal, never cut "
          "off as torn") {
  test::temp_dir dir;
  const auto path = journal_path(dir.path(), "s3");
  std::string bytes;
  SUBCASE("unknown type") {
    bytes = framed(R"({"at":1,"t":"begin","saga":"s3"})") + framed(R"({"at":2,"t":"warp"})");
  }
  SUBCASE("unknown outcome") {
    bytes = framed(R"({"at":1,"t":"end","outcome":"won"})");
  }
  SUBCASE("a field of the wrong type") {
    bytes = framed(R"({"at":1,"t":"step_start","step":"zero"})");
  }
  test::spit(path, bytes);
  auto records = read_journal(env::posix(), path);
  REQUIRE_FALSE(records);
  CHECK(records.err().code == errc::integrity_error);
  CHECK(records.err().message.find(path) != std::string::npos);
  CHECK_FALSE(saga_journal::reopen(env::posix(), dir.path(), "s3"));
  CHECK(test::slurp(path) == bytes); // left as it was
}

TEST_CASE("a torn or damaged last record is cut off; reopening appends after the intact ones") {
  test::temp_dir dir;
  const auto path = journal_path(dir.path(), "s2");
  {
    auto j = saga_journal::create(env::posix(), dir.path(), "s2");
    REQUIRE(j);
    REQUIRE_FALSE((*j)->append(sample_begin()));
    REQUIRE_FALSE((*j)->append(step_start_record{0}));
  }
  auto bytes = test::slurp(path);
  SUBCASE("torn: the last record's bytes end early") {
    bytes.resize(bytes.size() - 3);
  }
  SUBCASE("damaged: a flipped bit in the last record") {
    bytes[bytes.size() - 2] ^= 0x10;
  }
  SUBCASE("garbage after the last record") {
    bytes += std::string(7, '\xff');
  }
  test::spit(path, bytes);
  bool torn = false;
  auto records = read_journal(env::posix(), path, &torn);
  REQUIRE(records);
  CHECK(torn);
  const size_t intact = records->size();
  CHECK(intact >= 1);
  auto j = saga_journal::reopen(env::posix(), dir.path(), "s2");
  REQUIRE(j);
  REQUIRE_FALSE((*j)->append(end_record{}));
  auto after = read_journal(env::posix(), path, &torn);
  REQUIRE(after);
  CHECK_FALSE(torn);
  REQUIRE(after->size() == intact + 1);
  CHECK(after->back().is<end_record>());
}

TEST_CASE("a failed append breaks the journal: it says so, and nothing more is written to it") {
  memory_env mem(env::posix());
  fault_env faults(mem);
  mem.create_dirs("/j");
  auto j = saga_journal::create(faults, "/j", "s4");
  REQUIRE(j);
  REQUIRE_FALSE((*j)->append(sample_begin()));
  faults.fail_sync_after(0);
  auto err = (*j)->append(step_start_record{0});
  REQUIRE(err);
  faults.clear();
  auto again = (*j)->append(step_start_record{0});
  REQUIRE(again);
  CHECK(again.message.find("failed earlier") != std::string::npos);
  CHECK((*j)->records().size() == 1); // only what was durable
}
