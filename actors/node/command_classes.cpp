#include "actors/node/command_classes.hpp"

#include <cstring>

namespace dsmil {

namespace {

constexpr role viewer = role::viewer, operator_ = role::operator_, admin = role::admin;

} // namespace

const std::vector<command_rule>& command_rules() {
  static const std::vector<command_rule> rules = {
      {"status", viewer, "read the status"},
      {"device.list", viewer, "list devices"},
      {"device.show", viewer, "read devices"},
      {"device.set", operator_, "write to devices"},
      {"device.fault", operator_, "inject device faults"},
      {"device.crash", operator_, "crash device actors"},
      {"config.show", viewer, "read the configuration"},
      {"config.set", admin, "change the configuration"},
      {"agent.list", viewer, "list agents"},
      {"agent.show", viewer, "read agents"},
      {"agent.load", viewer, "read the agents' load"},
      {"agent.load:set", operator_, "change the agents' load"},
      {"checkpoint.create", operator_, "create checkpoints"},
      {"checkpoint.list", viewer, "list checkpoints"},
      {"checkpoint.show", viewer, "read checkpoints"},
      {"checkpoint.verify", viewer, "verify checkpoints"},
      {"checkpoint.delete", operator_, "delete checkpoints"},
      {"checkpoint.pin", operator_, "pin or unpin checkpoints"},
      {"store.check", viewer, "check the store"},
      {"store.gc", operator_, "collect garbage in the store"},
      {"store.prune", operator_, "prune checkpoints"},
      {"retention", viewer, "read the retention policy"},
      {"retention:set", admin, "change the retention policy"},
      {"keys.show", viewer, "read the keys"},
      {"keys.init", admin, "initialize keys"},
      {"rollback.history", viewer, "read the rollback history"},
      {"rollback.show", viewer, "read rollbacks"},
      {"rollback:plan", viewer, "plan rollbacks"},
      {"rollback", operator_, "roll back"},
      {"rollback:undo", operator_, "undo rollbacks"},
      {"rollback:emergency", admin, "run emergency rollbacks"},
      {"rollback:critical", admin, "roll back critical devices (--ack-critical)"},
      {"rollback.cancel", operator_, "cancel rollbacks"},
      {"tls.issue", admin, "issue credentials"},
      {"tls.revoke", admin, "revoke credentials"},
      {"tls.list", admin, "list credentials"},
      {"audit", viewer, "read the audit log"},
      {"audit.verify", viewer, "verify the audit log"},
  };
  return rules;
}

const command_rule& rule_of(const std::string& rule) {
  for (auto& r : command_rules())
    if (rule == r.rule) return r;
  // A command without a row is a bug; it is refused to everyone but admin.
  static const command_rule unknown{"?", admin, "use commands without a class"};
  return unknown;
}

const command_rule& rule_for(const rollback_request& r) {
  if (r.dry_run) return rule_of("rollback:plan");
  if (r.type == "emergency") return rule_of("rollback:emergency");
  if (r.ack_critical) return rule_of("rollback:critical");
  if (r.undo) return rule_of("rollback:undo");
  return rule_of("rollback");
}

const command_rule& rule_for(const retention_request& r) {
  return rule_of(r.key.empty() ? "retention" : "retention:set");
}

const command_rule& rule_for(const agent_load_request& r) {
  return rule_of(r.tasks_per_second ? "agent.load:set" : "agent.load");
}

} // namespace dsmil
