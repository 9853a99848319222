// What the database component tests share: a checkpoint of the component's
// state, read back as a rollback reads it.
#pragma once

#include <string>

#include <doctest/doctest.h>

#include "runtime/components/checkpoint_images.hpp"
#include "runtime/pg/database_component.hpp"

namespace dsmil::test {

/// Captures `c`, checkpoints it in `store` as `name`, and gives back the
/// checkpoint's database image as load() and image_of() read it.
inline component_image checkpoint_database(checkpoint_store& store, database_component& c,
                                           const std::string& name) {
  auto img = c.capture();
  REQUIRE_MESSAGE(img.ok(), (img ? "" : img.err().message));
  checkpoint_request req;
  req.name = name;
  auto info = create_checkpoint(store, req, {{"database", *img}});
  REQUIRE_MESSAGE(info.ok(), (info ? "" : info.err().message));
  auto loaded = store.load(info->id);
  REQUIRE(loaded.ok());
  auto back = image_of(store, *loaded);
  REQUIRE(back.ok());
  REQUIRE(back->count("database"));
  return (*back)["database"];
}

} // namespace dsmil::test
