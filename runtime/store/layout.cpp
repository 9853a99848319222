#include "runtime/store/layout.hpp"

namespace dsmil::layout {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `name` without `suffix` when it ends with it and the rest is a plain name.
bool strip(const std::string& name, const std::string& suffix, std::string& out) {
  if (!ends_with(name, suffix)) return false;
  out = name.substr(0, name.size() - suffix.size());
  return out.find('/') == std::string::npos;
}

} // namespace

std::string public_key(const std::string& key_id) {
  return std::string(keys_dir) + "/" + key_id + ".pem";
}
std::string pack_dir(const std::string& pack) {
  return std::string(packs_dir) + "/" + pack.substr(0, 2);
}
std::string pack(const std::string& pack) {
  return pack_dir(pack) + "/" + pack + ".pack";
}
std::string index(const std::string& pack) {
  return std::string(index_dir) + "/" + pack + ".idx";
}
std::string manifest(const std::string& id) {
  return std::string(manifests_dir) + "/" + id + ".json";
}
std::string signature(const std::string& id) {
  return std::string(manifests_dir) + "/" + id + ".sig";
}
std::string pin(const std::string& id) {
  return std::string(manifests_dir) + "/" + id + ".pin";
}
std::string journal(const std::string& saga) {
  return std::string(journal_dir) + "/" + saga + ".wal";
}
std::string tmp(const std::string& name) {
  return std::string(tmp_dir) + "/" + name + ".tmp";
}

parsed_name parse(const std::string& rel) {
  static const std::pair<const char*, file_kind> fixed[] = {
      {store_toml, file_kind::store_toml},
      {store_toml_sig, file_kind::store_toml_sig},
      {lock, file_kind::lock},
      {head, file_kind::head},
      {head_sig, file_kind::head_sig},
      {signing_key, file_kind::signing_key},
      {data_key, file_kind::data_key},
      {sealed_data_key, file_kind::sealed_data_key},
      {data_key_created, file_kind::data_key_created},
  };
  for (auto& [name, kind] : fixed)
    if (rel == name) return {kind, {}};
  const auto slash = rel.find('/');
  if (slash == std::string::npos) return {};
  const std::string dir = rel.substr(0, slash), rest = rel.substr(slash + 1);
  std::string name;
  if (dir == keys_dir && strip(rest, ".pem", name)) return {file_kind::public_key, name};
  if (dir == index_dir && strip(rest, ".idx", name)) return {file_kind::index, name};
  if (dir == journal_dir && strip(rest, ".wal", name)) return {file_kind::journal, name};
  if (dir == tmp_dir && strip(rest, ".tmp", name)) return {file_kind::tmp, name};
  if (dir == manifests_dir) {
    if (strip(rest, ".json", name)) return {file_kind::manifest, name};
    if (strip(rest, ".sig", name)) return {file_kind::signature, name};
    if (strip(rest, ".pin", name)) return {file_kind::pin, name};
  }
  if (dir == packs_dir) {
    const auto sub = rest.find('/');
    if (sub == std::string::npos) return {};
    if (strip(rest.substr(sub + 1), ".pack", name) && name.size() > 2 &&
        rest.substr(0, sub) == name.substr(0, 2))
      return {file_kind::pack, name};
  }
  return {};
}

parsed_name parse_in(const char* dir, const std::string& name) {
  return parse(std::string(dir) + "/" + name);
}

} // namespace dsmil::layout
