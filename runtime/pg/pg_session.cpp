#include "runtime/pg/pg_session.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include <libpq-fe.h>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

namespace dsmil {

namespace {

std::string quote_ident(const std::string& s) {
  return sql_quoted(s, '"');
}

std::string first_line(const std::string& s) {
  auto end = s.find('\n');
  std::string line = s.substr(0, end);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
    line.pop_back();
  if (line.rfind("ERROR:  ", 0) == 0) line = line.substr(8);
  return line;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string os_user() {
  if (auto* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return "postgres";
}

// The output of text COPY and of every value as text, independent of the
// server's and the client's defaults: the same rows give the same bytes.
constexpr const char* session_settings =
    "SET client_encoding TO 'UTF8'; SET DateStyle TO 'ISO, YMD'; "
    "SET IntervalStyle TO 'postgres'; SET TimeZone TO 'UTC'; SET extra_float_digits TO 3; "
    "SET bytea_output TO 'hex'";

} // namespace

std::string sql_quoted(const std::string& s, char q) {
  std::string out(1, q);
  for (char c : s) {
    if (c == q) out += q;
    out += c;
  }
  return out + q;
}

std::string pg_target::describe() const {
  return "host " + host + ", port " + port + ", database " + database;
}

result<pg_target> parse_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err != nullptr ? first_line(err) : "out of memory";
    if (err != nullptr) PQfreemem(err);
    return make_error(errc::config_error,
                      "[database] conninfo is not a libpq connection string (" + why + ")");
  }
  std::map<std::string, std::string> given;
  for (auto* o = opts; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') given[o->keyword] = o->val;
  PQconninfoFree(opts);
  if (given.count("password"))
    return make_error(errc::config_error,
                      "[database] conninfo holds a password: remove it and put it in a "
                      "PGPASSFILE (or the file [database] passfile names)");
  auto pick = [&](const char* key, const char* env, const std::string& fallback) {
    auto it = given.find(key);
    return it != given.end() ? it->second : env_or(env, fallback);
  };
  pg_target t;
  t.host = given.count("hostaddr") && !given.count("host") ? given["hostaddr"]
                                                           : pick("host", "PGHOST", "");
  if (t.host.empty()) t.host = "/var/run/postgresql";
  t.port = pick("port", "PGPORT", "5432");
  t.user = pick("user", "PGUSER", os_user());
  t.database = pick("dbname", "PGDATABASE", t.user);
  return t;
}

std::string pg_table::qualified() const {
  return quote_ident(schema) + "." + quote_ident(name);
}
std::string pg_table::label() const {
  return schema + "." + name;
}
std::string pg_sequence::qualified() const {
  return quote_ident(schema) + "." + quote_ident(name);
}

struct pg_session::impl {
  pg_target target;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<pqxx::nontransaction> tx;

  // One line for a failure: the server by name when it is the connection.
  error fail(const std::exception& e) const {
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr)
      return make_error(errc::database_unavailable,
                        "PostgreSQL at " + target.describe() +
                            " is not reachable: " + first_line(e.what()));
    if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
      const std::string state = sql->sqlstate();
      if (state == "55P03" || state == "57014") // lock_not_available, query_canceled
        return make_error(errc::timeout, "PostgreSQL at " + target.describe() +
                                             ": timed out: " + first_line(e.what()));
      if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) // connection, shutdown
        return make_error(errc::database_unavailable,
                          "PostgreSQL at " + target.describe() +
                              " is not reachable: " + first_line(e.what()));
    }
    return make_error(errc::io_error,
                      "PostgreSQL at " + target.describe() + ": " + first_line(e.what()));
  }

  template <typename F> auto guarded(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      return fail(e);
    }
  }
};

pg_session::pg_session(std::unique_ptr<impl> p) : p_(std::move(p)) {}
pg_session::~pg_session() = default;

const pg_target& pg_session::target() const {
  return p_->target;
}

result<std::unique_ptr<pg_session>> pg_session::open(const std::string& conninfo,
                                                     const pg_options& options) {
  auto target = parse_conninfo(conninfo);
  if (!target) return target.err();
  auto p = std::make_unique<impl>();
  p->target = *target;
  std::string full = conninfo;
  const bool uri = full.rfind("postgresql://", 0) == 0 || full.rfind("postgres://", 0) == 0;
  auto add = [&](const std::string& key, const std::string& value) {
    if (uri)
      full += (full.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    else
      full += " " + key + "=" + sql_quoted(value, '\'');
  };
  if (full.find("connect_timeout") == std::string::npos)
    add("connect_timeout", std::to_string(options.connect_timeout_s));
  if (!options.passfile.empty()) add("passfile", options.passfile);
  try {
    p->conn = std::make_unique<pqxx::connection>(full);
    p->tx = std::make_unique<pqxx::nontransaction>(*p->conn);
    p->tx->exec(session_settings);
    if (options.statement_timeout_ms > 0) {
      const auto ms = std::to_string(options.statement_timeout_ms);
      p->tx->exec("SET lock_timeout TO " + ms + "; SET statement_timeout TO " + ms);
    }
  } catch (const std::exception& e) {
    return p->fail(e);
  }
  return std::unique_ptr<pg_session>(new pg_session(std::move(p)));
}

result<std::string> pg_session::server_version() {
  auto rows = query("SHOW server_version");
  if (!rows) return rows.err();
  if (rows->empty() || rows->front().empty())
    return make_error(errc::io_error,
                      "PostgreSQL at " + p_->target.describe() + ": no server_version");
  const auto& v = rows->front().front();
  return "PostgreSQL " + v.substr(0, v.find(' '));
}

status pg_session::exec(const std::string& sql) {
  return p_->guarded([&]() -> status {
    p_->tx->exec(sql);
    return {};
  });
}

result<std::vector<std::vector<std::string>>> pg_session::query(const std::string& sql) {
  return p_->guarded([&]() -> result<std::vector<std::vector<std::string>>> {
    auto r = p_->tx->exec(sql);
    std::vector<std::vector<std::string>> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      std::vector<std::string> values;
      for (const auto& field : row)
        values.emplace_back(field.is_null() ? "" : field.c_str());
      out.push_back(std::move(values));
    }
    return out;
  });
}

result<std::vector<pg_table>> pg_session::tables(const std::vector<std::string>& only) {
  auto rows = query("SELECT n.nspname, c.relname, c.oid FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', "
                    "'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
                    "AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2");
  if (!rows) return rows.err();
  std::vector<pg_table> out;
  std::vector<std::string> oids;
  for (auto& r : *rows) {
    pg_table t;
    t.schema = r[0];
    t.name = r[1];
    const bool wanted =
        only.empty() || std::any_of(only.begin(), only.end(), [&](const std::string& o) {
          return o == t.label() || (t.schema == "public" && o == t.name);
        });
    if (!wanted) continue;
    out.push_back(std::move(t));
    oids.push_back(r[2]);
  }
  for (auto& o : only)
    if (std::none_of(out.begin(), out.end(), [&](const pg_table& t) {
          return o == t.label() || (t.schema == "public" && o == t.name);
        }))
      return make_error(errc::not_found, "[database] tables names '" + o + "', which " +
                                             p_->target.describe() + " does not have");
  for (size_t k = 0; k < out.size(); ++k) {
    auto& t = out[k];
    const std::string& oid = oids[k];
    auto cols = query("SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
                      "coalesce(pg_get_expr(d.adbin, d.adrelid), ''), attgenerated "
                      "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
                      "AND d.adnum = a.attnum WHERE a.attrelid = " +
                      oid + " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum");
    if (!cols) return cols.err();
    std::string text = "table " + t.label() + "\n";
    for (auto& c : *cols) {
      t.columns.push_back(c[0]);
      if (!c[4].empty()) t.generated.push_back(c[0]);
      text += "column " + c[0] + " " + c[1] + (c[2] == "t" ? " not null" : "") +
              (c[3].empty() ? "" : " default " + c[3]) +
              (c[4].empty() ? "" : " generated " + c[4]) + "\n";
    }
    auto key = query("SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY "
                     "k(attnum, ord), pg_attribute a WHERE i.indrelid = " +
                     oid +
                     " AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum "
                     "ORDER BY k.ord");
    if (!key) return key.err();
    for (auto& c : *key)
      t.key_columns.push_back(c[0]);
    auto defs = query("SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) "
                      "FROM pg_constraint WHERE conrelid = " +
                      oid +
                      " UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index "
                      "WHERE indrelid = " +
                      oid +
                      " UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger "
                      "WHERE tgrelid = " +
                      oid + " AND NOT tgisinternal ORDER BY 1");
    if (!defs) return defs.err();
    for (auto& d : *defs)
      text += d[0] + "\n";
    t.schema_text = std::move(text);
  }
  return out;
}

result<std::vector<pg_sequence>> pg_session::sequences() {
  auto rows = query("SELECT schemaname, sequencename FROM pg_sequences ORDER BY 1, 2");
  if (!rows) return rows.err();
  std::vector<pg_sequence> out;
  for (auto& r : *rows) {
    pg_sequence s;
    s.schema = r[0];
    s.name = r[1];
    auto v = query("SELECT last_value, is_called FROM " + s.qualified());
    if (!v) return v.err();
    if (v->empty()) continue;
    s.last_value = std::stoll((*v)[0][0]);
    s.is_called = (*v)[0][1] == "t";
    out.push_back(std::move(s));
  }
  return out;
}

result<std::string> pg_session::begin_exported_snapshot() {
  if (auto err = exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return err;
  auto rows = query("SELECT pg_export_snapshot()");
  if (!rows) return rows.err();
  return (*rows)[0][0];
}

status pg_session::join_snapshot(const std::string& snapshot_id) {
  const bool plain =
      !snapshot_id.empty() && std::all_of(snapshot_id.begin(), snapshot_id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || c == '-';
      });
  if (!plain) return make_error(errc::invalid_argument, "not a snapshot id: '" + snapshot_id + "'");
  if (auto err = exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return err;
  return exec("SET TRANSACTION SNAPSHOT " + sql_quoted(snapshot_id, '\''));
}

result<pg_session::byte_pull> pg_session::copy_out(const pg_table& table) {
  std::string order;
  for (auto& c : table.key_columns.empty() ? table.columns : table.key_columns)
    order += (order.empty() ? "" : ", ") + quote_ident(c);
  const std::string select = "(SELECT * FROM ONLY " + table.qualified() +
                             (order.empty() ? "" : " ORDER BY " + order) + ")";
  struct state {
    std::unique_ptr<pqxx::stream_from> from;
    std::string line;
    size_t at = 0;
    bool done = false;
  };
  auto st = std::make_shared<state>();
  if (auto err = p_->guarded([&]() -> status {
        st->from = std::make_unique<pqxx::stream_from>(*p_->tx, select);
        return {};
      }))
    return err;
  impl* p = p_.get();
  return byte_pull([st, p](uint8_t* buf, size_t cap) -> result<size_t> {
    size_t n = 0;
    while (n < cap) {
      if (st->at == st->line.size()) {
        if (st->done) break;
        try {
          if (!st->from->get_raw_line(st->line)) {
            st->done = true;
            st->line.clear();
            st->at = 0;
            break;
          }
        } catch (const std::exception& e) {
          st->done = true;
          return p->fail(e);
        }
        // libpqxx 6.4 keeps the line's end; a line is whole with it.
        if (st->line.empty() || st->line.back() != '\n') st->line += '\n';
        st->at = 0;
      }
      const size_t k = std::min(cap - n, st->line.size() - st->at);
      std::copy_n(st->line.data() + st->at, k, buf + n);
      st->at += k;
      n += k;
    }
    return n;
  });
}

status pg_session::copy_in(const std::string& table_sql,
                           const std::function<status(const byte_sink&)>& feed) {
  return p_->guarded([&]() -> status {
  // libpqxx 6.4 keeps stream_to's raw lines private; tablewriter, its
  // older class, is the public way to hand COPY text on as it is.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pqxx::tablewriter to(*p_->tx, table_sql);
#pragma GCC diagnostic pop
    // libpqxx ends what it is given with a line's end: whole lines go in
    // (many at once), the rest waits for the next run.
    std::string pending;
    auto err = feed([&](std::string_view bytes) -> status {
      pending.append(bytes.data(), bytes.size());
      auto last = pending.rfind('\n');
      if (last == std::string::npos) return {};
      to.write_raw_line(pending.substr(0, last));
      pending.erase(0, last + 1);
      return {};
    });
    if (!err && !pending.empty())
      err = make_error(errc::integrity_error, "the rows for " + table_sql + " end mid-line");
    // What was loaded before an error stays in `table_sql` until the caller
    // rolls its transaction back.
    to.complete();
    return err;
  });
}

result<bool> pg_session::is_superuser() {
  auto rows = query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
  if (!rows) return rows.err();
  return !rows->empty() && (*rows)[0][0] == "t";
}

} // namespace dsmil
