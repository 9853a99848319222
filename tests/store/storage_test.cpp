// The public storage API (include/dsmil/storage.hpp), as an embedding
// program uses it.
#include <algorithm>
#include <cstring>
#include <dirent.h>
#include <fstream>

#include <doctest/doctest.h>

#include "dsmil/storage.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;

namespace {

checkpoint sample(int seed) {
  checkpoint c;
  c.name = "sample-" + std::to_string(seed);
  c.description = "from the storage test";
  for (device_id id : {0x8000, 0x8011, 0x8063}) {
    device_state d;
    d.id = id;
    d.enabled = (id + seed) % 2 == 0;
    d.security_level = static_cast<uint8_t>((id + seed) % 5);
    for (uint32_t r = 0; r < 16; ++r)
      d.registers.push_back(r * 2654435761u + static_cast<uint32_t>(seed));
    d.config_blob.assign(64, static_cast<uint8_t>(seed));
    c.devices.push_back(d);
  }
  c.configuration.config_version = 3;
  c.configuration.agent_concurrency_limit = 40 + seed;
  c.configuration.config_data = "{\"mode\": \"normal\"}";
  std::string db;
  while (db.size() < 400000)
    db += "row " + std::to_string(db.size() * 7 + static_cast<size_t>(seed)) + " | account | ok\n";
  c.streams.push_back({"postgres", db});
  c.streams.push_back({"agents", std::string(1000, 'a')});
  return c;
}

void check_same(const checkpoint& a, const checkpoint& b) {
  REQUIRE(a.devices.size() == b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i) {
    CHECK(a.devices[i].id == b.devices[i].id);
    CHECK(same_restorable_state(a.devices[i], b.devices[i]));
  }
  CHECK(a.configuration.same_restorable(b.configuration));
  REQUIRE(a.streams.size() == b.streams.size());
  for (size_t i = 0; i < a.streams.size(); ++i) {
    CHECK(a.streams[i].name == b.streams[i].name);
    CHECK(a.streams[i].bytes == b.streams[i].bytes);
  }
  CHECK(a.name == b.name);
  CHECK(a.type == b.type);
}

std::string first_pack(const std::string& dir) {
  auto all = test::all_packs(dir);
  return all.empty() ? std::string() : all.front();
}

} // namespace

TEST_CASE("storage: store, load, list, verify and remove through the public API") {
  test::temp_dir tmp;
  auto st = storage::open(tmp.path() + "/store");
  REQUIRE_MESSAGE(st.ok(), st.err().message);
  auto& s = **st;
  const auto a = sample(1), b = sample(2);
  auto ida = s.store_checkpoint(a);
  REQUIRE_MESSAGE(ida.ok(), ida.err().message);
  auto idb = s.store_checkpoint(b);
  REQUIRE(idb.ok());

  auto back = s.load_checkpoint(ida->substr(0, 28)); // a unique prefix will do
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  check_same(a, *back);
  CHECK(back->id == *ida);
  CHECK_FALSE(back->created_at.empty());
  check_same(b, *s.load_checkpoint(*idb));
  CHECK(s.load_checkpoint(*idb)->parent_id == *ida);

  auto all = s.list();
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == *ida);
  CHECK(all[1].name == "sample-2");
  CHECK(all[1].streams.empty());

  auto lines = s.verify_checkpoint(*idb);
  REQUIRE(lines.ok());
  CHECK(std::any_of(lines->begin(), lines->end(),
                    [](const std::string& l) { return l.rfind("signature: valid", 0) == 0; }));
  auto report = s.verify_storage_integrity(true);
  REQUIRE(report.ok());
  CHECK(report->clean());
  CHECK(report->bytes_read > 0);

  // Bad input: one clear error, nothing stored.
  checkpoint bad = sample(3);
  bad.type = "weekly";
  auto refused = s.store_checkpoint(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.err().code == errc::invalid_argument);
  CHECK(refused.err().message.find("'weekly' is not one of") != std::string::npos);
  bad = sample(3);
  bad.devices.push_back(bad.devices[0]);
  CHECK(s.store_checkpoint(bad).err().message == "device 0x8000 appears twice in the checkpoint");
  CHECK(s.list().size() == 2);
  CHECK(s.load_checkpoint("ffffffff").err().code == errc::not_found);

  REQUIRE_FALSE(s.remove_checkpoint(*ida));
  CHECK(s.list().size() == 1);
  check_same(b, *s.load_checkpoint(*idb));
}

TEST_CASE("storage: a damaged pack is named by verify_storage_integrity") {
  test::temp_dir tmp;
  auto s = std::move(*storage::open(tmp.path() + "/store"));
  auto id = *s->store_checkpoint(sample(1));
  const auto pack = first_pack(tmp.path() + "/store");
  REQUIRE_FALSE(pack.empty());
  auto bytes = test::slurp(pack);
  bytes[bytes.size() / 2] ^= 0x10;
  test::spit(pack, bytes);
  auto quick = s->verify_storage_integrity(false);
  REQUIRE(quick.ok());
  CHECK(quick->clean()); // structure only: the pack is there
  auto full = s->verify_storage_integrity(true);
  REQUIRE(full.ok());
  CHECK_FALSE(full->clean());
  REQUIRE(full->damaged.size() == 1);
  const auto pack_name = pack.substr(pack.rfind('/') + 1);
  CHECK(full->damaged[0].find(pack_name + ": chunk ") != std::string::npos);
  CHECK(full->affected == std::vector<std::string>{id});
  CHECK(s->load_checkpoint(id).err().code == errc::integrity_error);
}

TEST_CASE("storage: compress and decompress a checkpoint as one blob") {
  test::temp_dir tmp;
  auto s = std::move(*storage::open(tmp.path() + "/store"));
  const auto c = sample(4);
  auto blob = s->compress_checkpoint(c);
  REQUIRE(blob.ok());
  CHECK(blob->size() < c.streams[0].bytes.size() / 2); // rows compress
  auto back = s->decompress_checkpoint(*blob);
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  check_same(c, *back);
  CHECK(back->description == c.description);

  // Any other store reads it; damage and truncation are named.
  test::temp_dir other;
  CHECK(std::move(*storage::open(other.path()))->decompress_checkpoint(*blob).ok());
  auto damaged = *blob;
  damaged[damaged.size() / 2] ^= 1;
  CHECK(s->decompress_checkpoint(damaged).err().message ==
        "checkpoint blob: CRC64 mismatch (the blob was damaged or truncated)");
  CHECK(s->decompress_checkpoint(blob->substr(0, blob->size() - 10)).err().code ==
        errc::integrity_error);
  CHECK(s->decompress_checkpoint("hello").err().code == errc::invalid_argument);
  // A blob from an unencrypted store cannot be encrypted by it.
  CHECK(s->encrypt_checkpoint(c).err().code == errc::unavailable);
}

TEST_CASE("storage: encrypt and decrypt with the store's data key") {
  test::temp_dir tmp, other;
  storage_options o;
  o.encrypt = true;
  auto s = std::move(*storage::open(tmp.path(), o));
  const auto c = sample(5);
  auto sealed = s->encrypt_checkpoint(c);
  REQUIRE_MESSAGE(sealed.ok(), sealed.err().message);
  CHECK(sealed->find("row 35") == std::string::npos); // no plaintext shows
  auto back = s->decrypt_checkpoint(*sealed);
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  check_same(c, *back);
  // decompress refuses a sealed blob; another store's key cannot open it.
  CHECK(s->decompress_checkpoint(*sealed).err().code == errc::unavailable);
  auto foreign = std::move(*storage::open(other.path(), o));
  CHECK(foreign->decrypt_checkpoint(*sealed).err().message ==
        "checkpoint blob: cannot decrypt: not sealed with this store's data key, or altered");
  // The encrypted store itself round-trips checkpoints too.
  auto id = s->store_checkpoint(c);
  REQUIRE(id.ok());
  check_same(c, *s->load_checkpoint(*id));
}

TEST_CASE("storage: a stream restores into a file durably, or leaves the file as it was") {
  test::temp_dir tmp;
  auto s = std::move(*storage::open(tmp.path() + "/store"));
  checkpoint c = sample(6);
  // Larger than one direct-I/O block and not a multiple of any block size.
  std::string big;
  uint64_t x = 99;
  while (big.size() < (9u << 20) + 4321) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    big += std::to_string(x);
  }
  big.resize((9u << 20) + 4321);
  c.streams.push_back({"dump", big});
  auto id = *s->store_checkpoint(c);

  const std::string out = tmp.path() + "/dump.restored";
  REQUIRE_FALSE(s->restore_stream(id, "dump", out));
  CHECK(test::slurp(out) == big);
  REQUIRE_FALSE(s->restore_stream(id, "agents", out)); // replaces the file
  CHECK(test::slurp(out) == c.streams[1].bytes);

  CHECK(s->restore_stream(id, "nope", out).message == "checkpoint " + id + " has no stream 'nope'");
  CHECK(s->restore_stream(id, "dump", tmp.path() + "/no/such/dir/f").code == errc::io_error);

  // Damage found mid-restore: the old file stays, no partial file is left.
  // Every 8 KiB of every pack is flipped, so every record of the dump is hit.
  for (const auto& pack : test::all_packs(tmp.path() + "/store")) {
    auto bytes = test::slurp(pack);
    for (size_t at = 4096; at < bytes.size(); at += 8192)
      bytes[at] ^= 0x40;
    test::spit(pack, bytes);
  }
  auto err = s->restore_stream(id, "dump", out);
  CHECK(err.code == errc::integrity_error);
  CHECK(test::slurp(out) == c.streams[1].bytes);
  CHECK_FALSE(std::ifstream(out + ".partial").good());
}
