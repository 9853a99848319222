// The database component: a PostgreSQL database, captured in the checkpoint's
// cut and restored atomically, applying only what differs.
//
// Its image holds one record, "database" (server version, database, and per
// table its columns, key, schema text, row count, byte count and SHA-256 of
// its rows; the sequences and their values), and one stored stream per table,
// keyed by "schema.name": the table's rows in key order as text COPY bytes,
// written to the store during the capture (never held in memory) with the
// component's own chunk sizes, so unchanged tables and unchanged key ranges
// dedup with the last checkpoint.
//
// Capture: one REPEATABLE READ READ ONLY transaction exports its snapshot,
// then takes ACCESS SHARE locks on the tables (TRUNCATE and ALTER are not
// MVCC-safe) and reads every table, the sequences and the schema in it.
//
// Restore (one step, one transaction): the tables locked EXCLUSIVE (readers
// go on); each table whose rows differ from the checkpoint's (by digest) is
// loaded into a temporary table and merged by primary key (rows deleted,
// updated, inserted), or emptied and loaded when it has no key or the merge
// breaks a constraint on its way; the result's digest checked; sequences
// set; COMMIT. Any failure rolls it all back: the database is as it was.
// Triggers and foreign keys: a superuser's restore sets
// session_replication_role = replica (no triggers fire, references are
// not checked: the checkpoint's rows were consistent); another role's
// defers what is deferrable, and a foreign key that is not deferrable is
// checked row by row (a restore it refuses fails and changes nothing).
// Sequences are not transactional: they are set last, just before COMMIT.
//
// Schema drift (a table added, dropped or altered since the checkpoint) is
// named and the rollback refused (permission_denied, exit 4): a rollback
// restores rows, never schema.
//
// A broken connection is dropped and reopened on next use. libpq only under
// runtime/pg; every call blocks: the handler's detached worker makes them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/components/component.hpp"

namespace dsmil {

class pg_session;
struct table_record;

struct database_settings {
  std::string conninfo;            ///< libpq connection string, without a password
  std::string passfile;            ///< libpq password file; empty: PGPASSFILE, ~/.pgpass
  std::vector<std::string> tables; ///< "schema.name" or "name"; empty: every user table
  bool optional = false;
  uint32_t chunk_kib = 4;              ///< average chunk of a table's rows (min /4, max x4)
  uint32_t connect_timeout_s = 5;      ///< opening a session
  uint32_t capture_timeout_ms = 60000; ///< lock and statement timeout of a capture
  uint32_t restore_timeout_ms = 10000; ///< lock and statement timeout of a restore
};

class database_component final : public component {
public:
  /// `port` reaches the store the node keeps checkpoints in.
  database_component(database_settings s, std::shared_ptr<stream_port> port);
  ~database_component() override;

  std::string name() const override { return "database"; }
  bool optional() const override { return settings_.optional; }
  result<component_image> capture() override;
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& request) override;
  std::vector<failed_item> apply(const saga_step& step, const component_image& target) override;
  std::vector<failed_item> read_back(const saga_step& step, const component_image& target) override;

  /// How the last apply() put each table back: "equal" (already as in the
  /// checkpoint), "delta" (only the rows that differ from the version the
  /// component last captured or restored), "merge" (every row compared by
  /// key) or "replace" (deleted and loaded whole).
  struct table_restore {
    std::string table, how;
    uint64_t deleted = 0, updated = 0, inserted = 0;
  };
  std::vector<table_restore> last_restore() const;

  /// An item naming a table: "table:schema.name"; "sequences": every sequence.
  static constexpr const char* item_prefix = "table:";
  static constexpr const char* sequences_item = "sequences";
  static constexpr const char* record = "database";

private:
  // Runs `work` on the session, opened when there is none. A failure rolls
  // back what `work` began (a session that cannot is dropped); a session
  // found broken (the server restarted since its last use) is replaced and
  // `work` run once more, on the new one.
  status with_session(const std::function<status(pg_session&)>& work);
  // The bodies of capture, apply and read_back, on an open session; they
  // leave rolling back to with_session.
  status capture_in(pg_session& db, component_image& image);
  status apply_in(pg_session& db, const saga_step& step, const component_image& target);
  status read_back_in(pg_session& db, const std::vector<std::string>& items,
                      const component_image& target, std::vector<failed_item>& out);

  // Puts `ref`'s rows into table `t` (locked, inside apply's transaction):
  // the delta from the version last seen when there is one, checked, else
  // a merge. `how` says which.
  status restore_table(pg_session& db, const table_record& t, const stream_ref& ref, size_t index,
                       table_restore& how);

  database_settings settings_;
  std::shared_ptr<stream_port> port_;
  std::unique_ptr<pg_session> session_;
  // The stream each table held when this component last captured it or
  // committed a restore of it: a hint (another client may have written
  // since), which a restore checks by the digest of its result.
  mutable std::mutex known_mu_;
  std::map<std::string, stream_ref> known_;
  std::vector<table_restore> last_restore_;
};

} // namespace dsmil
