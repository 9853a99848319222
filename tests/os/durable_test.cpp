// The durable-write helpers under power cuts at every instant (memory env).
#include <doctest/doctest.h>

#include "runtime/os/memory_env.hpp"

using namespace dsmil;

TEST_CASE("write_durable_stages: at any cut, a later stage's file is there only with every "
          "earlier one, and no file is ever partial") {
  const std::string a(5000, 'a'), b(7000, 'b'), c(300, 'c');
  auto setup = [](memory_env& m) {
    REQUIRE_FALSE(m.create_dirs("/s/tmp"));
    REQUIRE_FALSE(m.create_dirs("/s/x"));
    REQUIRE_FALSE(m.create_dirs("/s/y"));
  };
  auto write = [&](memory_env& m) {
    return write_durable_stages(
        m, "/s/tmp", {{{"/s/x/a", a, 0644}, {"/s/y/b", b, 0644}}, {{"/s/x/c", c, 0644}}});
  };
  uint64_t changes = 0;
  {
    memory_env m(env::posix());
    setup(m);
    const auto before = m.change_count();
    REQUIRE_FALSE(write(m));
    changes = m.change_count() - before;
    CHECK(*m.read_file("/s/x/c") == c);
    CHECK(m.list_dir("/s/tmp")->empty());
  }
  REQUIRE(changes > 8);
  int complete = 0;
  for (uint64_t cut = 0; cut <= changes; ++cut) {
    CAPTURE(cut);
    memory_env m(env::posix());
    setup(m);
    m.crash_after(cut);
    const bool ok = !write(m);
    if (!m.crashed()) m.crash_now();
    m.restart();
    const bool has_a = m.exists("/s/x/a"), has_b = m.exists("/s/y/b"), has_c = m.exists("/s/x/c");
    if (has_a) CHECK(*m.read_file("/s/x/a") == a);
    if (has_b) CHECK(*m.read_file("/s/y/b") == b);
    if (has_c) {
      CHECK(*m.read_file("/s/x/c") == c);
      CHECK((has_a && has_b)); // the order write_durable_stages promises
    }
    if (ok) { // returned: everything durable
      CHECK((has_a && has_b && has_c));
      ++complete;
    }
  }
  CHECK(complete >= 1); // the last cut comes after the whole write
}

TEST_CASE("remove_durable: once it returns, the file stays gone after a cut") {
  memory_env m(env::posix());
  REQUIRE_FALSE(m.create_dirs("/s/tmp"));
  REQUIRE_FALSE(write_durable(m, "/s/tmp", "/s/f", "x"));
  REQUIRE_FALSE(remove_durable(m, "/s/f"));
  m.crash_now();
  m.restart();
  CHECK_FALSE(m.exists("/s/f"));
}
