#include "runtime/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <sstream>

#include "runtime/state_codec.hpp"
#include "runtime/toml_util.hpp"

namespace dsmil {

namespace {

std::string store_toml(const std::string& store_id, const store_options& o) {
  std::ostringstream t;
  t << "# dsmil-recovery checkpoint store (see DESIGN.md). Written once, at creation.\n"
    << "format_version = 1\n"
    << "store_id = \"" << store_id << "\"\n"
    << "codec = \"deflate\"\n"
    << "deflate_level = " << o.deflate_level << "\n"
    << "cipher = \"" << (o.encrypt ? "aes-256-gcm" : "none") << "\"\n"
    << "chunk_ids = \"" << (o.encrypt ? "hmac-sha256" : "sha256") << "\"\n"
    << "pack_target_bytes = " << o.pack_target_bytes << "\n"
    << "\n[chunking]\n"
    << "min_size = " << o.chunking.min_size << "\n"
    << "avg_size = " << o.chunking.avg_size << "\n"
    << "max_size = " << o.chunking.max_size << "\n";
  return t.str();
}

// Reads the parameters a store was created with; they win over the caller's.
status read_store_toml(const std::string& text, const std::string& path, store_options& o) {
  auto parsed = toml_util::parse(text, path);
  if (!parsed) return parsed.err();
  const auto& t = *parsed;
  int64_t version = 0, level = o.deflate_level, pack = static_cast<int64_t>(o.pack_target_bytes);
  if (auto err = toml_util::get_int(t, "format_version", version, path)) return err;
  if (version != 1)
    return make_error(errc::config_error, path + ": unsupported store format " +
                                              std::to_string(version) +
                                              " (this build reads format_version = 1)");
  if (auto err = toml_util::get_int(t, "deflate_level", level, path)) return err;
  std::string cipher = "none";
  if (auto err = toml_util::get_string(t, "cipher", cipher, path)) return err;
  if (cipher != "none" && cipher != "aes-256-gcm")
    return make_error(errc::config_error, path + ": unknown cipher '" + cipher + "'");
  o.encrypt = cipher == "aes-256-gcm";
  if (auto err = toml_util::get_int(t, "pack_target_bytes", pack, path)) return err;
  auto chunking = toml_util::get_table(t, "chunking", path);
  if (!chunking) return chunking.err();
  if (*chunking) {
    int64_t mn = o.chunking.min_size, av = o.chunking.avg_size, mx = o.chunking.max_size;
    if (auto err = toml_util::get_int(**chunking, "min_size", mn, path)) return err;
    if (auto err = toml_util::get_int(**chunking, "avg_size", av, path)) return err;
    if (auto err = toml_util::get_int(**chunking, "max_size", mx, path)) return err;
    o.chunking = {static_cast<uint32_t>(mn), static_cast<uint32_t>(av), static_cast<uint32_t>(mx)};
  }
  o.deflate_level = static_cast<int>(level);
  o.pack_target_bytes = static_cast<uint64_t>(pack);
  if (auto err = validate(o.chunking))
    return make_error(errc::config_error, path + ": " + err.message);
  return {};
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip(const std::string& s, const std::string& suffix) {
  return s.substr(0, s.size() - suffix.size());
}

} // namespace

std::string checkpoint_store::rel(const std::string& path) const {
  return path.compare(0, dir_.size() + 1, dir_ + "/") == 0 ? path.substr(dir_.size() + 1) : path;
}

result<std::unique_ptr<checkpoint_store>>
checkpoint_store::open(env& e, const std::string& dir, const store_options& opts,
                       std::unique_ptr<key_provider> signing_key) {
  if (auto err = validate(opts.chunking)) return err;
  std::unique_ptr<checkpoint_store> s(new checkpoint_store(e, dir, opts));
  s->key_ = std::move(signing_key);
  if (auto err = s->init()) return err;
  return s;
}

namespace {

// Stands in for the signing key of a store opened read-only: verification
// reads public keys from keys/, and nothing may be signed.
class verify_only_key final : public key_provider {
public:
  std::string provider() const override { return "none"; }
  std::string scheme() const override { return "none"; }
  std::string key_id() const override { return {}; }
  std::string public_pem() const override { return {}; }
  result<std::string> sign_digest(const digest&) override {
    return make_error(errc::permission_denied, "the store is open read-only");
  }
};

} // namespace

status checkpoint_store::refuse_if_read_only() const {
  if (opts_.read_only)
    return make_error(errc::permission_denied,
                      "store " + dir_ + " is open read-only (verification); nothing may change");
  return {};
}

status checkpoint_store::init() {
  if (opts_.read_only) return init_read_only();
  for (auto sub : {"", "/keys", "/packs", "/index", "/manifests", "/journal", "/tmp"})
    if (auto err = env_.create_dirs(dir_ + sub)) return err;
  auto lock = env_.lock_file(dir_ + "/LOCK");
  if (!lock) {
    if (lock.err().code == errc::busy)
      return make_error(errc::busy, "store " + dir_ +
                                        " is in use by another process (another "
                                        "dsmild on the same data dir?); stop it or use --data-dir");
    return lock.err();
  }
  lock_ = std::move(*lock);
  // In-flight writes of a process that died: never visible, safe to drop.
  auto tmp = env_.list_dir(dir_ + "/tmp");
  if (!tmp) return tmp.err();
  for (auto& name : *tmp)
    if (auto err = env_.remove(dir_ + "/tmp/" + name)) return err;

  const std::string meta = dir_ + "/store.toml";
  auto text = env_.read_file(meta);
  if (!text) {
    if (text.err().code != errc::not_found) return text.err();
    // All 256 pack directories up front, made durable once: sealing a pack
    // then never waits for a mkdir and an fsync of packs/.
    for (int i = 0; i < 256; ++i) {
      char sub[4];
      std::snprintf(sub, sizeof(sub), "%02x", i);
      if (auto err = env_.create_dirs(dir_ + "/packs/" + sub)) return err;
    }
    if (auto err = env_.sync_dir(dir_ + "/packs")) return err;
    if (auto err = write_durable(env_, dir_ + "/tmp", meta,
                                 store_toml(ids_.next(env_.now_unix_ns()), opts_)))
      return err;
  } else if (auto err = read_store_toml(*text, meta, opts_)) {
    return err;
  }

  if (!key_) {
    auto key = open_software_key(env_, dir_ + "/keys", dir_ + "/tmp", opts_.passphrase_file);
    if (!key) return key.err();
    key_ = std::move(*key);
  }

  if (opts_.encrypt) {
    const std::string key_path = dir_ + "/keys/data.key";
    const std::string sealed_path = key_path + ".sealed";
    if (!env_.exists(key_path) && !env_.exists(sealed_path) &&
        !env_.exists(key_path + ".created")) {
      // A new encrypted store: make its data key, once; sealed by the key
      // provider (in the TPM, or under the passphrase) where it can, else a
      // 0600 file. The marker tells a later open that a missing key was
      // lost, not never made.
      uint8_t raw[32];
      random_bytes(raw, sizeof(raw));
      const std::string secret(reinterpret_cast<char*>(raw), sizeof(raw));
      auto sealed = key_->seal(secret);
      if (sealed) {
        if (auto err = write_durable(
                env_, dir_ + "/tmp", sealed_path,
                key_->provider() + " " +
                    to_hex(reinterpret_cast<const uint8_t*>(sealed->data()), sealed->size()) + "\n",
                0600))
          return err;
      } else if (sealed.err().code == errc::unavailable) {
        if (auto err = write_durable(env_, dir_ + "/tmp", key_path, to_hex(raw, 32) + "\n", 0600))
          return err;
      } else {
        return sealed.err();
      }
      if (auto err = write_durable(env_, dir_ + "/tmp", key_path + ".created", "\n")) return err;
    }
    load_data_key();
    // Without the key the store opens for structure checks only.
  }
  const std::string pem_path = dir_ + "/keys/" + key_->key_id() + ".pem";
  if (!env_.exists(pem_path))
    if (auto err = write_durable(env_, dir_ + "/tmp", pem_path, key_->public_pem(), 0644))
      return err;

  return load_catalog();
}

void checkpoint_store::load_data_key() {
  const std::string key_path = dir_ + "/keys/data.key";
  std::string raw;
  if (auto sealed = env_.read_file(key_path + ".sealed")) {
    const auto space = sealed->find(' ');
    std::string blob;
    if (space == std::string::npos ||
        !from_hex(sealed->substr(space + 1, sealed->find('\n') - space - 1), blob)) {
      key_problem_ = "keys/data.key.sealed is damaged";
      return;
    }
    const std::string by = sealed->substr(0, space);
    if (by != key_->provider()) {
      key_problem_ = "keys/data.key.sealed was sealed by the " + by +
                     " key provider; open the "
                     "store with it";
      return;
    }
    auto opened = key_->unseal(blob);
    if (!opened) {
      key_problem_ = "keys/data.key.sealed: " + opened.err().message;
      return;
    }
    raw = *opened;
  } else if (auto hex = env_.read_file(key_path)) {
    from_hex(hex->substr(0, 64), raw);
  }
  if (raw.size() == 32) keys_ = std::make_unique<store_keys>(store_keys::derive(raw));
}

status checkpoint_store::init_read_only() {
  const std::string meta = dir_ + "/store.toml";
  auto text = env_.read_file(meta);
  if (!text)
    return make_error(errc::not_found, "no store at " + dir_ + " (" + meta +
                                           " is missing); pass the directory that holds "
                                           "store.toml");
  if (auto err = read_store_toml(*text, meta, opts_)) return err;
  if (!key_) key_ = std::make_unique<verify_only_key>();
  if (opts_.encrypt) load_data_key();
  return load_catalog();
}

status checkpoint_store::load_catalog() {
  auto idx = env_.list_dir(dir_ + "/index");
  if (!idx) return idx.err();
  for (auto& name : *idx) {
    if (!ends_with(name, ".idx")) continue;
    const std::string pack = strip(name, ".idx");
    if (!env_.exists(dir_ + "/packs/" + pack.substr(0, 2) + "/" + pack + ".pack")) {
      // A pack and its index are renamed into place together and fsynced
      // at once, so a crash may keep the index alone. Nothing names its
      // chunks (a manifest is written only after both), and nothing may
      // dedup against them: it is not loaded, and the next gc removes it.
      // A pack lost later shows up the same way in verify and check: its
      // chunks are in no index.
      continue;
    }
    auto body = env_.read_file(dir_ + "/index/" + name);
    if (!body) return body.err();
    if (auto err = parse_index(*body, pack, "index/" + name, index_)) return err;
  }

  auto names = env_.list_dir(dir_ + "/manifests");
  if (!names) return names.err();
  std::set<std::string> have(names->begin(), names->end());
  for (auto& name : *names) {
    const bool side = ends_with(name, ".sig") || ends_with(name, ".pin");
    if (side && !have.count(name.substr(0, name.size() - 4) + ".json")) {
      // A create that died between signature and manifest (the checkpoint
      // never existed), or a delete that died after removing the manifest.
      if (!opts_.read_only)
        if (auto err = remove_durable(env_, dir_ + "/manifests/" + name)) return err;
      continue;
    }
    if (!ends_with(name, ".json")) continue;
    const std::string path = "manifests/" + name;
    auto body = env_.read_file(dir_ + "/" + path);
    if (!body) return body.err();
    auto m = decode_manifest(*body, path);
    checkpoint_info info;
    if (m) {
      info = m->info;
    } else {
      info.id = strip(name, ".json"); // listed, so that verify can say what is wrong with it
      info.type = "damaged";
    }
    auto sig = env_.read_file(dir_ + "/manifests/" + strip(name, ".json") + ".sig");
    if (sig) {
      auto s = decode_signature(*sig, path);
      if (s) {
        info.key_id = s->key_id;
        info.provider = s->provider;
      }
    }
    info.pinned = env_.exists(dir_ + "/manifests/" + info.id + ".pin");
    checkpoints_[info.id] = info;
  }
  return {};
}

status checkpoint_store::write(const std::string& path, const std::string& data, unsigned mode) {
  auto err = write_durable(env_, dir_ + "/tmp", path, data, mode);
  if (err) {
    env_.remove(dir_ + "/tmp/" + path.substr(path.find_last_of('/') + 1) + ".tmp");
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (!sticky_) sticky_ = err;
  }
  return err;
}

digest checkpoint_store::chunk_id(std::string_view plain) const {
  return keys_ ? hmac_sha256(keys_->mac, plain) : sha256(plain);
}

result<checkpoint_info> checkpoint_store::create(const checkpoint_request& req,
                                                 const std::vector<device_state>& devices,
                                                 const system_config& configuration,
                                                 const std::vector<stream_ref>& streams) {
  if (auto err = refuse_if_read_only()) return err;
  if (sticky_)
    return make_error(errc::io_error, "the store refuses writes after an earlier failure (" +
                                          sticky_.message + "); restart the node to reopen it");
  if (!can_read_content()) return no_key_error();
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
    } else if (auto body = env_.read_file(dir_ + "/manifests/" + parent.id + ".json")) {
      info.parent_id = parent.id;
      info.parent_manifest_sha256 = sha256_hex(*body);
    }
  }

  std::vector<std::pair<digest, std::string>> fresh; // chunks not stored yet
  std::set<std::string> added;
  auto add_chunk = [&](const std::string& bytes) {
    auto d = chunk_id(bytes);
    chunk_ref ref{to_hex(d), bytes.size()};
    info.logical_bytes += bytes.size();
    bool stored;
    {
      std::lock_guard<std::mutex> guard(index_mu_);
      stored = index_.count(ref.id) > 0;
    }
    if (!stored && added.insert(ref.id).second) {
      fresh.emplace_back(d, bytes);
      info.new_bytes += bytes.size();
    }
    return ref;
  };
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
        if (!index_.count(c.id))
          return make_error(errc::internal, "stream '" + st.name + "' names chunk " +
                                                c.id.substr(0, 16) + ", which is not stored");
      info.logical_bytes += st.size;
      m.streams.push_back(std::move(e));
    }
  }
  compute_roots(m);

  // The fresh chunks' pack, built in memory (device states and configuration
  // are small; large streams went through write_stream).
  std::string pack_name, pack_bytes, pack_index;
  std::vector<std::pair<std::string, chunk_location>> entries;
  if (!fresh.empty()) {
    pack_name = new_pack_name();
    pack_bytes = pack_header();
    simd::deflater deflate(opts_.deflate_level);
    std::string record;
    for (auto& [d, bytes] : fresh) {
      encode_record(d, bytes, &deflate, record, keys_.get());
      entries.push_back({to_hex(d), {pack_name, pack_bytes.size(), record.size()}});
      pack_index += index_line(entries.back().first, pack_bytes.size(), record.size());
      pack_bytes += record;
    }
  }
  const std::string sub = dir_ + "/packs/" + pack_name.substr(0, 2);
  const durable_file pack_file{sub + "/" + pack_name + ".pack", pack_bytes, 0644};
  const durable_file index_file{dir_ + "/index/" + pack_name + ".idx", pack_index, 0644};
  auto fail = [&](const error& err) {
    env_.remove(dir_ + "/manifests/" + info.id + ".sig");
    std::lock_guard<std::mutex> guard(sticky_mu_);
    if (!sticky_) sticky_ = err;
    return err;
  };
  if (!fresh.empty())
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
  if (counter && !fresh.empty()) {
    if (auto err = write_durable_stages(env_, dir_ + "/tmp", {{pack_file, index_file}}))
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
    const std::string ak_path = dir_ + "/keys/" + m.security.ak_key_id + ".pem";
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
  const std::string base = dir_ + "/manifests/" + info.id;
  // The commit point is the manifest durably renamed into place after the
  // signature (and the pack and index). A crash before leaves a signature
  // without a manifest (removed on open), a pack without an index (an
  // orphan gc removes), or an index without its pack (not loaded on open;
  // gc removes it).
  const std::string sig_text = encode_signature(sf);
  const durable_file sig_file{base + ".sig", sig_text, 0644},
      manifest_file{base + ".json", body, 0644};
  std::vector<durable_file> first{sig_file};
  if (!counter && !fresh.empty()) {
    first.push_back(pack_file);
    first.push_back(index_file);
  }
  if (auto err = write_durable_stages(env_, dir_ + "/tmp", {first, {manifest_file}}))
    return fail(err); // the store refuses writes now, so nothing dedups against the pack
  if (!counter) pack_published();
  newest_written_ = {info.id, to_hex(body_digest)};
  checkpoints_[info.id] = info;
  return info;
}

std::vector<checkpoint_info> checkpoint_store::list() const {
  std::vector<checkpoint_info> out;
  for (auto& [id, info] : checkpoints_)
    out.push_back(info);
  return out;
}

result<std::string> checkpoint_store::resolve(const std::string& id_or_prefix) const {
  const std::string hint = "; run 'dsmilctl checkpoint list' to see the ids";
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
  auto it = checkpoints_.find(id);
  if (it == checkpoints_.end()) return make_error(errc::not_found, "no checkpoint '" + id + "'");
  return it->second;
}

result<manifest> checkpoint_store::read_verified_manifest(const std::string& id,
                                                          verify_report* report,
                                                          std::string* sha_out) {
  const std::string json_rel = "manifests/" + id + ".json";
  const std::string sig_rel = "manifests/" + id + ".sig";
  auto body = env_.read_file(dir_ + "/" + json_rel);
  if (!body) {
    if (body.err().code == errc::not_found)
      return make_error(errc::not_found, "no checkpoint '" + id + "'");
    return body.err();
  }
  auto sig_text = env_.read_file(dir_ + "/" + sig_rel);
  if (!sig_text) return make_error(errc::integrity_error, sig_rel + ": signature file is missing");
  auto sig = decode_signature(*sig_text, sig_rel);
  if (!sig) return sig.err();
  const digest body_digest = sha256(*body);
  const std::string key_rel = "keys/" + sig->key_id + ".pem";
  auto pem = env_.read_file(dir_ + "/" + key_rel);
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
  // Then the manifest: is it the body that was signed?
  if (signed_d != body_digest)
    return make_error(errc::integrity_error,
                      json_rel + ": manifest was modified (its SHA-256 is not the signed one)");
  auto m = decode_manifest(*body, json_rel);
  if (!m) return m.err();
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
      const std::string ak_rel = "keys/" + sec.ak_key_id + ".pem";
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
  if (sha_out) *sha_out = to_hex(body_digest);
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
  const std::string pack_rel = "packs/" + loc.pack.substr(0, 2) + "/" + loc.pack + ".pack";
  auto bytes = env_.read_range(dir_ + "/" + pack_rel, loc.offset, loc.length);
  if (!bytes)
    return make_error(errc::integrity_error,
                      pack_rel + ": cannot read pack (" + bytes.err().message + ")");
  return decode_record(*bytes, loc, id_hex, pack_rel, keys_.get(), can_read_content());
}

result<std::vector<std::string>>
checkpoint_store::read_chunks(const std::vector<std::string>& ids_hex) {
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
    const std::string pack_rel = "packs/" + pack.substr(0, 2) + "/" + pack + ".pack";
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
      auto plain = decode_record(bytes->substr(at, locs[i].length), locs[i], ids_hex[i], pack_rel,
                                 keys_.get(), can_read_content());
      if (!plain) return plain.err();
      out[i] = std::move(*plain);
    }
    first = last;
  }
  return out;
}

result<checkpoint_contents> checkpoint_store::load(const std::string& id) {
  if (!can_read_content()) return no_key_error();
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
      return make_error(errc::integrity_error, "manifests/" + id + ".json: chunk for " +
                                                   format_device_id(d.device) + " holds " +
                                                   format_device_id(s->id));
    c.devices.push_back(std::move(*s));
  }
  for (auto& st : m->streams)
    c.streams.push_back({st.name, st.size, st.chunks});
  c.security = m->security;
  return c;
}

result<verify_report> checkpoint_store::verify(const std::string& id, bool quick) {
  verify_report report;
  auto m = read_verified_manifest(id, &report, nullptr);
  if (!m) return m.err();
  if (!m->info.parent_id.empty()) {
    auto parent = env_.read_file(dir_ + "/manifests/" + m->info.parent_id + ".json");
    if (!parent) {
      report.checks.push_back("parent: " + m->info.parent_id + " no longer in the store (deleted)");
    } else if (sha256_hex(*parent) != m->info.parent_manifest_sha256) {
      return make_error(errc::integrity_error,
                        "manifests/" + m->info.parent_id +
                            ".json: parent manifest was modified "
                            "(its SHA-256 is not the one this checkpoint recorded)");
    } else {
      report.checks.push_back("parent: " + m->info.parent_id + " link intact");
    }
  }
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
      const std::string rel = "packs/" + p.substr(0, 2) + "/" + p + ".pack";
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
      return make_error(errc::integrity_error, "manifests/" + id + ".json: chunk " +
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
    if (auto err = read_stream(ref, [&](std::string_view b) {
          got += b.size();
          return status{};
        }))
      return err;
    if (got != st.size)
      return make_error(errc::integrity_error, "manifests/" + id + ".json: stream '" + st.name +
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

status checkpoint_store::remove(const std::string& id) {
  if (auto err = refuse_if_read_only()) return err;
  if (sticky_)
    return make_error(errc::io_error, "the store refuses deletes after an earlier failure (" +
                                          sticky_.message + "); restart the node to reopen it");
  auto it = checkpoints_.find(id);
  if (it == checkpoints_.end()) return make_error(errc::not_found, "no checkpoint '" + id + "'");
  if (it->second.pinned)
    return make_error(errc::permission_denied,
                      "checkpoint " + id + " is pinned; unpin it first ('checkpoint unpin')");
  if (id == checkpoints_.rbegin()->first && it->second.counter > 0 &&
      it->second.ak_key_id == key_->attestation_key_id()) {
    // The newest goes: a signed head record names the next one with a fresh
    // counter value, so that it is not taken for an old checkpoint replayed.
    if (auto err = write_head_record(id)) return err;
  }
  const std::string base = dir_ + "/manifests/" + id;
  // The manifest goes first: without it the checkpoint no longer exists, and
  // a signature left behind by a crash is swept at the next open.
  for (auto ext : {".json", ".sig", ".pin"}) {
    if (auto err = remove_durable(env_, base + ext)) {
      sticky_ = make_error(err.code, err.message);
      return err;
    }
  }
  checkpoints_.erase(id);
  return {};
}

status checkpoint_store::write_head_record(const std::string& removed) {
  std::string next;
  for (auto it = checkpoints_.rbegin(); it != checkpoints_.rend(); ++it)
    if (it->first != removed) {
      next = it->first;
      break;
    }
  auto counter = key_->advance_counter();
  if (!counter) return counter.err();
  const std::string body = nlohmann::json{{"head", next},
                                          {"counter", *counter},
                                          {"ak_key_id", key_->attestation_key_id()}}
                               .dump(2) +
                           "\n";
  const digest d = sha256(body);
  auto sig = key_->sign_digest(d);
  if (!sig) return sig.err();
  signature_file sf{key_->scheme(), key_->provider(), key_->key_id(), to_hex(d),
                    to_hex(reinterpret_cast<const uint8_t*>(sig->data()), sig->size())};
  if (auto err = write(dir_ + "/head.sig", encode_signature(sf))) return err;
  return write(dir_ + "/head.json", body);
}

result<head_record> checkpoint_store::read_head_record() {
  auto body = env_.read_file(dir_ + "/head.json");
  if (!body) return body.err();
  auto sig_text = env_.read_file(dir_ + "/head.sig");
  if (!sig_text) return make_error(errc::integrity_error, "head.sig is missing");
  auto sig = decode_signature(*sig_text, "head.sig");
  if (!sig) return sig.err();
  auto pem = env_.read_file(dir_ + "/keys/" + sig->key_id + ".pem");
  std::string der;
  auto pem_id = pem ? key_id_of(*pem) : result<std::string>(pem.err());
  if (!pem || !pem_id || *pem_id != sig->key_id || !from_hex(sig->value_hex, der) ||
      verify_digest(*pem, sha256(*body), der))
    return make_error(errc::integrity_error, "head.json: signature does not verify");
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::integrity_error, "head.json: not valid JSON");
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
