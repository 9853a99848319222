// layout: the name of every file the checkpoint store creates, relative to
// the store directory, and the parse back from a name to what it is. No other
// code spells a store path; a new file gets its name here first.
//
//   store.toml                  format version, store id, chunker and crypto parameters
//   store.toml.sig              signature file over the exact bytes of store.toml (its
//                               manifest_sha256 is store.toml's SHA-256)
//   LOCK                        advisory lock: one process per store
//   head.json, head.sig         signed record naming the newest checkpoint after a delete
//   keys/signing.key            software signing key (0600)
//   keys/<key id>.pem           verifying public keys
//   keys/data.key               data key of an encrypted store (0600), or
//   keys/data.key.sealed        the data key sealed by the key provider
//   keys/data.key.created       marker: the data key was made by this store
//   packs/<xx>/<pack>.pack      chunk records (xx = first two hex digits of the pack name)
//   index/<pack>.idx            the pack's chunk index
//   manifests/<id>.json         manifest body
//   manifests/<id>.sig          signature over the body's SHA-256
//   manifests/<id>.pin          present while the checkpoint is pinned
//   journal/<saga>.wal          rollback saga journal
//   tmp/<name>.tmp              in-flight writes, swept at open
#pragma once

#include <string>

namespace dsmil::layout {

inline constexpr const char* store_toml = "store.toml";
inline constexpr const char* store_toml_sig = "store.toml.sig";
inline constexpr const char* lock = "LOCK";
inline constexpr const char* head = "head.json";
inline constexpr const char* head_sig = "head.sig";
inline constexpr const char* keys_dir = "keys";
inline constexpr const char* packs_dir = "packs";
inline constexpr const char* index_dir = "index";
inline constexpr const char* manifests_dir = "manifests";
inline constexpr const char* journal_dir = "journal";
inline constexpr const char* tmp_dir = "tmp";
inline constexpr const char* signing_key = "keys/signing.key";
inline constexpr const char* data_key = "keys/data.key";
inline constexpr const char* sealed_data_key = "keys/data.key.sealed";
inline constexpr const char* data_key_created = "keys/data.key.created";

/// keys/<key_id>.pem
std::string public_key(const std::string& key_id);
/// packs/<first two digits of pack>
std::string pack_dir(const std::string& pack);
/// packs/<xx>/<pack>.pack
std::string pack(const std::string& pack);
/// index/<pack>.idx
std::string index(const std::string& pack);
/// manifests/<id>.json
std::string manifest(const std::string& id);
/// manifests/<id>.sig
std::string signature(const std::string& id);
/// manifests/<id>.pin
std::string pin(const std::string& id);
/// journal/<saga>.wal
std::string journal(const std::string& saga);
/// tmp/<name>.tmp: the in-flight copy of a file called `name`.
std::string tmp(const std::string& name);

/// What a store file is, from its relative path.
enum class file_kind {
  unknown,
  store_toml,
  store_toml_sig,
  lock,
  head,
  head_sig,
  signing_key,
  public_key,
  data_key,
  sealed_data_key,
  data_key_created,
  pack,
  index,
  manifest,
  signature,
  pin,
  journal,
  tmp,
};

/// The parse of a relative path: its kind and the name it carries (key id,
/// pack name, checkpoint id, saga id; empty for fixed names).
struct parsed_name {
  file_kind kind = file_kind::unknown;
  std::string name;
};

/// Parses a path relative to the store directory ("manifests/<id>.json").
/// A pack outside its packs/<xx>/ directory, or a name with a separator where
/// none belongs, is unknown.
parsed_name parse(const std::string& rel);

/// Parses a bare file name found by listing `dir` (one of the directory
/// constants above): parse(dir + "/" + name).
parsed_name parse_in(const char* dir, const std::string& name);

/// `dir` + "/" + `rel`.
inline std::string path(const std::string& dir, const std::string& rel) {
  return dir + "/" + rel;
}

} // namespace dsmil::layout
