// How a rollback saga actor (rollback_saga.cpp) is started, and what it says
// to its worker, dsmil.saga_io (saga_io.cpp). The saga is event-based: its
// phases are behaviours, each step a request to a component handler with the
// step's time limit on the actor clock. What blocks (validation, which
// captures every component and loads the checkpoint; the pre-rollback
// checkpoint; the journal's fsyncs) is the worker's. Tests give a saga fake
// workers and handlers and run it on CAF's test coordinator.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/node/rollback_detail.hpp"
#include "runtime/saga/records.hpp"

namespace dsmil {

/// saga -> worker: validate the rollback `args` (JSON text) and prepare it;
/// answered with a saga_prepared_ptr.
using prepare_atom = caf::atom_constant<caf::atom("prepare")>;
/// saga -> worker: append these records to the saga's journal, fsynced
/// (creating the journal if preparation did not); answered commit_atom, or
/// an error.
using commit_atom = caf::atom_constant<caf::atom("commit")>;
/// saga -> worker: the saga ends; the space reserve it released for the
/// saga's safety net (saga_prepared::borrowed) is held again, and the
/// components held still since preparation (saga_prepared::held) run again.
/// Answered with the release's warnings (std::vector<std::string>).
using finish_atom = caf::atom_constant<caf::atom("finish")>;

/// What validation and preparation found.
struct saga_prepared {
  /// Refused (nothing changed), or preparation failed.
  error err;
  saga_phase failed_phase = saga_phase::validation;
  json result = json::object(); ///< the reply so far: the plan, warnings, estimates
  rollback_detail::validated v;
  std::string pre_rollback; ///< its checkpoint's id, when taken
  bool borrowed = false;    ///< the space reserve was released: finish_atom holds it again
  bool held = false;        ///< the components are held still: finish_atom releases them
};
using saga_prepared_ptr = std::shared_ptr<saga_prepared>;
using journal_batch = std::shared_ptr<std::vector<journal_record>>;

/// What a saga actor needs: the node (its settings, and whose turn it is to
/// run), its status, and who does its work.
struct saga_setup {
  std::shared_ptr<node_context> ctx;
  std::shared_ptr<saga_status> st;
  /// Spawns the saga's worker, linked to it.
  std::function<caf::actor(caf::event_based_actor* saga)> io;
  /// The handlers of every component its steps may name (the saga spawns
  /// those it owns, linked to it).
  std::function<std::vector<handler_ref>(caf::event_based_actor* saga)> components;
  /// After the saga answered, when its compensation could not put
  /// everything back: the node keeps trying (see settle_job).
  std::function<void(settle_job)> settle;
};

/// The node's worker for a saga, dsmil.saga_io (saga_io.cpp), linked to it.
caf::actor spawn_saga_io(caf::event_based_actor* saga, std::shared_ptr<node_context> ctx,
                         std::shared_ptr<saga_status> st);
/// The saga actor; it answers the (rollback_request, client) it is sent
/// with control_reply (its JSON; dsmil.control types it).
caf::actor spawn_saga(caf::actor_system& sys, saga_setup setup);
/// The node's saga: its worker is dsmil.saga_io, its components the node's
/// handlers and a devices handler of its own.
saga_setup node_saga_setup(caf::actor_system& sys, std::shared_ptr<node_context> ctx,
                           std::shared_ptr<saga_status> st);

} // namespace dsmil

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(dsmil::saga_prepared_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(dsmil::journal_batch)
