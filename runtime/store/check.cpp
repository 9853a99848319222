// Whole-store checks: every manifest, every index entry, and with read_data
// every byte of every pack. Damage is reported per chunk with the
// checkpoints it affects, so an operator knows what is lost.
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

namespace dsmil {

result<store_check_report> checkpoint_store::check(bool read_data) {
  std::unique_lock<std::shared_mutex> files(files_mu_); // see verify()
  store_check_report rep;
  rep.read_data = read_data;

  // Which checkpoints use which chunk; manifests that do not verify are damage too.
  std::map<std::string, std::vector<std::string>> users;
  for (auto& [id, info] : checkpoints_) {
    auto m = read_verified_manifest(id, nullptr, nullptr);
    if (!m) {
      rep.problems.push_back(m.err().message);
      rep.damaged_checkpoints.insert(id);
      continue;
    }
    for (auto* ref : chunk_refs(*m))
      users[ref->id].push_back(id);
  }

  std::map<std::string, std::vector<std::pair<std::string, chunk_location>>> by_pack;
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (auto& [id, c] : users)
      if (!index_.count(id)) {
        rep.damaged.push_back({id, "", 0, "in no index (its pack is missing)", c});
        rep.damaged_checkpoints.insert(c.begin(), c.end());
      }
    for (auto& [id, loc] : index_)
      by_pack[loc.pack].emplace_back(id, loc);
  }
  rep.packs = by_pack.size();

  std::vector<const decltype(by_pack)::value_type*> packs;
  for (auto& p : by_pack)
    packs.push_back(&p);
  std::mutex mu;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k; (k = next++) < packs.size();) {
      const auto& [name, entries] = *packs[k];
      const std::string rel = layout::pack(name);
      const std::string path = dir_ + "/" + rel;
      uint64_t bytes = 0;
      std::vector<damaged_chunk> found;
      auto head = env_.read_range(path, 0, 8);
      if (!head || !is_pack_header(*head)) {
        for (auto& [id, loc] : entries)
          found.push_back({id, rel, loc.offset, head ? "pack header damaged" : "pack missing", {}});
      } else if (read_data) {
        for (auto& [id, loc] : entries) {
          auto rec = env_.read_range(path, loc.offset, loc.length);
          if (!rec) {
            found.push_back({id, rel, loc.offset, rec.err().message, {}});
            continue;
          }
          auto plain = decode_record(*rec, loc, id, rel, keys_.get(), can_read_content());
          if (!plain) found.push_back({id, rel, loc.offset, plain.err().message, {}});
          bytes += loc.length;
        }
      }
      std::lock_guard<std::mutex> guard(mu);
      rep.chunks += entries.size();
      rep.bytes_read += bytes;
      for (auto& d : found) {
        auto u = users.find(d.chunk_id);
        if (u != users.end()) {
          d.checkpoints = u->second;
          rep.damaged_checkpoints.insert(u->second.begin(), u->second.end());
        }
        rep.damaged.push_back(std::move(d));
      }
    }
  };
  env_.run_parallel(opts_.threads > 0 ? opts_.threads : env_.cpu_count(),
                    [&](size_t) { worker(); });
  std::sort(rep.damaged.begin(), rep.damaged.end(), [](auto& a, auto& b) {
    return std::tie(a.pack, a.offset) < std::tie(b.pack, b.offset);
  });
  return rep;
}

result<verify_report> checkpoint_store::verify_chain(const std::string& id) {
  std::shared_lock<std::shared_mutex> files(files_mu_);
  verify_report rep;
  std::string cur = id;
  std::string expect_sha; // what the child recorded for this manifest
  int depth = 0;
  while (!cur.empty()) {
    std::string sha;
    auto m = read_verified_manifest(cur, nullptr, &sha);
    if (!m) {
      if (depth > 0 && m.err().code == errc::not_found) {
        rep.checks.push_back("chain: " + cur + " was deleted; the chain is verified up to it");
        return rep;
      }
      return m.err();
    }
    if (!expect_sha.empty() && sha != expect_sha)
      return make_error(errc::integrity_error, layout::manifest(cur) +
                                                   ".json: not the manifest its child recorded "
                                                   "(parent replaced or modified)");
    rep.checks.push_back("chain: " + cur + " (" + m->info.created_at + ") signature valid" +
                         (m->info.parent_id.empty() ? ", root" : ""));
    expect_sha = m->info.parent_manifest_sha256;
    cur = m->info.parent_id;
    if (++depth > 1000000) return make_error(errc::integrity_error, "chain: parent links loop");
  }
  return rep;
}

} // namespace dsmil
