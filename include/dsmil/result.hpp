// result<T>: a value or a dsmil::error, what every fallible call of the public
// API and of runtime/ returns. runtime/ does not depend on CAF; the
// actor layer converts an error into a caf::error at its boundary.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "dsmil/errors.hpp"

namespace dsmil {

template <class T> class result {
public:
  result(T value) : v_(std::move(value)) {}
  result(error err) : v_(std::move(err)) { assert(std::get<error>(v_).code != errc::none); }

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  /// By value, so that `for (auto& x : *make_result())` does not dangle.
  T operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const { return std::get<error>(v_); }

private:
  std::variant<T, error> v_;
};

/// Outcome of an operation without a value: an empty error means success.
using status = error;

inline error make_error(errc code, std::string message) {
  return error{code, std::move(message)};
}

} // namespace dsmil
