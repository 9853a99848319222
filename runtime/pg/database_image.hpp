// The database component's record (database_component.hpp), read and written
// in one place, and what its capture and restore share: a table's rows read
// as the store keeps them, with their count and digest.
#pragma once

#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/pg/pg_session.hpp"

namespace dsmil {

struct component_image;

/// A table as the record holds it: where and what it is, and its rows.
struct table_record {
  pg_table table;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256; ///< hex, of the rows' text COPY bytes in key order
};

struct database_record {
  std::string server_version;
  std::string database;
  uint32_t chunk_kib = 0;
  std::vector<table_record> tables; ///< sorted by label
  std::vector<pg_sequence> sequences;

  const table_record* find(const std::string& label) const;
  std::string encode() const;
  /// The record of `image`; errors name what is missing or malformed.
  static result<database_record> of(const component_image& image);
};

/// The rows `pull` gives (a table's copy_out), counted and hashed as they
/// pass to whoever reads the source returned: `out` has their rows, bytes
/// and sha256 once it has ended. `out` must outlive the source.
byte_source counting(pg_session::byte_pull pull, table_record& out);
/// Reads the rows of `t` to the end: `out` gets rows, bytes and sha256.
/// Inside a transaction of `s`.
status digest_rows(pg_session& s, const pg_table& t, table_record& out);

/// What differs between the tables of `then` (a checkpoint) and `now`: one
/// line per table added, dropped or altered; empty when none.
std::vector<std::string> schema_drift(const database_record& then, const database_record& now);

} // namespace dsmil
