// runtime/pg against a real PostgreSQL 15: connection strings, the catalog,
// rows in key order as bytes, and one snapshot shared by sessions.
#include <doctest/doctest.h>

#include "tests/pg/pg_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

TEST_CASE("a connection string: parsed as libpq does, a password refused without echoing it") {
  auto t = parse_conninfo("host=db.example port=6543 dbname=fleet user=ops");
  REQUIRE(t.ok());
  CHECK(t->describe() == "host db.example, port 6543, database fleet");
  CHECK(t->user == "ops");
  auto uri = parse_conninfo("postgresql://ops@10.0.0.7:5433/fleet");
  REQUIRE(uri.ok());
  CHECK(uri->describe() == "host 10.0.0.7, port 5433, database fleet");
  for (const char* bad : {"host=h password=s3cret dbname=d", "postgresql://ops:s3cret@h/d"}) {
    auto r = parse_conninfo(bad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::config_error);
    CHECK(r.err().message.find("password") != std::string::npos);
    CHECK(r.err().message.find("s3cret") == std::string::npos);
  }
  auto garbage = parse_conninfo("host=h nonsense");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.err().code == errc::config_error);
  CHECK(garbage.err().message.find("[database] conninfo") != std::string::npos);
}

TEST_CASE("a server that is not there: one line naming host, port and database") {
  // Port 1: nothing listens there.
  auto s = pg_session::open("host=127.0.0.1 port=1 dbname=fleet user=ops", pg_options{2, 0});
  REQUIRE_FALSE(s);
  CHECK(s.err().code == errc::database_unavailable);
  CHECK(s.err().message.find("host 127.0.0.1, port 1, database fleet") != std::string::npos);
  CHECK(s.err().message.find('\n') == std::string::npos);
}

TEST_CASE("the catalog: user tables with their columns, keys and schema") {
  pg_database db;
  auto s = db.session();
  REQUIRE_FALSE(s->exec("CREATE SCHEMA app; "
                        "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, "
                        "  balance numeric(12,2) DEFAULT 0); "
                        "CREATE TABLE app.moves (acct int REFERENCES accounts(id), seq int, "
                        "  amount bigint, PRIMARY KEY (acct, seq)); "
                        "CREATE INDEX moves_amount ON app.moves (amount); "
                        "CREATE TABLE history (at timestamptz, note text); "
                        "CREATE TABLE jobs (id serial PRIMARY KEY, name text); "
                        "CREATE VIEW rich AS SELECT * FROM accounts WHERE balance > 100"));
  auto tables = s->tables();
  REQUIRE_MESSAGE(tables.ok(), (tables ? "" : tables.err().message));
  REQUIRE(tables->size() == 4); // the view is not a table
  CHECK((*tables)[0].label() == "app.moves");
  CHECK((*tables)[0].key_columns == std::vector<std::string>{"acct", "seq"});
  CHECK((*tables)[0].schema_text.find("FOREIGN KEY (acct) REFERENCES accounts(id)") !=
        std::string::npos);
  CHECK((*tables)[0].schema_text.find("CREATE INDEX moves_amount") != std::string::npos);
  CHECK((*tables)[1].label() == "public.accounts");
  CHECK((*tables)[1].columns == std::vector<std::string>{"id", "owner", "balance"});
  CHECK((*tables)[1].key_columns == std::vector<std::string>{"id"});
  CHECK((*tables)[1].schema_text.find("column balance numeric(12,2) default 0") !=
        std::string::npos);
  CHECK((*tables)[2].label() == "public.history");
  CHECK((*tables)[2].key_columns.empty());
  CHECK((*tables)[3].qualified() == "\"public\".\"jobs\"");

  // Schema text changes with the schema, not with the data.
  const std::string before = (*tables)[1].schema_text;
  REQUIRE_FALSE(s->exec("INSERT INTO accounts VALUES (1, 'a', 5)"));
  CHECK((*s->tables({"accounts"}))[0].schema_text == before);
  REQUIRE_FALSE(s->exec("ALTER TABLE accounts ADD COLUMN note text"));
  CHECK((*s->tables({"accounts"}))[0].schema_text != before);

  auto some = s->tables({"accounts", "app.moves"});
  REQUIRE(some.ok());
  CHECK(some->size() == 2);
  auto missing = s->tables({"accounts", "nope"});
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == errc::not_found);
  CHECK(missing.err().message.find("'nope'") != std::string::npos);
}

TEST_CASE("a table's rows come in key order as text COPY lines, every value as it is") {
  pg_database db;
  auto s = db.session();
  REQUIRE_FALSE(s->exec("CREATE TABLE t (k int, j int, v text, b bytea, f float8, "
                        "PRIMARY KEY (k, j)); "
                        "INSERT INTO t VALUES (3, 1, 'three', '\\x00ff', 0.1), "
                        "(1, 2, E'tab\\there\\nnewline \\\\ back', NULL, '-0'::float8), "
                        "(1, 1, 'ünïcode', '\\x', 1e300), (2, 1, NULL, NULL, 'NaN')"));
  auto tables = s->tables();
  REQUIRE(tables.ok());
  REQUIRE_FALSE(s->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  auto pull = s->copy_out(tables->front());
  REQUIRE_MESSAGE(pull.ok(), (pull ? "" : pull.err().message));
  CHECK(drain(*pull) == "1\t1\tünïcode\t\\\\x\t1e+300\n"
                        "1\t2\ttab\\there\\nnewline \\\\ back\t\\N\t-0\n"
                        "2\t1\t\\N\t\\N\tNaN\n"
                        "3\t1\tthree\t\\\\x00ff\t0.1\n");
  REQUIRE_FALSE(s->exec("COMMIT"));

  // Without a key: ordered by every column, so equal contents give equal bytes.
  REQUIRE_FALSE(s->exec("CREATE TABLE h (a int, b text); "
                        "INSERT INTO h VALUES (2, 'x'), (1, 'z'), (1, 'y'), (1, 'y')"));
  auto h = s->tables({"h"});
  REQUIRE(h.ok());
  auto ph = s->copy_out(h->front());
  REQUIRE(ph.ok());
  CHECK(drain(*ph) == "1\ty\n1\ty\n1\tz\n2\tx\n");
}

TEST_CASE("sessions joined to an exported snapshot read one instant, whatever commits after") {
  pg_database db;
  auto setup = db.session();
  REQUIRE_FALSE(setup->exec("CREATE TABLE a (id int PRIMARY KEY, v int); "
                            "CREATE TABLE b (id int PRIMARY KEY, v int); "
                            "INSERT INTO a VALUES (1, 10); INSERT INTO b VALUES (1, 20)"));
  auto tables = setup->tables();
  REQUIRE(tables.ok());
  auto exporter = db.session();
  auto id = exporter->begin_exported_snapshot();
  REQUIRE_MESSAGE(id.ok(), (id ? "" : id.err().message));
  // Another client changes both tables after the instant.
  REQUIRE_FALSE(setup->exec("UPDATE a SET v = 11; INSERT INTO b VALUES (2, 21)"));
  auto joiner = db.session();
  REQUIRE_FALSE(joiner->join_snapshot(*id));
  auto pa = exporter->copy_out((*tables)[0]);
  auto pb = joiner->copy_out((*tables)[1]);
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  CHECK(drain(*pa) == "1\t10\n");
  CHECK(drain(*pb) == "1\t20\n");
  REQUIRE_FALSE(joiner->exec("COMMIT"));
  REQUIRE_FALSE(exporter->exec("COMMIT"));
  // A fresh read sees the changes.
  auto fresh = setup->copy_out((*tables)[1]);
  REQUIRE(fresh.ok());
  CHECK(drain(*fresh) == "1\t20\n2\t21\n");
  auto bad = joiner->join_snapshot("'; DROP TABLE a; --");
  REQUIRE(bad);
  CHECK(bad.code == errc::invalid_argument);
}

TEST_CASE("sequences with their values, and timeouts that name the server") {
  pg_database db;
  auto s = db.session();
  REQUIRE_FALSE(s->exec("CREATE TABLE jobs (id serial PRIMARY KEY); "
                        "CREATE SEQUENCE spare; "
                        "INSERT INTO jobs DEFAULT VALUES; INSERT INTO jobs DEFAULT VALUES"));
  auto seqs = s->sequences();
  REQUIRE(seqs.ok());
  REQUIRE(seqs->size() == 2);
  CHECK((*seqs)[0].name == "jobs_id_seq");
  CHECK((*seqs)[0].last_value == 2);
  CHECK((*seqs)[0].is_called);
  CHECK((*seqs)[1].name == "spare");
  CHECK_FALSE((*seqs)[1].is_called);
  auto v = s->server_version();
  REQUIRE(v.ok());
  CHECK(v->rfind("PostgreSQL 15.", 0) == 0);

  // A lock held elsewhere: the statement gives up after the timeout.
  auto holder = db.session();
  REQUIRE_FALSE(holder->exec("BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"));
  auto waiter = pg_session::open(db.conninfo(), pg_options{5, 200});
  REQUIRE(waiter.ok());
  auto r = (*waiter)->query("SELECT count(*) FROM jobs");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::timeout);
  CHECK(r.err().message.find("database " + db.name()) != std::string::npos);
  REQUIRE_FALSE(holder->exec("ROLLBACK"));
}
