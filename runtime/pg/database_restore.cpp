// The database component's restore: apply (one transaction that merges the
// checkpoint's rows into the tables that differ) and read back.
#include <algorithm>
#include <optional>

#include "runtime/pg/database_component.hpp"
#include "runtime/pg/database_image.hpp"
#include "runtime/pg/pg_session.hpp"
#include "runtime/pg/row_delta.hpp"

namespace dsmil {

namespace {

std::string ident(const std::string& s) {
  return sql_quoted(s, '"');
}

// "p.a, p.b" for `cols`, each prefixed by `alias` (none when empty).
std::string column_list(const std::vector<std::string>& cols, const std::string& alias) {
  std::string out;
  for (auto& c : cols)
    out += (out.empty() ? "" : ", ") + (alias.empty() ? "" : alias + ".") + ident(c);
  return out;
}

// "(d.k1, d.k2) = (s.k1, s.k2)"
std::string key_match(const pg_table& t) {
  return "(" + column_list(t.key_columns, "d") + ") = (" + column_list(t.key_columns, "s") + ")";
}

// The columns a restore writes: all but those the server computes.
std::vector<std::string> writable(const pg_table& t) {
  std::vector<std::string> out;
  for (auto& c : t.columns)
    if (std::find(t.generated.begin(), t.generated.end(), c) == t.generated.end()) out.push_back(c);
  return out;
}

// Each statement's count of rows, for the reply.
struct merge_counts {
  uint64_t deleted = 0, updated = 0, inserted = 0;
};

result<uint64_t> count_of(pg_session& db, const std::string& sql) {
  auto rows = db.query("WITH changed AS (" + sql + " RETURNING 1) SELECT count(*) FROM changed");
  if (!rows) return rows.err();
  return std::stoull((*rows)[0][0]);
}

// Puts the rows of `stage` into `t`: by key, touching only the rows that
// differ; without a key, or when `replace`, all of them.
status merge(pg_session& db, const pg_table& t, const std::string& stage, bool replace,
             merge_counts& counts) {
  const std::string table = "ONLY " + t.qualified();
  const auto cols = writable(t);
  const std::string insert = "INSERT INTO " + t.qualified() + " AS d (" + column_list(cols, "") +
                             ") OVERRIDING SYSTEM VALUE SELECT " + column_list(cols, "s") +
                             " FROM " + stage + " s";
  if (replace || t.key_columns.empty()) {
    auto del = count_of(db, "DELETE FROM " + table);
    if (!del) return del.err();
    auto ins = count_of(db, insert);
    if (!ins) return ins.err();
    counts = {*del, 0, *ins};
    return {};
  }
  auto del = count_of(db, "DELETE FROM " + table + " d WHERE NOT EXISTS (SELECT 1 FROM " + stage +
                              " s WHERE " + key_match(t) + ")");
  if (!del) return del.err();
  counts.deleted = *del;
  std::vector<std::string> rest;
  for (auto& c : cols)
    if (std::find(t.key_columns.begin(), t.key_columns.end(), c) == t.key_columns.end())
      rest.push_back(c);
  if (!rest.empty()) {
    // Compared as text: every type has it, and it is what the digest reads.
    std::string mine, theirs;
    for (auto& c : t.columns) {
      mine += (mine.empty() ? "" : ", ") + ("d." + ident(c) + "::text");
      theirs += (theirs.empty() ? "" : ", ") + ("s." + ident(c) + "::text");
    }
    auto upd =
        count_of(db, "UPDATE " + table + " d SET (" + column_list(rest, "") + ") = ROW(" +
                         column_list(rest, "s") + ") FROM " + stage + " s WHERE " + key_match(t) +
                         " AND ROW(" + mine + ") IS DISTINCT FROM ROW(" + theirs + ")");
    if (!upd) return upd.err();
    counts.updated = *upd;
  }
  auto ins = count_of(db, insert + " WHERE NOT EXISTS (SELECT 1 FROM " + table + " d WHERE " +
                              key_match(t) + ")");
  if (!ins) return ins.err();
  counts.inserted = *ins;
  return {};
}

// Deletes the rows of `old_rows` from `t` and inserts those of `new_rows`,
// both by key (an updated row is in both).
status apply_delta(pg_session& db, const pg_table& t, const std::string& old_rows,
                   const std::string& new_rows, merge_counts& counts) {
  auto del = count_of(db, "DELETE FROM ONLY " + t.qualified() + " d USING " + old_rows +
                              " s WHERE " + key_match(t));
  if (!del) return del.err();
  const auto cols = writable(t);
  auto ins = count_of(db, "INSERT INTO " + t.qualified() + " AS d (" + column_list(cols, "") +
                              ") OVERRIDING SYSTEM VALUE SELECT " + column_list(cols, "s") +
                              " FROM " + new_rows + " s");
  if (!ins) return ins.err();
  counts = {*del, 0, *ins};
  return {};
}

} // namespace

std::vector<failed_item> database_component::apply(const saga_step& step,
                                                   const component_image& target) {
  if (auto err = with_session([&](pg_session& db) { return apply_in(db, step, target); }))
    return every_item_failed(step, err.message);
  return {};
}

status database_component::apply_in(pg_session& db, const saga_step& step,
                                    const component_image& target) {
  auto then = database_record::of(target);
  if (!then) return then.err();
  std::vector<const table_record*> tables;
  bool sequences = step.items.empty();
  for (auto& item : step.items) {
    if (item == sequences_item) sequences = true;
    if (item.rfind(item_prefix, 0) != 0) continue;
    auto* t = then->find(item.substr(std::string(item_prefix).size()));
    if (t == nullptr) return make_error(errc::not_found, "the checkpoint has no " + item);
    tables.push_back(t);
  }
  if (step.items.empty())
    for (auto& t : then->tables)
      tables.push_back(&t);
  if (auto err = db.exec("BEGIN")) return err;
  const auto ms = std::to_string(settings_.restore_timeout_ms);
  if (auto err =
          db.exec("SET LOCAL lock_timeout TO " + ms + "; SET LOCAL statement_timeout TO " + ms))
    return err;
  auto super = db.is_superuser();
  if (!super) return super.err();
  if (auto err = db.exec(*super ? "SET LOCAL session_replication_role TO replica"
                                : "SET CONSTRAINTS ALL DEFERRED"))
    return err;
  if (!tables.empty()) {
    std::string list;
    for (auto* t : tables)
      list += (list.empty() ? "" : ", ") + t->table.qualified();
    // Writers wait until the restore commits; readers go on.
    if (auto err = db.exec("LOCK TABLE " + list + " IN EXCLUSIVE MODE")) return err;
  }
  // Not a superuser: the user triggers of the tables the role owns are
  // disabled for the restore (an audit trigger would add rows the
  // checkpoint does not have) and enabled again before COMMIT, all inside
  // the transaction; those of tables it does not own fire.
  std::vector<std::vector<std::string>> quiet;
  if (!*super && !tables.empty()) {
    std::string names;
    for (auto* t : tables)
      names += std::string(names.empty() ? "" : ", ") + sql_quoted(t->table.qualified(), '\'') +
               "::regclass";
    auto rows = db.query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
                         "quote_ident(g.tgname) FROM pg_trigger g JOIN pg_class c ON c.oid = "
                         "g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT "
                         "g.tgisinternal AND g.tgenabled = 'O' AND pg_has_role(c.relowner, "
                         "'MEMBER') AND c.oid IN (" +
                         names + ") ORDER BY 1, 2");
    if (!rows) return rows.err();
    quiet = std::move(*rows);
    for (auto& q : quiet)
      if (auto err = db.exec("ALTER TABLE " + q[0] + " DISABLE TRIGGER " + q[1])) return err;
  }
  std::vector<table_restore> done;
  for (size_t i = 0; i < tables.size(); ++i) {
    table_restore how{tables[i]->table.label(), "equal"};
    if (auto err = restore_table(db, *tables[i], target.stored.at(how.table), i, how)) return err;
    done.push_back(std::move(how));
  }
  // The deferred reference checks run now, as COMMIT would run them: a
  // table with checks pending cannot have its triggers enabled.
  if (!quiet.empty())
    if (auto err = db.exec("SET CONSTRAINTS ALL IMMEDIATE")) return err;
  for (auto& q : quiet)
    if (auto err = db.exec("ALTER TABLE " + q[0] + " ENABLE TRIGGER " + q[1])) return err;
  if (sequences)
    for (auto& q : then->sequences)
      if (auto err =
              db.exec("SELECT setval(" + sql_quoted(q.qualified(), '\'') + ", " +
                      std::to_string(q.last_value) + ", " + (q.is_called ? "true" : "false") + ")"))
        return err;
  if (auto err = db.exec("COMMIT")) return err;
  std::lock_guard<std::mutex> guard(known_mu_);
  for (auto* t : tables)
    known_[t->table.label()] = target.stored.at(t->table.label());
  last_restore_ = std::move(done);
  return {};
}

std::vector<database_component::table_restore> database_component::last_restore() const {
  std::lock_guard<std::mutex> guard(known_mu_);
  return last_restore_;
}

status database_component::restore_table(pg_session& db, const table_record& t,
                                         const stream_ref& ref, size_t index, table_restore& how) {
  const std::string label = t.table.label();
  auto check = [&]() -> status {
    table_record after;
    if (auto err = digest_rows(db, t.table, after)) return err;
    if (after.sha256 != t.sha256 || after.rows != t.rows)
      return make_error(errc::integrity_error,
                        "table " + label + " holds " + std::to_string(after.rows) +
                            " rows after the restore, not the checkpoint's " +
                            std::to_string(t.rows) + " (or their digest differs)");
    return {};
  };
  auto fatal = [](const error& e) {
    return e.code == errc::database_unavailable || e.code == errc::timeout;
  };
  std::optional<stream_ref> known;
  {
    std::lock_guard<std::mutex> guard(known_mu_);
    auto it = known_.find(label);
    if (it != known_.end()) known = it->second;
  }
  const std::string stage = "dsmil_restore_" + std::to_string(index);
  auto make_stage = [&](const std::string& name) {
    return db.exec("CREATE TEMP TABLE " + name + " (LIKE " + t.table.qualified() +
                   ") ON COMMIT DROP");
  };
  // The table as last seen, and that differs from the checkpoint's: only
  // the rows that differ, deleted and inserted by key; the digest of the
  // result says whether the table was as last seen (else a merge follows).
  if (known && !same_chunks(*known, ref) && !t.table.key_columns.empty()) {
    // A version last seen but never stored (its checkpoint failed after
    // the capture, and gc took its chunks) cannot be read: no delta then;
    // a merge reads the checkpoint's rows, and says so if those are what
    // cannot be read.
    auto delta = rows_between(*port_, *known, ref);
    if (!delta) known.reset();
    if (delta && *delta) {
      const auto& d = **delta;
      if (auto err = db.exec("SAVEPOINT dsmil_delta")) return err;
      status err = make_stage(stage + "_old");
      if (!err) err = make_stage(stage + "_new");
      auto load = [&](const std::string& name, const std::string& rows) {
        return db.copy_in(name, [&](const byte_sink& put) { return put(rows); });
      };
      if (!err && !d.old_rows.empty()) err = load(stage + "_old", d.old_rows);
      if (!err && !d.new_rows.empty()) err = load(stage + "_new", d.new_rows);
      merge_counts counts;
      if (!err) err = apply_delta(db, t.table, stage + "_old", stage + "_new", counts);
      if (!err && (counts.deleted != d.old_count || counts.inserted != d.new_count))
        err = make_error(errc::integrity_error, "table " + label + " is not as last seen");
      if (!err) err = check();
      if (!err) {
        how = {label, "delta", counts.deleted, 0, counts.inserted};
        return {};
      }
      if (fatal(err)) return err;
      if (auto e2 = db.exec("ROLLBACK TO SAVEPOINT dsmil_delta")) return e2;
      known.reset(); // not as last seen: a merge, without the digest first
    }
  }
  if (!known || same_chunks(*known, ref)) {
    table_record now;
    if (auto err = digest_rows(db, t.table, now)) return err;
    if (now.sha256 == t.sha256) return {}; // as in the checkpoint already
  }
  if (auto err = make_stage(stage)) return err;
  if (auto err = db.copy_in(stage, [&](const byte_sink& put) { return port_->read(ref, put); }))
    return err;
  merge_counts counts;
  // A merge that breaks a unique or other constraint on its way (two
  // rows swapping a unique value) is undone and the table replaced.
  how.how = "merge";
  if (auto err = db.exec("SAVEPOINT dsmil_merge")) return err;
  if (auto err = merge(db, t.table, stage, false, counts)) {
    if (fatal(err)) return err;
    if (auto e2 = db.exec("ROLLBACK TO SAVEPOINT dsmil_merge")) return e2;
    if (auto e2 = merge(db, t.table, stage, true, counts)) return e2;
    how.how = "replace";
  }
  how.deleted = counts.deleted;
  how.updated = counts.updated;
  how.inserted = counts.inserted;
  return check();
}

std::vector<failed_item> database_component::read_back(const saga_step& step,
                                                       const component_image& target) {
  auto items = step.items;
  if (items.empty()) { // the whole component
    auto then = database_record::of(target);
    if (!then) return every_item_failed(step, then.err().message);
    for (auto& t : then->tables)
      items.push_back(item_prefix + t.table.label());
    items.push_back(sequences_item);
  }
  std::vector<failed_item> out;
  if (auto err = with_session([&](pg_session& db) {
        out.clear();
        return read_back_in(db, items, target, out);
      }))
    return every_item_failed(step, err.message);
  return out;
}

status database_component::read_back_in(pg_session& db, const std::vector<std::string>& items,
                                        const component_image& target,
                                        std::vector<failed_item>& out) {
  auto then = database_record::of(target);
  if (!then) return then.err();
  if (auto err = db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return err;
  for (auto& item : items) {
    if (item == sequences_item) {
      auto now = db.sequences();
      if (!now) return now.err();
      for (auto& q : then->sequences) {
        auto it = std::find_if(now->begin(), now->end(),
                               [&](auto& c) { return c.schema == q.schema && c.name == q.name; });
        if (it == now->end() || it->last_value != q.last_value || it->is_called != q.is_called)
          out.push_back({item, "sequence " + q.schema + "." + q.name + " is not at " +
                                   std::to_string(q.last_value)});
      }
      continue;
    }
    auto* t = then->find(item.substr(std::string(item_prefix).size()));
    if (t == nullptr) {
      out.push_back({item, "the checkpoint has no such table"});
      continue;
    }
    table_record now;
    if (auto err = digest_rows(db, t->table, now)) return err;
    if (now.sha256 != t->sha256)
      out.push_back({item, std::to_string(now.rows) + " rows that differ from the checkpoint's " +
                               std::to_string(t->rows)});
  }
  return db.exec("COMMIT");
}

} // namespace dsmil
