// The space reserve (runtime/store/reserve): held, grown, shrunk, released.
#include <doctest/doctest.h>

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
