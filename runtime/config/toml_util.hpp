// Small helpers over toml++ for validating configuration files with
// file:line error messages. Include only from .cpp files (toml++ is heavy).
#pragma once

#include <initializer_list>
#include <string>

#include <toml++/toml.h>

#include "dsmil/result.hpp"
#include "runtime/base/named_enum.hpp"

namespace dsmil::toml_util {

/// "file:line: "
std::string where(const std::string& source, const toml::node& n);

/// Error when `tbl` has a key not in `allowed`; `context` names the table.
status check_keys(const toml::table& tbl, std::initializer_list<const char*> allowed,
                  const std::string& source, const std::string& context);

/// Reads an optional integer; type mismatch is a config_error naming the key.
status get_int(const toml::table& tbl, const char* key, int64_t& out, const std::string& source);
status get_double(const toml::table& tbl, const char* key, double& out, const std::string& source);
status get_bool(const toml::table& tbl, const char* key, bool& out, const std::string& source);
status get_string(const toml::table& tbl, const char* key, std::string& out,
                  const std::string& source);
/// Reads an optional named enum: a string that must be one of its names;
/// errors name the key, the value and every choice.
template <class E>
status get_enum(const toml::table& tbl, const char* key, E& out, const std::string& source,
                const std::string& context) {
  std::string name;
  if (auto err = get_string(tbl, key, name, source)) return err;
  if (tbl.get(key) == nullptr) return {};
  auto v = parse_enum<E>(name);
  if (!v)
    return make_error(errc::config_error, where(source, *tbl.get(key)) + "[" + context + "] " +
                                              key + " must be " + enum_choices<E>() + ", got \"" +
                                              name + "\"");
  out = *v;
  return {};
}
/// Reads an optional sub-table; a non-table value is an error.
result<const toml::table*> get_table(const toml::table& tbl, const char* key,
                                     const std::string& source);

/// Parses text, turning toml++'s parse_error into a config_error "file:line: ...".
result<toml::table> parse(const std::string& text, const std::string& source);

} // namespace dsmil::toml_util
