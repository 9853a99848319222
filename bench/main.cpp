// dsmil-bench: benchmarks of dsmil-recovery. A program, not a test: it prints
// figures measured side by side in one run (and JSON with --json).
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bench/bench_util.hpp"
#include "bench/checkpoint_bench.hpp"
#include "bench/control_bench.hpp"
#include "bench/latency_bench.hpp"
#include "bench/agents_bench.hpp"
#include "bench/database_bench.hpp"
#include "bench/rollback_bench.hpp"
#include "bench/soak_bench.hpp"
#include "bench/tpm_bench.hpp"
#include "dsmil/version.hpp"
#include "runtime/os/malloc_tuning.hpp"

using namespace dsmil::bench;

namespace {

// Prints a benchmark's result (JSON or for a person); exit status 1 on failure.
int report(const dsmil::result<nlohmann::json>& r, bool as_json,
           void (*print)(const nlohmann::json&)) {
  if (!r) {
    std::fprintf(stderr, "dsmil-bench: %s\n", r.err().message.c_str());
    return 1;
  }
  if (as_json)
    std::cout << r->dump(2) << "\n";
  else
    print(*r);
  return 0;
}

bool parse_kind(const std::string& text, data_kind& out) {
  if (text == "random")
    out = data_kind::random;
  else if (text == "mixed")
    out = data_kind::mixed;
  else if (text == "rows")
    out = data_kind::rows;
  else
    return std::fprintf(stderr, "dsmil-bench: --kind must be random, mixed or rows, got '%s'\n",
                        text.c_str()),
           false;
  return true;
}

} // namespace

int main(int argc, char** argv) {
  dsmil::keep_large_allocations_in_heap();
  CLI::App app{"dsmil-bench " DSMIL_VERSION ": benchmarks of dsmil-recovery"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 done, 1 the benchmark failed, 2 bad arguments.");
  auto* cp = app.add_subcommand("checkpoint", "checkpoint store throughput: full, incremental, "
                                              "restore, verify, against the machine's ceiling");
  std::string size = "1GiB", kind = "mixed", change = "1%";
  checkpoint_bench_options o;
  bool as_json = false;
  cp->add_option("--size", size, "input size (e.g. 1GiB, 256MiB)");
  cp->add_option("--kind", kind,
                 "random, mixed (compressible text/binary) or rows (database-like)");
  cp->add_option("--input", o.input, "checkpoint this file's bytes instead of generated data");
  cp->add_option("--change", change,
                 "scattered overwrites and insertions for the incremental (e.g. 1%)");
  cp->add_option("--dir", o.dir,
                 "work directory (default: a fresh one under /var/tmp, removed after)");
  cp->add_option("--threads", o.threads, "worker threads (default: all cores)");
  cp->add_option("--deflate-level", o.deflate_level,
                 "the store's ISA-L deflate level, 0-3 (default 1; the ceiling stays level 1)");
  cp->add_flag("--compare", o.compare,
               "also run restic and borg on the same data (installed if missing)");
  cp->add_flag("--keep", o.keep, "keep the work directory");
  cp->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* tp = app.add_subcommand("tpm", "cost of TPM signing per checkpoint (median and p99)");
  tpm_bench_options to;
  tp->add_option("--tcti", to.tcti,
                 "the TPM to use, e.g. device:/dev/tpmrm0 (default: a swtpm started for the run)");
  tp->add_option("--runs", to.runs, "checkpoints and signatures to time (default 200)");
  tp->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* rb = app.add_subcommand("rollback", "latency of full and incremental rollback sagas on "
                                            "the simulator (p50 and p99)");
  rollback_bench_options ro;
  rb->add_option("--runs", ro.runs, "rollbacks of each kind to time (default 1000)");
  rb->add_option("--dir", ro.dir,
                 "work directory (default: a fresh one under /var/tmp, removed "
                 "after)");
  rb->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* ag = app.add_subcommand("agents", "checkpoints and rollbacks of the reference host's "
                                          "agents with the devices (p50 and p99, longest pause)");
  agents_bench_options ao;
  ag->add_option("--runs", ao.runs, "rounds of checkpoint, incremental, rollback (default 200)");
  ag->add_option("--warmup", ao.warmup, "rounds before the measured ones, not counted (default 3)");
  ag->add_option("--agents", ao.agents, "agents (default 80)");
  ag->add_option("--state-kib", ao.state_kib, "each agent's state, KiB (default 256)");
  ag->add_option("--dir", ao.dir, "work directory (default: a fresh one under /var/tmp)");
  ag->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* sk = app.add_subcommand("soak", "memory of a running dsmild: resident set growth per "
                                        "checkpoint create+delete and per client request");
  soak_bench_options so;
  sk->add_option("--cycles", so.cycles, "checkpoint create+delete cycles (default 600)");
  sk->add_option("--requests", so.requests, "status requests over one connection (default 2000)");
  sk->add_option("--connections", so.connections,
                 "status requests with a connection each, as dsmilctl (default 600)");
  sk->add_option("--warmup", so.warmup, "operations of each kind before measuring (default 100)");
  sk->add_option("--dsmild", so.dsmild, "the dsmild to run (default: the one beside this build)");
  sk->add_option("--dir", so.dir, "work directory (default: a fresh one under /var/tmp)");
  sk->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* lt = app.add_subcommand("latency", "status latency on an idle node and while a checkpoint "
                                           "of a large stream runs (target p99 < 50 ms)");
  latency_bench_options lo;
  std::string lt_size = "1GiB", lt_kind = "mixed";
  lt->add_option("--size", lt_size, "the stream's size (default 1GiB)");
  lt->add_option("--kind", lt_kind, "the stream's data: random, mixed (default) or rows");
  lt->add_option("--requests", lo.requests, "status requests on the idle node (default 500)");
  lt->add_option("--dir", lo.dir, "work directory (default: a fresh one under /var/tmp)");
  lt->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* db = app.add_subcommand("database", "the database component vs pg_dump -Fc and pg_restore "
                                            "on a pgbench database (checkpoint, incremental bytes, "
                                            "restore)");
  database_bench_options dbo;
  db->add_option("--scale", dbo.scale, "pgbench scale, 100 000 accounts each (default 20)");
  db->add_option("--transactions", dbo.transactions,
                 "pgbench transactions between the checkpoints (default 1000)");
  db->add_option("--conninfo", dbo.conninfo,
                 "a PostgreSQL to use, key=value form (default: a private cluster)");
  db->add_option("--chunk-kib", dbo.chunk_kib,
                 "average chunk size of the tables' streams, as [database] chunk_kib "
                 "(default: the component's)")
      ->check(CLI::Range(4u, 1024u));
  db->add_option("--dir", dbo.dir, "work directory (default: a fresh one under /var/tmp)");
  db->add_flag("--json", as_json, "print one JSON document on stdout");
  auto* ct = app.add_subcommand("control", "status round trip over mutual TLS with signed "
                                           "requests vs plaintext and in-process (target p99 < "
                                           "5 ms)");
  control_bench_options co;
  ct->add_option("--requests", co.requests, "status requests per path (default 2000)");
  ct->add_option("--connections", co.connections,
                 "fresh TLS connections, one request each (default 20)");
  ct->add_option("--dir", co.dir, "work directory (default: a fresh one under /var/tmp)");
  ct->add_flag("--json", as_json, "print one JSON document on stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "dsmil-bench: %s; see 'dsmil-bench --help'\n", e.what());
    return 2;
  }
  if (o.deflate_level < 0 || o.deflate_level > 3)
    return std::fprintf(stderr, "dsmil-bench: --deflate-level must be 0-3, got %d\n",
                        o.deflate_level),
           2;
  if (tp->parsed()) {
    if (to.runs == 0) return std::fprintf(stderr, "dsmil-bench: --runs must be at least 1\n"), 2;
    return report(run_tpm_bench(to), as_json, print_tpm_report);
  }
  if (rb->parsed()) {
    if (ro.runs == 0) return std::fprintf(stderr, "dsmil-bench: --runs must be at least 1\n"), 2;
    return report(run_rollback_bench(ro), as_json, print_rollback_report);
  }
  if (ag->parsed()) {
    if (ao.runs == 0 || ao.agents == 0 || ao.state_kib < 4)
      return std::fprintf(stderr, "dsmil-bench: --runs and --agents must be at least 1, "
                                  "--state-kib at least 4\n"),
             2;
    return report(run_agents_bench(ao), as_json, print_agents_report);
  }
  if (sk->parsed()) return report(run_soak_bench(so), as_json, print_soak_report);
  if (ct->parsed()) {
    if (co.requests == 0 || co.connections == 0)
      return std::fprintf(stderr, "dsmil-bench: --requests and --connections must be at least "
                                  "1\n"),
             2;
    return report(run_control_bench(co), as_json, print_control_report);
  }
  if (db->parsed()) {
    if (dbo.scale == 0 || dbo.transactions == 0)
      return std::fprintf(stderr, "dsmil-bench: --scale and --transactions must be at least 1\n"),
             2;
    return report(run_database_bench(dbo), as_json, print_database_report);
  }
  if (lt->parsed()) {
    auto bytes = parse_size(lt_size);
    if (!bytes)
      return std::fprintf(stderr, "dsmil-bench: --size: %s\n", bytes.err().message.c_str()), 2;
    if (*bytes == 0) return std::fprintf(stderr, "dsmil-bench: --size must be above 0\n"), 2;
    lo.size = *bytes;
    if (lo.requests == 0)
      return std::fprintf(stderr, "dsmil-bench: --requests must be at least 1\n"), 2;
    if (!parse_kind(lt_kind, lo.kind)) return 2;
    return report(run_latency_bench(lo), as_json, print_latency_report);
  }
  auto bytes = parse_size(size);
  if (!bytes)
    return std::fprintf(stderr, "dsmil-bench: --size: %s\n", bytes.err().message.c_str()), 2;
  o.size = *bytes;
  auto pct = parse_percent(change);
  if (!pct)
    return std::fprintf(stderr, "dsmil-bench: --change: %s\n", pct.err().message.c_str()), 2;
  o.change = *pct;
  if (!parse_kind(kind, o.kind)) return 2;

  return report(run_checkpoint_bench(o), as_json, print_checkpoint_report);
}
