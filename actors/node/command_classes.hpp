// Who may do what: every command of dsmil/control.hpp belongs to one class,
// named by the least role that may use it, in one table
// (command_classes.cpp). A role may use its own class and those below:
//
//   viewer    status, lists, show, verify, plans and dry runs, history, audit
//   operator  + checkpoints, pin/unpin, device set, device fault/crash,
//               rollbacks that need no --ack-critical, rollback undo and
//               cancel, gc and prune, the agents' load
//   admin     + emergency rollbacks, --ack-critical, keys, configuration,
//               retention changes, tls
//
// A few commands are two rows: a rollback is a plan (its dry run), an
// operator's rollback, or an admin's (emergency, --ack-critical).
#pragma once

#include <string>
#include <vector>

#include "dsmil/control.hpp"
#include "runtime/auth/pki.hpp"

namespace dsmil {

struct command_rule {
  const char* rule;    ///< the command's name, or command:variant
  role least;          ///< the least role that may
  const char* refusal; ///< "... may not <refusal>"
};

/// Every row of the table.
const std::vector<command_rule>& command_rules();
/// The row a request falls under.
const command_rule& rule_of(const std::string& rule);
template <class R> const command_rule& rule_for(const R&) {
  return rule_of(R::command);
}
const command_rule& rule_for(const rollback_request& r);
const command_rule& rule_for(const retention_request& r);
const command_rule& rule_for(const agent_load_request& r);

/// Whether `r` may use commands of the class `least`.
inline bool may(role r, role least) {
  return static_cast<int>(r) >= static_cast<int>(least);
}

} // namespace dsmil
