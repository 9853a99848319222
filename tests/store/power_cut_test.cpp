// Power cuts in-process: the store runs on a memory env that keeps only what
// was fsynced (and names whose directory was fsynced); a crash is taken at a
// random change during a workload of creates, deletes and gc, and the store
// reopened from that image must hold every checkpoint that was committed,
// each verifying in full.
#include <cstdlib>
#include <random>
#include <map>
#include <set>

#include <doctest/doctest.h>

#include "runtime/base/crypto.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/memory_env.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;

namespace {

byte_source random_source(size_t total, uint64_t seed) {
  auto pos = std::make_shared<size_t>(0);
  return [=](uint8_t* buf, size_t cap) mutable -> result<size_t> {
    size_t n = std::min(cap, total - *pos);
    for (size_t i = 0; i < n; ++i)
      buf[i] = static_cast<uint8_t>(splitmix64(seed) % 16); // compressible, distinct per seed
    *pos += n;
    return n;
  };
}

struct ledger {
  std::map<std::string, std::string> digest; ///< SHA-256 of each checkpoint's stream
  std::set<std::string> committed;           ///< create returned and no delete began: must survive
  std::set<std::string> removed;             ///< remove returned: must stay gone
};

// One workload step after another until one fails (the machine went down).
void workload(checkpoint_store& s, sim_driver& sim, const device_map& map, uint64_t& seed,
              ledger& l) {
  auto devices = [&] {
    std::vector<device_state> out;
    for (auto& d : map.devices())
      out.push_back(*sim.read(d.id));
    return out;
  };
  for (int step = 0; step < 6; ++step) {
    switch (step % 3) {
    case 0:
    case 1: {
      const uint64_t data_seed = splitmix64(seed);
      std::string expect;
      {
        auto src = random_source(300000, data_seed);
        uint8_t buf[65536];
        for (;;) {
          auto n = *src(buf, sizeof(buf));
          if (n == 0) break;
          expect.append(reinterpret_cast<char*>(buf), n);
        }
      }
      auto st = s.write_stream("db", random_source(300000, data_seed));
      if (!st) return;
      auto c = s.create({"w", "", checkpoint_type::manual}, devices(), system_config{}, {*st});
      if (!c) return;
      l.committed.insert(c->id);
      l.digest[c->id] = sha256_hex(expect);
      break;
    }
    default: {
      const auto list = s.list();
      const std::string oldest = list.front().id;
      // While the delete runs, the checkpoint may be there or gone.
      l.committed.erase(oldest);
      if (s.remove(oldest)) return;
      l.removed.insert(oldest);
      if (!s.gc(0.9)) return;
    }
    }
  }
}

} // namespace

TEST_CASE("a power cut at a random instant of create, delete or gc loses no committed checkpoint") {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("DSMIL_POWER_CUT_SEED")) seed = std::strtoull(s, nullptr, 10);
  const int rounds =
      std::getenv("DSMIL_POWER_CUT_ROUNDS") ? std::atoi(std::getenv("DSMIL_POWER_CUT_ROUNDS")) : 40;
  MESSAGE("power-cut seed " << seed << " (DSMIL_POWER_CUT_SEED replays the choices)");
  const device_map map = *device_map::parse(embedded_devices_toml(), "d");
  store_options o;
  o.chunking = {4096, 16384, 65536};
  o.pack_target_bytes = 256 * 1024;
  o.threads = 2;

  // How many changes the workload makes, to aim the cuts over all of it.
  uint64_t span = 0;
  {
    memory_env m(env::posix());
    sim_driver sim(map, 1, m);
    auto s = std::move(*checkpoint_store::open(m, "/s", o));
    ledger l;
    uint64_t w = seed;
    const auto before = m.change_count();
    workload(*s, sim, map, w, l);
    span = m.change_count() - before;
    REQUIRE(l.committed.size() == 2); // 4 created, 2 removed
  }

  int cut_in_create = 0, recovered = 0;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    memory_env m(env::posix());
    sim_driver sim(map, 1, m);
    ledger l;
    uint64_t w = seed + static_cast<uint64_t>(round);
    {
      auto s = std::move(*checkpoint_store::open(m, "/s", o));
      // A checkpoint from before the workload, and the cut somewhere in it.
      auto first = s->create({"base", "", checkpoint_type::manual}, {}, system_config{});
      REQUIRE(first);
      l.committed.insert(first->id);
      m.crash_after(splitmix64(w) % (span + 1));
      workload(*s, sim, map, w, l);
      if (!m.crashed()) m.crash_now();
    }
    m.restart();
    auto reopened = checkpoint_store::open(m, "/s", o);
    REQUIRE_MESSAGE(reopened.ok(), reopened.err().message);
    auto& s = **reopened;
    std::set<std::string> present;
    for (auto& c : s.list())
      present.insert(c.id);
    for (auto& id : l.committed) {
      CHECK_MESSAGE(present.count(id), "committed checkpoint " << id << " lost");
      auto v = s.verify(id);
      CHECK_MESSAGE(v.ok(), id << ": " << (v ? "" : v.err().message));
      if (l.digest.count(id)) // the base checkpoint has no stream
        CHECK_MESSAGE(test::content_digest(s, id) == l.digest.at(id),
                      "checkpoint " << id << " does not hold what was checkpointed");
    }
    for (auto& id : l.removed)
      CHECK_MESSAGE(!present.count(id), "removed checkpoint " << id << " came back");
    for (auto& id : present) // a create cut short may have committed: then it is whole
      CHECK(s.verify(id).ok());
    REQUIRE(s.gc().ok());
    auto check = s.check(true);
    REQUIRE(check);
    CHECK(check->clean());
    cut_in_create += present.size() > l.committed.size();
    ++recovered;
  }
  CHECK(recovered == rounds);
  MESSAGE(cut_in_create << " of " << rounds
                        << " cuts left a create committed that had not returned");
}
