// Streams written from their edits (runtime/store/stream_edits.cpp): the
// chunks a full rewrite gives, reading only around the edits; edits that do
// not describe the stream are refused.
#include <cstring>

#include <doctest/doctest.h>

#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using dsmil::test::random_bytes_of;
using dsmil::test::source_of;
using dsmil::test::text_of;

namespace {

const chunker_params small{4096, 16384, 65536};

byte_reader reader_of(const std::string& data) {
  return [&data](uint64_t offset, uint8_t* buf, size_t len) -> result<size_t> {
    if (offset > data.size()) return size_t{0};
    size_t n = std::min<size_t>(len, data.size() - static_cast<size_t>(offset));
    std::memcpy(buf, data.data() + offset, n);
    return n;
  };
}

// Applies `edits` (old-stream offsets) to `old`, with fresh bytes for new ones.
std::string apply(const std::string& old, const std::vector<stream_edit>& edits, uint64_t seed) {
  std::string out;
  uint64_t pos = 0;
  for (auto& e : edits) {
    out.append(old, pos, e.offset - pos);
    out += random_bytes_of(e.new_length, seed++);
    pos = e.offset + e.old_length;
  }
  out.append(old, pos, std::string::npos);
  return out;
}

} // namespace

TEST_CASE("a stream written from its edits is the stream a full rewrite gives, reading little") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  o.threads = 2;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  const auto base = text_of(600000, 40) + random_bytes_of(600000, 41) + text_of(300000, 42);
  auto parent = *store->write_stream("db", source_of(base));
  REQUIRE(store->create({"p", "", checkpoint_type::manual}, {}, system_config{}, {parent}).ok());

  uint64_t seed = 7;
  for (int round = 0; round < 60; ++round) {
    CAPTURE(round);
    // Random sorted, disjoint edits: overwrites, insertions, deletions, at
    // the very start and end too, some back to back.
    std::vector<stream_edit> edits;
    uint64_t pos = 0;
    const int count = static_cast<int>(splitmix64(seed) % 6);
    for (int k = 0; k < count && pos <= base.size(); ++k) {
      uint64_t r = splitmix64(seed);
      uint64_t gap = (r % 4 == 0) ? 0 : splitmix64(seed) % (base.size() / 4 + 1);
      uint64_t at = std::min<uint64_t>(pos + gap, base.size());
      uint64_t old_len = std::min<uint64_t>(
          splitmix64(seed) % 3 == 0 ? 0 : splitmix64(seed) % 40000, base.size() - at);
      uint64_t new_len = splitmix64(seed) % 3 == 0 ? 0 : splitmix64(seed) % 40000;
      if (round == 1) at = 0;                                           // at the start
      if (round == 2) at = base.size(), old_len = 0;                    // appended
      if (round == 3) at = base.size() - 10, old_len = 10, new_len = 0; // tail cut
      edits.push_back({at, old_len, new_len});
      pos = at + old_len;
      if (round <= 3) break;
    }
    const auto now = apply(base, edits, seed);
    stream_stats st;
    size_t read_bytes = 0;
    auto counting = [&](uint64_t off, uint8_t* buf, size_t len) -> result<size_t> {
      auto n = reader_of(now)(off, buf, len);
      if (n) read_bytes += *n;
      return n;
    };
    auto inc = store->write_stream_changes("db", parent, edits, counting, &st);
    REQUIRE_MESSAGE(inc.ok(), inc.err().message);
    auto full = store->write_stream("db", source_of(now));
    REQUIRE(full.ok());
    CHECK(same_chunks(*inc, *full));
    CHECK(st.bytes == now.size());
    uint64_t changed = 0;
    for (auto& e : edits)
      changed += e.new_length;
    // Each edit costs a few chunks of reading around it, not the stream.
    CHECK(read_bytes <= changed + edits.size() * 6 * small.max_size + small.max_size);
    std::string back;
    CHECK_FALSE(store->read_stream(*inc, [&](std::string_view b) {
      back += b;
      return status{};
    }));
    CHECK(back == now);
  }
}

TEST_CASE("edits that do not describe the stream are refused and store nothing") {
  test::env_dir tmp;
  store_options o;
  o.chunking = small;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path(), o));
  const auto base = random_bytes_of(300000, 50);
  auto parent = *store->write_stream("db", source_of(base));
  auto info = *store->create({"p", "", checkpoint_type::manual}, {}, system_config{}, {parent});
  const auto chunks = store->chunk_count();

  auto overlap =
      store->write_stream_changes("db", parent, {{1000, 500, 500}, {1200, 0, 10}}, reader_of(base));
  REQUIRE_FALSE(overlap.ok());
  CHECK(overlap.err().code == errc::invalid_argument);
  CHECK(overlap.err().message.find("edit 1 (offset 1200) overlaps") != std::string::npos);

  auto past = store->write_stream_changes("db", parent, {{299990, 20, 20}}, reader_of(base));
  REQUIRE_FALSE(past.ok());
  CHECK(past.err().message.find("past the end of the stored stream (300000 bytes)") !=
        std::string::npos);

  // The list claims an insertion the stream does not have: the stream ends early.
  auto wrong = store->write_stream_changes("db", parent, {{150000, 0, 4096}}, reader_of(base));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.err().code == errc::invalid_argument);
  CHECK(wrong.err().message.find("check the edit list") != std::string::npos);
  CHECK(store->chunk_count() == chunks);

  // The parent's chunks were collected: the caller must write the stream in full.
  REQUIRE_FALSE(store->remove(info.id));
  REQUIRE(store->gc().ok());
  auto gone = store->write_stream_changes("db", parent, {{0, 0, 0}}, reader_of(base));
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.err().code == errc::not_found);
  CHECK(gone.err().message.find("write the stream in full") != std::string::npos);
}
