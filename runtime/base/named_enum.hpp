// Enums with names: settings, checkpoint types, saga phases and outcomes. Each
// enum lists its names once, next to its definition:
//
//   enum class rollback_type { full, selective };
//   template <> struct enum_names<rollback_type> {
//     static constexpr std::pair<rollback_type, const char*> values[] = {
//         {rollback_type::full, "full"}, {rollback_type::selective, "selective"}};
//   };
//
// and is then written with enum_name(), read with parse_enum<E>(), and named
// in error messages with enum_choices<E>(). Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dsmil {

/// Specialize with `static constexpr std::pair<E, const char*> values[]`.
template <class E> struct enum_names;

/// The name of `e`; "?" for a value outside the list (a cast integer).
template <class E> const char* enum_name(E e) {
  for (auto& [value, name] : enum_names<E>::values)
    if (value == e) return name;
  return "?";
}

/// The value named `s` (exact, case-sensitive), or nothing.
template <class E> std::optional<E> parse_enum(std::string_view s) {
  for (auto& [value, name] : enum_names<E>::values)
    if (s == name) return value;
  return std::nullopt;
}

/// Every name, for a message: "\"a\", \"b\" or \"c\"".
template <class E> std::string enum_choices() {
  std::string out;
  constexpr size_t n = std::size(enum_names<E>::values);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    out += std::string("\"") + enum_names<E>::values[i].second + "\"";
  }
  return out;
}

} // namespace dsmil
