// The records of a rollback saga's journal, as types. Each is one JSON
// object in the journal (see journal.hpp for the framing), tagged by "t":
//
//   begin            the plan: type, target, pre-rollback checkpoint, steps
//   phase            a phase starts (the one before it completed)
//   step_start       a step is about to touch devices (durable before it does)
//   step_done        a step restored everything it names
//   step_failed      a step could not restore these items
//   compensate_start the started steps are being put back, last first
//   compensate_done  ... with this result
//   recovered        start-up found the saga unfinished and settles it
//   end              the outcome
//   settled          after an end with compensation_failed: what it could
//                    not put back was put back later, and verified
//
// Every record has "at" (Unix ns). Fields a record does not have are left
// out of its JSON; a reader gives them their defaults, so journals written
// before a field existed still read.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dsmil/device.hpp"
#include "dsmil/result.hpp"
#include "runtime/saga/saga_types.hpp"

namespace dsmil {

/// One unit of execution and compensation: some items of one component (a
/// device group), or all of it (the configuration).
struct saga_step {
  std::string component;          ///< the component that runs it
  std::string name;               ///< for people: "configuration", "group 2"
  std::vector<std::string> items; ///< what it restores ("0x8031"); empty: all of it
};

/// An item a step or its compensation could not restore, and why.
struct failed_item {
  std::string id; ///< a device id ("0x8000") or "configuration" / "journal"
  std::string error;
};

struct begin_record {
  static constexpr const char* tag = "begin";
  std::string saga;
  rollback_type type = rollback_type::full;
  std::string target;
  std::string pre_rollback; ///< empty: refused before it took one
  std::string initiated_by;
  std::string reason;
  int64_t started_at = 0; ///< Unix ns
  std::vector<saga_step> steps;
};

struct phase_record {
  static constexpr const char* tag = "phase";
  saga_phase phase = saga_phase::execution;
};

struct step_start_record {
  static constexpr const char* tag = "step_start";
  size_t step = 0; ///< index into begin_record::steps
};

struct step_done_record {
  static constexpr const char* tag = "step_done";
  size_t step = 0;
};

struct step_failed_record {
  static constexpr const char* tag = "step_failed";
  size_t step = 0;
  std::vector<failed_item> failed;
};

struct compensate_start_record {
  static constexpr const char* tag = "compensate_start";
  std::vector<size_t> steps; ///< in the order they are put back
  std::string reason;
};

struct compensate_done_record {
  static constexpr const char* tag = "compensate_done";
  bool ok = false;
  std::vector<failed_item> failed;
};

struct recovered_record {
  static constexpr const char* tag = "recovered";
  interrupted_policy policy = interrupted_policy::compensate;
};

struct end_record {
  static constexpr const char* tag = "end";
  saga_outcome outcome = saga_outcome::completed;
  std::string failed_phase; ///< a saga_phase name, or "interrupted"; empty when completed
  std::string error;
  std::vector<failed_item> failed;
  double duration_ms = 0;
};

struct settled_record {
  static constexpr const char* tag = "settled";
  std::vector<std::string> items; ///< what compensation had failed to put back
};

/// One journal record: its time and what it says.
struct journal_record {
  using body_type =
      std::variant<begin_record, phase_record, step_start_record, step_done_record,
                   step_failed_record, compensate_start_record, compensate_done_record,
                   recovered_record, end_record, settled_record>;
  int64_t at = 0; ///< Unix ns; 0: the journal stamps it when appended
  body_type body;

  journal_record() = default;
  /// A record converts from any of its bodies.
  template <class R, class = std::enable_if_t<!std::is_same_v<std::decay_t<R>, journal_record>>>
  journal_record(R r) : body(std::move(r)) {} // NOLINT(google-explicit-constructor)

  template <class R> bool is() const { return std::holds_alternative<R>(body); }
  template <class R> const R* get() const { return std::get_if<R>(&body); }
  /// The record's "t".
  const char* tag() const;
};

/// The record as the journal stores it.
nlohmann::json to_json(const journal_record& r);
/// Reads one record; integrity_error naming `where` for an unknown "t" or a
/// field of the wrong type.
result<journal_record> record_from_json(const nlohmann::json& j, const std::string& where);

nlohmann::json to_json(const saga_step& s);
nlohmann::json to_json(const std::vector<failed_item>& items);

} // namespace dsmil
