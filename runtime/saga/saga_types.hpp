// The names of a rollback saga's kinds, phases and outcomes, as they appear in
// journals, replies and the configuration. Pure: no I/O.
#pragma once

#include "runtime/base/named_enum.hpp"

namespace dsmil {

/// What a rollback restores: everything, what differs, a selection, or
/// everything at once without the critical-device acknowledgement.
enum class rollback_type { full, incremental, selective, emergency };

template <> struct enum_names<rollback_type> {
  static constexpr std::pair<rollback_type, const char*> values[] = {
      {rollback_type::full, "full"},
      {rollback_type::incremental, "incremental"},
      {rollback_type::selective, "selective"},
      {rollback_type::emergency, "emergency"}};
};

/// A saga's phases, in the order it runs them.
enum class saga_phase { validation, preparation, execution, verification, cleanup };

template <> struct enum_names<saga_phase> {
  static constexpr std::pair<saga_phase, const char*> values[] = {
      {saga_phase::validation, "validation"},
      {saga_phase::preparation, "preparation"},
      {saga_phase::execution, "execution"},
      {saga_phase::verification, "verification"},
      {saga_phase::cleanup, "cleanup"}};
};

/// How a saga ended. `interrupted` is never journalled: it is what a journal
/// without an end record says.
enum class saga_outcome {
  completed,           ///< every step restored and verified
  refused,             ///< stopped before it changed anything
  compensated,         ///< failed; every step that ran was put back and verified
  compensation_failed, ///< failed, and putting back failed too
  preempted,           ///< an emergency rollback took over; compensated
  interrupted,         ///< no end record (yet)
};

template <> struct enum_names<saga_outcome> {
  static constexpr std::pair<saga_outcome, const char*> values[] = {
      {saga_outcome::completed, "completed"},
      {saga_outcome::refused, "refused"},
      {saga_outcome::compensated, "compensated"},
      {saga_outcome::compensation_failed, "compensation_failed"},
      {saga_outcome::preempted, "preempted"},
      {saga_outcome::interrupted, "interrupted"}};
};

/// What start-up does with a saga a crash interrupted ([rollback] on_interrupted).
enum class interrupted_policy { compensate, resume };

template <> struct enum_names<interrupted_policy> {
  static constexpr std::pair<interrupted_policy, const char*> values[] = {
      {interrupted_policy::compensate, "compensate"}, {interrupted_policy::resume, "resume"}};
};

} // namespace dsmil
