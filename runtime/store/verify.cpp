// checkpoint_store::verify and the anti-replay check of the newest checkpoint.
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <sstream>

#include "runtime/store/state_codec.hpp"
#include "runtime/config/toml_util.hpp"

namespace dsmil {

result<verify_report> checkpoint_store::verify(const std::string& id, bool quick) {
  // The files stand still while they are checked (no change in progress can
  // add a pack or a manifest half-way), so checkpoints_ does too.
  std::unique_lock<std::shared_mutex> still(files_mu_);
  verify_report report;
  auto m = read_verified_manifest(id, &report, nullptr);
  if (!m) return m.err();
  // The store's other files first: a damaged index is named as such, not as
  // a chunk that cannot be read through it.
  verify_report files;
  if (auto err = verify_files_locked(files, !quick)) return err;
  if (!m->info.parent_id.empty()) {
    auto parent = env_.read_file(layout::path(dir_, layout::manifest(m->info.parent_id)));
    if (!parent) {
      report.checks.push_back("parent: " + m->info.parent_id + " no longer in the store (deleted)");
    } else if (sha256_hex(*parent) != m->info.parent_manifest_sha256) {
      return make_error(errc::integrity_error,
                        layout::manifest(m->info.parent_id) +
                            ": parent manifest was modified "
                            "(its SHA-256 is not the one this checkpoint recorded)");
    } else {
      report.checks.push_back("parent: " + m->info.parent_id + " link intact");
    }
  }
  report.checks.insert(report.checks.end(), files.checks.begin(), files.checks.end());
  if (quick) {
    // Every chunk is in an index and its pack is there; no data is read.
    const auto all = chunk_refs(*m);
    std::set<std::string> packs;
    {
      std::lock_guard<std::mutex> guard(index_mu_);
      for (auto* ref : all) {
        auto it = index_.find(ref->id);
        if (it == index_.end())
          return make_error(errc::integrity_error,
                            "chunk " + ref->id.substr(0, 16) + " is in no index (pack missing?)");
        packs.insert(it->second.pack);
      }
    }
    for (auto& p : packs) {
      const std::string rel = layout::pack(p);
      auto head = env_.read_range(dir_ + "/" + rel, 0, pack_header_size);
      if (!head || !is_pack_header(*head))
        return make_error(errc::integrity_error,
                          rel + (head ? ": not a pack file (bad magic)" : ": pack missing"));
    }
    report.checks.push_back("chunks: " + std::to_string(all.size()) + " indexed in " +
                            std::to_string(packs.size()) + " packs (quick: data not read)");
    return report;
  }
  uint64_t bytes = 0;
  size_t chunks = 0;
  auto check = [&](const chunk_ref& ref) -> status {
    auto plain = read_chunk(ref.id);
    if (!plain) return plain.err();
    if (plain->size() != ref.size)
      return make_error(errc::integrity_error, layout::manifest(id) + ": chunk " +
                                                   ref.id.substr(0, 16) + " has the wrong size");
    bytes += plain->size();
    ++chunks;
    return {};
  };
  if (!can_read_content()) {
    // Encrypted, no data key: every record's structure and CRC64, not content.
    const auto all = chunk_refs(*m);
    for (auto* ref : all) {
      auto r = read_chunk(ref->id);
      if (!r) return r.err();
    }
    report.checks.push_back("chunks: " + std::to_string(all.size()) +
                            " records present, structure and CRC64 match");
    report.checks.push_back("content: NOT checked: the store is encrypted and its data key "
                            "(keys/data.key) is not available");
    return report;
  }
  if (auto err = check(m->configuration)) return err;
  for (auto& d : m->devices)
    if (auto err = check(d.chunk)) return err;
  for (auto& st : m->streams) {
    // Streams can be large: read them on the pipeline's workers.
    stream_ref ref{st.name, st.size, st.chunks};
    uint64_t got = 0;
    if (auto err = read_stream_locked(ref, [&](std::string_view b) {
          got += b.size();
          return status{};
        }))
      return err;
    if (got != st.size)
      return make_error(errc::integrity_error, layout::manifest(id) + ": stream '" + st.name +
                                                   "' holds " + std::to_string(got) +
                                                   " bytes, the manifest says " +
                                                   std::to_string(st.size));
    bytes += got;
    chunks += st.chunks.size();
  }
  report.checks.push_back("chunks: " + std::to_string(chunks) + " read, " + std::to_string(bytes) +
                          " bytes, CRC64 and " + (keys_ ? "HMAC-SHA-256" : "SHA-256") + " match");
  return report;
}

result<head_record> checkpoint_store::read_head_record() {
  auto body = env_.read_file(layout::path(dir_, layout::head));
  if (!body) return body.err();
  auto sig_text = env_.read_file(layout::path(dir_, layout::head_sig));
  if (!sig_text)
    return make_error(errc::integrity_error, std::string(layout::head_sig) + " is missing");
  auto sig = decode_signature(*sig_text, layout::head_sig);
  if (!sig) return sig.err();
  auto pem = env_.read_file(layout::path(dir_, layout::public_key(sig->key_id)));
  std::string der;
  auto pem_id = pem ? key_id_of(*pem) : result<std::string>(pem.err());
  if (!pem || !pem_id || *pem_id != sig->key_id || !from_hex(sig->value_hex, der) ||
      verify_digest(*pem, sha256(*body), der))
    return make_error(errc::integrity_error,
                      std::string(layout::head) + ": signature does not verify");
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::integrity_error, std::string(layout::head) + ": not valid JSON");
  return head_record{j.value("head", ""), j.value("counter", uint64_t{0}),
                     j.value("ak_key_id", "")};
}

result<std::string> checkpoint_store::check_not_replayed(const checkpoint_info& info) {
  const std::string line = "counter: " + std::to_string(info.counter);
  if (info.counter == 0 || info.id != checkpoints_.rbegin()->first) return line;
  // The newest checkpoint: its counter must be the highest this verifier
  // knows of for that TPM (other manifests, the head record, the TPM itself).
  uint64_t highest = 0;
  std::string source;
  for (auto& [id, other] : checkpoints_)
    if (other.ak_key_id == info.ak_key_id && other.counter > highest) {
      highest = other.counter;
      source = "checkpoint " + id;
    }
  auto head = read_head_record();
  const bool head_ok = head.ok() && head->ak_key_id == info.ak_key_id;
  if (head_ok && head->counter > highest) {
    highest = head->counter;
    source = "the head record";
  }
  if (key_->attestation_key_id() == info.ak_key_id) {
    auto tpm = key_->counter();
    if (!tpm) return tpm.err();
    if (*tpm > highest) {
      highest = *tpm;
      source = "the TPM";
    }
  }
  if (info.counter == highest) return line + " (the newest; no higher value seen)";
  if (head_ok && head->head == info.id && head->counter == highest)
    return line + " (the newest; newer ones deleted, head record at " + std::to_string(highest) +
           ")";
  return make_error(errc::integrity_error,
                    "checkpoint " + info.id +
                        " is presented as the newest but its anti-replay "
                        "counter " +
                        std::to_string(info.counter) + " is below " + std::to_string(highest) +
                        " (" + source +
                        "): validly signed, but older state replayed; newer checkpoints were "
                        "removed or this is an old copy of the store");
}

} // namespace dsmil
