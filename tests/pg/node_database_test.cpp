// A node with the database component ([database]) on a real PostgreSQL:
// checkpoint and rollback through the node's commands, a server that goes
// down and comes back, and an optional database that is not there.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "tests/actors/node_fixture.hpp"
#include "tests/pg/pg_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;
using nlohmann::json;

namespace {

std::string contents(const std::string& conninfo) {
  return database_contents(conninfo);
}

void sql(const std::string& conninfo, const std::string& text) {
  auto s = pg_session::open(conninfo);
  REQUIRE(s.ok());
  REQUIRE_FALSE((*s)->exec(text));
}

constexpr const char* schema =
    "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int); "
    "CREATE TABLE lines (order_id int REFERENCES orders(id) DEFERRABLE, note text); "
    "INSERT INTO orders (item, qty) SELECT 'item ' || g, g FROM generate_series(1, 300) g; "
    "INSERT INTO lines SELECT g, 'line' FROM generate_series(1, 300, 3) g";

} // namespace

TEST_CASE("a node with a database: checkpoint, edits, rollback: the database as checkpointed") {
  pg_database db;
  sql(db.conninfo(), schema);
  node_fixture f(false, 0, [&](node_config& c) { c.database.conninfo = db.conninfo(); });
  auto cp = f.ok("checkpoint.create", {{"name", "with database"}});
  CHECK(cp["capture"]["database"]["tables"] == 2);
  CHECK(cp["capture"]["database"]["rows"] == 400);
  CHECK(cp["capture"]["database"]["database"] == db.name());
  const std::string id = cp["id"];
  const auto before = contents(db.conninfo());
  // `checkpoint show` names the database, each table with its rows, and the sequences.
  auto shown = f.ok("checkpoint.show", {{"id", id}});
  CHECK(shown["database"]["database"] == db.name());
  CHECK(shown["database"]["sequences"] == 1);
  REQUIRE(shown["database"]["tables"].size() == 2);
  CHECK(shown["database"]["tables"][0]["table"] == "public.lines");
  CHECK(shown["database"]["tables"][0]["rows"] == 100);
  CHECK(shown["database"]["tables"][1]["table"] == "public.orders");
  CHECK(shown["database"]["tables"][1]["rows"] == 300);
  CHECK(shown["database"]["tables"][1]["sha256"].get<std::string>().size() == 64);

  sql(db.conninfo(), "INSERT INTO orders (item) VALUES ('late'); UPDATE orders SET qty = 0 "
                     "WHERE id < 50; DELETE FROM lines WHERE order_id > 200");
  const auto edited = contents(db.conninfo());
  REQUIRE(edited != before);
  auto plan = f.ok("rollback", {{"id", id}, {"dry_run", true}});
  auto& tables = plan["plan"]["database"]["tables"];
  REQUIRE(tables.size() == 2);
  CHECK(tables[0]["table"] == "public.lines");
  CHECK(tables[0]["rows_checkpoint"] == 100);
  CHECK(tables[0]["rows_now"] == 67);
  CHECK(tables[0]["differs"] == true);
  CHECK(tables[1]["rows_now"] == 301);
  CHECK(plan["plan"]["database"]["sequences_differ"] == true);

  auto r = f.ok("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r["success"] == true);
  CHECK(contents(db.conninfo()) == before);
  // The pre-rollback checkpoint holds the edited database: undo puts it back.
  auto undo = f.ok("rollback", {{"undo", true}, {"ack_critical", true}});
  CHECK(undo["success"] == true);
  CHECK(contents(db.conninfo()) == edited);
}

TEST_CASE("PostgreSQL stopped: the checkpoint fails in one line, nothing half-written; "
          "restarted: the next one works") {
  pg_private_cluster pg;
  sql(pg.conninfo(), schema);
  node_fixture f(false, 0, [&](node_config& c) { c.database.conninfo = pg.conninfo(); });
  f.ok("checkpoint.create", {{"name", "first"}});
  const auto listed = f.ok("checkpoint.list")["checkpoints"].size();

  pg.pause();
  auto failed = f.ctl("checkpoint.create", {{"name", "while down"}});
  REQUIRE(failed.code != 0);
  CHECK(static_cast<errc>(failed.code) == errc::database_unavailable);
  CHECK(exit_code(static_cast<errc>(failed.code)) == 7);
  auto target = parse_conninfo(pg.conninfo());
  REQUIRE(target.ok());
  CHECK(failed.message.find("PostgreSQL at " + target->describe()) != std::string::npos);
  CHECK(failed.message.find('\n') == std::string::npos);
  CHECK(f.ok("checkpoint.list")["checkpoints"].size() == listed);
  CHECK(f.ok("store.check", {{"read_data", true}})["clean"] == true);

  pg.resume();
  // The broken session is replaced on next use: the first checkpoint works.
  auto again = f.ctl("checkpoint.create", {{"name", "after restart"}});
  CHECK_MESSAGE(again.code == 0, again.message);
  CHECK(f.ok("checkpoint.list")["checkpoints"].size() == listed + 1);
}

TEST_CASE("the database's breaker opens after failure_threshold failed checkpoints; a "
          "checkpoint works within 5 s of the server's return") {
  pg_private_cluster pg;
  sql(pg.conninfo(), schema);
  node_fixture f(false, 0, [&](node_config& c) {
    c.database.conninfo = pg.conninfo();
    c.database.failure_threshold = 2;
  });
  f.ok("checkpoint.create", {{"name", "first"}});
  pg.pause();
  for (int i = 0; i < 2; ++i) {
    auto r = f.ctl("checkpoint.create", {{"name", "down"}});
    CHECK(static_cast<errc>(r.code) == errc::database_unavailable);
  }
  // Open: the third fails at once, without trying the server.
  auto fast = f.ctl("checkpoint.create", {{"name", "open"}});
  CHECK(static_cast<errc>(fast.code) == errc::circuit_open);
  CHECK(exit_code(static_cast<errc>(fast.code)) == 7);
  pg.resume();
  control_reply again;
  for (int i = 0; i < 20; ++i) { // 5 s
    again = f.ctl("checkpoint.create", {{"name", "back"}});
    if (again.code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  CHECK_MESSAGE(again.code == 0, again.message);
}

TEST_CASE("an optional database that cannot be reached: recorded absent, with a warning") {
  node_fixture f(false, 0, [&](node_config& c) {
    c.database.conninfo = "host=127.0.0.1 port=1 dbname=fleet user=ops";
    c.database.optional = true;
  });
  auto cp = f.ok("checkpoint.create", {{"name", "no database"}});
  CHECK(cp["warnings"].dump().find("host 127.0.0.1, port 1, database fleet") != std::string::npos);
  CHECK(cp["components"].dump().find("database") == std::string::npos);
  CHECK(cp["components"].dump().find("configuration") != std::string::npos);
}
