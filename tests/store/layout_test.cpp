#include <doctest/doctest.h>

#include "runtime/store/layout.hpp"

using namespace dsmil;
using layout::file_kind;

TEST_CASE("every store file name parses back to its kind and the name it carries") {
  const std::string pack(64, 'a');
  const std::string id = "019395f0-1c2d-7e3f-8a9b-0c1d2e3f4a5b";
  struct row {
    std::string rel;
    file_kind kind;
    std::string name;
  };
  const row rows[] = {
      {layout::store_toml, file_kind::store_toml, ""},
      {layout::store_toml_sig, file_kind::store_toml_sig, ""},
      {layout::lock, file_kind::lock, ""},
      {layout::head, file_kind::head, ""},
      {layout::head_sig, file_kind::head_sig, ""},
      {layout::signing_key, file_kind::signing_key, ""},
      {layout::data_key, file_kind::data_key, ""},
      {layout::sealed_data_key, file_kind::sealed_data_key, ""},
      {layout::data_key_created, file_kind::data_key_created, ""},
      {layout::public_key("k1"), file_kind::public_key, "k1"},
      {layout::pack(pack), file_kind::pack, pack},
      {layout::index(pack), file_kind::index, pack},
      {layout::manifest(id), file_kind::manifest, id},
      {layout::signature(id), file_kind::signature, id},
      {layout::pin(id), file_kind::pin, id},
      {layout::journal(id), file_kind::journal, id},
      {layout::tmp("x.pack"), file_kind::tmp, "x.pack"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.rel);
    auto p = layout::parse(r.rel);
    CHECK(p.kind == r.kind);
    CHECK(p.name == r.name);
  }
  CHECK(layout::pack(pack) == "packs/aa/" + pack + ".pack");
  CHECK(layout::parse_in(layout::manifests_dir, id + ".json").kind == file_kind::manifest);
}

TEST_CASE("names that are not store files parse as unknown") {
  for (std::string rel :
       {"", "store.tom", "manifests/.json", "manifests/a/b.json", "packs/ab.pack",
        "packs/ab/cd01.pack", "index/x.pack", "keys/x.key", "other/x.json", "journal/x.wal.tmp"})
    CHECK_MESSAGE(layout::parse(rel).kind == file_kind::unknown, rel);
}
