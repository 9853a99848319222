#include "runtime/saga/journal.hpp"

#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/base/coding.hpp"
#include "simd/crc64.hpp"

namespace dsmil {

using nlohmann::json;

namespace {

constexpr size_t record_header = 12;
constexpr uint32_t max_record = 16u << 20;

uint64_t record_crc(uint32_t length, const char* payload) {
  char len[4];
  coding::encode_fixed32(len, length);
  return simd::crc64(payload, length, simd::crc64(len, sizeof(len)));
}

std::string frame(const journal_record& record) {
  std::string payload = to_json(record).dump();
  uint32_t length = static_cast<uint32_t>(payload.size());
  uint64_t crc = record_crc(length, payload.data());
  std::string out(record_header, '\0');
  coding::encode_fixed32(&out[0], length);
  coding::encode_fixed64(&out[4], crc);
  return out + payload;
}

constexpr const char* suffix = ".wal";

} // namespace

std::string journal_path(const std::string& dir, const std::string& saga_id) {
  return dir + "/" + saga_id + suffix;
}

result<std::vector<journal_record>> read_journal(env& e, const std::string& path, bool* torn) {
  auto bytes = e.read_file(path);
  if (!bytes) return bytes.err();
  std::vector<journal_record> out;
  size_t at = 0;
  const std::string& b = *bytes;
  while (at + record_header <= b.size()) {
    const uint32_t length = coding::decode_fixed32(&b[at]);
    const uint64_t crc = coding::decode_fixed64(&b[at + 4]);
    if (length > max_record || at + record_header + length > b.size()) break;
    const char* payload = b.data() + at + record_header;
    if (record_crc(length, payload) != crc) break;
    auto r = json::parse(payload, payload + length, nullptr, false);
    if (r.is_discarded() || !r.is_object() || !r.contains("t")) break;
    auto rec = record_from_json(r, path + " record " + std::to_string(out.size() + 1));
    if (!rec) return rec.err();
    out.push_back(std::move(*rec));
    at += record_header + length;
  }
  if (torn) *torn = at != b.size();
  return out;
}

result<std::vector<std::string>> list_journals(env& e, const std::string& dir) {
  if (!e.exists(dir)) return std::vector<std::string>{};
  auto names = e.list_dir(dir);
  if (!names) return names.err();
  std::vector<std::string> ids;
  const size_t n = std::strlen(suffix);
  for (auto& name : *names)
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0)
      ids.push_back(name.substr(0, name.size() - n));
  return ids; // list_dir sorts; UUIDv7 ids sort by time
}

result<std::unique_ptr<saga_journal>> saga_journal::create(env& e, const std::string& dir,
                                                           const std::string& saga_id) {
  if (auto err = e.create_dirs(dir)) return err;
  auto path = journal_path(dir, saga_id);
  if (e.exists(path)) return make_error(errc::busy, "saga journal " + path + " already exists");
  std::unique_ptr<saga_journal> j(new saga_journal(e, path));
  auto f = e.new_appendable_file(path, 0600);
  if (!f) return f.err();
  j->file_ = std::move(*f);
  if (auto err = e.sync_dir(dir)) return err; // the journal's name is durable before its records
  return j;
}

result<std::unique_ptr<saga_journal>> saga_journal::reopen(env& e, const std::string& dir,
                                                           const std::string& saga_id) {
  auto path = journal_path(dir, saga_id);
  bool torn = false;
  auto records = read_journal(e, path, &torn);
  if (!records) return records.err();
  if (torn) {
    std::string intact;
    for (auto& r : *records)
      intact += frame(r);
    if (auto err = write_durable(e, dir, path, intact, 0600)) return err;
  }
  std::unique_ptr<saga_journal> j(new saga_journal(e, path));
  auto f = e.new_appendable_file(path, 0600);
  if (!f) return f.err();
  j->file_ = std::move(*f);
  j->records_ = std::move(*records);
  return j;
}

status saga_journal::append(journal_record record) {
  std::vector<journal_record> one;
  one.push_back(std::move(record));
  return append_all(std::move(one));
}

status saga_journal::append_all(std::vector<journal_record> records) {
  if (broken_)
    return make_error(errc::io_error,
                      "saga journal " + path_ + " failed earlier; nothing more is written to it");
  std::string bytes;
  const auto now = env_.now_unix_ns();
  for (auto& r : records) {
    if (r.at == 0) r.at = now;
    bytes += frame(r);
  }
  status err = file_->append(bytes);
  if (!err) err = file_->sync();
  if (err) {
    // After a failed write or fsync the file's contents are unknown: stop.
    broken_ = true;
    return err;
  }
  for (auto& r : records)
    records_.push_back(std::move(r));
  return {};
}

} // namespace dsmil
