// `dsmil-bench database`: the database component against pg_dump and
// pg_restore on the same pgbench database, side by side in one run:
// a checkpoint of the database vs `pg_dump -Fc -f F`; after `pgbench -t
// 1000`, the bytes the incremental checkpoint adds to the store (manifest
// included) vs the size of F; then the rollback's database restore (apply
// only) vs `pg_restore --clean --if-exists --single-transaction -d DB F`,
// both from the state pgbench left.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct database_bench_options {
  unsigned scale = 20;  ///< pgbench scale (100 000 accounts each)
  std::string conninfo; ///< a server to use (a database is created there); empty: a private cluster
  unsigned transactions = 1000;
  std::string dir;        ///< empty: a fresh one under /var/tmp, removed after
  unsigned chunk_kib = 0; ///< 0: the component's default
};

/// Keys: scale, transactions, checkpoint_s, pg_dump_s, restore_s,
/// pg_restore_s, incremental_bytes, pg_dump_bytes, incremental_s,
/// checkpoint_ratio (pg_dump_s / checkpoint_s), restore_ratio
/// (pg_restore_s / restore_s), incremental_fraction (incremental_bytes /
/// pg_dump_bytes), incremental_manifest_bytes (the manifest's share),
/// tables_restored, pg_restore_matches, read_back_s (one digest of the
/// restored tables), restore_tables (how the restore put each table back:
/// delta, merge, replace or equal, with its rows deleted, updated, inserted).
result<nlohmann::json> run_database_bench(const database_bench_options& o);
void print_database_report(const nlohmann::json& r);

} // namespace dsmil::bench
