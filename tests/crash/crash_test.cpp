// Kill -9 at random instants of checkpoint create, delete and gc (real
// processes), then check with an oracle kept outside the store: every
// checkpoint that was reported created and not being deleted exists, every
// checkpoint the store lists verifies, and a full store check is clean.
// DSMIL_CRASH_KILLS sets the number of kills (default 30); DSMIL_CRASH_SEED
// replays a run.
#include <chrono>
#include <random>
#include <map>
#include <set>

#include <doctest/doctest.h>

#include "tests/process.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;

TEST_CASE("kill -9 during create, delete and gc leaves a store whose checkpoints all verify") {
  const char* kills_env = std::getenv("DSMIL_CRASH_KILLS");
  const char* seed_env = std::getenv("DSMIL_CRASH_SEED");
  const int kills = kills_env ? std::atoi(kills_env) : 30;
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10)
                                 : static_cast<uint64_t>(std::random_device{}());
  MESSAGE("crash test seed " << seed << " (replay with DSMIL_CRASH_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  test::temp_dir dir;
  std::set<std::string> must_exist;
  std::map<std::string, std::string> digest_of; // checkpoint id -> SHA-256 of its stream
  store_options o;
  o.chunking = {4096, 16384, 65536};
  for (int k = 0; k < kills; ++k) {
    CAPTURE(k);
    CAPTURE(seed);
    test::child_process child({test::program("STORE_TORTURE"), dir.path(), std::to_string(rng())});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(30 + rng() % 400);
    std::set<std::string> pending; // deletes that may or may not have happened
    auto take = [&](const std::string& line) {
      if (line.rfind("created ", 0) == 0) {
        const auto space = line.find(' ', 8);
        must_exist.insert(line.substr(8, space - 8));
        digest_of[line.substr(8, space - 8)] = line.substr(space + 1);
      }
      if (line.rfind("deleting ", 0) == 0) {
        must_exist.erase(line.substr(9));
        pending.insert(line.substr(9));
      }
    };
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      auto line = child.read_line(static_cast<int>(left));
      if (line.empty()) break;
      take(line);
    }
    int rc = child.stop(SIGKILL);
    CHECK_MESSAGE(rc == 128 + SIGKILL,
                  "the workload stopped by itself: " << test::slurp(child.stderr_path()));
    for (auto line = child.read_line(50); !line.empty(); line = child.read_line(50))
      take(line);

    auto store = checkpoint_store::open(env::posix(), dir.path(), o);
    REQUIRE_MESSAGE(store.ok(), store.err().message);
    std::set<std::string> listed;
    for (auto& i : (*store)->list()) {
      listed.insert(i.id);
      auto v = (*store)->verify(i.id);
      CHECK_MESSAGE(v.ok(), i.id << ": " << v.err().message);
    }
    for (auto& id : must_exist) {
      CHECK_MESSAGE(listed.count(id) == 1, "lost checkpoint " << id);
      CHECK_MESSAGE(test::content_digest(**store, id) == digest_of.at(id),
                    "checkpoint " << id << " does not hold what was checkpointed");
    }
    auto check = (*store)->check(true);
    REQUIRE(check.ok());
    CHECK_MESSAGE(check->clean(), check->damaged.size()
                                      << " damaged, first: "
                                      << (check->damaged.empty() ? "" : check->damaged[0].problem));
  }
  // The next gc finishes whatever a killed one left, and everything still verifies.
  auto store = checkpoint_store::open(env::posix(), dir.path(), o);
  REQUIRE(store.ok());
  REQUIRE((*store)->gc().ok());
  for (auto& i : (*store)->list())
    CHECK((*store)->verify(i.id).ok());
  CHECK((*store)->check(true)->clean());
}
