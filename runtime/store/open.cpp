// checkpoint_store: opening a store (creating it when absent), its store.toml, keys and catalog.
#include "runtime/store/layout.hpp"
#include "runtime/store/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <sstream>

#include "runtime/base/crypto.hpp"
#include "runtime/config/toml_util.hpp"
#include "runtime/store/state_codec.hpp"

namespace dsmil {

namespace {

// store.toml as toml++ writes it. Its exact bytes are signed (store.toml.sig),
// so it is written once and never rewritten.
std::string store_toml(const std::string& store_id, const store_options& o) {
  toml::table chunking{{"min_size", int64_t{o.chunking.min_size}},
                       {"avg_size", int64_t{o.chunking.avg_size}},
                       {"max_size", int64_t{o.chunking.max_size}}};
  toml::table t{{"format_version", 1},
                {"store_id", store_id},
                {"codec", "deflate"},
                {"deflate_level", o.deflate_level},
                {"cipher", o.encrypt ? "aes-256-gcm" : "none"},
                {"chunk_ids", o.encrypt ? "hmac-sha256" : "sha256"},
                {"pack_target_bytes", static_cast<int64_t>(o.pack_target_bytes)},
                {"chunking", std::move(chunking)}};
  std::ostringstream out;
  out << "# dsmil-recovery checkpoint store (see DESIGN.md). Written once, at creation;\n"
      << "# store.toml.sig signs these exact bytes.\n"
      << t << "\n";
  return out.str();
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

status checkpoint_store::check_writable(const char* what) const {
  if (auto err = refuse_if_read_only()) return err;
  {
    std::lock_guard<std::mutex> guard(bg_mu_);
    if (bg_error_)
      return make_error(errc::io_error, std::string("the store refuses ") + what +
                                            " after an earlier failure (" + bg_error_.message +
                                            "); restart the node to reopen it");
  }
  if (std::string(what) == "writes" && !can_read_content()) return no_key_error();
  return {};
}

error checkpoint_store::record_background_error(const error& err) {
  std::lock_guard<std::mutex> guard(bg_mu_);
  if (!bg_error_) bg_error_ = err;
  return err;
}

error checkpoint_store::record_write_error(const error& err) {
  if (err.code == errc::no_space) return err;
  return record_background_error(err);
}

status checkpoint_store::init() {
  if (opts_.read_only) return init_read_only();
  for (auto sub : {layout::keys_dir, layout::packs_dir, layout::index_dir, layout::manifests_dir,
                   layout::journal_dir, layout::tmp_dir})
    if (auto err = env_.create_dirs(layout::path(dir_, sub))) return err;
  auto lock = env_.lock_file(layout::path(dir_, layout::lock));
  if (!lock) {
    if (lock.err().code == errc::busy)
      return make_error(errc::busy, "store " + dir_ +
                                        " is in use by another process (another "
                                        "dsmild on the same data dir?); stop it or use --data-dir");
    return lock.err();
  }
  lock_ = std::move(*lock);
  // In-flight writes of a process that died: never visible, safe to drop.
  auto tmp = env_.list_dir(layout::path(dir_, layout::tmp_dir));
  if (!tmp) return tmp.err();
  for (auto& name : *tmp)
    if (auto err = env_.remove(layout::path(dir_, std::string(layout::tmp_dir) + "/" + name)))
      return err;

  const std::string meta = layout::path(dir_, layout::store_toml);
  auto text = env_.read_file(meta);
  if (!text) {
    if (text.err().code != errc::not_found) return text.err();
    // All 256 pack directories up front, made durable once: sealing a pack
    // then never waits for a mkdir and an fsync of packs/.
    for (int i = 0; i < 256; ++i) {
      char sub[4];
      std::snprintf(sub, sizeof(sub), "%02x", i);
      if (auto err = env_.create_dirs(layout::path(dir_, layout::pack_dir(sub)))) return err;
    }
    if (auto err = env_.sync_dir(layout::path(dir_, layout::packs_dir))) return err;
    if (auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir), meta,
                                 store_toml(ids_.next(env_.now_unix_ns()), opts_)))
      return err;
    text = env_.read_file(meta);
    if (!text) return text.err();
  }

  if (!key_) {
    auto key = open_software_key(env_, layout::path(dir_, layout::keys_dir),
                                 layout::path(dir_, layout::tmp_dir), opts_.passphrase_file);
    if (!key) return key.err();
    key_ = std::move(*key);
  }
  // Its signature first: a damaged store.toml is named as such, not as a
  // parse error or as a chunker that makes different chunk ids.
  if (auto err = check_store_toml(*text, true)) return err;
  if (auto err = read_store_toml(*text, meta, opts_)) return err;

  if (opts_.encrypt) {
    const std::string key_path = layout::path(dir_, layout::data_key);
    const std::string sealed_path = layout::path(dir_, layout::sealed_data_key);
    if (!env_.exists(key_path) && !env_.exists(sealed_path) &&
        !env_.exists(layout::path(dir_, layout::data_key_created))) {
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
                env_, layout::path(dir_, layout::tmp_dir), sealed_path,
                key_->provider() + " " +
                    to_hex(reinterpret_cast<const uint8_t*>(sealed->data()), sealed->size()) + "\n",
                0600))
          return err;
      } else if (sealed.err().code == errc::unavailable) {
        if (auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir), key_path,
                                     to_hex(raw, 32) + "\n", 0600))
          return err;
      } else {
        return sealed.err();
      }
      if (auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir),
                                   layout::path(dir_, layout::data_key_created), "\n"))
        return err;
    }
    load_data_key();
    // Without the key the store opens for structure checks only.
  }
  const std::string pem_path = layout::path(dir_, layout::public_key(key_->key_id()));
  if (!env_.exists(pem_path))
    if (auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir), pem_path,
                                 key_->public_pem(), private_file_mode))
      return err;

  return load_catalog();
}

void checkpoint_store::load_data_key() {
  const std::string key_path = layout::path(dir_, layout::data_key);
  std::string raw;
  if (auto sealed = env_.read_file(layout::path(dir_, layout::sealed_data_key))) {
    const auto space = sealed->find(' ');
    std::string blob;
    if (space == std::string::npos ||
        !from_hex(sealed->substr(space + 1, sealed->find('\n') - space - 1), blob)) {
      key_problem_ = std::string(layout::sealed_data_key) + " is damaged";
      return;
    }
    const std::string by = sealed->substr(0, space);
    if (by != key_->provider()) {
      key_problem_ = std::string(layout::sealed_data_key) + " was sealed by the " + by +
                     " key provider; open the "
                     "store with it";
      return;
    }
    auto opened = key_->unseal(blob);
    if (!opened) {
      key_problem_ = std::string(layout::sealed_data_key) + ": " + opened.err().message;
      return;
    }
    raw = *opened;
  } else if (auto hex = env_.read_file(key_path)) {
    from_hex(hex->substr(0, 64), raw);
  }
  if (raw.size() == 32) keys_ = std::make_unique<store_keys>(store_keys::derive(raw));
}

status checkpoint_store::init_read_only() {
  const std::string meta = layout::path(dir_, layout::store_toml);
  auto text = env_.read_file(meta);
  if (!text)
    return make_error(errc::not_found, "no store at " + dir_ + " (" + meta +
                                           " is missing); pass the directory that holds "
                                           "store.toml");
  if (!key_) key_ = std::make_unique<verify_only_key>();
  if (auto err = check_store_toml(*text, false)) return err;
  if (auto err = read_store_toml(*text, meta, opts_)) return err;
  if (opts_.encrypt) load_data_key();
  return load_catalog();
}

status checkpoint_store::check_store_toml(const std::string& text, bool may_sign) {
  const std::string sig_path = layout::path(dir_, layout::store_toml_sig);
  const std::string sig_rel = layout::store_toml_sig;
  const digest d = sha256(text);
  auto sig_text = env_.read_file(sig_path);
  if (!sig_text) {
    if (sig_text.err().code != errc::not_found) return sig_text.err();
    if (!may_sign)
      return make_error(errc::integrity_error,
                        sig_rel + " is missing: store.toml of " + dir_ +
                            " is not signed (a store made by an earlier build signs it when "
                            "dsmild next opens it)");
    // A new store, or one made before store.toml was signed: sign it now,
    // after the public key that verifies the signature is durably there.
    const std::string pem_path = layout::path(dir_, layout::public_key(key_->key_id()));
    if (!env_.exists(pem_path))
      if (auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir), pem_path,
                                   key_->public_pem(), private_file_mode))
        return err;
    auto value = key_->sign_digest(d);
    if (!value) return value.err();
    const signature_file sf{key_->scheme(), key_->provider(), key_->key_id(), to_hex(d),
                            to_hex(reinterpret_cast<const uint8_t*>(value->data()), value->size())};
    return write_durable(env_, layout::path(dir_, layout::tmp_dir), sig_path, encode_signature(sf));
  }
  auto sig = check_signature(sig_rel, text,
                             "store.toml of " + dir_ +
                                 " was modified or damaged (its SHA-256 is not the signed one); "
                                 "restore it from a copy");
  if (!sig) return sig.err();
  return {};
}

status checkpoint_store::load_catalog() {
  auto idx = env_.list_dir(layout::path(dir_, layout::index_dir));
  if (!idx) return idx.err();
  for (auto& name : *idx) {
    auto parsed = layout::parse_in(layout::index_dir, name);
    if (parsed.kind != layout::file_kind::index) continue;
    const std::string& pack = parsed.name;
    if (!env_.exists(layout::path(dir_, layout::pack(pack)))) {
      // A pack and its index are renamed into place together and fsynced
      // at once, so a crash may keep the index alone. Nothing names its
      // chunks (a manifest is written only after both), and nothing may
      // dedup against them: it is not loaded, and the next gc removes it.
      // A pack lost later shows up the same way in verify and check: its
      // chunks are in no index.
      continue;
    }
    auto body = env_.read_file(layout::path(dir_, layout::index(pack)));
    if (!body) return body.err();
    if (auto err = parse_index(*body, pack, layout::index(pack), index_)) return err;
  }

  auto names = env_.list_dir(layout::path(dir_, layout::manifests_dir));
  if (!names) return names.err();
  std::set<std::string> have; // relative paths
  for (auto& name : *names)
    have.insert(std::string(layout::manifests_dir) + "/" + name);
  for (auto& name : *names) {
    const auto parsed = layout::parse_in(layout::manifests_dir, name);
    const bool side =
        parsed.kind == layout::file_kind::signature || parsed.kind == layout::file_kind::pin;
    if (side && !have.count(layout::manifest(parsed.name))) {
      // A create that died between signature and manifest (the checkpoint
      // never existed), or a delete that died after removing the manifest.
      if (!opts_.read_only)
        if (auto err = remove_durable(
                env_, layout::path(dir_, std::string(layout::manifests_dir) + "/" + name)))
          return err;
      continue;
    }
    if (parsed.kind != layout::file_kind::manifest) continue;
    const std::string path = layout::manifest(parsed.name);
    auto body = env_.read_file(dir_ + "/" + path);
    if (!body) return body.err();
    auto m = decode_manifest(*body, path);
    checkpoint_info info;
    if (m) {
      info = m->info;
    } else {
      info.id = parsed.name; // listed, so that verify can say what is wrong with it
      info.type = checkpoint_type::damaged;
    }
    auto sig = env_.read_file(layout::path(dir_, layout::signature(parsed.name)));
    if (sig) {
      auto s = decode_signature(*sig, path);
      if (s) {
        info.key_id = s->key_id;
        info.provider = s->provider;
      }
    }
    info.pinned = env_.exists(layout::path(dir_, layout::pin(info.id)));
    checkpoints_[info.id] = info;
  }
  return {};
}

status checkpoint_store::write(const std::string& path, const std::string& data, unsigned mode) {
  auto err = write_durable(env_, layout::path(dir_, layout::tmp_dir), path, data, mode);
  if (err) {
    env_.remove(layout::path(dir_, layout::tmp(path.substr(path.find_last_of('/') + 1))));
    return record_write_error(err);
  }
  return err;
}

} // namespace dsmil
