// A store workload that runs until killed, for the crash test: creates
// checkpoints with overlapping streams, deletes, collects garbage. It prints
// what it has done (after it is durable) and what it is about to delete, so
// the test knows which checkpoints must exist after a kill.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/base/crypto.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/store/store.hpp"

using namespace dsmil;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: store_torture DIR SEED\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  store_options o;
  o.chunking = {4096, 16384, 65536};
  o.pack_target_bytes = 256 * 1024;
  o.threads = 2;
  auto store = checkpoint_store::open(env::posix(), argv[1], o);
  if (!store) {
    std::fprintf(stderr, "store_torture: %s\n", store.err().message.c_str());
    return 1;
  }
  auto& s = **store;
  // Shared blocks make streams overlap, so dedup, gc and rewrites all happen.
  std::vector<std::string> blocks(8, std::string(128 * 1024, '\0'));
  uint64_t bs = 42;
  for (auto& b : blocks)
    for (auto& c : b)
      c = static_cast<char>(splitmix64(bs) % 7 == 0 ? splitmix64(bs) : 'a');
  for (;;) {
    uint64_t op = splitmix64(seed) % 10;
    auto list = s.list();
    if (op < 5 || list.size() < 2) {
      std::string data;
      int n = 1 + static_cast<int>(splitmix64(seed) % 6);
      for (int i = 0; i < n; ++i)
        data += blocks[splitmix64(seed) % blocks.size()];
      std::string tail(1000 + splitmix64(seed) % 50000, '\0');
      for (auto& c : tail)
        c = static_cast<char>(splitmix64(seed));
      data += tail;
      size_t pos = 0;
      auto stream = s.write_stream("data", [&](uint8_t* buf, size_t cap) -> result<size_t> {
        size_t k = std::min(cap, data.size() - pos);
        std::memcpy(buf, data.data() + pos, k);
        pos += k;
        return k;
      });
      if (!stream) return std::fprintf(stderr, "%s\n", stream.err().message.c_str()), 1;
      auto info = s.create({"t", "", checkpoint_type::manual}, {}, system_config{}, {*stream});
      if (!info) return std::fprintf(stderr, "%s\n", info.err().message.c_str()), 1;
      // With the content's digest: the test checks what comes back, not only
      // that the checkpoint is there.
      std::printf("created %s %s\n", info->id.c_str(), sha256_hex(data).c_str());
    } else if (op < 8 || list.size() > 12) {
      auto& victim = list[splitmix64(seed) % list.size()];
      std::printf("deleting %s\n", victim.id.c_str());
      if (auto err = s.remove(victim.id))
        return std::fprintf(stderr, "%s\n", err.message.c_str()), 1;
      std::printf("deleted %s\n", victim.id.c_str());
    } else {
      auto r = s.gc(0.6);
      if (!r) return std::fprintf(stderr, "%s\n", r.err().message.c_str()), 1;
      std::printf("gc %zu %zu\n", r->packs_removed, r->packs_rewritten);
    }
  }
}
