// A store on a real, tiny filesystem that fills up mid-checkpoint.
#include <cstring>
#include <sys/mount.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "runtime/sim_driver.hpp"
#include "runtime/store.hpp"
#include "test_util.hpp"

using namespace dsmil;

TEST_CASE("ENOSPC mid-checkpoint fails clearly and loses no earlier checkpoint") {
  test::temp_dir mnt;
  if (::geteuid() != 0 || ::mount("tmpfs", mnt.path().c_str(), "tmpfs", 0, "size=3m") != 0) {
    WARN_MESSAGE(false, "not run: mounting a small tmpfs needs root (CI runs as root)");
    return;
  }
  struct unmount {
    std::string p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } guard{mnt.path()};
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
  auto first = store->create({"fits", "", "manual"}, {}, system_config{}, {*small});
  REQUIRE(first.ok());

  auto big = store->write_stream("db", source(8 << 20, 2)); // random: does not compress
  REQUIRE_FALSE(big.ok());
  CHECK(big.err().code == errc::io_error);
  CHECK(big.err().message.find("No space left on device") != std::string::npos);
  CHECK(big.err().message.find('\n') == std::string::npos);

  // Nothing visible changed; after a reopen (and a gc of the partial packs)
  // the earlier checkpoint is intact and verifiable.
  CHECK(store->list().size() == 1);
  store.reset();
  auto reopened = checkpoint_store::open(env::posix(), dir, o);
  REQUIRE_MESSAGE(reopened.ok(), reopened.err().message);
  REQUIRE((*reopened)->gc().ok());
  REQUIRE((*reopened)->list().size() == 1);
  CHECK((*reopened)->verify(first->id).ok());
  CHECK((*reopened)->check(true)->clean());
}
