// A full file system is survivable: a checkpoint that does not fit fails with
// one line naming the file, changes nothing, and the store keeps serving
// (deletes and gc included) so space can be freed without a restart. Runs
// without root on the memory env's byte quota.
#include <doctest/doctest.h>

#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/memory_env.hpp"
#include "runtime/store/store.hpp"

using namespace dsmil;

namespace {

byte_source random_source(size_t total, uint64_t seed) {
  auto pos = std::make_shared<size_t>(0);
  return [=](uint8_t* buf, size_t cap) mutable -> result<size_t> {
    size_t n = std::min(cap, total - *pos);
    for (size_t i = 0; i < n; ++i)
      buf[i] = static_cast<uint8_t>(splitmix64(seed)); // does not compress
    *pos += n;
    return n;
  };
}

} // namespace

TEST_CASE("a full file system fails one checkpoint softly; deletes free space without a restart") {
  memory_env m(env::posix());
  store_options o;
  o.chunking = {4096, 16384, 65536};
  o.pack_target_bytes = 256 * 1024;
  o.threads = 2;
  auto s = std::move(*checkpoint_store::open(m, "/s", o));
  m.set_quota(m.used_bytes() + (3u << 20)); // room for about five 500 KB checkpoints

  std::vector<std::string> ids;
  error full;
  for (uint64_t seed = 1; seed < 40 && !full; ++seed) {
    auto st = s->write_stream("db", random_source(500000, seed));
    if (!st) {
      full = st.err();
      break;
    }
    auto c = s->create({"fill", "", checkpoint_type::manual}, {}, system_config{}, {*st});
    if (!c) {
      full = c.err();
      break;
    }
    ids.push_back(c->id);
  }
  REQUIRE(full);
  REQUIRE(ids.size() >= 3);
  CHECK(full.code == errc::no_space);
  CHECK(full.message.find("no space left") != std::string::npos);
  CHECK(full.message.find("/s/") != std::string::npos); // names the file
  CHECK(full.message.find('\n') == std::string::npos);
  CHECK(s->list().size() == ids.size());
  CHECK(m.list_dir("/s/tmp")->empty()); // nothing half-written left behind

  // No restart: deletes and gc work at once, and then a checkpoint fits.
  REQUIRE_FALSE(s->remove(ids[0]));
  REQUIRE_FALSE(s->remove(ids[1]));
  auto gc = s->gc();
  REQUIRE_MESSAGE(gc.ok(), gc.err().message);
  CHECK(gc->bytes_reclaimed > 0);
  auto st = s->write_stream("db", random_source(500000, 99));
  REQUIRE_MESSAGE(st.ok(), st.err().message);
  auto c = s->create({"after", "", checkpoint_type::manual}, {}, system_config{}, {*st});
  REQUIRE_MESSAGE(c.ok(), c.err().message);
  for (auto& info : s->list())
    CHECK(s->verify(info.id).ok());
  auto check = s->check(true);
  REQUIRE(check);
  CHECK(check->clean());
}

TEST_CASE("an I/O error that is not a full disk stays sticky") {
  memory_env m(env::posix());
  auto s = std::move(*checkpoint_store::open(m, "/s"));
  auto a = s->create({"a", "", checkpoint_type::manual}, {}, system_config{});
  REQUIRE(a);
  m.crash_after(2); // the machine goes down in the middle of the next create
  CHECK_FALSE(s->create({"b", "", checkpoint_type::manual}, {}, system_config{}).ok());
  m.restart();
  auto err = s->remove(a->id);
  CHECK(err.code == errc::io_error);
  CHECK(err.message.find("refuses deletes after an earlier failure") != std::string::npos);
}
