#include <algorithm>

#include <doctest/doctest.h>

#include "runtime/store/manifest.hpp"
#include "runtime/store/retention.hpp"

using namespace dsmil;

namespace {

constexpr int64_t minute = 60LL * 1000000000LL;
constexpr int64_t hour = 60 * minute;
constexpr int64_t day = 24 * hour;

checkpoint_info cp(const std::string& id, int64_t t,
                   checkpoint_type type = checkpoint_type::automatic) {
  checkpoint_info c;
  c.id = id;
  c.created_unix_ns = t;
  c.type = type;
  return c;
}

} // namespace

TEST_CASE("keep_last keeps the newest automatic checkpoints and never touches other types") {
  retention_policy p{3, 0, 0, 0, 100};
  std::vector<checkpoint_info> all;
  for (int i = 0; i < 8; ++i)
    all.push_back(cp("a" + std::to_string(i), i * minute));
  all.push_back(cp("manual", 0, checkpoint_type::manual));
  all.push_back(cp("emergency", 0, checkpoint_type::emergency));
  all.push_back(cp("pre", 0, checkpoint_type::pre_rollback));
  auto pinned = cp("pinned", 0);
  pinned.pinned = true;
  all.push_back(pinned);
  auto v = retention_victims(p, all);
  CHECK(v == std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"});
}

TEST_CASE("hourly, daily and weekly buckets keep the newest of each") {
  std::vector<checkpoint_info> all;
  // Every 20 minutes for 3 days.
  for (int i = 0; i < 3 * 72; ++i)
    all.push_back(cp("c" + std::to_string(i), i * 20 * minute));
  retention_policy hourly{0, 5, 0, 0, 1000};
  auto v = retention_victims(hourly, all);
  CHECK(all.size() - v.size() == 5);
  // The survivors are the last checkpoint of each of the last 5 hours.
  for (int k = 0; k < 5; ++k) {
    auto id = "c" + std::to_string(3 * 72 - 1 - 3 * k);
    CHECK(std::find(v.begin(), v.end(), id) == v.end());
  }
  retention_policy daily{0, 0, 2, 0, 1000};
  CHECK(all.size() - retention_victims(daily, all).size() == 2);
  retention_policy weekly{0, 0, 0, 1, 1000};
  CHECK(all.size() - retention_victims(weekly, all).size() == 1);
}

TEST_CASE("max_count caps what the rules keep, dropping the oldest") {
  std::vector<checkpoint_info> all;
  for (int i = 0; i < 30; ++i)
    all.push_back(cp("d" + std::to_string(i), i * day));
  retention_policy p{10, 0, 30, 0, 12};
  auto v = retention_victims(p, all);
  CHECK(v.size() == 18);
  CHECK(v.front() == "d0");
  CHECK(v.back() == "d17");
}

TEST_CASE("retention settings are checked") {
  retention_policy p;
  CHECK_FALSE(set_retention_value(p, "keep_daily", "14"));
  CHECK(p.keep_daily == 14);
  CHECK(set_retention_value(p, "keep_daily", "-1").code == errc::invalid_argument);
  CHECK(set_retention_value(p, "keep_yearly", "1").message.find("unknown retention key") == 0);
}
