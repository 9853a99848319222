#include <doctest/doctest.h>

#include "runtime/os/memory_env.hpp"

using namespace dsmil;

namespace {

void put(env& e, const std::string& path, const std::string& data, bool sync) {
  auto f = e.new_writable_file(path, 0644);
  REQUIRE(f);
  REQUIRE_FALSE((*f)->append(data));
  if (sync) REQUIRE_FALSE((*f)->sync());
  REQUIRE_FALSE((*f)->close());
}

} // namespace

TEST_CASE("a crash keeps fsynced bytes of names whose directory was fsynced, nothing else") {
  memory_env m(env::posix());
  REQUIRE_FALSE(m.create_dirs("/d"));
  put(m, "/d/durable", "kept", true);
  REQUIRE_FALSE(m.sync_dir("/d"));
  put(m, "/d/unsynced-data", "lost", false); // name synced below, data never
  put(m, "/d/moved", "kept", true);          // data and name synced; renamed later
  REQUIRE_FALSE(m.sync_dir("/d"));
  put(m, "/d/late", "lost", true);
  {
    auto f = m.new_appendable_file("/d/durable", 0644);
    REQUIRE_FALSE((*f)->append(" and more")); // appended, never synced
  }
  REQUIRE_FALSE(m.rename("/d/moved", "/d/renamed")); // rename never synced
  CHECK(*m.read_file("/d/durable") == "kept and more");
  m.crash_now();
  CHECK(m.crashed());
  CHECK(m.create_dirs("/e").code == errc::io_error); // the machine is down
  m.restart();
  CHECK(*m.read_file("/d/durable") == "kept");
  CHECK(m.read_file("/d/unsynced-data")->empty());
  CHECK(*m.read_file("/d/moved") == "kept"); // the rename was not durable
  CHECK_FALSE(m.exists("/d/renamed"));
  CHECK_FALSE(m.exists("/d/late"));
  CHECK(*m.list_dir("/d") == std::vector<std::string>{"durable", "moved", "unsynced-data"});
}

TEST_CASE("crash_after takes the image at the chosen change and refuses every later one") {
  memory_env m(env::posix());
  REQUIRE_FALSE(m.create_dirs("/d"));
  const auto start = m.change_count();
  m.crash_after(3); // create, append, sync go through; the rename is refused
  auto f = m.new_writable_file("/d/a.tmp", 0644);
  REQUIRE(f);
  REQUIRE_FALSE((*f)->append("x"));
  REQUIRE_FALSE((*f)->sync());
  CHECK(m.rename("/d/a.tmp", "/d/a").code == errc::io_error);
  CHECK(m.change_count() - start == 3);
  m.restart();
  CHECK_FALSE(m.exists("/d/a.tmp")); // never made durable by a sync_dir
  CHECK_FALSE(m.exists("/d/a"));
}

TEST_CASE("a byte quota fails writes with no_space, naming the file; freeing space helps") {
  memory_env m(env::posix());
  REQUIRE_FALSE(m.create_dirs("/d"));
  m.set_quota(10);
  put(m, "/d/a", "12345678", true);
  auto f = m.new_writable_file("/d/b", 0644);
  auto err = (*f)->append("abc");
  CHECK(err.code == errc::no_space);
  CHECK(err.message.find("no space left") != std::string::npos);
  CHECK(err.message.find("/d/b") != std::string::npos);
  REQUIRE_FALSE(m.remove("/d/a"));
  CHECK_FALSE((*f)->append("abc"));
  CHECK(m.used_bytes() == 3);
}

TEST_CASE("a lock is held once; after a crash the machine comes back without it") {
  memory_env m(env::posix());
  REQUIRE_FALSE(m.create_dirs("/d"));
  auto a = m.lock_file("/d/LOCK");
  REQUIRE(a);
  CHECK(m.lock_file("/d/LOCK").err().code == errc::busy);
  m.crash_now();
  m.restart();
  auto b = m.lock_file("/d/LOCK");
  REQUIRE(b);
  a->reset(); // the holder from before the crash lets go: b still holds it
  CHECK(m.lock_file("/d/LOCK").err().code == errc::busy);
}
