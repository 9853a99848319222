// The space reserve (runtime/store/reserve): held, grown, shrunk, released.
#include <doctest/doctest.h>

#include "runtime/os/memory_env.hpp"
#include "runtime/store/reserve.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using namespace dsmil::test;

TEST_CASE("the space reserve grows by what is missing and shrinks or goes on request") {
  env_dir dir;
  const std::string path = dir.path() + "/store.reserve";
  space_reserve r(test_env(), path);
  auto size = [&] { return read(path).size(); };
  REQUIRE_FALSE(r.hold(100 * 1024));
  CHECK(size() == 100 * 1024);
  CHECK(r.held() == 100 * 1024);
  // Grown: the file keeps what it had and gets the rest.
  REQUIRE_FALSE(r.hold(2500 * 1024));
  CHECK(size() == 2500 * 1024);
  CHECK(r.held() == 2500 * 1024);
  CHECK(r.wanted() == 2500 * 1024);
  REQUIRE_FALSE(r.hold(64 * 1024));
  CHECK(size() == 64 * 1024);
  REQUIRE_FALSE(r.hold(0));
  CHECK_FALSE(test_env().exists(path));
  CHECK(r.held() == 0);
  // Released, then held again from nothing.
  REQUIRE_FALSE(r.hold(8 * 1024));
  REQUIRE_FALSE(r.release());
  CHECK_FALSE(test_env().exists(path));
  REQUIRE_FALSE(r.hold(16 * 1024));
  CHECK(size() == 16 * 1024);
}

TEST_CASE("a reserve that cannot grow on a full file system keeps what it held") {
  memory_env disk(env::posix());
  REQUIRE_FALSE(disk.create_dirs("/d"));
  disk.set_quota(1u << 20);
  space_reserve r(disk, "/d/store.reserve");
  REQUIRE_FALSE(r.hold(256 * 1024));
  auto err = r.hold(2u << 20); // more than the file system has
  REQUIRE(err);
  CHECK(err.code == errc::no_space);
  CHECK(r.held() == 256 * 1024);
  CHECK(r.wanted() == 2u << 20);
  auto bytes = disk.read_file("/d/store.reserve");
  REQUIRE(bytes.ok());
  CHECK(bytes->size() == 256 * 1024);
  // A reserve held from nothing that does not fit leaves no file.
  REQUIRE_FALSE(r.release());
  REQUIRE(r.hold(2u << 20));
  CHECK(r.held() == 0);
  CHECK_FALSE(disk.exists("/d/store.reserve"));
}
