// checkpoint_store: the chunk lists of large streams kept in the store
// (manifest format 2; see chunk_lists.hpp): written by create(), resolved
// wherever a manifest is read for its chunks.
#include "runtime/store/chunk_lists.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

namespace {

std::vector<std::string> ids_of(const std::vector<chunk_ref>& refs) {
  std::vector<std::string> ids;
  ids.reserve(refs.size());
  for (auto& r : refs)
    ids.push_back(r.id);
  return ids;
}

} // namespace

result<std::string> checkpoint_store::list_bytes(const std::vector<chunk_ref>& refs) {
  auto pieces = read_chunks(ids_of(refs), true);
  if (!pieces) return pieces.err();
  std::string all;
  for (size_t i = 0; i < refs.size(); ++i) {
    if ((*pieces)[i].size() != refs[i].size)
      return make_error(errc::integrity_error,
                        "list chunk " + refs[i].id.substr(0, 16) + " has the wrong size");
    all += (*pieces)[i];
  }
  return all;
}

status checkpoint_store::resolve_lists(manifest& m, const std::string& rel) {
  for (auto& s : m.streams) {
    if (s.resolved()) continue;
    auto bad = [&](const std::string& what) {
      return make_error(errc::integrity_error, rel + ": stream '" + s.name + "': " + what);
    };
    auto read_all = [&](const std::vector<chunk_ref>& refs) -> result<std::string> {
      auto all = list_bytes(refs);
      if (!all) return bad(all.err().message);
      return all;
    };
    auto base_bytes = read_all(s.list_base);
    if (!base_bytes) return base_bytes.err();
    auto list = decode_list(*base_bytes);
    if (list && !s.list_edits.empty()) {
      auto script = read_all(s.list_edits);
      if (!script) return script.err();
      list = apply_list_script(*list, *script);
    }
    if (!list) return bad(list.err().message);
    uint64_t size = 0;
    for (auto& c : *list)
      size += c.size;
    if (list->size() != s.count || size != s.size)
      return bad("its list has " + std::to_string(list->size()) + " chunks of " +
                 std::to_string(size) + " bytes, the manifest says " + std::to_string(s.count) +
                 " of " + std::to_string(s.size));
    if (chunks_root(*list) != s.root) return bad("root does not match its chunks");
    s.chunks = std::move(*list);
  }
  return {};
}

status checkpoint_store::list_stream(stream_entry& e,
                                     const std::function<chunk_ref(const std::string&)>& add) {
  if (!list_bases_loaded_) {
    // First use in this process: the bases of the newest checkpoint, so
    // that the next one adds a script rather than whole lists.
    list_bases_loaded_ = true;
    if (!checkpoints_.empty()) {
      const std::string rel = layout::manifest(checkpoints_.rbegin()->first);
      if (auto body = env_.read_file(layout::path(dir_, rel)))
        if (auto m = decode_manifest(*body, rel))
          for (auto& s : m->streams) {
            if (!s.listed()) continue;
            auto all = list_bytes(s.list_base);
            if (!all) continue; // a new base then
            if (auto entries = decode_list(*all))
              list_bases_[s.name] = {s.list_base, std::move(*entries)};
          }
    }
  }
  e.count = e.chunks.size();
  e.list_edits.clear();
  auto it = list_bases_.find(e.name);
  if (it != list_bases_.end()) {
    const bool stored = [&] {
      std::lock_guard<std::mutex> guard(index_mu_);
      for (auto& r : it->second.refs)
        if (!index_.count(r.id)) return false; // collected since
      return true;
    }();
    size_t literals = 0;
    const std::string script =
        stored ? diff_lists(it->second.entries, e.chunks, &literals) : std::string();
    // A script of up to a quarter of the list's entries; past that a new
    // base costs little more and keeps later scripts small.
    if (stored && literals * 4 <= e.chunks.size()) {
      e.list_base = it->second.refs;
      for (auto& piece : cut_pieces(script))
        e.list_edits.push_back(add(piece));
      return {};
    }
  }
  e.list_base.clear();
  for (auto& piece : encode_list_pieces(e.chunks))
    e.list_base.push_back(add(piece));
  list_bases_[e.name] = {e.list_base, e.chunks};
  return {};
}

} // namespace dsmil
