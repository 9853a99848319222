// Garbage collection: packs no manifest needs are removed; packs that are
// mostly garbage are rewritten. Every step keeps the store valid if the
// process dies right after it: live records are durably in a new pack before
// the old pack's index and then the pack itself are removed.
#include <set>

#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

result<gc_report> checkpoint_store::gc(double rewrite_below) {
  if (auto err = check_writable("deletes")) return err;
  std::lock_guard<std::recursive_mutex> change(change_mu_);
  std::unique_lock<std::shared_mutex> files(files_mu_); // moves and removes packs
  gc_report rep;
  auto sticky = [&](const error& e) { return record_background_error(e); };

  // What every checkpoint needs. A manifest gc cannot read stops it: it
  // would not know which chunks that checkpoint needs.
  std::set<std::string> live;
  for (auto& [id, info] : checkpoints_) {
    const std::string rel = layout::manifest(id);
    auto body = env_.read_file(dir_ + "/" + rel);
    if (!body) return body.err();
    auto m = decode_manifest(*body, rel);
    status err = m ? resolve_lists(*m, rel) : m.err();
    if (err)
      return make_error(err.code,
                        "gc stopped: " + err.message + "; repair or delete that checkpoint first");
    for (auto* ref : chunk_refs(*m))
      live.insert(ref->id);
  }

  auto idx_names = env_.list_dir(layout::path(dir_, layout::index_dir));
  if (!idx_names) return idx_names.err();
  std::set<std::string> indexed;
  for (auto& n : *idx_names) {
    auto parsed = layout::parse_in(layout::index_dir, n);
    if (parsed.kind == layout::file_kind::index) indexed.insert(parsed.name);
  }

  // Packs without an index: left by a process that died while sealing or
  // collecting. Nothing can reach them.
  auto subs = env_.list_dir(layout::path(dir_, layout::packs_dir));
  if (!subs) return subs.err();
  for (auto& sub : *subs) {
    const std::string sub_rel = std::string(layout::packs_dir) + "/" + sub;
    auto names = env_.list_dir(layout::path(dir_, sub_rel));
    if (!names) continue;
    for (auto& n : *names) {
      auto parsed = layout::parse(sub_rel + "/" + n);
      if (parsed.kind != layout::file_kind::pack || indexed.count(parsed.name)) continue;
      if (auto err = remove_durable(env_, layout::path(dir_, layout::pack(parsed.name))))
        return sticky(err);
      ++rep.orphan_packs_removed;
    }
  }

  for (auto& pack : indexed) {
    const std::string idx_path = layout::path(dir_, layout::index(pack));
    const std::string pack_path = layout::path(dir_, layout::pack(pack));
    auto text = env_.read_file(idx_path);
    if (!text) return text.err();
    std::map<std::string, chunk_location> entries;
    if (auto err = parse_index(*text, pack, layout::index(pack), entries)) return err;
    uint64_t total = 0, keep = 0;
    std::vector<std::pair<std::string, chunk_location>> keepers;
    {
      std::lock_guard<std::mutex> guard(index_mu_);
      for (auto& [id, loc] : entries) {
        total += loc.length;
        auto it = index_.find(id);
        // Live here only if needed and this is the copy the index uses.
        if (live.count(id) && it != index_.end() && it->second.pack == pack) {
          keep += loc.length;
          keepers.emplace_back(id, loc);
        }
      }
    }
    if (keep == total) continue;
    if (keep > 0 && static_cast<double>(keep) >= rewrite_below * static_cast<double>(total))
      continue;
    if (keep > 0) {
      // Copy the live records into a new pack, checked on the way.
      auto fresh = start_pack();
      if (!fresh) return fresh.err();
      for (auto& [id, loc] : keepers) {
        auto rec = env_.read_range(pack_path, loc.offset, loc.length);
        if (!rec) return rec.err();
        auto plain =
            decode_record(*rec, loc, id, layout::pack(pack), keys_.get(), can_read_content());
        if (!plain) {
          env_.remove((*fresh)->tmp_path);
          return make_error(plain.err().code, "gc stopped: " + plain.err().message);
        }
        if (auto err = (*fresh)->append(id, *rec)) {
          env_.remove((*fresh)->tmp_path);
          return err;
        }
      }
      if (auto err = finish_pack(**fresh)) return err;
      ++rep.packs_rewritten;
    } else {
      ++rep.packs_removed;
    }
    // The index first: a pack without an index is an orphan the next gc removes.
    if (auto err = remove_durable(env_, idx_path)) return sticky(err);
    if (auto err = remove_durable(env_, pack_path)) return sticky(err);
    rep.bytes_reclaimed += total - keep;
    std::lock_guard<std::mutex> guard(index_mu_);
    for (auto& [id, loc] : entries) {
      auto it = index_.find(id);
      if (it != index_.end() && it->second.pack == pack) {
        index_.erase(it);
        ++rep.chunks_dropped;
      }
    }
  }
  return rep;
}

status checkpoint_store::pin(const std::string& id, bool on) {
  std::lock_guard<std::recursive_mutex> change(change_mu_);
  std::shared_lock<std::shared_mutex> files(files_mu_);
  if (auto err = refuse_if_read_only()) return err;
  auto it = checkpoints_.find(id);
  if (it == checkpoints_.end()) return make_error(errc::not_found, "no checkpoint '" + id + "'");
  const std::string path = layout::path(dir_, layout::pin(id));
  if (on) {
    if (auto err = write(path, "pinned\n")) return err;
  } else if (auto err = remove_durable(env_, path)) {
    return err;
  }
  std::unique_lock<std::shared_mutex> catalog(catalog_mu_);
  it->second.pinned = on;
  return {};
}

} // namespace dsmil
