// The database component connected as a role that is not a superuser (the
// way most deployments run it): the restore defers deferrable foreign keys,
// keeps the user triggers of the tables it owns from firing (and leaves
// them as they were), and a non-deferrable foreign key its order trips
// fails the restore with the database unchanged.
#include <doctest/doctest.h>

#include "runtime/components/checkpoint_images.hpp"
#include "runtime/pg/database_component.hpp"
#include "tests/pg/checkpoint_database.hpp"
#include "tests/pg/pg_fixture.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// A login role of its own (cluster-wide), dropped after the database that
// holds its objects: declared before the pg_database.
struct plain_role {
  std::string name = "dsmil_role_" + std::to_string(std::random_device{}() % 1000000000u);
  std::unique_ptr<pg_session> admin;
  plain_role() {
    auto s = pg_session::open(pg_cluster::get().conninfo());
    REQUIRE_MESSAGE(s.ok(), (s ? "" : s.err().message));
    admin = std::move(*s);
    REQUIRE_FALSE(admin->exec("CREATE ROLE " + name + " LOGIN NOSUPERUSER"));
  }
  ~plain_role() { admin->exec("DROP ROLE IF EXISTS " + name); }
};

struct role_fixture {
  plain_role role;
  pg_database db;
  env_dir dir;
  std::unique_ptr<checkpoint_store> store;
  std::shared_ptr<store_stream_port> port;
  std::unique_ptr<database_component> c;

  explicit role_fixture(const std::string& schema) {
    REQUIRE_FALSE(db.session()->exec("GRANT CREATE, USAGE ON SCHEMA public TO " + role.name));
    REQUIRE_FALSE(as_role()->exec(schema));
    store = std::move(*checkpoint_store::open(test_env(), dir.path()));
    port = std::make_shared<store_stream_port>(*store);
    database_settings s;
    s.conninfo = conninfo();
    c = std::make_unique<database_component>(s, port);
  }
  std::string conninfo() const { return db.conninfo() + " user=" + role.name; }
  std::unique_ptr<pg_session> as_role() const {
    auto s = pg_session::open(conninfo());
    REQUIRE_MESSAGE(s.ok(), (s ? "" : s.err().message));
    return std::move(*s);
  }
  component_image checkpoint(const std::string& name) {
    return checkpoint_database(*store, *c, name);
  }
  std::string contents() const { return database_contents(db.conninfo()); }
};

} // namespace

TEST_CASE(
    "as a plain role: deferred references, owned tables' triggers kept quiet and as they were") {
  role_fixture f(
      "CREATE TABLE parent (id int PRIMARY KEY, name text); "
      "CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent(id) DEFERRABLE, v text); "
      "CREATE TABLE audit (id serial PRIMARY KEY, what text); "
      "CREATE FUNCTION log_child() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "  INSERT INTO audit (what) VALUES (TG_OP || ' ' || coalesce(NEW.id, OLD.id)); "
      "  RETURN NULL; END $$; "
      "CREATE TRIGGER child_audit AFTER INSERT OR UPDATE OR DELETE ON child "
      "  FOR EACH ROW EXECUTE FUNCTION log_child(); "
      "CREATE TRIGGER child_off AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION log_child(); "
      "ALTER TABLE child DISABLE TRIGGER child_off; "
      "INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 300) g; "
      "INSERT INTO child SELECT g, g, 'v' FROM generate_series(1, 300) g");
  REQUIRE_FALSE(*f.as_role()->is_superuser());
  const auto before = f.contents();
  auto target = f.checkpoint("before");
  REQUIRE_FALSE(
      f.as_role()->exec("DELETE FROM child WHERE id > 250; DELETE FROM parent WHERE id > 250; "
                        "UPDATE child SET v = 'x' WHERE id % 10 = 0; "
                        "INSERT INTO parent SELECT g, 'new' FROM generate_series(301, 320) g"));
  const auto edited = f.contents();
  REQUIRE(edited != before);
  auto now = f.checkpoint("after edits");
  auto plan = f.c->plan(now, target, plan_request{});
  REQUIRE_MESSAGE(plan.ok(), (plan ? "" : plan.err().message));
  REQUIRE(plan->steps.size() == 1);

  // child goes back before parent (name order): its rows name parents not
  // there yet, which the deferred check finds at COMMIT. The audit trigger
  // does not fire: audit is as checkpointed, not 60 rows longer.
  auto failed = f.c->apply(plan->steps[0], target);
  for (auto& x : failed)
    FAIL_CHECK(x.id << ": " << x.error);
  CHECK(f.contents() == before);
  CHECK(f.c->read_back(plan->steps[0], target).empty());
  auto states = f.as_role()->query(
      "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'child'::regclass AND NOT "
      "tgisinternal ORDER BY 1");
  REQUIRE(states.ok());
  CHECK(*states == std::vector<std::vector<std::string>>{{"child_audit", "O"}, {"child_off", "D"}});
  // The triggers fire again for everyone else.
  REQUIRE_FALSE(f.as_role()->exec("INSERT INTO child VALUES (1000, 1, 'after')"));
  auto logged = f.as_role()->query("SELECT count(*) FROM audit WHERE what = 'INSERT 1000'");
  REQUIRE(logged.ok());
  CHECK((*logged)[0][0] == "1");
}

TEST_CASE("as a plain role: a non-deferrable reference the restore's order trips changes nothing") {
  role_fixture f("CREATE TABLE b_parent (id int PRIMARY KEY); "
                 "CREATE TABLE a_child (id int PRIMARY KEY, p int REFERENCES b_parent(id)); "
                 "INSERT INTO b_parent SELECT generate_series(1, 50); "
                 "INSERT INTO a_child SELECT g, g FROM generate_series(1, 50) g");
  auto target = f.checkpoint("before");
  REQUIRE_FALSE(
      f.as_role()->exec("DELETE FROM a_child WHERE id > 40; DELETE FROM b_parent WHERE id > 40"));
  const auto edited = f.contents();
  auto now = f.checkpoint("after edits");
  auto plan = f.c->plan(now, target, plan_request{});
  REQUIRE(plan.ok());
  REQUIRE(plan->steps.size() == 1);
  // a_child first: its rows 41-50 name parents b_parent gets only after.
  auto failed = f.c->apply(plan->steps[0], target);
  REQUIRE_FALSE(failed.empty());
  CHECK(failed[0].error.find("foreign key") != std::string::npos);
  CHECK(f.contents() == edited);
  CHECK(f.c->read_back(plan->steps[0], now).empty());
}
