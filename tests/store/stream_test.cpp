#include <cstring>
#include <fstream>
#include <set>
#include <sys/stat.h>

#include <doctest/doctest.h>

#include "runtime/store/chunker.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/store/store.hpp"
#include "simd/deflate.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using dsmil::test::random_bytes_of;
using dsmil::test::source_of;
using dsmil::test::text_of;

namespace {

std::vector<size_t> cuts(const chunker& c, const std::string& data) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < data.size()) {
    auto len =
        c.next_cut(reinterpret_cast<const uint8_t*>(data.data()) + pos, data.size() - pos, true);
    pos += len;
    out.push_back(pos);
  }
  return out;
}

const chunker_params small{4096, 16384, 65536};

} // namespace

TEST_CASE("chunk boundaries are stable under insertions and deletions") {
  chunker c(small);
  auto data = random_bytes_of(2 << 20, 1);
  auto before = cuts(c, data);
  CHECK(before.size() > 64);
  CHECK(before.size() < 512);
  // Insert 100 bytes in the middle: every cut well after the insertion moves by exactly 100.
  auto edited = data.substr(0, 1 << 20) + random_bytes_of(100, 2) + data.substr(1 << 20);
  auto after = cuts(c, edited);
  std::set<size_t> shifted;
  for (auto p : after)
    shifted.insert(p >= (1u << 20) ? p - 100 : p);
  size_t kept = 0;
  for (auto p : before)
    kept += shifted.count(p);
  CHECK(kept >= before.size() - 3);
  // Sizes respect min and max.
  size_t prev = 0;
  for (size_t i = 0; i + 1 < before.size(); ++i) {
    CHECK(before[i] - prev >= small.min_size);
    CHECK(before[i] - prev <= small.max_size);
    prev = before[i];
  }
}

TEST_CASE("chunker parameters are validated") {
  CHECK(validate({4096, 16384, 65536}).code == errc::none);
  CHECK(validate({16384, 16384, 65536}).code == errc::config_error);
  CHECK(validate({4096, 10000, 65536}).message.find("power of two") != std::string::npos);
}

TEST_CASE("deflate round trip; incompressible input is refused so it is stored raw") {
  simd::deflater d(1);
  auto text = text_of(200000, 3);
  std::string packed;
  REQUIRE(d.compress(reinterpret_cast<const uint8_t*>(text.data()), text.size(), packed));
  CHECK(packed.size() < text.size() / 2);
  std::string back(text.size(), '\0');
  CHECK(simd::inflate(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(),
                      reinterpret_cast<uint8_t*>(back.data()), back.size()));
  CHECK(back == text);
  auto noise = random_bytes_of(100000, 4);
  CHECK_FALSE(d.compress(reinterpret_cast<const uint8_t*>(noise.data()), noise.size(), packed));
  packed[packed.size() / 2] ^= 1;
  CHECK_FALSE(simd::inflate(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(),
                            reinterpret_cast<uint8_t*>(back.data()), back.size()));
}

TEST_CASE("streams round-trip through the store for every codec and thread count, and dedup") {
  for (int level : {0, 1, 3}) {
    for (unsigned threads : {1u, 4u}) {
      CAPTURE(level);
      CAPTURE(threads);
      test::env_dir tmp;
      store_options o;
      o.chunking = small;
      o.deflate_level = level;
      o.threads = threads;
      o.pack_target_bytes = 256 * 1024; // several packs
      auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
      auto data = text_of(1 << 20, 5) + random_bytes_of(1 << 20, 6);
      stream_stats st;
      auto s = store->write_stream("db", source_of(data), &st);
      REQUIRE_MESSAGE(s.ok(), s.err().message);
      CHECK(s->size == data.size());
      CHECK(st.new_bytes == data.size());
      if (level > 0) CHECK(st.stored_bytes < data.size() * 3 / 4);
      auto info = store->create({"s", "", checkpoint_type::manual}, {}, system_config{}, {*s});
      REQUIRE_MESSAGE(info.ok(), info.err().message);
      auto loaded = store->load(info->id);
      REQUIRE_MESSAGE(loaded.ok(), loaded.err().message);
      REQUIRE(loaded->streams.size() == 1);
      std::string back;
      CHECK_FALSE(store->read_stream(loaded->streams[0], [&](std::string_view b) {
        back += b;
        return status{};
      }));
      CHECK(back == data);
      CHECK(store->verify(info->id).ok());

      // The same stream again stores nothing new; an edit stores little.
      stream_stats again;
      REQUIRE(store->write_stream("db", source_of(data), &again).ok());
      CHECK(again.new_chunks == 0);
      auto edited = data;
      edited.insert(500000, "inserted bytes");
      stream_stats inc;
      REQUIRE(store->write_stream("db", source_of(edited), &inc).ok());
      CHECK(inc.new_bytes < 3 * small.max_size);
    }
  }
}

TEST_CASE("a store keeps the chunking it was created with") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  {
    auto s = checkpoint_store::open(test::test_env(), tmp.path(), o);
    REQUIRE(s.ok());
  }
  auto reopened = checkpoint_store::open(test::test_env(), tmp.path()); // default options
  REQUIRE(reopened.ok());
  CHECK((*reopened)->options().chunking.avg_size == small.avg_size);
  CHECK(test::read(tmp.path() + "/store.toml").find("avg_size = 16384") != std::string::npos);
}

TEST_CASE("a flipped bit anywhere in a pack is found by a full store check, which names it") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  o.pack_target_bytes = 128 * 1024;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  auto data = text_of(300000, 8) + random_bytes_of(300000, 9);
  auto s = *store->write_stream("db", source_of(data));
  auto a = *store->create({"a", "", checkpoint_type::manual}, {}, system_config{}, {s});
  auto clean = store->check(true);
  REQUIRE(clean.ok());
  CHECK(clean->clean());
  CHECK(clean->packs >= 3);
  CHECK(clean->bytes_read > 0);

  std::vector<std::string> packs;
  for (auto& sub : *test::test_env().list_dir(tmp.path() + "/packs"))
    for (auto& p : *test::test_env().list_dir(tmp.path() + "/packs/" + sub))
      packs.push_back("packs/" + sub + "/" + p);
  uint64_t seed = 11;
  for (int trial = 0; trial < 40; ++trial) {
    const std::string rel = packs[splitmix64(seed) % packs.size()];
    const std::string path = tmp.path() + "/" + rel;
    auto bytes = test::read(path);
    size_t at = splitmix64(seed) % bytes.size();
    int bit = static_cast<int>(splitmix64(seed) % 8);
    CAPTURE(rel);
    CAPTURE(at);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
    test::write(path, bytes);
    auto rep = store->check(true);
    REQUIRE(rep.ok());
    CHECK_FALSE(rep->clean());
    REQUIRE_FALSE(rep->damaged.empty());
    CHECK(rep->damaged[0].pack == rel);
    CHECK(rep->damaged_checkpoints.count(a.id) == 1);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
    test::write(path, bytes);
  }
  CHECK(store->check(true)->clean());

  // Without reading data, a missing pack is still found.
  REQUIRE_FALSE(test::test_env().remove(tmp.path() + "/" + packs[0]));
  auto quick = store->check(false);
  REQUIRE(quick.ok());
  CHECK_FALSE(quick->clean());
  CHECK(quick->damaged[0].problem == "pack missing");
}

TEST_CASE("verify --chain walks parent links and signatures to the root") {
  test::env_dir tmp;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto a = *store->create({"a", "", checkpoint_type::manual}, {}, system_config{});
  system_config c;
  c.config_data = "b";
  auto b = *store->create({"b", "", checkpoint_type::manual}, {}, c);
  c.config_data = "c";
  auto cc = *store->create({"c", "", checkpoint_type::manual}, {}, c);
  auto chain = store->verify_chain(cc.id);
  REQUIRE_MESSAGE(chain.ok(), chain.err().message);
  REQUIRE(chain->checks.size() == 3);
  CHECK(chain->checks[2].find(a.id) != std::string::npos);
  CHECK(chain->checks[2].find("root") != std::string::npos);

  // A parent whose manifest was changed breaks the chain, and the error names it.
  const std::string pb = tmp.path() + "/manifests/" + b.id + ".json";
  auto body = test::read(pb);
  test::write(pb, body + " ");
  auto broken = store->verify_chain(cc.id);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.err().message.find("manifests/" + b.id + ".json") != std::string::npos);
  test::write(pb, body);

  // A deleted parent ends the walk, and says so.
  REQUIRE_FALSE(store->remove(b.id));
  auto cut = store->verify_chain(cc.id);
  REQUIRE(cut.ok());
  CHECK(cut->checks.back().find("was deleted") != std::string::npos);
}

TEST_CASE("delete and gc reclaim space; pinned checkpoints stay; everything left verifies") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  o.pack_target_bytes = 64 * 1024;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  auto shared = random_bytes_of(200000, 20);
  auto only_a = random_bytes_of(400000, 21);
  auto only_b = random_bytes_of(300000, 22);
  auto make = [&](const std::string& data, const char* name) {
    auto s = *store->write_stream("db", source_of(data));
    return *store->create({name, "", checkpoint_type::manual}, {}, system_config{}, {s});
  };
  auto a = make(shared + only_a, "a");
  auto b = make(shared + only_b, "b");
  auto before = store->check(false)->chunks;

  REQUIRE_FALSE(store->pin(b.id, true));
  CHECK(store->info(b.id)->pinned);
  CHECK(store->remove(b.id).code == errc::permission_denied);

  REQUIRE_FALSE(store->remove(a.id));
  auto r = store->gc();
  REQUIRE_MESSAGE(r.ok(), r.err().message);
  CHECK(r->bytes_reclaimed >= only_a.size() * 9 / 10);
  CHECK(r->packs_removed + r->packs_rewritten > 0);
  CHECK(store->check(false)->chunks < before);
  CHECK(store->verify(b.id).ok());
  CHECK(store->check(true)->clean());
  // A second gc finds nothing more to do.
  CHECK(store->gc()->bytes_reclaimed == 0);

  // The pin survives a reopen; unpinned, the checkpoint can go.
  store.reset();
  store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  CHECK(store->info(b.id)->pinned);
  REQUIRE_FALSE(store->pin(b.id, false));
  CHECK_FALSE(store->remove(b.id));
  CHECK(store->gc().ok());
  CHECK(store->check(false)->chunks == 0);
}

TEST_CASE("encryption at rest: every codec x cipher round-trips; ids do not show equal plaintext") {
  auto data = text_of(300000, 30) + random_bytes_of(200000, 31);
  std::set<std::string> ids_by_store[2];
  for (bool encrypt : {false, true}) {
    for (int level : {0, 1}) {
      CAPTURE(encrypt);
      CAPTURE(level);
      test::env_dir tmp;
      store_options o;
      o.chunking = small;
      o.deflate_level = level;
      o.encrypt = encrypt;
      auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
      auto s = store->write_stream("db", source_of(data));
      REQUIRE_MESSAGE(s.ok(), s.err().message);
      auto info = *store->create({"e", "", checkpoint_type::manual}, {}, system_config{}, {*s});
      std::string back;
      CHECK_FALSE(store->read_stream(store->load(info.id)->streams[0], [&](std::string_view b) {
        back += b;
        return status{};
      }));
      CHECK(back == data);
      CHECK(store->verify(info.id).ok());
      if (encrypt) {
        // No plaintext on disk, and the ids are keyed: another store's differ.
        for (auto& sub : *test::test_env().list_dir(tmp.path() + "/packs"))
          for (auto& p : *test::test_env().list_dir(tmp.path() + "/packs/" + sub))
            CHECK(test::read(tmp.path() + "/packs/" + sub + "/" + p).find("checkpoint rollback") ==
                  std::string::npos);
        for (auto& c : s->chunks)
          ids_by_store[level].insert(c.id);
        CHECK(s->chunks[0].id != sha256_hex(data.substr(0, s->chunks[0].size)));
        REQUIRE(test::test_env().exists(tmp.path() + "/keys/data.key"));
        if (!test::on_memory_env()) { // the memory env keeps no permission bits
          struct stat st;
          REQUIRE(::stat((tmp.path() + "/keys/data.key").c_str(), &st) == 0);
          CHECK((st.st_mode & 0777) == 0600);
        }

        // Without the key: structure and CRC64 are checked, content is not, and it says so.
        store.reset();
        test::env_dir away; // outside the store: verify refuses files it does not make
        REQUIRE_FALSE(
            test::test_env().rename(tmp.path() + "/keys/data.key", away.path() + "/data.key"));
        auto blind = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
        auto v = blind->verify(info.id);
        REQUIRE_MESSAGE(v.ok(), v.err().message);
        CHECK(v->checks.back().find("content: NOT checked") != std::string::npos);
        CHECK(blind->load(info.id).err().code == errc::unavailable);
        CHECK(blind->write_stream("db", source_of(data)).err().code == errc::unavailable);
        CHECK(blind->check(true)->clean());
        // A damaged record is still found without the key.
        auto packs = test::packs(tmp.path());
        REQUIRE_FALSE(packs.empty());
        auto pack = packs.front();
        auto bytes = test::read(pack);
        bytes[bytes.size() - 5] ^= 1;
        test::write(pack, bytes);
        CHECK_FALSE(blind->check(true)->clean());
      }
    }
  }
  // Two encrypted stores (different data keys) share no chunk id for the same data.
  for (auto& id : ids_by_store[0])
    CHECK(ids_by_store[1].count(id) == 0);
}

TEST_CASE("an encrypted store's data key is wrapped under a passphrase when one is given") {
  test::env_dir tmp;
  const std::string pass = tmp.path() + "/pass", wrong = tmp.path() + "/wrong";
  test::write(pass, "correct horse battery staple\n");
  test::write(wrong, "not the passphrase\n");
  store_options o;
  o.chunking = small;
  o.encrypt = true;
  o.passphrase_file = pass;
  const std::string dir = tmp.path() + "/store";
  const auto data = text_of(200000, 77);
  std::string id;
  {
    auto s = std::move(*checkpoint_store::open(test::test_env(), dir, o));
    auto st = s->write_stream("db", source_of(data));
    REQUIRE_MESSAGE(st.ok(), st.err().message);
    id = s->create({"p", "", checkpoint_type::manual}, {}, system_config{}, {*st})->id;
  }
  CHECK_FALSE(test::test_env().exists(dir + "/keys/data.key")); // no key in the clear
  CHECK(test::read(dir + "/keys/data.key.sealed").rfind("software ", 0) == 0);
  if (!test::on_memory_env()) {
    struct stat st_mode;
    REQUIRE(::stat((dir + "/keys/data.key.sealed").c_str(), &st_mode) == 0);
    CHECK((st_mode.st_mode & 0777) == 0600);
  }
  {
    auto s = std::move(*checkpoint_store::open(test::test_env(), dir, o));
    CHECK(s->verify(id).ok());
  }
  o.passphrase_file = wrong;
  {
    auto s = std::move(*checkpoint_store::open(test::test_env(), dir, o));
    CHECK_FALSE(s->can_read_content());
    CHECK(s->write_stream("db", source_of(data))
              .err()
              .message.find("the passphrase does not open the data key") != std::string::npos);
  }
  o.passphrase_file.clear();
  {
    auto s = std::move(*checkpoint_store::open(test::test_env(), dir, o));
    CHECK(s->load(id).err().message.find("set [keys] passphrase_file") != std::string::npos);
  }
  o.passphrase_file = tmp.path() + "/missing";
  CHECK(checkpoint_store::open(test::test_env(), dir, o).err().code == errc::config_error);
}
