// A node whose file system fills up: the checkpoint that does not fit fails
// alone, space is freed without a restart, and a rollback's safety net comes
// out of the space reserve (or the rollback is refused before it starts).

#include <doctest/doctest.h>

#include "runtime/os/memory_env.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;
using nlohmann::json;

namespace {

// Fills the node's file system with checkpoints until one does not fit, rolls
// back from the reserve, deletes, and checkpoints again, without a restart.
void fill_then_roll_back(node_fixture& f) {
  auto status = f.ok("status");
  REQUIRE(status["store_reserve_bytes"].get<uint64_t>() >= 128 * 1024);
  CHECK(status["warnings"].empty());
  const std::string target = f.ok("checkpoint.create", {{"name", "target"}})["id"];
  auto before = f.snapshot();

  // Fill the disk: each checkpoint of fresh device states adds ~40 KB.
  std::vector<std::string> ids;
  control_reply full;
  for (uint64_t seed = 1; seed < 400; ++seed) {
    f.scramble(seed);
    full = f.ctl("checkpoint.create", {{"name", "fill"}});
    if (full.code != 0) break;
    ids.push_back(json::parse(full.body)["id"]);
  }
  REQUIRE(full.code != 0);
  CHECK(static_cast<errc>(full.code) == errc::no_space);
  CHECK(full.message.find("no space left") != std::string::npos);
  REQUIRE(ids.size() >= 3);
  status = f.ok("status");
  CHECK(status["store_free_bytes"].get<uint64_t>() < status["store_reserve_bytes"].get<uint64_t>());
  CHECK_FALSE(status["warnings"].empty());

  // The rollback's pre-rollback checkpoint and journal come out of the reserve.
  auto r = f.ok("rollback", {{"id", target}, {"ack_critical", true}});
  CHECK(r["success"] == true);
  check_equal(f.snapshot(), before);

  // Deletes work at once (no restart), and then a checkpoint fits again.
  for (size_t i = 0; i + 1 < ids.size(); ++i)
    f.ok("checkpoint.delete", {{"id", ids[i]}});
  f.scramble(999);
  CHECK(f.ctl("checkpoint.create", {{"name", "after"}}).code == 0);
  CHECK(f.ok("checkpoint.verify", {{"id", target}})["valid"] == true);
}

} // namespace

TEST_CASE("a full disk: the checkpoint that does not fit fails, deletes work at once, and a "
          "rollback succeeds from the reserve") {
  memory_env disk(env::posix());
  REQUIRE_FALSE(disk.create_dirs("/node"));
  disk.set_quota(4u << 20); // the automatic reserve: 5% of it at most
  node_fixture f(false, 0, nullptr, &disk);
  fill_then_roll_back(f);
}

TEST_CASE("the same on a real, small tmpfs") {
  test::small_tmpfs mnt("4m");
  if (!mnt.mounted()) {
    WARN_MESSAGE(false, "not run: mounting a small tmpfs needs root (CI runs as root)");
    return;
  }
  {
    // The POSIX env whichever env the suite runs on: this is about a real file system.
    node_fixture f(
        false, 0, [&](node_config& c) { c.data_dir = mnt.path() + "/node"; }, &env::posix());
    fill_then_roll_back(f);
  }
}

TEST_CASE("a rollback whose safety net does not fit even with the reserve is refused up front") {
  memory_env disk(env::posix());
  REQUIRE_FALSE(disk.create_dirs("/node"));
  disk.set_quota(2u << 20);
  node_fixture f(
      false, 0, [](node_config& c) { c.store_reserve_kib = 4; }, &disk);
  CHECK(f.ok("status")["store_reserve_bytes"] == 4096);
  const std::string target = f.ok("checkpoint.create", {{"name", "target"}})["id"];
  control_reply full;
  for (uint64_t seed = 1; seed < 400 && full.code == 0; ++seed) {
    f.scramble(seed);
    full = f.ctl("checkpoint.create", {{"name", "fill"}});
  }
  REQUIRE(static_cast<errc>(full.code) == errc::no_space);
  auto before = f.snapshot();
  const auto count = f.ok("checkpoint.list")["checkpoints"].size();
  auto r = f.ctl("rollback", {{"id", target}, {"ack_critical", true}});
  CHECK(static_cast<errc>(r.code) == errc::no_space);
  CHECK(r.message.find("no space left for the rollback's safety net") != std::string::npos);
  CHECK(r.message.find(" bytes, the store's file system has ") != std::string::npos);
  CHECK(json::parse(r.body)["failed_phase"] == "validation");
  check_equal(f.snapshot(), before); // nothing was touched
  CHECK(f.ok("checkpoint.list")["checkpoints"].size() == count);
}
