// checkpoint_store::verify_files: every file under the store directory, not
// only those one checkpoint needs. Everything except tmp/, journal/ (the
// saga's own checksummed records), the lock file and private keys must be a
// file this store makes, with exactly the bytes it writes: store.toml is
// signed (checked at open), public keys match their key id, pin and marker
// files hold their one line, index files are canonical and every entry names
// the record at its offset, and the head record's signature verifies.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "runtime/base/coding.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

namespace {

// Relative paths of every file under `dir` (recursively), sorted.
void list_files(env& e, const std::string& root, const std::string& rel,
                std::vector<std::string>& out) {
  auto names = e.list_dir(rel.empty() ? root : root + "/" + rel);
  if (!names) return;
  for (auto& n : *names) {
    const std::string r = rel.empty() ? n : rel + "/" + n;
    if (e.list_dir(root + "/" + r).ok())
      list_files(e, root, r, out);
    else
      out.push_back(r);
  }
}

error damaged(const std::string& rel, const std::string& what) {
  return make_error(errc::integrity_error, rel + ": " + what);
}

} // namespace

status checkpoint_store::check_index(const std::string& rel, const std::string& pack_name,
                                     bool read_headers, size_t& entries) {
  auto text = env_.read_file(layout::path(dir_, rel));
  if (!text) return text.err();
  std::map<std::string, chunk_location> parsed;
  if (auto err = parse_index(*text, pack_name, rel, parsed)) return err;
  for (auto& [id, loc] : parsed)
    if (id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return damaged(rel, "entry " + id.substr(0, 16) + " is not a chunk id in lowercase hex");
  // Canonical: exactly the lines the store writes, in order.
  std::string again;
  std::vector<std::pair<uint64_t, std::pair<std::string, uint64_t>>> by_offset;
  for (auto& [id, loc] : parsed)
    by_offset.push_back({loc.offset, {id, loc.length}});
  std::sort(by_offset.begin(), by_offset.end());
  for (auto& [off, e] : by_offset)
    again += index_line(e.first, off, e.second);
  if (again != *text) return damaged(rel, "index is not in the form the store writes");
  const std::string pack_rel = layout::pack(pack_name);
  if (!env_.exists(layout::path(dir_, pack_rel))) return {}; // skipped at open; gc removes it
  entries = parsed.size();
  if (!read_headers) return {};
  auto pack = env_.new_random_access_file(layout::path(dir_, pack_rel));
  if (!pack) return pack.err();
  for (auto& [id, loc] : parsed) {
    auto h = (*pack)->read_at(loc.offset, record_header_size);
    if (!h || h->size() != record_header_size)
      return damaged(rel, "entry " + id.substr(0, 16) + " points past the end of " + pack_rel);
    std::string raw;
    if (!from_hex(id, raw) || raw.size() != 32)
      return damaged(rel, "entry " + id.substr(0, 16) + " is not a chunk id in hex");
    if (std::memcmp(h->data(), "DSMC", 4) != 0 ||
        std::memcmp(h->data() + 24, raw.data(), 32) != 0 ||
        coding::decode_fixed32(h->data() + 12) + record_header_size != loc.length)
      return damaged(rel, "entry " + id.substr(0, 16) + " does not name the record at offset " +
                              std::to_string(loc.offset) + " of " + pack_rel);
  }
  return {};
}

status checkpoint_store::verify_files_locked(verify_report& report, bool read_headers) {
  std::vector<std::string> files;
  list_files(env_, dir_, "", files);
  size_t keys = 0, entries = 0, pins = 0, manifests = 0;
  std::vector<std::pair<std::string, std::string>> index_files; // rel, pack name
  bool head = false;
  for (const auto& rel : files) {
    const auto f = layout::parse(rel);
    switch (f.kind) {
    case layout::file_kind::tmp:         // in flight, swept at open
    case layout::file_kind::journal:     // the saga's records, checksummed each
    case layout::file_kind::lock:        // empty, advisory
    case layout::file_kind::signing_key: // private
    case layout::file_kind::data_key:    // private
    case layout::file_kind::store_toml:  // signed: checked at open
    case layout::file_kind::store_toml_sig:
    case layout::file_kind::signature: // with its manifest
    case layout::file_kind::pack:      // every record: CRC64, decode, SHA-256
    case layout::file_kind::head_sig:  // with head.json
      break;
    case layout::file_kind::unknown:
      return damaged(rel, "not a file this store makes; move it out of the store");
    case layout::file_kind::manifest: {
      // Every checkpoint's signature, not only the one being verified (whose
      // contents verify() checks in full).
      auto body = env_.read_file(layout::path(dir_, rel));
      if (!body) return body.err();
      auto sig =
          check_signature(layout::signature(f.name), *body,
                          rel + ": manifest was modified (its SHA-256 is not the signed one)");
      if (!sig) return sig.err();
      ++manifests;
      break;
    }
    case layout::file_kind::public_key: {
      auto pem = env_.read_file(layout::path(dir_, rel));
      if (!pem) return pem.err();
      auto id = key_id_of(*pem);
      if (!id || *id != f.name) return damaged(rel, "public key does not match its key id");
      ++keys;
      break;
    }
    case layout::file_kind::data_key_created: {
      auto text = env_.read_file(layout::path(dir_, rel));
      if (!text || *text != "\n") return damaged(rel, "marker is not its one empty line");
      break;
    }
    case layout::file_kind::sealed_data_key: {
      auto text = env_.read_file(layout::path(dir_, rel));
      if (!text) return text.err();
      const auto space = text->find(' ');
      std::string blob;
      const std::string by = space == std::string::npos ? "" : text->substr(0, space);
      if ((by != "software" && by != "tpm") || text->back() != '\n' ||
          !from_hex(text->substr(space + 1, text->size() - space - 2), blob) || blob.empty())
        return damaged(rel, "not a sealed data key (provider, hex, newline)");
      break;
    }
    case layout::file_kind::pin: {
      auto text = env_.read_file(layout::path(dir_, rel));
      if (!text || *text != "pinned\n") return damaged(rel, "pin file is not 'pinned'");
      if (!checkpoints_.count(f.name)) return damaged(rel, "pins no checkpoint");
      ++pins;
      break;
    }
    case layout::file_kind::head: {
      auto h = read_head_record();
      if (!h) return h.err();
      head = true;
      break;
    }
    case layout::file_kind::index:
      index_files.push_back({rel, f.name}); // checked below, in parallel
      break;
    }
  }
  // Index files, several at once: each entry's record header is one read.
  std::vector<status> index_errors(index_files.size());
  std::vector<size_t> index_entries(index_files.size());
  std::atomic<size_t> next{0};
  env_.run_parallel(std::min<size_t>(env_.cpu_count(), index_files.size()), [&](size_t) {
    for (size_t i = next++; i < index_files.size(); i = next++)
      index_errors[i] =
          check_index(index_files[i].first, index_files[i].second, read_headers, index_entries[i]);
  });
  for (size_t i = 0; i < index_files.size(); ++i) {
    if (index_errors[i]) return index_errors[i];
    entries += index_entries[i];
  }
  const size_t indexes = index_files.size();
  report.checks.push_back("files: " + std::to_string(files.size()) +
                          " in the store, every one made by it; store.toml signed, " +
                          std::to_string(manifests) + " manifests signed, " + std::to_string(keys) +
                          " public keys, " + std::to_string(indexes) + " indexes (" +
                          std::to_string(entries) + " entries" +
                          (read_headers ? ", each naming its record" : "") + "), " +
                          std::to_string(pins) + " pins" + (head ? ", head record signed" : ""));
  return {};
}

} // namespace dsmil
