// The database component against a real PostgreSQL 15 and a real store:
// capture in one snapshot, dedup across checkpoints, a restore that puts
// every table and sequence back, one that fails and changes nothing, and
// schema drift refused.
#include <doctest/doctest.h>

#include <cstdlib>
#include <glob.h>

#include "runtime/base/crypto.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/pg/database_component.hpp"
#include "tests/pg/checkpoint_database.hpp"
#include "tests/pg/pg_fixture.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// Runs pgbench (from the PostgreSQL the cluster runs) against `db`.
void pgbench(const pg_database& db, const std::string& args) {
  glob_t g{};
  REQUIRE(::glob("/usr/lib/postgresql/*/bin/pgbench", 0, nullptr, &g) == 0);
  const std::string bin = g.gl_pathv[g.gl_pathc - 1];
  ::globfree(&g);
  const std::string cmd = bin + " " + args + " '" + db.conninfo() + "' > /dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
}

std::string contents(const pg_database& db) {
  return database_contents(db.conninfo());
}

// A port that fails its reads once they have read `fail_after` bytes in
// all since `seen` was last set to 0 (-1: never).
class flaky_port final : public stream_port {
public:
  explicit flaky_port(checkpoint_store& s) : real_(s) {}
  result<stream_ref> write(const std::string& name, const byte_source& src,
                           const std::optional<chunker_params>& chunking) override {
    return real_.write(name, src, chunking);
  }
  status read(const stream_ref& s, const byte_sink& sink) override {
    return real_.read(s, [&](std::string_view bytes) -> status {
      seen += bytes.size();
      if (fail_after >= 0 && seen > static_cast<uint64_t>(fail_after))
        return make_error(errc::io_error, "injected read failure");
      return sink(bytes);
    });
  }
  int64_t fail_after = -1;
  uint64_t seen = 0;

private:
  store_stream_port real_;
};

// How the component's last apply put each table back, by table.
std::map<std::string, std::string> restored(const database_component& c) {
  std::map<std::string, std::string> out;
  for (auto& t : c.last_restore())
    out[t.table] = t.how;
  return out;
}

struct fixture {
  pg_database db;
  env_dir dir;
  std::unique_ptr<checkpoint_store> store;
  std::shared_ptr<flaky_port> port;
  std::unique_ptr<database_component> c;

  fixture() {
    store = std::move(*checkpoint_store::open(test_env(), dir.path()));
    port = std::make_shared<flaky_port>(*store);
    database_settings s;
    s.conninfo = db.conninfo();
    c = std::make_unique<database_component>(s, port);
    pgbench(db, "-i -q -s 1");
    auto x = db.session();
    REQUIRE_FALSE(x->exec(
        "CREATE TABLE notes (id serial PRIMARY KEY, body text, tags jsonb, at timestamptz); "
        "CREATE TABLE links (id int PRIMARY KEY, note int REFERENCES notes(id) DEFERRABLE); "
        "CREATE TABLE log (line text); "
        "CREATE TABLE fixed (k int PRIMARY KEY, v text); "
        "INSERT INTO notes (body, tags, at) SELECT 'note ' || g || E'\\ttab\\nline', "
        "  jsonb_build_object('n', g), now() FROM generate_series(1, 500) g; "
        "INSERT INTO links SELECT g, g FROM generate_series(1, 100) g; "
        "INSERT INTO log SELECT 'line ' || g FROM generate_series(1, 50) g; "
        "INSERT INTO fixed SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g"));
  }

  // Everything the component has, checkpointed and read back as a
  // rollback reads it.
  component_image checkpoint(const std::string& name) {
    return checkpoint_database(*store, *c, name);
  }

  void edit() {
    pgbench(db, "-n -t 200");
    auto x = db.session();
    REQUIRE_FALSE(x->exec("INSERT INTO notes (body) SELECT 'new' FROM generate_series(1, 20); "
                          "UPDATE notes SET tags = '{\"changed\": true}' WHERE id % 7 = 0; "
                          "DELETE FROM links WHERE id > 90; DELETE FROM notes WHERE id > 480; "
                          "DELETE FROM log; INSERT INTO log VALUES ('other')"));
  }
};

} // namespace

TEST_CASE("checkpoint, pgbench and edits, roll back: every table and sequence as checkpointed") {
  fixture f;
  const auto before = contents(f.db);
  auto target = f.checkpoint("before");
  CHECK(target.stored.size() == 8); // pgbench's four tables and ours
  CHECK(target.stored.count("public.pgbench_accounts"));
  const auto first_chunks = f.store->chunk_count();

  f.edit();
  const auto edited = contents(f.db);
  REQUIRE(edited != before);
  auto now = f.checkpoint("after edits");
  // The table nobody touched is the same chunks; the store grew by what changed.
  CHECK(same_chunks(now.stored.at("public.fixed"), target.stored.at("public.fixed")));
  CHECK_FALSE(same_chunks(now.stored.at("public.notes"), target.stored.at("public.notes")));
  CHECK(f.store->chunk_count() < 2 * first_chunks);

  plan_request req;
  auto plan = f.c->plan(now, target, req);
  REQUIRE_MESSAGE(plan.ok(), (plan ? "" : plan.err().message));
  CHECK(plan->differs);
  REQUIRE(plan->steps.size() == 1);
  auto& tables = plan->plan_detail["database"]["tables"];
  bool fixed_same = false, notes_differs = false;
  for (auto& t : tables) {
    if (t["table"] == "public.fixed") fixed_same = !t["differs"].get<bool>();
    if (t["table"] == "public.notes") {
      notes_differs = t["differs"].get<bool>();
      CHECK(t["rows_checkpoint"] == 500);
      CHECK(t["rows_now"] == 480); // 20 added, 40 deleted
    }
  }
  CHECK(fixed_same);
  CHECK(notes_differs);

  auto failed = f.c->apply(plan->steps[0], target);
  for (auto& x : failed)
    FAIL_CHECK(x.id << ": " << x.error);
  CHECK(f.c->read_back(plan->steps[0], target).empty());
  CHECK(contents(f.db) == before);
  // The tables the component had just captured went back by their delta
  // alone; the one without a key was merged.
  auto how = restored(*f.c);
  CHECK(how["public.pgbench_accounts"] == "delta");
  CHECK(how["public.notes"] == "delta");
  CHECK(how["public.links"] == "delta");
  CHECK(how["public.log"] == "merge");
  CHECK(how["public.fixed"] == "equal");
  // Applying it again writes nothing and fails nothing.
  CHECK(f.c->apply(plan->steps[0], target).empty());
  for (auto& [table, h] : restored(*f.c))
    CHECK_MESSAGE(h == "equal", table);

  // Compensation: back to the state the rollback left, again by delta.
  CHECK(f.c->apply(plan->steps[0], now).empty());
  CHECK(f.c->read_back(plan->steps[0], now).empty());
  CHECK(contents(f.db) == edited);
  CHECK(restored(*f.c)["public.pgbench_accounts"] == "delta");
}

TEST_CASE("a table another client wrote after the capture is put back whole, not by its delta") {
  fixture f;
  const auto before = contents(f.db);
  auto target = f.checkpoint("before");
  f.edit();
  auto now = f.checkpoint("after edits");
  auto plan = f.c->plan(now, target, plan_request{});
  REQUIRE(plan.ok());
  REQUIRE(plan->steps.size() == 1);
  // Written after the capture the delta starts from, in rows the delta
  // does not name: the digest of the delta's result tells, and a merge
  // puts every row back.
  auto x = f.db.session();
  REQUIRE_FALSE(x->exec("UPDATE pgbench_accounts SET filler = 'late' WHERE aid IN (7, 50001); "
                        "UPDATE notes SET body = 'late' WHERE id = 3"));
  CHECK(f.c->apply(plan->steps[0], target).empty());
  CHECK(contents(f.db) == before);
  auto how = restored(*f.c);
  CHECK(how["public.pgbench_accounts"] == "merge");
  CHECK(how["public.notes"] == "merge");
  CHECK(how["public.links"] == "delta");
}

TEST_CASE("a restore that fails in the middle leaves the database exactly as it was") {
  fixture f;
  auto target = f.checkpoint("before");
  f.edit();
  const auto edited = contents(f.db);
  auto now = f.checkpoint("after edits");
  auto plan = f.c->plan(now, target, plan_request{});
  REQUIRE(plan.ok());
  REQUIRE(plan->steps.size() == 1);
  // Tables go in name order: links, log and notes are restored (reading a
  // few KiB) before pgbench_accounts (its delta reads MiBs) fails.
  f.port->seen = 0;
  f.port->fail_after = 1 << 20;
  auto failed = f.c->apply(plan->steps[0], target);
  REQUIRE_FALSE(failed.empty());
  CHECK(failed[0].error.find("injected read failure") != std::string::npos);
  CHECK(contents(f.db) == edited);
  CHECK(f.c->read_back(plan->steps[0], now).empty());
  // The component recovers: the next restore works.
  f.port->fail_after = -1;
  CHECK(f.c->apply(plan->steps[0], target).empty());
  CHECK(f.c->read_back(plan->steps[0], target).empty());
}

TEST_CASE("schema drift since the checkpoint is named and the rollback refused") {
  fixture f;
  auto target = f.checkpoint("before");
  auto x = f.db.session();
  REQUIRE_FALSE(x->exec("ALTER TABLE notes ADD COLUMN extra int; DROP TABLE log; "
                        "CREATE TABLE added (k int)"));
  auto now = f.checkpoint("after");
  auto plan = f.c->plan(now, target, plan_request{});
  REQUIRE_FALSE(plan);
  CHECK(plan.err().code == errc::permission_denied);
  CHECK(exit_code(plan.err().code) == 4);
  const auto& m = plan.err().message;
  CHECK(m.find("table public.notes was altered") != std::string::npos);
  CHECK(m.find("table public.log was dropped") != std::string::npos);
  CHECK(m.find("table public.added was added") != std::string::npos);
}

TEST_CASE("a server that cannot be reached: the capture fails naming it, and works once it is") {
  env_dir dir;
  auto store = std::move(*checkpoint_store::open(test_env(), dir.path()));
  database_settings s;
  s.conninfo = "host=127.0.0.1 port=1 dbname=fleet user=ops";
  s.connect_timeout_s = 2;
  database_component c(s, std::make_shared<store_stream_port>(*store));
  auto img = c.capture();
  REQUIRE_FALSE(img);
  CHECK(img.err().code == errc::database_unavailable);
  CHECK(exit_code(img.err().code) == 7);
  CHECK(img.err().message.find("host 127.0.0.1, port 1, database fleet") != std::string::npos);
  CHECK(store->chunk_count() == 0);
}

TEST_CASE("a version last seen that the store no longer has: the restore merges instead") {
  fixture f;
  const auto before = contents(f.db);
  auto target = f.checkpoint("before");
  f.edit();
  // Captured, but no checkpoint names it (its create failed, say): gc
  // takes its chunks, and the delta has nothing to start from.
  auto now = f.c->capture();
  REQUIRE(now.ok());
  REQUIRE(f.store->gc(1.0).ok());
  CHECK_FALSE(f.store->has_chunks(now->stored.at("public.pgbench_accounts")));
  auto plan = f.c->plan(*now, target, plan_request{});
  REQUIRE(plan.ok());
  REQUIRE(plan->steps.size() == 1);
  auto failed = f.c->apply(plan->steps[0], target);
  for (auto& x : failed)
    FAIL_CHECK(x.id << ": " << x.error);
  CHECK(contents(f.db) == before);
  CHECK(restored(*f.c)["public.pgbench_accounts"] == "merge");
}
