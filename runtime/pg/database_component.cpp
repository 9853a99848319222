// The database component: session, capture and plan (restore:
// database_restore.cpp).
#include "runtime/pg/database_component.hpp"

#include <algorithm>
#include <set>

#include "runtime/pg/database_image.hpp"
#include "runtime/pg/pg_session.hpp"

namespace dsmil {

using nlohmann::json;

database_component::database_component(database_settings s, std::shared_ptr<stream_port> port)
    : settings_(std::move(s)), port_(std::move(port)) {}

database_component::~database_component() = default;

status database_component::with_session(const std::function<status(pg_session&)>& work) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !session_;
    if (fresh) {
      pg_options o;
      o.connect_timeout_s = settings_.connect_timeout_s;
      o.passfile = settings_.passfile;
      auto s = pg_session::open(settings_.conninfo, o);
      if (!s) return s.err();
      session_ = std::move(*s);
    }
    auto err = work(*session_);
    if (!err) return {};
    // A connection that is gone, or one that cannot even roll back, is
    // dropped: the next call opens a new one.
    if (err.code == errc::database_unavailable || session_->exec("ROLLBACK")) session_.reset();
    if (err.code != errc::database_unavailable || fresh || attempt > 0) return err;
  }
}

result<component_image> database_component::capture() {
  component_image image;
  if (auto err = with_session([&](pg_session& db) {
        image = component_image{};
        return capture_in(db, image);
      }))
    return err;
  return image;
}

status database_component::capture_in(pg_session& db, component_image& image) {
  database_record rec;
  rec.chunk_kib = settings_.chunk_kib;
  // The snapshot first: every table, sequence and definition is read in it.
  auto snapshot = db.begin_exported_snapshot();
  if (!snapshot) return snapshot.err();
  const auto ms = std::to_string(settings_.capture_timeout_ms);
  if (auto err =
          db.exec("SET LOCAL lock_timeout TO " + ms + "; SET LOCAL statement_timeout TO " + ms))
    return err;
  auto tables = db.tables(settings_.tables);
  if (!tables) return tables.err();
  // Right after the snapshot: a TRUNCATE or ALTER waits for the capture
  // instead of changing what it reads.
  if (!tables->empty()) {
    std::string list;
    for (auto& t : *tables)
      list += (list.empty() ? "" : ", ") + t.qualified();
    if (auto err = db.exec("LOCK TABLE " + list + " IN ACCESS SHARE MODE")) return err;
  }
  auto version = db.server_version();
  if (!version) return version.err();
  rec.server_version = *version;
  rec.database = db.target().database;
  const uint32_t avg = settings_.chunk_kib * 1024;
  const chunker_params chunking{avg / 4, avg, avg * 4};
  // Every table in one write to the store (one pack, one round of
  // fsyncs): each table's COPY begins when the store first reads its
  // stream, after the one before has ended.
  rec.tables.resize(tables->size());
  std::vector<stream_port::input> inputs;
  for (size_t i = 0; i < tables->size(); ++i) {
    auto& tr = rec.tables[i];
    tr.table = (*tables)[i];
    auto src = std::make_shared<byte_source>();
    inputs.push_back({"database/" + tr.table.label(),
                      [&db, &tr, src](uint8_t* buf, size_t cap) -> result<size_t> {
                        if (!*src) {
                          auto pull = db.copy_out(tr.table);
                          if (!pull) return pull.err();
                          *src = counting(std::move(*pull), tr);
                        }
                        return (*src)(buf, cap);
                      },
                      chunking});
  }
  auto refs = port_->write_all(inputs);
  if (!refs) return refs.err();
  uint64_t rows = 0, bytes = 0;
  for (size_t i = 0; i < rec.tables.size(); ++i) {
    image.stored.emplace(rec.tables[i].table.label(), std::move((*refs)[i]));
    rows += rec.tables[i].rows;
    bytes += rec.tables[i].bytes;
  }
  auto sequences = db.sequences();
  if (!sequences) return sequences.err();
  rec.sequences = std::move(*sequences);
  if (auto err = db.exec("COMMIT")) return err;
  {
    std::lock_guard<std::mutex> guard(known_mu_);
    for (auto& [label, ref] : image.stored)
      known_[label] = ref;
  }
  image.records.emplace(record, rec.encode());
  image.detail = {{"server_version", rec.server_version},
                  {"database", rec.database},
                  {"tables", rec.tables.size()},
                  {"rows", rows},
                  {"bytes", bytes}};
  return {};
}

result<component_plan> database_component::plan(const component_image& now,
                                                const component_image& target,
                                                const plan_request& request) {
  auto then = database_record::of(target);
  if (!then) return then.err();
  auto cur = database_record::of(now);
  if (!cur) return cur.err();
  component_plan out;
  // Which tables: all, or those a selective rollback names.
  std::set<std::string> chosen;
  bool sequences = request.whole;
  if (request.whole) {
    for (auto& t : then->tables)
      chosen.insert(t.table.label());
  } else {
    for (auto& item : request.items) {
      if (item == sequences_item) sequences = true;
      if (item.rfind(item_prefix, 0) != 0) continue;
      auto label = item.substr(std::string(item_prefix).size());
      if (then->find(label) == nullptr && then->find("public." + label) == nullptr)
        return make_error(errc::not_found, "the checkpoint's database has no table '" + label +
                                               "'; 'dsmilctl rollback --dry-run' lists them");
      chosen.insert(then->find(label) ? label : "public." + label);
    }
    if (chosen.empty() && !sequences) return out; // not selected
  }
  auto drift = schema_drift(*then, *cur);
  if (!drift.empty()) {
    std::string list;
    for (auto& d : drift)
      list += (list.empty() ? "" : "; ") + d;
    return make_error(errc::permission_denied,
                      "the database " + then->database +
                          " changed its schema since the "
                          "checkpoint (" +
                          list +
                          "); a rollback restores rows, not schema: put "
                          "the schema back as it was, or take a new checkpoint");
  }
  saga_step step{name(), "database", {}};
  json tables = json::array();
  const bool all = request.type == rollback_type::full || request.type == rollback_type::emergency;
  for (auto& t : then->tables) {
    const auto label = t.table.label();
    if (!chosen.count(label)) continue;
    auto* n = cur->find(label);
    const bool differs = !same_chunks(now.stored.at(label), target.stored.at(label));
    out.differs = out.differs || differs;
    tables.push_back({{"table", label},
                      {"rows_checkpoint", t.rows},
                      {"rows_now", n ? n->rows : 0},
                      {"differs", differs}});
    // A full rollback restores every table (one that changed after the
    // plan is restored too); apply leaves alone what is equal.
    if (differs || all) step.items.push_back(item_prefix + label);
  }
  bool sequences_differ = false;
  if (sequences) {
    for (auto& q : then->sequences) {
      auto same = std::find_if(cur->sequences.begin(), cur->sequences.end(), [&](auto& c) {
        return c.schema == q.schema && c.name == q.name && c.last_value == q.last_value &&
               c.is_called == q.is_called;
      });
      if (same == cur->sequences.end()) sequences_differ = true;
    }
    out.differs = out.differs || sequences_differ;
    if (sequences_differ || all) step.items.push_back(sequences_item);
  }
  if (!step.items.empty()) out.steps.push_back(std::move(step));
  out.plan_detail["database"] = {{"database", then->database},
                                 {"server_version", then->server_version},
                                 {"tables", tables},
                                 {"sequences_differ", sequences_differ}};
  return out;
}

} // namespace dsmil
