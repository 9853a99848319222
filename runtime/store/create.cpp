// checkpoint_store::create: a checkpoint's chunks, pack, index, signature and manifest, committed
// in as few fsync rounds as the order allows.
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <sstream>

#include "runtime/store/chunk_lists.hpp"
#include "runtime/store/state_codec.hpp"
#include "runtime/config/toml_util.hpp"

namespace dsmil {

digest checkpoint_store::chunk_id(std::string_view plain) const {
  return keys_ ? hmac_sha256(keys_->mac, plain) : sha256(plain);
}

result<checkpoint_info> checkpoint_store::create(const checkpoint_request& req,
                                                 const std::vector<device_state>& devices,
                                                 const system_config& configuration,
                                                 const std::vector<stream_ref>& streams,
                                                 const held_records* held) {
  if (auto err = check_writable("writes")) return err;
  std::lock_guard<std::recursive_mutex> change(change_mu_);
  std::shared_lock<std::shared_mutex> files(files_mu_);
  manifest m;
  auto& info = m.info;
  info.created_unix_ns = env_.now_unix_ns();
  info.id = ids_.next(info.created_unix_ns);
  info.created_at = format_time(info.created_unix_ns);
  info.name = req.name;
  info.description = req.description;
  info.type = req.type;
  if (!checkpoints_.empty()) {
    auto& parent = checkpoints_.rbegin()->second;
    if (newest_written_.first == parent.id) { // this process wrote it: no need to read it back
      info.parent_id = parent.id;
      info.parent_manifest_sha256 = newest_written_.second;
    } else if (auto body = env_.read_file(layout::path(dir_, layout::manifest(parent.id)))) {
      info.parent_id = parent.id;
      info.parent_manifest_sha256 = sha256_hex(*body);
    }
  }

  struct fresh_chunk {
    digest id;
    std::string bytes;
    bool plain; // a chunk list: stored unencrypted, named by its SHA-256
  };
  std::vector<fresh_chunk> fresh; // chunks not stored yet
  std::set<std::string> added;    // new chunks of this checkpoint's pack
  if (held)
    for (auto& [id, record] : held->records)
      added.insert(id);
  // A chunk of state (counted as captured), or of a stream's list (plain).
  auto add = [&](const std::string& bytes, bool plain) {
    auto d = plain ? sha256(bytes) : chunk_id(bytes);
    chunk_ref ref{to_hex(d), bytes.size()};
    if (!plain) info.logical_bytes += bytes.size();
    bool stored;
    {
      std::lock_guard<std::mutex> guard(index_mu_);
      stored = index_.count(ref.id) > 0;
    }
    if (!stored && added.insert(ref.id).second) {
      fresh.push_back({d, bytes, plain});
      info.new_bytes += bytes.size();
    }
    return ref;
  };
  auto add_chunk = [&](const std::string& bytes) { return add(bytes, false); };
  m.configuration = add_chunk(encode_config(configuration));
  std::vector<const device_state*> sorted;
  for (auto& d : devices)
    sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (auto* d : sorted)
    m.devices.push_back({d->id, add_chunk(encode_device(*d))});
  info.device_count = static_cast<uint32_t>(m.devices.size());
  {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (auto& st : streams) {
      stream_entry e{st.name, st.size, st.chunks, {}};
      for (auto& c : st.chunks)
        if (!index_.count(c.id) && !added.count(c.id))
          return make_error(errc::internal, "stream '" + st.name + "' names chunk " +
                                                c.id.substr(0, 16) + ", which is not stored");
      info.logical_bytes += st.size;
      m.streams.push_back(std::move(e));
    }
  }
  for (auto& e : m.streams)
    if (e.chunks.size() >= listed_stream_min_chunks)
      if (auto err = list_stream(e, [&](const std::string& b) { return add(b, true); })) return err;
  info.new_bytes += req.streams_new_bytes;
  compute_roots(m);

  // The fresh chunks' pack, built in memory (device states and configuration
  // are small; large streams went through write_stream, and what it held
  // for this pack comes first).
  std::string pack_name, pack_bytes, pack_index;
  std::vector<std::pair<std::string, chunk_location>> entries;
  const bool has_pack = !fresh.empty() || (held && !held->records.empty());
  if (has_pack) {
    pack_name = new_pack_name();
    pack_bytes = pack_header();
    if (held)
      for (auto& [id, record] : held->records) {
        entries.push_back({id, {pack_name, pack_bytes.size(), record.size()}});
        pack_index += index_line(id, pack_bytes.size(), record.size());
        pack_bytes += record;
      }
    simd::deflater deflate(opts_.deflate_level);
    std::string record;
    for (auto& [d, bytes, plain] : fresh) {
      if (plain)
        encode_record(d, bytes, nullptr, record, nullptr); // ids: nothing to compress or hide
      else
        encode_record(d, bytes, &deflate, record, keys_.get());
      entries.push_back({to_hex(d), {pack_name, pack_bytes.size(), record.size()}});
      pack_index += index_line(entries.back().first, pack_bytes.size(), record.size());
      pack_bytes += record;
    }
  }
  const durable_file pack_file{layout::path(dir_, layout::pack(pack_name)), pack_bytes,
                               private_file_mode};
  const durable_file index_file{layout::path(dir_, layout::index(pack_name)), pack_index,
                                private_file_mode};
  // write_durable_stages removes the tmp files it did not rename.
  auto fail = [&](const error& err) {
    env_.remove(layout::path(dir_, layout::signature(info.id)));
    return record_write_error(err);
  };
  if (has_pack)
    if (auto err = make_pack_dir(pack_name)) return fail(err);
  // Only once pack and index are durable may a manifest name their chunks.
  auto pack_published = [&] {
    std::lock_guard<std::mutex> guard(index_mu_);
    for (auto& [id, loc] : entries)
      index_[id] = std::move(loc);
  };
  // With a TPM, attesting advances its anti-replay counter, which cannot be
  // undone: pack and index are durable first, so a failed write leaves the
  // counter where the newest checkpoint left it. A key without a counter
  // signs first, and every file is written and fsynced at once.
  const bool counter = !key_->attestation_key_id().empty();
  if (counter && has_pack) {
    if (auto err = write_durable_stages(env_, layout::path(dir_, layout::tmp_dir),
                                        {{pack_file, index_file}}))
      return fail(err);
    pack_published();
  }

  // The platform state the checkpoint is taken under, quoted over its
  // merkle root and signed with it.
  std::string root_raw;
  from_hex(m.merkle_root, root_raw);
  digest root{};
  std::memcpy(root.data(), root_raw.data(), std::min(root.size(), root_raw.size()));
  auto evidence = key_->attest(root);
  if (!evidence) return evidence.err();
  m.security = std::move(*evidence);
  info.counter = m.security.counter;
  info.ak_key_id = m.security.ak_key_id;
  // Decided by attest(): a TPM key, or the software key it fell back to.
  info.key_id = key_->key_id();
  info.provider = key_->provider();
  if (!m.security.ak_key_id.empty()) {
    const std::string ak_path = layout::path(dir_, layout::public_key(m.security.ak_key_id));
    if (!env_.exists(ak_path))
      if (auto err = write(ak_path, m.security.ak_public_pem)) return err;
  }
  const std::string body = encode_manifest(m);
  const digest body_digest = sha256(body);
  auto sig = key_->sign_digest(body_digest);
  if (!sig) return sig.err();
  if (key_->key_id() != info.key_id)
    return make_error(errc::unavailable, "the signing key changed while signing (" + info.provider +
                                             " -> " + key_->provider() + "); try again");
  signature_file sf{key_->scheme(), key_->provider(), key_->key_id(), to_hex(body_digest),
                    to_hex(reinterpret_cast<const uint8_t*>(sig->data()), sig->size())};

  // The commit point is the manifest durably renamed into place after the
  // signature (and the pack and index). A crash before leaves a signature
  // without a manifest (removed on open), a pack without an index (an
  // orphan gc removes), or an index without its pack (not loaded on open;
  // gc removes it).
  const std::string sig_text = encode_signature(sf);
  const durable_file sig_file{layout::path(dir_, layout::signature(info.id)), sig_text,
                              private_file_mode},
      manifest_file{layout::path(dir_, layout::manifest(info.id)), body, private_file_mode};
  std::vector<durable_file> first{sig_file};
  if (!counter && has_pack) {
    first.push_back(pack_file);
    first.push_back(index_file);
  }
  if (auto err = write_durable_stages(env_, layout::path(dir_, layout::tmp_dir),
                                      {first, {manifest_file}})) {
    // With a counter, attest() advanced it: without this manifest the newest
    // checkpoint would look replayed, so even a full disk is sticky then.
    if (counter) return record_background_error(fail(err));
    return fail(err); // unless sticky, nothing was renamed and the pack was not published
  }
  if (!counter) pack_published();
  newest_written_ = {info.id, to_hex(body_digest)};
  {
    std::unique_lock<std::shared_mutex> catalog(catalog_mu_);
    checkpoints_[info.id] = info;
  }
  return info;
}

} // namespace dsmil
