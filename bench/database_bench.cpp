#include "bench/database_bench.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include <spdlog/spdlog.h>

#include "bench/bench_util.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/pg/database_component.hpp"
#include "runtime/pg/pg_session.hpp"

namespace dsmil::bench {

using nlohmann::json;

namespace {

constexpr const char* pg_bin = "/usr/lib/postgresql/15/bin/";

// A private cluster (scripts/postgres), stopped and removed with this.
struct private_cluster {
  std::string dir, conninfo;
  ~private_cluster() {
    if (!dir.empty())
      std::system((std::string(DSMIL_SOURCE_DIR) + "/scripts/postgres stop " + dir).c_str());
  }
  status start() {
    char tmpl[] = "/tmp/dsmil-bench-pg.XXXXXX"; // the postgres user must reach it
    if (::mkdtemp(tmpl) == nullptr) return make_error(errc::io_error, "mkdtemp failed");
    dir = tmpl;
    FILE* p =
        ::popen((std::string(DSMIL_SOURCE_DIR) + "/scripts/postgres start " + dir).c_str(), "r");
    char line[1024] = {0};
    const bool got = p != nullptr && std::fgets(line, sizeof line, p) != nullptr;
    if (p != nullptr) ::pclose(p);
    if (!got)
      return make_error(errc::unavailable, "the private PostgreSQL did not start (scripts/postgres "
                                           "start; run scripts/bootstrap --with-postgres)");
    conninfo = line;
    while (!conninfo.empty() && conninfo.back() == '\n')
      conninfo.pop_back();
    return {};
  }
};

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

} // namespace

result<json> run_database_bench(const database_bench_options& o) {
  auto work = work_dir::make("database-bench", o.dir);
  if (!work) return work.err();
  spdlog::set_level(spdlog::level::warn);
  const std::string log = (*work)->path() + "/bench.log";
  private_cluster cluster;
  std::string base = o.conninfo;
  if (base.empty()) {
    if (auto err = cluster.start()) return err;
    base = cluster.conninfo;
  }
  // A database of its own (key=value form: the last dbname wins).
  auto admin = pg_session::open(base);
  if (!admin) return admin.err();
  const std::string name = "dsmil_bench_" + std::to_string(std::random_device{}() % 1000000);
  if (auto err = (*admin)->exec("CREATE DATABASE " + name)) return err;
  struct drop_db {
    pg_session& s;
    std::string name;
    ~drop_db() { s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); }
  } dropper{**admin, name};
  const std::string db = base + " dbname=" + name;
  const std::string qdb = shell_quoted(db);
  std::fprintf(stderr, "database bench: pgbench -i -s %u (log: %s)\n", o.scale, log.c_str());
  if (sh(std::string(pg_bin) + "pgbench -i -q -s " + std::to_string(o.scale) + " " + qdb, log))
    return make_error(errc::io_error, "pgbench -i failed; see " + log);

  auto store = checkpoint_store::open(env::posix(), (*work)->path() + "/store");
  if (!store) return store.err();
  auto port = std::make_shared<store_stream_port>(**store);
  database_settings s;
  s.conninfo = db;
  s.capture_timeout_ms = s.restore_timeout_ms = 3600000;
  if (o.chunk_kib != 0) s.chunk_kib = o.chunk_kib;
  database_component c(s, port);
  auto checkpoint = [&](const std::string& label) -> result<checkpoint_info> {
    auto img = c.capture();
    if (!img) return img.err();
    checkpoint_request req;
    req.name = label;
    return create_checkpoint(**store, req, {{"database", std::move(*img)}});
  };
  auto image = [&](const std::string& id) -> result<component_image> {
    auto loaded = (*store)->load(id);
    if (!loaded) return loaded.err();
    auto img = image_of(**store, *loaded);
    if (!img) return img.err();
    return (*img)["database"];
  };

  json r = {{"scale", o.scale}, {"transactions", o.transactions}};
  std::fprintf(stderr, "database bench: checkpoint vs pg_dump -Fc\n");
  settle();
  double t0 = now_s();
  auto first = checkpoint("bench");
  if (!first) return first.err();
  r["checkpoint_s"] = now_s() - t0;
  const std::string dump = (*work)->path() + "/dump.fc";
  settle();
  t0 = now_s();
  if (sh(std::string(pg_bin) + "pg_dump -Fc -f " + shell_quoted(dump) + " " + qdb, log))
    return make_error(errc::io_error, "pg_dump failed; see " + log);
  r["pg_dump_s"] = now_s() - t0;
  r["pg_dump_bytes"] = std::filesystem::file_size(dump);

  std::fprintf(stderr, "database bench: pgbench -t %u, incremental checkpoint\n", o.transactions);
  if (sh(std::string(pg_bin) + "pgbench -n -t " + std::to_string(o.transactions) + " " + qdb, log))
    return make_error(errc::io_error, "pgbench failed; see " + log);
  settle();
  const uint64_t before = dir_bytes((*store)->dir());
  t0 = now_s();
  auto second = checkpoint("after pgbench");
  if (!second) return second.err();
  r["incremental_s"] = now_s() - t0;
  r["incremental_bytes"] = dir_bytes((*store)->dir()) - before;
  // Of which the manifest: every table's chunk list, whole, in each one.
  r["incremental_manifest_bytes"] =
      std::filesystem::file_size((*store)->dir() + "/" + layout::manifest(second->id));

  auto target = image(first->id);
  if (!target) return target.err();
  auto now = image(second->id);
  if (!now) return now.err();
  plan_request req;
  req.type = rollback_type::incremental; // what differs
  auto plan = c.plan(*now, *target, req);
  if (!plan) return plan.err();
  if (plan->steps.size() != 1) return make_error(errc::internal, "pgbench changed nothing");
  const auto& step = plan->steps[0];
  r["tables_restored"] = step.items.size();

  std::fprintf(stderr, "database bench: restore vs pg_restore --single-transaction\n");
  settle();
  t0 = now_s();
  auto failed = c.apply(step, *target);
  r["restore_s"] = now_s() - t0;
  if (!failed.empty())
    return make_error(errc::rollback_failed, failed[0].id + ": " + failed[0].error);
  r["restore_tables"] = json::array();
  for (auto& t : c.last_restore())
    r["restore_tables"].push_back({{"table", t.table},
                                   {"how", t.how},
                                   {"deleted", t.deleted},
                                   {"updated", t.updated},
                                   {"inserted", t.inserted}});
  // A read-back is one digest of every restored table, as the restore
  // takes one of each table it changed.
  t0 = now_s();
  if (!c.read_back(step, *target).empty())
    return make_error(errc::rollback_failed, "the restored database differs from the checkpoint");
  r["read_back_s"] = now_s() - t0;
  // pg_restore starts where the restore did: the state pgbench left.
  failed = c.apply(step, *now);
  if (!failed.empty())
    return make_error(errc::rollback_failed, failed[0].id + ": " + failed[0].error);
  settle();
  t0 = now_s();
  if (sh(std::string(pg_bin) + "pg_restore --clean --if-exists --single-transaction -d " + qdb +
             " " + shell_quoted(dump),
         log))
    return make_error(errc::io_error, "pg_restore failed; see " + log);
  r["pg_restore_s"] = now_s() - t0;
  // Both reach the same rows.
  r["pg_restore_matches"] = c.read_back(step, *target).empty();

  r["checkpoint_ratio"] = r["pg_dump_s"].get<double>() / r["checkpoint_s"].get<double>();
  r["restore_ratio"] = r["pg_restore_s"].get<double>() / r["restore_s"].get<double>();
  r["incremental_fraction"] =
      r["incremental_bytes"].get<double>() / std::max(1.0, r["pg_dump_bytes"].get<double>());
  return r;
}

void print_database_report(const json& r) {
  std::printf("database: pgbench scale %u, %u transactions between the checkpoints\n",
              r["scale"].get<unsigned>(), r["transactions"].get<unsigned>());
  std::printf("  checkpoint    %8.2f s   pg_dump -Fc   %8.2f s   %.2fx (target >= 2x)\n",
              r["checkpoint_s"].get<double>(), r["pg_dump_s"].get<double>(),
              r["checkpoint_ratio"].get<double>());
  std::printf("  incremental   %s added (manifest %s)   pg_dump file  %s   %.1f%% (target <= "
              "10%%)\n",
              human(r["incremental_bytes"].get<double>()).c_str(),
              human(r["incremental_manifest_bytes"].get<double>()).c_str(),
              human(r["pg_dump_bytes"].get<double>()).c_str(),
              100.0 * r["incremental_fraction"].get<double>());
  std::printf("  restore       %8.2f s   pg_restore    %8.2f s   %.2fx (target >= 2x)%s\n",
              r["restore_s"].get<double>(), r["pg_restore_s"].get<double>(),
              r["restore_ratio"].get<double>(),
              r["pg_restore_matches"].get<bool>() ? "" : "  (pg_restore's rows differ!)");
  std::printf("  (a digest of the %u restored tables, as read back: %.2f s)\n",
              r["tables_restored"].get<unsigned>(), r["read_back_s"].get<double>());
  std::string how;
  for (auto& t : r["restore_tables"])
    how += (how.empty() ? "" : ", ") + t["table"].get<std::string>() + " " +
           t["how"].get<std::string>() + " (-" + std::to_string(t["deleted"].get<uint64_t>()) +
           " ~" + std::to_string(t["updated"].get<uint64_t>()) + " +" +
           std::to_string(t["inserted"].get<uint64_t>()) + " rows)";
  std::printf("  (restored: %s)\n", how.c_str());
}

} // namespace dsmil::bench
