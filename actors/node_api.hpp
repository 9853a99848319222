// The node's typed actor interface: one handler per command of
// dsmil/control.hpp, each answering answer<its reply>, and rollback_by (a
// rollback with the identity that asked). Only the node's own process
// holds it: remote clients reach it through the control gate
// (actors/node/control_gate.hpp), which checks who they are. dsmild publishes an actor of this
// type; dsmilctl, the tests and the benchmarks talk to it (actors/node_client.hpp).
#pragma once

#include <tuple>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace dsmil {

namespace detail {

template <class Requests> struct node_api_of;
template <class... Rs> struct node_api_of<std::tuple<Rs...>> {
  using type =
      caf::typed_actor<typename caf::replies_to<Rs>::template with<answer<typename Rs::reply>>...,
                       caf::replies_to<rollback_by>::with<answer<rollback_reply>>>;
};

} // namespace detail

using node_api = detail::node_api_of<node_requests>::type;

} // namespace dsmil
