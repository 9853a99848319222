// A store on a real, tiny filesystem that fills up mid-checkpoint.
#include <cstring>

#include <doctest/doctest.h>

#include "runtime/devices/sim_driver.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;

TEST_CASE("ENOSPC mid-checkpoint fails one operation clearly; the store keeps serving") {
  test::small_tmpfs mnt("3m");
  if (!mnt.mounted()) {
    WARN_MESSAGE(false, "not run: mounting a small tmpfs needs root (CI runs as root)");
    return;
  }
  const std::string dir = mnt.path() + "/store";
  store_options o;
  o.chunking = {4096, 16384, 65536};
  o.pack_target_bytes = 256 * 1024;
  auto store = std::move(*checkpoint_store::open(env::posix(), dir, o));

  auto source = [](size_t total, uint64_t seed) {
    auto pos = std::make_shared<size_t>(0);
    return [=](uint8_t* buf, size_t cap) mutable -> result<size_t> {
      size_t n = std::min(cap, total - *pos);
      for (size_t i = 0; i < n; ++i)
        buf[i] = static_cast<uint8_t>(splitmix64(seed));
      *pos += n;
      return n;
    };
  };
  auto small = store->write_stream("db", source(500000, 1));
  REQUIRE(small.ok());
  auto first = store->create({"fits", "", checkpoint_type::manual}, {}, system_config{}, {*small});
  REQUIRE(first.ok());

  auto big = store->write_stream("db", source(8 << 20, 2)); // random: does not compress
  REQUIRE_FALSE(big.ok());
  CHECK(big.err().code == errc::no_space);
  CHECK(big.err().message.find("no space left on device") != std::string::npos);
  CHECK(big.err().message.find(dir) != std::string::npos); // names the file
  CHECK(big.err().message.find('\n') == std::string::npos);

  // Nothing visible changed, and the store keeps serving without a restart:
  // gc frees what the failed stream left, deletes work, and a checkpoint
  // that fits goes in.
  CHECK(store->list().size() == 1);
  auto gc = store->gc();
  REQUIRE_MESSAGE(gc.ok(), gc.err().message);
  auto second = store->write_stream("db", source(500000, 3));
  REQUIRE_MESSAGE(second.ok(), second.err().message);
  auto two =
      store->create({"fits too", "", checkpoint_type::manual}, {}, system_config{}, {*second});
  REQUIRE_MESSAGE(two.ok(), two.err().message);
  REQUIRE_FALSE(store->remove(first->id));
  CHECK(store->verify(two->id).ok());
  CHECK(store->check(true)->clean());

  store.reset();
  auto reopened = checkpoint_store::open(env::posix(), dir, o);
  REQUIRE_MESSAGE(reopened.ok(), reopened.err().message);
  REQUIRE((*reopened)->list().size() == 1);
  CHECK((*reopened)->verify(two->id).ok());
}
