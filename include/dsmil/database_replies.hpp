// What the replies say of the database component (dsmil/control.hpp: the
// database a checkpoint holds), with their fields() lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsmil {

/// One table as a checkpoint holds it.
struct table_image_view {
  std::string table; ///< schema.name
  uint64_t rows = 0;
  uint64_t bytes = 0; ///< of its rows as text COPY
  std::string sha256; ///< of those bytes, in key order
};

/// The database component's part of a checkpoint.
struct database_image_view {
  std::string database;
  std::string server_version;
  std::vector<table_image_view> tables;
  uint64_t sequences = 0;
};

template <class F> void fields(F& f, table_image_view& x) {
  f("table", x.table), f("rows", x.rows), f("bytes", x.bytes), f("sha256", x.sha256);
}
template <class F> void fields(F& f, database_image_view& x) {
  f("database", x.database), f("server_version", x.server_version), f("tables", x.tables),
      f("sequences", x.sequences);
}

} // namespace dsmil
