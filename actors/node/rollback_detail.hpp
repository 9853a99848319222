// Internals of the rollback saga shared by its files (actors/node/rollback_*.cpp):
// the unit of execution, what validation hands the saga, and the helpers for
// steps, history and estimates.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "actors/node/node_impl.hpp"
#include "runtime/saga/plan.hpp"
#include "runtime/saga/records.hpp"

namespace dsmil::rollback_detail {

struct validated {
  rollback_type type = rollback_type::full;
  std::string target_id;
  checkpoint_contents target;
  std::vector<device_state> current;
  system_config current_config;
  rollback_plan plan;
  std::vector<saga_step> steps;
};

json ids_json(const std::vector<device_id>& ids);
/// What differs between a device read back and the state it should have, for a person.
std::string describe_mismatch(const device_state& got, const device_state& want);
json diff_json(const device_diff& d);
/// <store>/journal
std::string journal_dir(const node_context& ctx);
/// Milliseconds since `start_ns` on the node's steady clock.
double ms_since(node_context& ctx, int64_t start_ns);
std::map<device_id, device_state> by_id(const std::vector<device_state>& v);

// Reads `ids` back and names each that is not bit for bit in `states`, or
// cannot be read.
std::vector<failed_item> read_back(device_calls& calls, const std::vector<device_id>& ids,
                                   const std::map<device_id, device_state>& states);
// Puts the steps back to `states` / `config`, last first, and reads every
// device back. A device already in its state is not written (a write that
// was refused left it there). Returns what could not be put back.
std::vector<failed_item> apply_states(node_context& ctx, device_calls& calls,
                                      const std::vector<saga_step>& steps,
                                      const std::vector<size_t>& order,
                                      const std::map<device_id, device_state>& states,
                                      const system_config& config);

// Plans the rollback. `on_current` (may be empty) is called as soon as the
// current state of every device has been read: a saga starts its
// pre-rollback checkpoint then, while the target is loaded and checked.
status validate(node_context& ctx, device_calls& calls, const json& args, json& result,
                validated& v, const std::function<void()>& on_current);

// A saga's journal was created: the history learns of it without listing
// the journal directory again.
void note_journal(node_context& ctx, const std::string& id);
/// Every saga's summary, oldest first.
result<std::vector<json>> history(node_context& ctx);
// Median duration of completed sagas like this one: same type, and a device
// count within a factor of two when there are such.
json estimate(node_context& ctx, const std::string& type, size_t devices);

} // namespace dsmil::rollback_detail
