// JSON of any type with fields() (dsmil/fields.hpp): what `dsmilctl --json`
// prints and what a client may build a request from. Member names are the
// JSON keys; std::optional members are left out when empty, nullable ones
// are null.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsmil/control.hpp"
#include "dsmil/fields.hpp"

namespace dsmil {

namespace detail {

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};

template <class M> nlohmann::json member_to_json(const M& m);

struct json_writer {
  nlohmann::json& out;
  template <class M> void operator()(const char* name, M& m) {
    if constexpr (std::is_same<M, extra_fields>::value) {
      for (auto& [key, value] : m.value.items())
        out[key] = value;
    } else if constexpr (is_optional<M>::value) {
      if (m) {
        out[name] = member_to_json(*m);
      } else if (!std::is_same<M, std::optional<typename M::value_type>>::value) {
        out[name] = nullptr; // nullable
      }
    } else {
      out[name] = member_to_json(m);
    }
  }
};

template <class M> nlohmann::json member_to_json(const M& m) {
  if constexpr (has_fields<M>::value) {
    nlohmann::json out = nlohmann::json::object();
    json_writer w{out};
    fields(w, const_cast<M&>(m)); // fields() only reads through a writer
    return out;
  } else if constexpr (is_vector<M>::value) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& x : m)
      out.push_back(member_to_json(x));
    return out;
  } else if constexpr (std::is_enum<M>::value) {
    return static_cast<std::underlying_type_t<M>>(m);
  } else {
    return nlohmann::json(m);
  }
}

/// Reads members from a JSON object; the first problem lands in `error`.
struct json_reader {
  const nlohmann::json& in;
  std::string& error;
  std::vector<std::string> seen;
  extra_fields* extras = nullptr; ///< where keys the type does not name go, if it has one

  template <class M> void operator()(const char* name, M& m) {
    if constexpr (std::is_same<M, extra_fields>::value) {
      extras = &m;
    } else {
      seen.emplace_back(name);
      auto it = in.find(name);
      if (!error.empty() || it == in.end()) return;
      read(name, *it, m);
    }
  }

  template <class M> void read(const std::string& name, const nlohmann::json& j, M& m) {
    if constexpr (is_optional<M>::value) {
      if (j.is_null()) {
        m.reset();
      } else {
        m.emplace();
        read(name, j, *m);
      }
    } else if constexpr (has_fields<M>::value) {
      if (!j.is_object()) {
        error = "'" + name + "' must be an object";
        return;
      }
      json_reader inner{j, error, {}};
      fields(inner, m);
    } else if constexpr (is_vector<M>::value) {
      if (!j.is_array()) {
        error = "'" + name + "' must be a list";
        return;
      }
      m.clear();
      for (auto& e : j) {
        m.emplace_back();
        read(name, e, m.back());
      }
    } else if constexpr (std::is_same<M, bool>::value) {
      if (!j.is_boolean())
        error = "'" + name + "' must be true or false";
      else
        m = j.get<bool>();
    } else if constexpr (std::is_same<M, std::string>::value) {
      if (!j.is_string())
        error = "'" + name + "' must be a string";
      else
        m = j.get<std::string>();
    } else if constexpr (std::is_floating_point<M>::value) {
      if (!j.is_number())
        error = "'" + name + "' must be a number";
      else
        m = j.get<M>();
    } else if constexpr (std::is_integral<M>::value) {
      if (!j.is_number_integer())
        error = "'" + name + "' must be a whole number";
      else if (j.is_number_unsigned() && std::is_signed<M>::value &&
               j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        error = "'" + name + "' is out of range";
      else
        m = j.get<M>();
    } else {
      m = j; // nlohmann::json: a document of the producer's shape
    }
  }
};

} // namespace detail

/// The JSON object of `x`'s fields.
template <class T> nlohmann::json to_json_fields(const T& x) {
  return detail::member_to_json(x);
}

/// Fills `x` from a JSON object: keys absent keep `x`'s defaults. Returns
/// an empty string, or one line saying what is wrong (a key `x` does not
/// have, unless it has extra_fields; a value of the wrong type).
template <class T> std::string from_json_fields(const nlohmann::json& in, T& x) {
  if (!in.is_object()) return "arguments are not a JSON object";
  std::string error;
  detail::json_reader r{in, error, {}};
  fields(r, x);
  if (!error.empty()) return error;
  for (auto& [key, value] : in.items()) {
    bool known = false;
    for (auto& s : r.seen)
      known = known || s == key;
    if (known) continue;
    if (!r.extras) return "unknown argument '" + key + "'";
    r.extras->value[key] = value;
  }
  return {};
}

/// The JSON `dsmilctl --json` prints for an answer: the body's fields, and
/// on failure "error": {"code", "message"} beside them.
template <class T> nlohmann::json to_json_answer(const answer<T>& a) {
  nlohmann::json out = a.body ? to_json_fields(*a.body) : nlohmann::json::object();
  if (a.code != errc::none) out["error"] = {{"code", to_string(a.code)}, {"message", a.message}};
  return out;
}

} // namespace dsmil
