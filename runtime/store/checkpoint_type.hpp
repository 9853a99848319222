// Why a checkpoint was taken. Recorded in its signed manifest by name. Pure.
#pragma once

#include "runtime/base/named_enum.hpp"

namespace dsmil {

enum class checkpoint_type {
  manual,       ///< an operator or the embedding runtime asked for it
  automatic,    ///< the node's schedule took it; retention prunes these
  emergency,    ///< taken before an emergency action
  pre_rollback, ///< a rollback saga's compensation target
  /// Never written: what a listing says of a checkpoint whose manifest does
  /// not read (so that verify can say what is wrong with it).
  damaged,
};

template <> struct enum_names<checkpoint_type> {
  static constexpr std::pair<checkpoint_type, const char*> values[] = {
      {checkpoint_type::manual, "manual"},
      {checkpoint_type::automatic, "automatic"},
      {checkpoint_type::emergency, "emergency"},
      {checkpoint_type::pre_rollback, "pre-rollback"},
      {checkpoint_type::damaged, "damaged"}};
};

} // namespace dsmil
