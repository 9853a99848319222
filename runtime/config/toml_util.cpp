#include "runtime/config/toml_util.hpp"

#include <sstream>

namespace dsmil::toml_util {

std::string where(const std::string& source, const toml::node& n) {
  return source + ":" + std::to_string(n.source().begin.line) + ": ";
}

status check_keys(const toml::table& tbl, std::initializer_list<const char*> allowed,
                  const std::string& source, const std::string& context) {
  for (auto&& [k, v] : tbl) {
    bool ok = false;
    for (auto* a : allowed)
      if (k.str() == a) ok = true;
    if (!ok) {
      std::string list;
      for (auto* a : allowed)
        list += std::string(list.empty() ? "" : ", ") + a;
      return make_error(errc::config_error, where(source, v) + "unknown key '" +
                                                std::string(k.str()) + "' in " + context +
                                                " (allowed: " + list + ")");
    }
  }
  return {};
}

namespace {

error type_error(const std::string& source, const toml::node& n, const char* key,
                 const char* want) {
  std::ostringstream got;
  got << n.type();
  return make_error(errc::config_error,
                    where(source, n) + "'" + key + "' must be " + want + ", got " + got.str());
}

} // namespace

status get_int(const toml::table& tbl, const char* key, int64_t& out, const std::string& source) {
  auto* n = tbl.get(key);
  if (n == nullptr) return {};
  auto v = n->value<int64_t>();
  if (!n->is_integer() || !v) return type_error(source, *n, key, "an integer");
  out = *v;
  return {};
}

status get_double(const toml::table& tbl, const char* key, double& out, const std::string& source) {
  auto* n = tbl.get(key);
  if (n == nullptr) return {};
  if (!n->is_number()) return type_error(source, *n, key, "a number");
  out = *n->value<double>();
  return {};
}

status get_bool(const toml::table& tbl, const char* key, bool& out, const std::string& source) {
  auto* n = tbl.get(key);
  if (n == nullptr) return {};
  if (!n->is_boolean()) return type_error(source, *n, key, "true or false");
  out = *n->value<bool>();
  return {};
}

status get_string(const toml::table& tbl, const char* key, std::string& out,
                  const std::string& source) {
  auto* n = tbl.get(key);
  if (n == nullptr) return {};
  if (!n->is_string()) return type_error(source, *n, key, "a string");
  out = *n->value<std::string>();
  return {};
}

result<const toml::table*> get_table(const toml::table& tbl, const char* key,
                                     const std::string& source) {
  auto* n = tbl.get(key);
  if (n == nullptr) return static_cast<const toml::table*>(nullptr);
  if (!n->is_table()) return type_error(source, *n, key, "a table");
  return n->as_table();
}

result<toml::table> parse(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error(errc::config_error, source + ":" + std::to_string(e.source().begin.line) +
                                              ": " + std::string(e.description()));
  }
}

} // namespace dsmil::toml_util
