#include "runtime/pg/database_image.hpp"

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "runtime/base/crypto.hpp"
#include "runtime/components/component.hpp"

namespace dsmil {

using nlohmann::json;

const table_record* database_record::find(const std::string& label) const {
  for (auto& t : tables)
    if (t.table.label() == label) return &t;
  return nullptr;
}

std::string database_record::encode() const {
  json tj = json::array();
  for (auto& t : tables)
    tj.push_back({{"schema", t.table.schema},
                  {"name", t.table.name},
                  {"columns", t.table.columns},
                  {"key", t.table.key_columns},
                  {"generated", t.table.generated},
                  {"definition", t.table.schema_text},
                  {"rows", t.rows},
                  {"bytes", t.bytes},
                  {"sha256", t.sha256}});
  json sj = json::array();
  for (auto& s : sequences)
    sj.push_back({{"schema", s.schema},
                  {"name", s.name},
                  {"last_value", s.last_value},
                  {"is_called", s.is_called}});
  return json{{"server_version", server_version},
              {"database", database},
              {"chunk_kib", chunk_kib},
              {"tables", tj},
              {"sequences", sj}}
      .dump();
}

result<database_record> database_record::of(const component_image& image) {
  auto it = image.records.find("database");
  if (it == image.records.end())
    return make_error(errc::integrity_error, "the database image has no 'database' record");
  try {
    auto j = json::parse(it->second);
    database_record r;
    r.server_version = j.at("server_version").get<std::string>();
    r.database = j.at("database").get<std::string>();
    r.chunk_kib = j.at("chunk_kib").get<uint32_t>();
    for (auto& t : j.at("tables")) {
      table_record tr;
      tr.table.schema = t.at("schema").get<std::string>();
      tr.table.name = t.at("name").get<std::string>();
      tr.table.columns = t.at("columns").get<std::vector<std::string>>();
      tr.table.key_columns = t.at("key").get<std::vector<std::string>>();
      tr.table.generated = t.at("generated").get<std::vector<std::string>>();
      tr.table.schema_text = t.at("definition").get<std::string>();
      tr.rows = t.at("rows").get<uint64_t>();
      tr.bytes = t.at("bytes").get<uint64_t>();
      tr.sha256 = t.at("sha256").get<std::string>();
      if (!image.stored.count(tr.table.label()))
        return make_error(errc::integrity_error,
                          "the database image has no rows of table " + tr.table.label());
      r.tables.push_back(std::move(tr));
    }
    for (auto& s : j.at("sequences")) {
      pg_sequence q;
      q.schema = s.at("schema").get<std::string>();
      q.name = s.at("name").get<std::string>();
      q.last_value = s.at("last_value").get<int64_t>();
      q.is_called = s.at("is_called").get<bool>();
      r.sequences.push_back(std::move(q));
    }
    return r;
  } catch (const std::exception& e) {
    return make_error(errc::integrity_error,
                      std::string("the database image's record is malformed: ") + e.what());
  }
}

byte_source counting(pg_session::byte_pull pull, table_record& out) {
  auto hash = std::make_shared<sha256_stream>();
  out.rows = out.bytes = 0;
  out.sha256.clear();
  return [pull = std::move(pull), hash, &out](uint8_t* buf, size_t cap) -> result<size_t> {
    auto n = pull(buf, cap);
    if (!n) return n;
    if (*n == 0) {
      if (out.sha256.empty()) out.sha256 = to_hex(hash->finish());
      return n;
    }
    const auto* c = reinterpret_cast<const char*>(buf);
    hash->update({c, *n});
    // Text COPY escapes the line ends inside values: one '\n' a row.
    out.rows += static_cast<uint64_t>(std::count(c, c + *n, '\n'));
    out.bytes += *n;
    return n;
  };
}

status digest_rows(pg_session& s, const pg_table& t, table_record& out) {
  auto pull = s.copy_out(t);
  if (!pull) return pull.err();
  auto src = counting(std::move(*pull), out);
  std::vector<uint8_t> buf(256 * 1024);
  for (;;) {
    auto n = src(buf.data(), buf.size());
    if (!n) return n.err();
    if (*n == 0) return {};
  }
}

std::vector<std::string> schema_drift(const database_record& then, const database_record& now) {
  std::vector<std::string> out;
  for (auto& t : then.tables) {
    auto* n = now.find(t.table.label());
    if (n == nullptr)
      out.push_back("table " + t.table.label() + " was dropped");
    else if (n->table.schema_text != t.table.schema_text)
      out.push_back("table " + t.table.label() + " was altered");
  }
  for (auto& n : now.tables)
    if (then.find(n.table.label()) == nullptr)
      out.push_back("table " + n.table.label() + " was added");
  return out;
}

} // namespace dsmil
