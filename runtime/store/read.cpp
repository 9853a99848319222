// checkpoint_store: listing checkpoints and reading them back (manifest, signature, chunks), every
// byte checked.
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

std::vector<checkpoint_info> checkpoint_store::list() const {
  std::shared_lock<std::shared_mutex> catalog(catalog_mu_);
  std::vector<checkpoint_info> out;
  out.reserve(checkpoints_.size());
  for (auto& [id, info] : checkpoints_)
    out.push_back(info);
  return out;
}

result<std::string> checkpoint_store::resolve(const std::string& id_or_prefix) const {
  const std::string hint = "; run 'dsmilctl checkpoint list' to see the ids";
  std::shared_lock<std::shared_mutex> catalog(catalog_mu_);
  if (checkpoints_.count(id_or_prefix)) return id_or_prefix;
  if (id_or_prefix.size() < 4 ||
      id_or_prefix.find_first_not_of("0123456789abcdef-") != std::string::npos)
    return make_error(errc::not_found, "no checkpoint '" + id_or_prefix + "'" + hint);
  std::vector<std::string> hits;
  for (auto& [id, info] : checkpoints_)
    if (id.compare(0, id_or_prefix.size(), id_or_prefix) == 0) hits.push_back(id);
  if (hits.empty())
    return make_error(errc::not_found, "no checkpoint '" + id_or_prefix + "'" + hint);
  if (hits.size() > 1)
    return make_error(errc::invalid_argument, "checkpoint id prefix '" + id_or_prefix +
                                                  "' matches " + std::to_string(hits.size()) +
                                                  " checkpoints; give more characters");
  return hits.front();
}

result<checkpoint_info> checkpoint_store::info(const std::string& id) const {
  std::shared_lock<std::shared_mutex> catalog(catalog_mu_);
  auto it = checkpoints_.find(id);
  if (it == checkpoints_.end()) return make_error(errc::not_found, "no checkpoint '" + id + "'");
  return it->second;
}

result<signature_file> checkpoint_store::check_signature(const std::string& sig_rel,
                                                         const std::string& bytes,
                                                         const std::string& modified) {
  auto sig_text = env_.read_file(layout::path(dir_, sig_rel));
  if (!sig_text) return make_error(errc::integrity_error, sig_rel + ": signature file is missing");
  auto sig = decode_signature(*sig_text, sig_rel);
  if (!sig) return sig.err();
  const std::string key_rel = layout::public_key(sig->key_id);
  auto pem = env_.read_file(layout::path(dir_, key_rel));
  if (!pem)
    return make_error(errc::integrity_error, sig_rel + ": signed by unknown key " +
                                                 sig->key_id.substr(0, 16) + " (" + key_rel +
                                                 " not found)");
  auto pem_id = key_id_of(*pem);
  if (!pem_id || *pem_id != sig->key_id)
    return make_error(errc::integrity_error, key_rel + ": public key does not match its key id");
  std::string der, signed_digest;
  if (!from_hex(sig->value_hex, der))
    return make_error(errc::integrity_error, sig_rel + ": signature value is not hex");
  if (!from_hex(sig->manifest_sha256, signed_digest) || signed_digest.size() != 32)
    return make_error(errc::integrity_error, sig_rel + ": manifest_sha256 is not a SHA-256");
  digest signed_d;
  std::copy(signed_digest.begin(), signed_digest.end(), signed_d.begin());
  // First the signature file on its own: does it sign the digest it names?
  if (auto err = verify_digest(*pem, signed_d, der))
    return make_error(errc::integrity_error, sig_rel + ": signature does not verify with key " +
                                                 sig->key_id.substr(0, 16));
  // Then the signed file: is it the bytes that were signed?
  if (signed_d != sha256(bytes)) return make_error(errc::integrity_error, modified);
  return sig;
}

result<manifest> checkpoint_store::read_verified_manifest(const std::string& id,
                                                          verify_report* report,
                                                          std::string* sha_out) {
  const std::string json_rel = layout::manifest(id);
  const std::string sig_rel = layout::signature(id);
  auto body = env_.read_file(dir_ + "/" + json_rel);
  if (!body) {
    if (body.err().code == errc::not_found)
      return make_error(errc::not_found, "no checkpoint '" + id + "'");
    return body.err();
  }
  auto sig = check_signature(
      sig_rel, *body, json_rel + ": manifest was modified (its SHA-256 is not the signed one)");
  if (!sig) return sig.err();
  auto m = decode_manifest(*body, json_rel);
  if (!m) return m.err();
  if (auto err = resolve_lists(*m, json_rel)) return err;
  if (m->info.id != id)
    return make_error(errc::integrity_error, json_rel + ": manifest names id " + m->info.id);
  // The signed body names its signer; the signature file must agree.
  if (!m->info.key_id.empty() &&
      (m->info.key_id != sig->key_id || m->info.provider != sig->provider))
    return make_error(errc::integrity_error,
                      sig_rel + ": names " + sig->provider + " key " + sig->key_id.substr(0, 16) +
                          " but the manifest was signed for " + m->info.provider + " key " +
                          m->info.key_id.substr(0, 16));
  m->info.key_id = sig->key_id;
  m->info.provider = sig->provider;
  if (report) {
    report->checks.push_back("signature: valid (" + sig->scheme + ", " + sig->provider + " key " +
                             sig->key_id.substr(0, 16) + ")");
    report->checks.push_back("manifest: roots match the chunk lists (merkle root " +
                             m->merkle_root.substr(0, 16) + ")");
    const auto& sec = m->security;
    if (!sec.pcrs.empty()) {
      report->checks.push_back("pcrs: " + std::to_string(sec.pcrs.size()) +
                               " SHA-256 PCR values captured under the signature");
      const std::string ak_rel = layout::public_key(sec.ak_key_id);
      auto ak = env_.read_file(dir_ + "/" + ak_rel);
      if (!ak)
        return make_error(errc::integrity_error,
                          ak_rel + ": the attestation key that made the quote is missing");
      auto ak_id = key_id_of(*ak);
      if (!ak_id || *ak_id != sec.ak_key_id)
        return make_error(errc::integrity_error,
                          ak_rel + ": not the attestation key the manifest names (altered)");
      std::string root_raw;
      from_hex(m->merkle_root, root_raw);
      digest root{};
      std::memcpy(root.data(), root_raw.data(), std::min(root.size(), root_raw.size()));
      if (auto err = verify_quote(sec.quote_attest, sec.quote_signature, *ak, root, sec.pcrs))
        return make_error(err.code, json_rel + ": " + err.message);
      report->checks.push_back("quote: valid (attestation key " + sec.ak_key_id.substr(0, 16) +
                               ", over this merkle root and these PCR values)");
      auto counter_line = check_not_replayed(m->info);
      if (!counter_line) return counter_line.err();
      report->checks.push_back(*counter_line);
    }
  }
  if (sha_out) *sha_out = sha256_hex(*body);
  return m;
}

result<std::string> checkpoint_store::read_chunk(const std::string& id_hex) {
  chunk_location loc;
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    auto it = index_.find(id_hex);
    if (it == index_.end())
      return make_error(errc::integrity_error,
                        "chunk " + id_hex.substr(0, 16) + " is in no index (pack missing?)");
    loc = it->second;
  }
  const std::string pack_rel = layout::pack(loc.pack);
  auto bytes = env_.read_range(dir_ + "/" + pack_rel, loc.offset, loc.length);
  if (!bytes)
    return make_error(errc::integrity_error,
                      pack_rel + ": cannot read pack (" + bytes.err().message + ")");
  return decode_record(*bytes, loc, id_hex, pack_rel, keys_.get(), can_read_content());
}

result<std::vector<std::string>>
checkpoint_store::read_chunks(const std::vector<std::string>& ids_hex, bool plain) {
  std::vector<chunk_location> locs(ids_hex.size());
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (size_t i = 0; i < ids_hex.size(); ++i) {
      auto it = index_.find(ids_hex[i]);
      if (it == index_.end())
        return make_error(errc::integrity_error,
                          "chunk " + ids_hex[i].substr(0, 16) + " is in no index (pack missing?)");
      locs[i] = it->second;
    }
  }
  // Records by pack and offset; a span is read once when the gaps inside it
  // are small (a checkpoint's small chunks sit next to each other).
  constexpr uint64_t max_gap = 64 << 10, max_span = 8 << 20;
  std::vector<size_t> order(ids_hex.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(locs[a].pack, locs[a].offset) < std::tie(locs[b].pack, locs[b].offset);
  });
  std::vector<std::string> out(ids_hex.size());
  for (size_t first = 0; first < order.size();) {
    const auto& pack = locs[order[first]].pack;
    const uint64_t begin = locs[order[first]].offset;
    uint64_t end = begin + locs[order[first]].length;
    size_t last = first + 1;
    while (last < order.size() && locs[order[last]].pack == pack &&
           locs[order[last]].offset <= end + max_gap &&
           locs[order[last]].offset + locs[order[last]].length - begin <= max_span) {
      end = std::max(end, locs[order[last]].offset + locs[order[last]].length);
      ++last;
    }
    const std::string pack_rel = layout::pack(pack);
    auto bytes = env_.read_range(dir_ + "/" + pack_rel, begin, end - begin);
    if (!bytes)
      return make_error(errc::integrity_error,
                        pack_rel + ": cannot read pack (" + bytes.err().message + ")");
    for (size_t k = first; k < last; ++k) {
      const size_t i = order[k];
      const uint64_t at = locs[i].offset - begin;
      if (at + locs[i].length > bytes->size())
        return make_error(errc::integrity_error, pack_rel + ": record of chunk " +
                                                     ids_hex[i].substr(0, 16) +
                                                     " runs past the end of the pack");
      auto content = decode_record(bytes->substr(at, locs[i].length), locs[i], ids_hex[i], pack_rel,
                                   keys_.get(), plain || can_read_content());
      if (!content) return content.err();
      out[i] = std::move(*content);
    }
    first = last;
  }
  return out;
}

result<checkpoint_contents> checkpoint_store::load(const std::string& id) {
  if (!can_read_content()) return no_key_error();
  std::shared_lock<std::shared_mutex> files(files_mu_);
  auto m = read_verified_manifest(id, nullptr, nullptr);
  if (!m) return m.err();
  checkpoint_contents c;
  c.info = m->info;
  std::vector<std::string> ids = {m->configuration.id};
  for (auto& d : m->devices)
    ids.push_back(d.chunk.id);
  auto chunks = read_chunks(ids);
  if (!chunks) return chunks.err();
  auto cfg = decode_config((*chunks)[0]);
  if (!cfg) return cfg.err();
  c.configuration = *cfg;
  for (size_t i = 0; i < m->devices.size(); ++i) {
    auto& d = m->devices[i];
    auto s = decode_device((*chunks)[i + 1]);
    if (!s)
      return make_error(errc::integrity_error,
                        "chunk " + d.chunk.id.substr(0, 16) + ": " + s.err().message);
    if (s->id != d.device)
      return make_error(errc::integrity_error, layout::manifest(id) + ": chunk for " +
                                                   format_device_id(d.device) + " holds " +
                                                   format_device_id(s->id));
    c.devices.push_back(std::move(*s));
  }
  for (auto& st : m->streams)
    c.streams.push_back({st.name, st.size, st.chunks});
  c.security = m->security;
  return c;
}

} // namespace dsmil
