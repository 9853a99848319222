// Every stored byte matters: a flipped bit in any field of a signature file
// or of store.toml is reported, by open and by verify, naming the file.
#include <doctest/doctest.h>

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
    id = s->create({"x", "", "manual"}, {}, system_config{})->id;
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
    REQUIRE(s->create({"x", "", "manual"}, {}, system_config{}));
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
