// One handler actor per component: the only way checkpoints and sagas reach a
// component, the devices included. A handler is a typed, event-based actor in
// front of a detached worker, dsmil.handler, that makes the component's calls
// (they may block: a TPM, a disk, a database server, or the device actors a
// devices call waits for). The handler keeps a circuit breaker ([breaker];
// the devices have one per device instead) and restarts its worker when it
// dies; what was asked of the dead worker fails at once with a line naming
// the component.
//
// Every call carries the caller's deadline (dsmil.writer, a saga step, a
// compensation step) and the caller gives up at it, so a component that
// hangs in apply() is abandoned at the step's time limit, never waited for;
// what is asked next queues behind the hung call and runs when it returns, in
// order (a compensation after a forward step, never before it). A component
// that itself waits on actors bounds those waits by the same deadline, and an
// emergency rollback stops its pre-emptible call at once (preempt_atom). Its
// health (breaker, restarts, calls in flight and how long the oldest has
// waited) is answered at once, for status.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/components/component.hpp"
#include "runtime/devices/circuit_breaker.hpp"

namespace dsmil {

class env;

/// The calls' `int64_t` is the caller's deadline on the node env's steady
/// clock (0: none); apply's `bool` says whether an emergency rollback may
/// stop it (a saga's execution step: yes; a compensation: never).
using component_handler =
    caf::typed_actor<caf::replies_to<capture_atom, int64_t>::with<component_image>,
                     caf::replies_to<plan_atom, component_image, component_image, plan_request,
                                     int64_t>::with<component_plan>,
                     caf::replies_to<apply_atom, saga_step, component_image, int64_t,
                                     bool>::with<std::vector<failed_item>>,
                     caf::replies_to<read_back_atom, saga_step, component_image,
                                     int64_t>::with<std::vector<failed_item>>,
                     // Stops the worker's call if it is a pre-emptible apply; else nothing.
                     caf::reacts_to<preempt_atom>,
                     // Answered by the handler itself, at once, even while its worker hangs.
                     caf::replies_to<health_atom>::with<component_health>>;

/// A component as its callers know it: its name and whether it is optional
/// (fixed), and its handler.
struct handler_ref {
  std::string name;
  bool optional = false;
  component_handler handle;
};

/// How a handler's worker calls its component. `limit` (may be empty) is
/// told each call's deadline and whether it is pre-emptible before the call
/// (and 0, false after it): a component that waits on actors bounds those
/// waits by them.
struct component_binding {
  std::shared_ptr<component> impl;
  std::function<void(int64_t deadline_ns, bool preemptible)> limit;
};
/// Makes the binding on the worker's own thread, each time a worker starts.
using component_factory = std::function<component_binding(caf::blocking_actor* worker)>;

/// Spawns the handler of a component. `e` (the node's env) gives the breaker
/// its clock and must outlive the handler. Without `breaker` the handler
/// never refuses a call (a component with breakers of its own). Stop it with
/// an exit message.
handler_ref spawn_component_handler(caf::actor_system& sys, std::string name, bool optional,
                                    component_factory make,
                                    const std::optional<breaker_config>& breaker, env& e);
/// The same for a component whose calls need nothing of the worker.
handler_ref spawn_component_handler(caf::actor_system& sys, std::shared_ptr<component> c,
                                    const breaker_config& breaker, env& e);

} // namespace dsmil
