#include <doctest/doctest.h>

#include "runtime/saga/journal.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;
using nlohmann::json;

TEST_CASE("a saga journal reads back every record appended, in order") {
  test::temp_dir dir;
  auto j = saga_journal::create(env::posix(), dir.path(), "s1");
  REQUIRE(j);
  REQUIRE_FALSE((*j)->append({{"t", "begin"}, {"plan", {1, 2, 3}}}));
  REQUIRE_FALSE((*j)->append({{"t", "phase"}, {"phase", "execution"}}));
  auto records = read_journal(env::posix(), journal_path(dir.path(), "s1"));
  REQUIRE(records);
  REQUIRE(records->size() == 2);
  CHECK((*records)[0]["t"] == "begin");
  CHECK((*records)[0]["plan"] == json({1, 2, 3}));
  CHECK((*records)[1]["phase"] == "execution");
  CHECK((*records)[1].contains("at"));
  CHECK(*list_journals(env::posix(), dir.path()) == std::vector<std::string>{"s1"});
  CHECK_FALSE(saga_journal::create(env::posix(), dir.path(), "s1")); // one journal per saga
}

TEST_CASE("a torn or damaged last record is cut off; reopening appends after the intact ones") {
  test::temp_dir dir;
  const auto path = journal_path(dir.path(), "s2");
  {
    auto j = saga_journal::create(env::posix(), dir.path(), "s2");
    REQUIRE(j);
    REQUIRE_FALSE((*j)->append({{"t", "begin"}}));
    REQUIRE_FALSE((*j)->append({{"t", "step_start"}, {"step", 0}}));
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
  REQUIRE_FALSE((*j)->append({{"t", "end"}}));
  auto after = read_journal(env::posix(), path, &torn);
  REQUIRE(after);
  CHECK_FALSE(torn);
  REQUIRE(after->size() == intact + 1);
  CHECK(after->back()["t"] == "end");
}
