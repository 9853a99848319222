// The data dir is private to the node's user: every file it writes is 0600
// and every directory 0700 (a store holds every device's registers and the
// configuration), and loose_modes() finds what is not.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

TEST_CASE("loose_modes names the files and directories others may use") {
  if (on_memory_env()) return; // it keeps no permission bits
  temp_dir tmp;
  auto& e = env::posix();
  REQUIRE_FALSE(e.create_dirs(tmp.path() + "/a/b"));
  REQUIRE_FALSE(write_durable(e, tmp.path(), tmp.path() + "/a/b/private", "x"));
  REQUIRE_FALSE(write_durable(e, tmp.path(), tmp.path() + "/a/open", "y"));
  REQUIRE(::chmod((tmp.path() + "/a/open").c_str(), 0644) == 0);
  REQUIRE(::chmod((tmp.path() + "/a/b").c_str(), 0755) == 0);
  auto loose = loose_modes(e, tmp.path());
  CHECK(loose == std::vector<std::pair<std::string, unsigned>>{{"a/b", 0755}, {"a/open", 0644}});
  REQUIRE(::chmod((tmp.path() + "/a/open").c_str(), 0600) == 0);
  REQUIRE(::chmod((tmp.path() + "/a/b").c_str(), 0700) == 0);
  CHECK(loose_modes(e, tmp.path()).empty());
}

TEST_CASE("a node's data dir: every file 0600, every directory 0700") {
  if (on_memory_env()) return;
  std::string dir;
  {
    node_fixture f(true); // encrypted: the data key too
    dir = f.dir.path();
    const std::string id = f.ok("checkpoint.create", {{"name", "one"}})["id"];
    f.scramble(7);
    CHECK(f.ok("rollback", {{"id", id}, {"ack_critical", true}})["success"] == true);
    f.ok("checkpoint.create", {{"name", "two"}});
    f.ok("checkpoint.delete", {{"id", id}});
    // Walk it all: nothing is open to others.
    size_t files = 0, dirs = 0;
    std::vector<std::string> pending = {dir};
    while (!pending.empty()) {
      const std::string d = pending.back();
      pending.pop_back();
      ++dirs;
      CHECK_MESSAGE(*env::posix().permissions(d) == 0700, d);
      for (auto& n : *env::posix().list_dir(d)) {
        const std::string p = d + "/" + n;
        struct stat st;
        REQUIRE(::lstat(p.c_str(), &st) == 0);
        if (S_ISDIR(st.st_mode)) {
          pending.push_back(p);
        } else {
          ++files;
          CHECK_MESSAGE((st.st_mode & 07777) == 0600, p);
        }
      }
    }
    CHECK(files > 10);
    CHECK(dirs > 5);
    CHECK(loose_modes(env::posix(), dir).empty());
  }
}
