// One handler actor per component: the only way checkpoints and sagas reach a
// component other than the devices (whose actors are their own handlers,
// under the device supervisors). A handler is a typed, event-based actor in
// front of a detached worker, dsmil.handler, that makes the component's calls
// (they may block: a TPM, a disk, a database server). The handler keeps a
// circuit breaker ([breaker]) and restarts its worker when it dies; what was
// asked of the dead worker fails at once with a line naming the component.
//
// The callers (dsmil.writer, dsmil.saga) bound every call by their own
// deadline, so a component that hangs in apply() is abandoned at the step's
// time limit, never waited for; what they ask next queues behind the hung
// call and runs when it returns, in order (a compensation after a forward
// step, never before it). Its health (breaker, restarts, calls in flight and
// how long the oldest has waited) is answered at once, for status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/components/component.hpp"
#include "runtime/devices/circuit_breaker.hpp"

namespace dsmil {

class env;

using component_handler = caf::typed_actor<
    caf::replies_to<capture_atom>::with<image_ref>,
    caf::replies_to<plan_atom, image_ref, image_ref, plan_request>::with<component_plan>,
    // A step within `limit`: the handler answers by then, failing what is
    // not done (the component's call itself may go on: see above).
    caf::replies_to<apply_atom, saga_step, image_ref,
                    caf::timespan>::with<std::vector<failed_item>>,
    caf::replies_to<read_back_atom, saga_step, image_ref,
                    caf::timespan>::with<std::vector<failed_item>>,
    // A rollback starts (warnings) and ends (warnings): component::hold, release.
    caf::replies_to<hold_atom>::with<std::vector<std::string>>,
    caf::replies_to<release_atom>::with<std::vector<std::string>>,
    // Answered by the handler itself, at once, even while its worker hangs.
    caf::replies_to<health_atom>::with<component_health>,
    // Internal to a handler: call `id` reached its limit.
    caf::reacts_to<tick_atom, uint64_t>>;

/// A component as its callers know it: its name and whether it is optional
/// (fixed), and its handler.
struct handler_ref {
  std::string name;
  bool optional = false;
  component_handler handle;
};

/// Spawns the handler of `c`. `e` (the node's env) gives the breaker its
/// clock and must outlive the handler. Stop it with an exit message.
handler_ref spawn_component_handler(caf::actor_system& sys, std::shared_ptr<component> c,
                                    const breaker_config& breaker, env& e);

} // namespace dsmil
