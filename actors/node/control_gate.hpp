// The control gate: what a node publishes instead of its control actor.
// For every request it checks, in order: the nonce is one it issued, at
// most 30 s ago, and unused (a nonce carries its issue time and an HMAC
// under the gate's key: handing them out keeps no state, so asking for
// them without end holds no one up; the gate remembers only those signed
// requests spent, until they expire); the certificate chains to the node's CA, is
// within its validity, carries clientAuth and is not revoked; the
// signature over nonce || SHA-256(command, request) is the certificate's
// key's; the certificate's OU names a role; and that role may use the
// command's class (actors/node/command_classes.hpp). Refusals are answered
// with one line (code permission_denied: dsmilctl exits 4), logged and
// audited; commands of the operator and admin classes are audited with
// their outcome. Records are written by dsmil.audit, a detached actor the
// gate spawns (fsync and head signature off the gate's and the scheduler's
// threads); an answer goes out once dsmil.audit has written its record (or
// logged why it could not). Every answer carries a fresh nonce for the
// next request. Accepted requests go to the node as their typed request (a
// rollback as rollback_by, naming the certificate's CN); a rollback's
// progress is passed on to the client.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/gate_api.hpp"
#include "actors/node_api.hpp"

namespace dsmil {

class audit_log;
class env;
class node_pki;

/// `nonce_life_ms`: how long a nonce is good for (30 s; tests shorten it).
gate_api spawn_control_gate(caf::actor_system& sys, node_api node, std::shared_ptr<node_pki> pki,
                            std::shared_ptr<audit_log> audit, env& e,
                            int64_t nonce_life_ms = 30000);

} // namespace dsmil
