// Large streams' chunk lists stored as chunks (runtime/store/chunk_lists.*,
// listed_streams.cpp): a base plus an edit script; a checkpoint of a stream
// edited in a few places adds a few list bytes, reads back the same chunks,
// and verifies, across reopen, deletes and gc, encrypted or not.
#include <set>
#include <tuple>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "runtime/store/chunk_lists.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using dsmil::test::random_bytes_of;
using dsmil::test::source_of;

namespace {

std::vector<chunk_ref> random_list(size_t n, uint64_t seed) {
  std::vector<chunk_ref> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({sha256_hex(std::to_string(seed) + "/" + std::to_string(i)),
                   1000 + splitmix64(seed) % 60000});
  return out;
}

bool same(const std::vector<chunk_ref>& a, const std::vector<chunk_ref>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].size != b[i].size) return false;
  return true;
}

const chunker_params small{1024, 4096, 16384};

std::string manifest_of(const std::string& dir, const std::string& id) {
  return test::read(layout::path(dir, layout::manifest(id)));
}

// `data` with `n` spots of 100 bytes overwritten, spread over it.
std::string edited(std::string data, int n, uint64_t seed) {
  for (int k = 0; k < n; ++k) {
    const size_t at = splitmix64(seed) % (data.size() - 100);
    data.replace(at, 100, random_bytes_of(100, seed + 1000));
  }
  return data;
}

} // namespace

TEST_CASE("an edit script turns its base into the target list, whatever the edits") {
  uint64_t seed = 5;
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    const auto base = random_list(300 + splitmix64(seed) % 700, seed);
    auto target = base;
    const auto fresh = random_list(50, seed + 77);
    const int edits = static_cast<int>(splitmix64(seed) % 12);
    for (int k = 0; k < edits && !target.empty(); ++k) {
      const size_t at = splitmix64(seed) % target.size();
      switch (splitmix64(seed) % 4) {
      case 0:
        target[at] = fresh[k];
        break; // replaced
      case 1:
        target.insert(target.begin() + static_cast<long>(at), fresh[k]);
        break; // inserted
      case 2:
        target.erase(target.begin() + static_cast<long>(at));
        break; // deleted
      default:
        target.push_back(base[at % base.size()]);
        break; // repeated
      }
    }
    if (round == 1) target.clear();
    if (round == 2) target = random_list(400, 999); // nothing in common
    size_t literals = 0;
    const auto script = diff_lists(base, target, &literals);
    CHECK(literals <= static_cast<size_t>(edits) + (round == 2 ? 400 : 0));
    auto back = apply_list_script(base, script);
    REQUIRE_MESSAGE(back.ok(), back.err().message);
    CHECK(same(*back, target));
    // The list's pieces decode to the list; a cut piece does not.
    std::string all;
    for (auto& p : encode_list_pieces(base))
      all += p;
    CHECK(same(*decode_list(all), base));
    CHECK(decode_list(all.substr(1)).err().code == errc::integrity_error);
  }
  const auto base = random_list(300, 1);
  // A script naming entries the base has not, or cut short, is refused.
  std::string bad = diff_lists(base, base, nullptr);
  CHECK(apply_list_script(random_list(10, 2), bad).err().code == errc::integrity_error);
  CHECK(apply_list_script(base, bad.substr(0, bad.size() - 1)).err().code == errc::integrity_error);
  CHECK(apply_list_script(base, "x").err().code == errc::integrity_error);
}

TEST_CASE("a pieces' cut is content-defined: an insertion leaves the other pieces' bytes alone") {
  auto list = random_list(5000, 3);
  const auto before = encode_list_pieces(list);
  list.insert(list.begin() + 2500, random_list(1, 4)[0]);
  const auto after = encode_list_pieces(list);
  std::set<std::string> had(before.begin(), before.end());
  size_t kept = 0;
  for (auto& p : after)
    kept += had.count(p);
  CHECK(before.size() > 5);
  CHECK(kept + 2 >= after.size());
}

TEST_CASE("a large stream's list is stored chunked: an edited stream adds a script, not a list") {
  for (bool encrypt : {false, true}) {
    CAPTURE(encrypt);
    test::env_dir tmp;
    store_options o;
    o.chunking = small;
    o.threads = 2;
    o.encrypt = encrypt;
    const std::string v1 = random_bytes_of(3 << 20, 11);
    const std::string v2 = edited(v1, 8, 12), v3 = edited(v2, 8, 13);
    std::string id1, id2, id3;
    stream_ref s1, s2, s3;
    {
      auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
      s1 = *store->write_stream("db", source_of(v1));
      REQUIRE(s1.chunks.size() >= listed_stream_min_chunks);
      id1 = store->create({"one", "", checkpoint_type::manual}, {}, system_config{}, {s1})->id;
      s2 = *store->write_stream("db", source_of(v2));
      auto c2 = store->create({"two", "", checkpoint_type::manual}, {}, system_config{}, {s2});
      REQUIRE_MESSAGE(c2.ok(), c2.err().message);
      id2 = c2->id;
      // The first names its list's pieces, not its chunks; the second the
      // same base and a script of a few entries.
      const auto m1 = nlohmann::json::parse(manifest_of(tmp.path(), id1));
      const auto m2 = nlohmann::json::parse(manifest_of(tmp.path(), id2));
      CHECK(m1["format"] == 2);
      const auto& l1 = m1["components"]["streams"][0]["list"];
      const auto& l2 = m2["components"]["streams"][0]["list"];
      CHECK(l1["count"] == s1.chunks.size());
      CHECK(l1["edits"].empty());
      CHECK(l2["base"] == l1["base"]);
      REQUIRE(l2["edits"].size() == 1);
      CHECK(l2["edits"][0][1].get<uint64_t>() < 40 * 36); // 8 edits: a few entries each
      CHECK(manifest_of(tmp.path(), id2).size() < 4096);
      CHECK(store->load(id2)->streams[0].chunks.size() == s2.chunks.size());
    }
    {
      // Reopened: the next checkpoint still writes a script against the base.
      auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
      s3 = *store->write_stream("db", source_of(v3));
      id3 = store->create({"three", "", checkpoint_type::manual}, {}, system_config{}, {s3})->id;
      const auto m1 = nlohmann::json::parse(manifest_of(tmp.path(), id1));
      const auto m3 = nlohmann::json::parse(manifest_of(tmp.path(), id3));
      CHECK(m3["components"]["streams"][0]["list"]["base"] ==
            m1["components"]["streams"][0]["list"]["base"]);
      CHECK(m3["components"]["streams"][0]["list"]["edits"].size() == 1);
      // The checkpoint the base came from goes; gc keeps the base.
      REQUIRE_FALSE(store->remove(id1));
      REQUIRE(store->gc(1.0).ok());
      for (auto& [id, want, data] : {std::tuple{id2, &s2, &v2}, std::tuple{id3, &s3, &v3}}) {
        auto c = store->load(id);
        REQUIRE_MESSAGE(c.ok(), c.err().message);
        CHECK(same_chunks(c->streams[0], *want));
        std::string back;
        REQUIRE_FALSE(store->read_stream(c->streams[0], [&](std::string_view b) {
          back += b;
          return status{};
        }));
        CHECK(back == *data);
        auto v = store->verify(id);
        REQUIRE_MESSAGE(v.ok(), v.err().message);
        CHECK(store->verify(id, true).ok());
      }
      CHECK(store->check(true)->clean());
    }
    if (encrypt) {
      // The list reads without the data key (it holds ids and sizes only):
      // quick verify finds every chunk.
      test::env_dir away;
      REQUIRE_FALSE(
          test::test_env().rename(tmp.path() + "/keys/data.key", away.path() + "/data.key"));
      auto blind = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
      auto v = blind->verify(id3, true);
      REQUIRE_MESSAGE(v.ok(), v.err().message);
      CHECK(blind->verify(id3).ok());
      REQUIRE_FALSE(
          test::test_env().rename(away.path() + "/data.key", tmp.path() + "/keys/data.key"));
    }
  }
}

TEST_CASE("a damaged list chunk is found by verify and load, naming the stream") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  auto s = *store->write_stream("db", source_of(random_bytes_of(2 << 20, 21)));
  auto id = store->create({"one", "", checkpoint_type::manual}, {}, system_config{}, {s})->id;
  const auto m = nlohmann::json::parse(manifest_of(tmp.path(), id));
  const std::string list_id = m["components"]["streams"][0]["list"]["base"][0][0];
  // The list chunk's record, found by its id (in the record header).
  std::string raw;
  from_hex(list_id, raw);
  bool flipped = false;
  for (auto& pack : test::packs(tmp.path())) {
    auto bytes = test::read(pack);
    auto at = bytes.find(raw);
    if (at == std::string::npos) continue;
    bytes[at + raw.size() + 40] ^= 1; // inside the payload
    test::write(pack, bytes);
    flipped = true;
  }
  REQUIRE(flipped);
  auto v = store->verify(id);
  REQUIRE_FALSE(v.ok());
  CHECK(v.err().code == errc::integrity_error);
  CHECK(v.err().message.find("stream 'db'") != std::string::npos);
  CHECK(store->load(id).err().code == errc::integrity_error);
  CHECK_FALSE(store->check(false)->clean());
}
