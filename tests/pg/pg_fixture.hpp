// The PostgreSQL the database tests run against: the cluster scripts/test
// started (DSMIL_PG_CONNINFO), else one started here with scripts/postgres
// (DSMIL_SOURCE_ROOT) and stopped at exit. Each test gets a fresh database.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "runtime/pg/pg_session.hpp"

namespace dsmil::test {

class pg_cluster {
public:
  static pg_cluster& get() {
    static pg_cluster c;
    return c;
  }
  /// The superuser's connection string, to database `db`.
  std::string conninfo(const std::string& db = "postgres") const { return base_ + " dbname=" + db; }

private:
  pg_cluster() {
    if (const char* c = std::getenv("DSMIL_PG_CONNINFO"); c != nullptr && *c != '\0') {
      base_ = c;
      return;
    }
    const char* root = std::getenv("DSMIL_SOURCE_ROOT");
    if (root == nullptr)
      throw std::runtime_error("no PostgreSQL: run through scripts/test (DSMIL_PG_CONNINFO) or "
                               "meson test (DSMIL_SOURCE_ROOT)");
    char tmpl[] = "/tmp/dsmil-pg-test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    script_ = std::string(root) + "/scripts/postgres";
    FILE* p = ::popen((script_ + " start " + dir_).c_str(), "r");
    char line[512] = {0};
    if (p == nullptr || std::fgets(line, sizeof(line), p) == nullptr) {
      if (p != nullptr) ::pclose(p);
      throw std::runtime_error("scripts/postgres start failed");
    }
    ::pclose(p);
    base_ = line;
    while (!base_.empty() && base_.back() == '\n')
      base_.pop_back();
  }
  ~pg_cluster() {
    if (!dir_.empty()) std::system((script_ + " stop " + dir_).c_str());
  }

  std::string base_, dir_, script_;
};

/// A database of its own for one test, dropped after.
class pg_database {
public:
  pg_database() {
    std::random_device rd;
    name_ = "dsmil_t" + std::to_string(rd() % 1000000000u);
    auto admin = pg_session::open(pg_cluster::get().conninfo());
    if (!admin) throw std::runtime_error(admin.err().message);
    admin_ = std::move(*admin);
    if (auto err = admin_->exec("CREATE DATABASE " + name_)) throw std::runtime_error(err.message);
  }
  ~pg_database() { admin_->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"); }
  const std::string& name() const { return name_; }
  std::string conninfo() const { return pg_cluster::get().conninfo(name_); }
  /// A new session on this database (fails the test when it cannot connect).
  std::unique_ptr<pg_session> session() const {
    auto s = pg_session::open(conninfo());
    if (!s) throw std::runtime_error(s.err().message);
    return std::move(*s);
  }

private:
  std::string name_;
  std::unique_ptr<pg_session> admin_;
};

/// A cluster of its own, for a test that stops and restarts the server
/// (scripts/postgres pause / resume); removed at the end.
class pg_private_cluster {
public:
  pg_private_cluster() {
    const char* root = std::getenv("DSMIL_SOURCE_ROOT");
    if (root == nullptr)
      throw std::runtime_error("DSMIL_SOURCE_ROOT is not set (meson test sets it)");
    script_ = std::string(root) + "/scripts/postgres";
    char tmpl[] = "/tmp/dsmil-pg-own.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    FILE* p = ::popen((script_ + " start " + dir_).c_str(), "r");
    char line[512] = {0};
    const bool got = p != nullptr && std::fgets(line, sizeof(line), p) != nullptr;
    if (p != nullptr) ::pclose(p);
    if (!got) throw std::runtime_error("scripts/postgres start failed");
    base_ = line;
    while (!base_.empty() && base_.back() == '\n')
      base_.pop_back();
  }
  ~pg_private_cluster() { std::system((script_ + " stop " + dir_).c_str()); }
  std::string conninfo(const std::string& db = "postgres") const { return base_ + " dbname=" + db; }
  /// The server goes down (fast shutdown), or comes back on its port.
  void pause() { run("pause"); }
  void resume() { run("resume"); }

private:
  void run(const char* what) {
    if (std::system((script_ + " " + what + " " + dir_).c_str()) != 0)
      throw std::runtime_error(std::string("scripts/postgres ") + what + " failed");
  }
  std::string base_, dir_, script_;
};

/// Everything a pull gives, to its end.
inline std::string drain(const pg_session::byte_pull& pull) {
  std::string out;
  uint8_t buf[7]; // small, so that lines cross buffer ends
  for (;;) {
    auto n = pull(buf, sizeof(buf));
    if (!n) throw std::runtime_error(n.err().message);
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
}

/// Every table's rows (ordered by every column, so independent of how the
/// database component reads them) and every sequence's value, as one text,
/// read in one snapshot: two states compare equal when this does.
inline std::string database_contents(const std::string& conninfo) {
  auto s = pg_session::open(conninfo);
  if (!s) throw std::runtime_error(s.err().message);
  auto check = [](const status& err) {
    if (err) throw std::runtime_error(err.message);
  };
  check((*s)->exec("BEGIN ISOLATION LEVEL REPEATABLE READ"));
  auto tables = (*s)->tables();
  if (!tables) throw std::runtime_error(tables.err().message);
  std::string out;
  for (auto t : *tables) {
    t.key_columns.clear(); // copy_out orders by every column then
    auto pull = (*s)->copy_out(t);
    if (!pull) throw std::runtime_error(pull.err().message);
    out += t.label() + "\n" + drain(*pull);
  }
  auto seqs = (*s)->sequences();
  if (!seqs) throw std::runtime_error(seqs.err().message);
  for (auto& q : *seqs)
    out += q.schema + "." + q.name + " " + std::to_string(q.last_value) +
           (q.is_called ? " called\n" : "\n");
  check((*s)->exec("COMMIT"));
  return out;
}

} // namespace dsmil::test
