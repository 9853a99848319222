// PostgreSQL for the database component: a connection string checked before
// use, one session (a connection the component owns), and what a consistent
// capture reads: the tables with their keys and schema, the sequences, and a
// table's rows in key order as a byte stream for the store's pipeline.
//
// libpq and libpqxx appear only in runtime/pg/*.cpp. Blocking: call from a
// worker thread (the database handler's detached worker), never from an
// actor's handler. A session is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/store/stream_types.hpp"

namespace dsmil {

/// `s` between `q`s, each `q` in it doubled: SQL's quoting of identifiers
/// (`q` = ") and literals (').
std::string sql_quoted(const std::string& s, char q);

/// Where a connection string leads, for messages (never its password).
struct pg_target {
  std::string host; ///< a host name, an address, or a unix socket directory
  std::string port;
  std::string database;
  std::string user;
  /// "host H, port P, database D"
  std::string describe() const;
};

/// Parses a libpq connection string (key=value pairs or a postgresql:// URI),
/// filling what it leaves out as libpq would (PGHOST, PGPORT, PGDATABASE,
/// PGUSER, then libpq's defaults). A password in it is refused (config_error):
/// passwords come from PGPASSFILE or the file the configuration names.
result<pg_target> parse_conninfo(const std::string& conninfo);

/// A table as a capture reads it.
struct pg_table {
  std::string schema, name;
  std::vector<std::string> columns;     ///< in column order
  std::vector<std::string> key_columns; ///< the primary key; empty: none
  std::vector<std::string> generated;   ///< columns the server computes (never written)
  /// Columns, types, defaults, constraints and indexes as stable text: what
  /// a restore needs unchanged (schema drift is refused).
  std::string schema_text;
  /// "schema"."name", quoted for SQL.
  std::string qualified() const;
  /// "schema.name", as streams and plans name it.
  std::string label() const;
};

struct pg_sequence {
  std::string schema, name;
  int64_t last_value = 0;
  bool is_called = false;
  std::string qualified() const;
};

struct pg_options {
  uint32_t connect_timeout_s = 5;
  /// lock_timeout and statement_timeout of every statement; 0: none.
  uint32_t statement_timeout_ms = 0;
  std::string passfile; ///< libpq's password file; empty: PGPASSFILE, ~/.pgpass
};

class pg_session {
public:
  /// Connects. Errors: config_error (a bad connection string), database_unavailable
  /// (the server cannot be reached or refuses: one line naming host, port
  /// and database).
  static result<std::unique_ptr<pg_session>> open(const std::string& conninfo,
                                                  const pg_options& options = {});
  ~pg_session();
  pg_session(const pg_session&) = delete;
  pg_session& operator=(const pg_session&) = delete;

  const pg_target& target() const;
  /// "PostgreSQL 15.18"
  result<std::string> server_version();

  /// Runs statements that return nothing (BEGIN, SET, LOCK, COMMIT ...).
  status exec(const std::string& sql);
  /// Runs a query; each row's values as text (NULL as an empty string).
  result<std::vector<std::vector<std::string>>> query(const std::string& sql);

  /// The user tables of the database (`only` names some, as "schema.name"
  /// or "name" for public), sorted by schema and name. not_found names a
  /// table in `only` that does not exist.
  result<std::vector<pg_table>> tables(const std::vector<std::string>& only = {});
  /// The sequences of the database, with their values.
  result<std::vector<pg_sequence>> sequences();

  /// Begins the capture's transaction (REPEATABLE READ, READ ONLY) and
  /// exports its snapshot: returns the id other sessions join with.
  result<std::string> begin_exported_snapshot();
  /// Begins a REPEATABLE READ READ ONLY transaction on `snapshot_id`.
  status join_snapshot(const std::string& snapshot_id);

  /// A table's rows in key order (every column when it has no key) as text
  /// COPY lines, each ending in '\n', pulled as the store's byte sources
  /// are: fills `buf` up to `cap`, 0 at the end. Inside a transaction.
  using byte_pull = std::function<result<size_t>(uint8_t* buf, size_t cap)>;
  result<byte_pull> copy_out(const pg_table& table);
  /// Loads text COPY bytes into `table_sql` (a quoted, qualified name, with
  /// a column list when not every column): `feed` hands them to the sink it
  /// is given, in runs cut anywhere; they end with a line's end. Inside a
  /// transaction, which the caller rolls back when this fails (the rows
  /// before the failure are loaded).
  status copy_in(const std::string& table_sql, const std::function<status(const byte_sink&)>& feed);
  /// Whether the session's role is a superuser.
  result<bool> is_superuser();

private:
  struct impl;
  explicit pg_session(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

} // namespace dsmil
