// row_delta: the rows that differ between two versions of a table's stream,
// found from their chunk lists, reading little: rows updated, deleted and
// inserted anywhere (the first and last rows too) come out exactly, and
// what cannot be found from the lists says so.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "runtime/base/crypto.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/pg/row_delta.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

using rows = std::map<long, std::string>; // key -> the rest of the line

std::string stream_of(const rows& r) {
  std::string out;
  for (auto& [k, v] : r)
    out += std::to_string(k) + "\t" + v + "\n";
  return out;
}

std::multiset<std::string> lines(const std::string& s) {
  std::multiset<std::string> out;
  for (size_t at = 0; at < s.size();) {
    auto nl = s.find('\n', at);
    out.insert(s.substr(at, nl + 1 - at));
    at = nl + 1;
  }
  return out;
}

const chunker_params rows_chunking{2048, 8192, 32768};

} // namespace

TEST_CASE("the delta between two versions of a table names exactly the rows that changed") {
  env_dir dir;
  auto store = std::move(*checkpoint_store::open(test_env(), dir.path()));
  store_stream_port port(*store);
  uint64_t seed = 17;
  rows base;
  for (long k = 1; k <= 100000; ++k)
    base[k * 10] = "value " + std::to_string(splitmix64(seed) % 1000000) + "\tfiller";
  auto from_ref = *port.write("t", source_of(stream_of(base)), rows_chunking);
  REQUIRE(from_ref.chunks.size() > 100);

  for (int round = 0; round < 12; ++round) {
    CAPTURE(round);
    rows now = base;
    std::set<std::string> changed_old, changed_new; // the lines that must come out
    auto drop = [&](long k) {
      changed_old.insert(std::to_string(k) + "\t" + now[k] + "\n");
      now.erase(k);
    };
    auto put = [&](long k, const std::string& v) {
      if (now.count(k)) drop(k);
      now[k] = v;
      changed_new.insert(std::to_string(k) + "\t" + v + "\n");
    };
    const int n = 1 + static_cast<int>(splitmix64(seed) % 20);
    for (int i = 0; i < n; ++i) {
      const long k = 10 * (1 + static_cast<long>(splitmix64(seed) % 100000));
      switch (splitmix64(seed) % 3) {
      case 0:
        put(k, "updated " + std::to_string(i));
        break;
      case 1:
        if (now.count(k)) drop(k);
        break;
      default:
        put(k + 5, "inserted " + std::to_string(i));
        break; // between two keys
      }
    }
    if (round == 1) put(10, "first row updated"), drop(1000000), put(1000010, "appended");
    if (round == 2) put(1, "before the first"), drop(10);
    const std::string to_bytes = stream_of(now);
    auto to_ref = *port.write("t", source_of(to_bytes), rows_chunking);
    auto d = rows_between(port, from_ref, to_ref);
    REQUIRE_MESSAGE(d.ok(), d.err().message);
    REQUIRE(d->has_value());
    const auto& delta = **d;
    // Exactly the rows that changed (a row put back as it was is no change).
    std::set<std::string> old_out, new_out;
    for (auto& l : lines(delta.old_rows))
      old_out.insert(l);
    for (auto& l : lines(delta.new_rows))
      new_out.insert(l);
    std::set<std::string> want_old, want_new;
    for (auto& l : changed_old)
      if (!changed_new.count(l) && lines(to_bytes).count(l) == 0) want_old.insert(l);
    for (auto& l : changed_new)
      if (lines(stream_of(base)).count(l) == 0 && lines(to_bytes).count(l)) want_new.insert(l);
    CHECK(old_out == want_old);
    CHECK(new_out == want_new);
    CHECK(delta.old_count == old_out.size());
    CHECK(delta.new_count == new_out.size());
    // Applied to the old rows, the delta gives the new ones.
    auto all = lines(stream_of(base));
    for (auto& l : lines(delta.old_rows))
      all.erase(all.find(l));
    for (auto& l : lines(delta.new_rows))
      all.insert(l);
    CHECK(all == lines(to_bytes));
    // Read: the chunks around the changes (20 at most), not the tables.
    CHECK(delta.read_bytes < (from_ref.size + to_ref.size) / 4);
  }
}

TEST_CASE("a delta that cannot be found from the chunk lists says so") {
  env_dir dir;
  auto store = std::move(*checkpoint_store::open(test_env(), dir.path()));
  store_stream_port port(*store);
  rows base;
  for (long k = 1; k <= 5000; ++k)
    base[k] = "row " + std::to_string(k);
  auto from_ref = *port.write("t", source_of(stream_of(base)), rows_chunking);
  // More to read than it may hold.
  rows most = base;
  for (auto& [k, v] : most)
    if (k % 3 != 0) v += " changed";
  auto most_ref = *port.write("t", source_of(stream_of(most)), rows_chunking);
  auto d = rows_between(port, from_ref, most_ref, 20000);
  REQUIRE(d.ok());
  CHECK_FALSE(d->has_value());
  auto all = rows_between(port, from_ref, most_ref);
  REQUIRE(all.ok());
  REQUIRE(all->has_value());
  CHECK((*all)->new_count == 5000 - 5000 / 3);
  // Rows (100 KB) longer than the chunks around a change (32 KiB at most):
  // no row end to stop at.
  rows wide;
  for (long k = 1; k <= 40; ++k)
    wide[k] = to_hex(reinterpret_cast<const uint8_t*>(random_bytes_of(50000, k).data()), 50000);
  auto wide_ref = *port.write("t", source_of(stream_of(wide)), rows_chunking);
  wide[20] = "short now";
  auto wide2_ref = *port.write("t", source_of(stream_of(wide)), rows_chunking);
  auto w = rows_between(port, wide_ref, wide2_ref);
  REQUIRE(w.ok());
  CHECK_FALSE(w->has_value());
  // The same stream: an empty delta.
  auto same = rows_between(port, from_ref, from_ref);
  REQUIRE(same.ok());
  REQUIRE(same->has_value());
  CHECK((*same)->old_count + (*same)->new_count == 0);
  CHECK((*same)->read_bytes == 0);
}
