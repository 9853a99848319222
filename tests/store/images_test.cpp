// Component images in checkpoints (runtime/components/checkpoint_images):
// the stream cache cuts and hashes a changed stream only around what
// differs, and what is stored is what a checkpoint without the cache
// stores, bit for bit.
#include <cstring>

#include <doctest/doctest.h>

#include "runtime/components/checkpoint_images.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// Overwrites `len` bytes at `at` with new random ones.
std::string changed(std::string s, size_t at, size_t len, uint64_t seed) {
  auto fresh = random_bytes_of(len, seed);
  std::memcpy(&s[at], fresh.data(), len);
  return s;
}

system_image image_with(const std::map<std::string, std::string>& agents) {
  component_image img;
  img.records["agents"] = "[]";
  for (auto& [id, bytes] : agents)
    img.streams.emplace(id, stream_bytes(bytes));
  return {{"agents", img}};
}

std::map<std::string, std::string> agents_in(checkpoint_store& s, const std::string& id) {
  auto contents = s.load(id);
  REQUIRE_MESSAGE(contents.ok(), contents.err().message);
  auto image = image_of(s, *contents); // no cache: every stream read back
  REQUIRE_MESSAGE(image.ok(), image.err().message);
  std::map<std::string, std::string> out;
  for (auto& [agent, bytes] : (*image)["agents"].streams)
    out.emplace(agent, bytes.str());
  return out;
}

std::vector<std::string> chunk_ids(checkpoint_store& s, const std::string& id) {
  std::vector<std::string> out;
  auto contents = s.load(id);
  REQUIRE_MESSAGE(contents.ok(), contents.err().message);
  for (auto& st : contents->streams)
    for (auto& c : st.chunks)
      out.push_back(st.name + ":" + c.id);
  return out;
}

} // namespace

TEST_CASE("the stream cache writes what changed in places as a full write would, cutting little") {
  env_dir cached_dir, plain_dir;
  auto cached = checkpoint_store::open(test_env(), cached_dir.path());
  auto plain = checkpoint_store::open(test_env(), plain_dir.path());
  REQUIRE(cached.ok());
  REQUIRE(plain.ok());
  stream_cache cache;
  const size_t kib = 1024;
  std::map<std::string, std::string> agents = {{"a", random_bytes_of(900 * kib, 1)},
                                               {"b", random_bytes_of(300 * kib, 2)},
                                               {"c", random_bytes_of(500 * kib, 3)}};
  uint64_t seed = 99;
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    if (round > 0) {
      // a: a few places; b: unchanged; c: changed, or resized every other round.
      for (int k = 0; k < 3; ++k)
        agents["a"] = changed(agents["a"], splitmix64(seed) % (agents["a"].size() - 5000),
                              1 + splitmix64(seed) % 4096, seed);
      if (round % 2 == 0)
        agents["c"] = random_bytes_of(400 * kib + round, seed);
      else
        agents["c"] = changed(agents["c"], 0, 10, seed);
    }
    const auto image = image_with(agents);
    checkpoint_request req{"r" + std::to_string(round), "", checkpoint_type::manual, 0};
    auto with_cache = create_checkpoint(**cached, req, image, &cache);
    auto without = create_checkpoint(**plain, req, image);
    REQUIRE_MESSAGE(with_cache.ok(), with_cache.err().message);
    REQUIRE_MESSAGE(without.ok(), without.err().message);
    // The same chunks, and the same bytes back.
    CHECK(chunk_ids(**cached, with_cache->id) == chunk_ids(**plain, without->id));
    CHECK(agents_in(**cached, with_cache->id) == agents);
    // Changed in places: about a chunk around each change is new, not the
    // whole stream (an unchanged stream adds nothing either way).
    if (round > 0 && round % 2 == 1) CHECK(with_cache->new_bytes < 900 * kib / 2);
  }
}

TEST_CASE("a damaged chunk fails an image's read, naming the pack") {
  env_dir dir;
  auto s = checkpoint_store::open(test_env(), dir.path());
  REQUIRE(s.ok());
  const auto image = image_with({{"a", random_bytes_of(200 * 1024, 5)}});
  auto cp = create_checkpoint(**s, {"one", "", checkpoint_type::manual, 0}, image);
  REQUIRE(cp.ok());
  auto contents = (*s)->load(cp->id);
  REQUIRE(contents.ok());
  // Flip a byte in the middle of every pack.
  for (auto& p : packs(dir.path())) {
    auto bytes = read(p);
    bytes[bytes.size() / 2] ^= 0x20;
    write(p, bytes);
  }
  auto back = image_of(**s, *contents);
  REQUIRE_FALSE(back.ok());
  CHECK(back.err().message.find(".pack") != std::string::npos);
}

TEST_CASE("a component's own chunk sizes: smaller chunks re-store less of a small change") {
  // The same two versions of a state, stored with the store's chunks and
  // with smaller ones: what the second version adds.
  const std::string before = random_bytes_of(256 * 1024, 7);
  const std::string after = changed(before, 100000, 4096, 8);
  auto stored_anew = [&](std::optional<chunker_params> chunking) -> uint64_t {
    env_dir dir;
    auto s = checkpoint_store::open(test_env(), dir.path());
    REQUIRE(s.ok());
    stream_cache cache;
    uint64_t added = 0;
    for (auto* bytes : {&before, &after}) {
      auto image = image_with({{"a", *bytes}});
      image["agents"].chunking = chunking;
      auto cp = create_checkpoint(**s, {"c", "", checkpoint_type::manual, 0}, image, &cache);
      REQUIRE_MESSAGE(cp.ok(), cp.err().message);
      CHECK(agents_in(**s, cp->id).at("a") == *bytes);
      added = cp->new_bytes;
    }
    return added;
  };
  const auto with_store_chunks = stored_anew(std::nullopt);
  const auto with_small_chunks = stored_anew(chunker_params{2 * 1024, 8 * 1024, 32 * 1024});
  CHECK(with_small_chunks < with_store_chunks);
  CHECK(with_small_chunks < 48 * 1024);

  // Sizes the chunker cannot use: one line naming the stream.
  env_dir dir;
  auto s = checkpoint_store::open(test_env(), dir.path());
  REQUIRE(s.ok());
  auto bad = (*s)->write_streams(
      {stream_write{"odd", {}, nullptr, {}, {}, chunker_params{1024, 3000, 9000}}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().message.find("stream 'odd': ") == 0);
}

TEST_CASE("the stream cache keeps older versions within its budget, the least recently used "
          "dropped first; a stream back at a kept version is stored again for nothing") {
  env_dir dir;
  auto s = checkpoint_store::open(test_env(), dir.path());
  REQUIRE(s.ok());
  const size_t size = 64 * 1024;
  stream_cache cache(2 * size); // two older versions
  std::vector<std::string> version;
  std::vector<checkpoint_contents> stored;
  for (uint64_t k = 0; k < 4; ++k) {
    version.push_back(
        changed(k == 0 ? random_bytes_of(size, 1) : version.back(), 1000 * k, 512, k));
    auto cp = create_checkpoint(**s, {"v", "", checkpoint_type::manual, 0},
                                image_with({{"a", version.back()}}), &cache);
    REQUIRE_MESSAGE(cp.ok(), cp.err().message);
    stored.push_back(*(*s)->load(cp->id));
  }
  const std::string stream = "agents/streams/a";
  auto kept = cache.versions(stream);
  REQUIRE(kept.size() == 3); // the newest and two older
  CHECK(kept[0].bytes == version[3]);
  CHECK(cache.older_bytes() == 2 * size);
  auto ref_of = [&](size_t k) {
    for (auto& st : stored[k].streams)
      if (st.name == stream) return st;
    FAIL("no stream");
    return stream_ref{};
  };
  CHECK_FALSE(cache.bytes_of(ref_of(0)).has_value()); // dropped
  CHECK(cache.bytes_of(ref_of(1)).has_value());       // now the most recently used older one
  // Reading back version 0 keeps it, dropping version 2 (used least recently).
  auto image = image_of(**s, stored[0], &cache);
  REQUIRE(image.ok());
  CHECK((*image)["agents"].streams.at("a") == version[0]);
  CHECK(cache.bytes_of(ref_of(0)).has_value());
  CHECK(cache.bytes_of(ref_of(1)).has_value());
  CHECK_FALSE(cache.bytes_of(ref_of(2)).has_value());
  // Back at version 0 (a rollback restored it): nothing new to store.
  auto again = create_checkpoint(**s, {"back", "", checkpoint_type::manual, 0},
                                 image_with({{"a", version[0]}}), &cache);
  REQUIRE(again.ok());
  auto contents = (*s)->load(again->id);
  REQUIRE(contents.ok());
  for (auto& st : contents->streams)
    if (st.name == stream) {
      CHECK(st.chunks.size() == ref_of(0).chunks.size());
      for (size_t c = 0; c < st.chunks.size(); ++c)
        CHECK(st.chunks[c].id == ref_of(0).chunks[c].id);
    }
  CHECK(cache.versions(stream)[0].bytes == version[0]);
  // A budget of 0 keeps only the newest.
  cache.set_budget(0);
  CHECK(cache.versions(stream).size() == 1);
  CHECK(cache.older_bytes() == 0);
}

TEST_CASE("new chunks held for create() go into its pack: one pack a small checkpoint") {
  env_dir dir;
  auto s = checkpoint_store::open(test_env(), dir.path());
  REQUIRE(s.ok());
  const std::string bytes = random_bytes_of(300 * 1024, 11);
  held_records held;
  held.limit = 1 << 20;
  stream_stats st;
  auto refs =
      (*s)->write_streams({stream_write{"a", source_of(bytes), nullptr, {}, {}, {}}}, &st, &held);
  REQUIRE_MESSAGE(refs.ok(), refs.err().message);
  CHECK(packs(dir.path()).empty()); // nothing stored yet
  CHECK_FALSE((*s)->has_chunks(refs->front()));
  CHECK(held.records.size() == st.new_chunks);
  CHECK(held.bytes == st.stored_bytes);
  auto cp = (*s)->create({"held", "", checkpoint_type::manual, st.new_bytes}, {}, system_config{},
                         *refs, &held);
  REQUIRE_MESSAGE(cp.ok(), cp.err().message);
  CHECK(packs(dir.path()).size() == 1); // the stream's chunks and the configuration together
  CHECK((*s)->has_chunks(refs->front()));
  std::string back;
  REQUIRE_FALSE((*s)->read_stream(refs->front(), [&](std::string_view b) -> status {
    back.append(b);
    return {};
  }));
  CHECK(back == bytes);
  // Reopened: the pack's index names them.
  s->reset();
  auto again = checkpoint_store::open(test_env(), dir.path());
  REQUIRE(again.ok());
  CHECK((*again)->has_chunks(refs->front()));
  CHECK((*again)->verify(cp->id).ok());

  // Past the limit, the rest goes to packs of its own, as without one.
  held_records small;
  small.limit = 64 * 1024;
  const std::string more = random_bytes_of(400 * 1024, 12);
  auto split = (*again)->write_streams({stream_write{"b", source_of(more), nullptr, {}, {}, {}}},
                                       nullptr, &small);
  REQUIRE(split.ok());
  CHECK(small.bytes <= small.limit);
  CHECK(packs(dir.path()).size() > 1);
  auto cp2 = (*again)->create({"split", "", checkpoint_type::manual, 0}, {}, system_config{},
                              *split, &small);
  REQUIRE_MESSAGE(cp2.ok(), cp2.err().message);
  CHECK((*again)->has_chunks(split->front()));
}
