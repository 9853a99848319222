// A saga's story as its journal tells it: the summary `rollback history` and
// `rollback show` print, and what estimates are made from. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/saga/records.hpp"

namespace dsmil {

/// The summary of saga `id`: "outcome" ("interrupted" while no end record
/// is there), type, target, pre_rollback, initiated_by, reason, started_at,
/// devices_planned, steps, phases_completed, steps_done, and when they
/// happened: compensated, compensation_failed, recovered, failed_phase,
/// error, failed, duration_ms. A journal without a begin record (a saga
/// killed before it began) is "interrupted" with nothing else.
nlohmann::json summarize_saga(const std::string& id, const std::vector<journal_record>& records);

} // namespace dsmil
