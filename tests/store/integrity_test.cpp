// Every stored byte matters: a flipped bit in any field of a signature file
// or of store.toml is reported, by open and by verify, naming the file.
#include <doctest/doctest.h>

#include "runtime/devices/sim_driver.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;

namespace {

// Offsets of one byte inside the value of each field: the first character
// after `key` (and its separator) in `text`.
std::vector<std::pair<std::string, size_t>> value_bytes(const std::string& text,
                                                        const std::vector<std::string>& keys,
                                                        const std::string& separator) {
  std::vector<std::pair<std::string, size_t>> out;
  for (auto& k : keys) {
    auto at = text.find(k + separator);
    REQUIRE_MESSAGE(at != std::string::npos, k << " not in " << text);
    out.push_back({k, at + k.size() + separator.size()});
  }
  return out;
}

} // namespace

TEST_CASE("a flip of any bit of a signature file's fields is reported by verify, naming it") {
  test::env_dir tmp;
  auto& e = test::test_env();
  std::string id;
  {
    auto s = std::move(*checkpoint_store::open(e, tmp.path()));
    id = s->create({"x", "", checkpoint_type::manual}, {}, system_config{})->id;
  }
  const std::string sig_path = layout::path(tmp.path(), layout::signature(id));
  const std::string good = test::read(sig_path);
  // Field names, and the first byte of each value (after `": "` and the quote).
  auto fields = value_bytes(
      good, {"\"scheme\"", "\"provider\"", "\"key_id\"", "\"manifest_sha256\"", "\"value\""},
      ": \"");
  fields.push_back({"\"scheme\" (its name)", good.find("\"scheme\"") + 1});
  for (auto& [field, at] : fields) {
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(field);
      CAPTURE(bit);
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      test::write(sig_path, bad);
      store_options ro;
      ro.read_only = true;
      auto s = checkpoint_store::open(e, tmp.path(), ro);
      REQUIRE_MESSAGE(s.ok(), s.err().message);
      auto v = (*s)->verify(id);
      REQUIRE_FALSE(v.ok());
      CHECK(v.err().code == errc::integrity_error);
      CHECK(v.err().message.find(layout::signature(id)) != std::string::npos);
    }
  }
  test::write(sig_path, good);
  store_options ro;
  ro.read_only = true;
  CHECK((*checkpoint_store::open(e, tmp.path(), ro))->verify(id).ok());
}

TEST_CASE(
    "a flip of any bit of store.toml is reported at open, naming it; the store is untouched") {
  test::env_dir tmp;
  auto& e = test::test_env();
  {
    auto s = std::move(*checkpoint_store::open(e, tmp.path()));
    REQUIRE(s->create({"x", "", checkpoint_type::manual}, {}, system_config{}));
  }
  const std::string path = layout::path(tmp.path(), layout::store_toml);
  const std::string good = test::read(path);
  REQUIRE(test::test_env().exists(layout::path(tmp.path(), layout::store_toml_sig)));
  auto fields = value_bytes(good,
                            {"format_version", "store_id", "codec", "deflate_level", "cipher",
                             "chunk_ids", "pack_target_bytes", "min_size", "avg_size", "max_size"},
                            " = ");
  fields.push_back({"[chunking] header", good.find("[chunking]") + 1});
  const auto manifests_before = *e.list_dir(tmp.path() + "/manifests");
  for (auto& [field, at] : fields) {
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(field);
      CAPTURE(bit);
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      test::write(path, bad);
      for (bool read_only : {true, false}) {
        store_options o;
        o.read_only = read_only;
        auto s = checkpoint_store::open(e, tmp.path(), o);
        REQUIRE_FALSE(s.ok());
        CHECK(s.err().code == errc::integrity_error);
        CHECK(s.err().message.find("store.toml") != std::string::npos);
      }
    }
  }
  CHECK(*e.list_dir(tmp.path() + "/manifests") == manifests_before);
  test::write(path, good);
  CHECK(checkpoint_store::open(e, tmp.path()).ok());
}

TEST_CASE("a store made before store.toml was signed gets it signed at its next writable open") {
  test::env_dir tmp;
  auto& e = test::test_env();
  { REQUIRE(checkpoint_store::open(e, tmp.path()).ok()); }
  const std::string sig = layout::path(tmp.path(), layout::store_toml_sig);
  REQUIRE_FALSE(e.remove(sig));
  store_options ro;
  ro.read_only = true;
  auto refused = checkpoint_store::open(e, tmp.path(), ro);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.err().message.find("store.toml.sig is missing") != std::string::npos);
  REQUIRE(checkpoint_store::open(e, tmp.path()).ok());
  CHECK(e.exists(sig));
  CHECK(checkpoint_store::open(e, tmp.path(), ro).ok());
}

TEST_CASE("verify covers every store file: a flip in a pin, a public key, an index or a marker "
          "is reported, naming the file; an unknown file too") {
  test::env_dir tmp;
  auto& e = test::test_env();
  std::string id;
  {
    store_options o;
    o.encrypt = true; // a data key and its marker
    auto s = std::move(*checkpoint_store::open(e, tmp.path(), o));
    auto st = s->write_stream("db", [n = 0](uint8_t* buf, size_t cap) mutable -> result<size_t> {
      if (n++ > 3) return size_t{0};
      for (size_t i = 0; i < cap && i < 70000; ++i)
        buf[i] = static_cast<uint8_t>(i * 7 + n);
      return std::min<size_t>(cap, 70000);
    });
    REQUIRE(st);
    id = s->create({"x", "", checkpoint_type::manual}, {}, system_config{}, {*st})->id;
    REQUIRE_FALSE(s->pin(id, true));
  }
  store_options ro;
  ro.read_only = true;
  auto verify = [&]() -> result<verify_report> {
    auto s = checkpoint_store::open(e, tmp.path(), ro); // the signer's key is checked at open
    if (!s) return s.err();
    return (*s)->verify(id);
  };
  auto good = verify();
  REQUIRE_MESSAGE(good.ok(), good.err().message);
  CHECK(std::any_of(good->checks.begin(), good->checks.end(),
                    [](const std::string& c) { return c.find("files: ") == 0; }));

  std::vector<std::string> targets = {layout::pin(id), layout::data_key_created};
  for (auto& n : *e.list_dir(tmp.path() + "/keys"))
    if (layout::parse_in(layout::keys_dir, n).kind == layout::file_kind::public_key)
      targets.push_back(std::string(layout::keys_dir) + "/" + n);
  for (auto& n : *e.list_dir(tmp.path() + "/index"))
    targets.push_back(std::string(layout::index_dir) + "/" + n);
  REQUIRE(targets.size() >= 4);
  uint64_t seed = 7;
  for (auto& rel : targets) {
    const std::string path = layout::path(tmp.path(), rel);
    const std::string bytes = test::read(path);
    REQUIRE_FALSE(bytes.empty());
    for (int trial = 0; trial < 8; ++trial) {
      std::string bad = bytes;
      const size_t at = static_cast<size_t>(splitmix64(seed) % bad.size());
      const int bit = static_cast<int>(splitmix64(seed) % 8);
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      CAPTURE(rel);
      CAPTURE(at);
      CAPTURE(bit);
      test::write(path, bad);
      auto v = verify();
      REQUIRE_FALSE(v.ok());
      CHECK(v.err().code == errc::integrity_error);
      CHECK(v.err().message.find(rel) != std::string::npos);
    }
    test::write(path, bytes);
  }
  test::write(tmp.path() + "/manifests/notes.txt", "mine\n");
  auto v = verify();
  REQUIRE_FALSE(v.ok());
  CHECK(v.err().message == "manifests/notes.txt: not a file this store makes; move it out of the "
                           "store");
  REQUIRE_FALSE(e.remove(tmp.path() + "/manifests/notes.txt"));
  CHECK(verify().ok());
}
