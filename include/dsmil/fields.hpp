// Types that list their members once. A type T takes part by declaring, in
// its own namespace,
//
//   template <class F> void fields(F& f, T& x) { f("name", x.name); f("count", x.count); }
//
// and everything that walks a message is written against that list: CAF's
// inspect() (actors/inspect_fields.hpp: the wire format and to_string),
// the JSON of `dsmilctl --json` and of the embedding API
// (runtime/base/fields_json.hpp). A member is one of: bool, an integer, a
// double, std::string, another type with fields, std::vector of those,
// std::optional<M> (left out of JSON when empty), nullable<M> (JSON null
// when empty) or nlohmann::json (a document whose shape is the producer's,
// e.g. a component's plan detail) or extra_fields (a JSON object whose keys
// JSON writes beside the type's own: what a component adds to a reply).
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace dsmil {

/// An optional member that JSON writes as null when empty (std::optional
/// members are left out instead).
template <class T> struct nullable : std::optional<T> { using std::optional<T>::optional; };

/// Keys a producer adds beside a type's own members (a component's details
/// in a rollback's reply). JSON writes them flat beside the other members
/// and reads every key the type does not name into them.
struct extra_fields {
  nlohmann::json value = nlohmann::json::object();
};

namespace detail {

struct field_probe {
  template <class M> void operator()(const char*, M&) {}
};

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_optional<nullable<T>> : std::true_type {};

} // namespace detail

/// True for a type that lists its members with fields().
template <class T, class = void> struct has_fields : std::false_type {};
template <class T>
struct has_fields<
    T, std::void_t<decltype(fields(std::declval<detail::field_probe&>(), std::declval<T&>()))>>
    : std::true_type {};

} // namespace dsmil
