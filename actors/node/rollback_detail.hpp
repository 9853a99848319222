// Internals of the rollback saga shared by its files (actors/node/rollback_*.cpp):
// what validation hands the saga, and the helpers for steps, history and
// estimates. The saga speaks to components only through the component
// interface (runtime/components/component.hpp): it names none of them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/node/node_impl.hpp"
#include "runtime/components/component.hpp"
#include "runtime/saga/records.hpp"

namespace dsmil::rollback_detail {

struct validated {
  rollback_type type = rollback_type::full;
  std::string target_id;
  system_image target;          ///< what the checkpoint holds
  system_image current;         ///< every component now: the pre-rollback checkpoint
  std::vector<saga_step> steps; ///< every component's, in component order
  std::vector<std::string> needs_ack;
};

/// <store>/journal
std::string journal_dir(const node_context& ctx);
/// Milliseconds since `start_ns` on the node's steady clock.
double ms_since(node_context& ctx, int64_t start_ns);
/// Items a step restores, counted for progress and estimates (a step of a
/// whole component counts none).
size_t item_count(const std::vector<saga_step>& steps);

/// What a rollback restored, for its reply: the components, and the items
/// of each.
json rolled_back_json(const std::vector<saga_step>& steps);
/// Why execution stopped in step `st`: what failed (the first item named)
/// or, when `late` is 1, its limit (step_timeout_ms) passed, 2 the saga's
/// (timeout_ms).
error step_error(const node_config& cfg, const saga_step& st,
                 const std::vector<failed_item>& failed, int late);

/// Puts the steps `order` names back to their state in `image`, in that
/// order, then reads each back. Idempotent (components skip items already in
/// their state). Returns what could not be put back, each item once.
std::vector<failed_item> apply_steps(const component_set& components,
                                     const std::vector<saga_step>& steps,
                                     const std::vector<size_t>& order, const system_image& image);
/// Reads the steps `order` names back against `image`.
std::vector<failed_item> read_back_steps(const component_set& components,
                                         const std::vector<saga_step>& steps,
                                         const std::vector<size_t>& order,
                                         const system_image& image);

/// The system image checkpoint `id` holds, verified. REQUIRES: nothing
/// removes it meanwhile (ctx.mu held, or a saga running: changes to the
/// store are refused then; the store's index has its own lock).
result<system_image> load_image(node_context& ctx, const std::string& id);

// Plans the rollback. `on_current` (may be empty) is called as soon as every
// component's current state has been captured: a saga starts its
// pre-rollback checkpoint then, while the target is loaded and checked.
// Capturing is bounded by step_timeout_ms: a device that does not answer is
// named, and nothing changes.
status validate(node_context& ctx, actor_calls& calls, const component_set& components,
                const json& args, json& result, validated& v,
                const std::function<void()>& on_current);

// A saga's journal was created: the history learns of it without listing
// the journal directory again.
void note_journal(node_context& ctx, const std::string& id);
// A record was appended to an ended saga's journal: summarised again.
void note_changed(node_context& ctx, const std::string& id);
/// Every saga's summary, oldest first.
result<std::vector<json>> history(node_context& ctx);
/// The summary of the saga whose compensation could not put everything
/// back, while it decides (it is the newest saga that ended, refused ones
/// aside, and it is not settled).
std::optional<json> incomplete_compensation(node_context& ctx);
// Median duration of completed sagas like this one: same type, and a device
// count within a factor of two when there are such.
json estimate(node_context& ctx, const std::string& type, size_t devices);

} // namespace dsmil::rollback_detail
