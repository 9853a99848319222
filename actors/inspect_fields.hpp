// CAF's inspect() for every type with fields() (dsmil/fields.hpp): the
// members in their fields() order, so the wire format and to_string()
// follow the one member list. Optional members travel as a flag and, when
// set, the value; JSON documents as their text.
#pragma once

#include <string>
#include <type_traits>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>
#include <nlohmann/json.hpp>

#include "dsmil/fields.hpp"

namespace dsmil {

namespace detail {

template <class Inspector> struct caf_fields {
  Inspector& f;
  caf::error err; ///< the first failure; later members are skipped

  template <class M> void operator()(const char*, M& m) {
    if (!err) err = one(m);
  }

  // Calls the inspector on one value: its error, or none for inspectors
  // that cannot fail (to_string).
  template <class M> caf::error call(M& m) {
    if constexpr (std::is_same<typename Inspector::result_type, void>::value) {
      f(m);
      return caf::none;
    } else {
      return f(m);
    }
  }

  template <class M> caf::error one(M& m) {
    constexpr bool loading = Inspector::writes_state;
    if constexpr (is_optional<M>::value) {
      bool set = m.has_value();
      if (auto e = call(set)) return e;
      if (!set) {
        if (loading) m.reset();
        return caf::none;
      }
      if (loading && !m) m.emplace();
      return one(*m);
    } else if constexpr (std::is_same<M, extra_fields>::value) {
      return one(m.value);
    } else if constexpr (std::is_same<M, nlohmann::json>::value) {
      std::string text = loading ? std::string() : m.dump();
      if (auto e = call(text)) return e;
      if (loading) m = nlohmann::json::parse(text, nullptr, false);
      return caf::none;
    } else if constexpr (std::is_enum<M>::value) {
      auto v = static_cast<std::underlying_type_t<M>>(m);
      if (auto e = call(v)) return e;
      if (loading) m = static_cast<M>(v);
      return caf::none;
    } else {
      return call(m);
    }
  }
};

/// The registered name of T (messages.hpp), or a plain one for the types
/// that only travel inside others.
template <class T, class = void> struct caf_name {
  static constexpr const char* value = "dsmil::record";
};
template <class T> struct caf_name<T, std::void_t<decltype(caf::type_name<T>::value)>> {
  static constexpr const char* value = caf::type_name<T>::value;
};

} // namespace detail

template <class Inspector, class T>
std::enable_if_t<has_fields<T>::value, typename Inspector::result_type> inspect(Inspector& f,
                                                                                T& x) {
  if constexpr (std::is_same<typename Inspector::result_type, void>::value) {
    f(caf::meta::type_name(detail::caf_name<T>::value));
    detail::caf_fields<Inspector> each{f, caf::none};
    fields(each, x);
  } else {
    if (auto e = f(caf::meta::type_name(detail::caf_name<T>::value))) return e;
    detail::caf_fields<Inspector> each{f, caf::none};
    fields(each, x);
    return std::move(each.err);
  }
}

} // namespace dsmil
