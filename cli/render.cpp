#include "cli/render.hpp"

#include <cstdio>

#include "dsmil/control.hpp"

namespace dsmil {

using nlohmann::json;

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string hex32(uint64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string str(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "-";
  return j.dump();
}

void render_status(const json& b, std::ostream& out) {
  auto& n = b["node"];
  auto& d = b["devices"];
  auto& c = b["checkpoints"];
  out << "node        " << str(n["listen"]) << "  pid " << n["pid"] << "  up " << n["uptime_s"]
      << " s  cpu " << str(n["cpu"]) << "\n";
  out << "config      " << str(n["config"]) << "\n";
  out << "devices     " << d["total"] << " (" << str(d["backend"]) << "), " << d["quarantined"]
      << " quarantined, " << d["critical"] << " critical, " << d["breakers_not_closed"]
      << " breakers not closed, " << d["actor_restarts"] << " actor restarts, " << d["given_up"]
      << " given up\n";
  out << "store       " << str(c["store"]) << ": " << c["count"] << " checkpoints, " << c["chunks"]
      << " chunks, latest " << str(c["latest"]) << "\n";
  if (b.contains("components")) {
    out << "components ";
    for (auto& k : b["components"]) {
      out << " " << str(k["name"]);
      if (k.contains("error")) {
        out << " (no answer)";
        continue;
      }
      std::string notes;
      if (k["breaker"] != "closed") notes += "breaker " + str(k["breaker"]);
      if (k["restarts"].get<uint32_t>() > 0)
        notes += (notes.empty() ? "" : ", ") + std::to_string(k["restarts"].get<uint32_t>()) +
                 " restarts";
      if (k["in_flight"].get<uint32_t>() > 0)
        notes += (notes.empty() ? "" : ", ") + std::to_string(k["in_flight"].get<uint32_t>()) +
                 " calls waiting";
      if (!notes.empty()) out << " (" << notes << ")";
    }
    out << "\n";
  }
  if (b.contains("store_free_bytes") && !b["store_free_bytes"].is_null())
    out << "space       " << b["store_free_bytes"] << " bytes free, " << b["store_reserve_bytes"]
        << " held in reserve for a rollback\n";
  for (auto& w : b.value("warnings", json::array()))
    out << "WARNING     " << str(w) << "\n";
  out << "keys        " << str(b["keys"]["provider"]) << " key "
      << str(b["keys"]["key_id"]).substr(0, 16) << "\n";
  auto& cfg = b["configuration"];
  out << "configuration version " << cfg["config_version"] << ", agent concurrency "
      << cfg["agent_concurrency_limit"] << ", thermal threshold "
      << fmt("%.1f C", cfg["thermal_threshold_c"].get<double>()) << "\n";
  if (b.contains("rollback") && b["rollback"].is_object()) {
    auto& r = b["rollback"];
    out << "rollback    " << str(r["id"]) << " running (" << str(r["type"]) << " to "
        << str(r["target"]) << ", " << str(r["phase"]) << ")"
        << (r.value("emergency_waiting", false) ? "; an emergency rollback waits for it to "
                                                  "compensate"
                                                : "")
        << "\n";
  }
}

void render_device_list(const json& b, std::ostream& out) {
  out << "ID      NAME      GRP  ENABLED  LEVEL  TEMP     BREAKER    FLAGS\n";
  for (auto& d : b["devices"]) {
    char line[160];
    std::string flags;
    if (d["quarantined"].get<bool>()) flags += "quarantined ";
    if (d["critical"].get<bool>()) flags += "critical ";
    if (d.contains("error")) flags += "error: " + str(d["error"]);
    if (d.contains("enabled")) {
      std::snprintf(line, sizeof(line), "%-7s %-9s %-4d %-8s %-6d %-8s %-10s %s",
                    str(d["id"]).c_str(), str(d["name"]).c_str(), d["group"].get<int>(),
                    d["enabled"].get<bool>() ? "yes" : "no", d["security_level"].get<int>(),
                    fmt("%.1f C", d["temperature_c"].get<double>()).c_str(),
                    str(d["breaker"]).c_str(), flags.c_str());
    } else {
      std::snprintf(line, sizeof(line), "%-7s %-9s %-4d %-8s %-6s %-8s %-10s %s",
                    str(d["id"]).c_str(), str(d["name"]).c_str(), d["group"].get<int>(), "?", "?",
                    "?", str(d["breaker"]).c_str(), flags.c_str());
    }
    out << line << "\n";
  }
}

void render_device(const json& b, std::ostream& out) {
  out << str(b["id"]) << " " << str(b["name"]) << "  group " << b["group"] << " ("
      << str(b["group_role"]) << ")\n";
  if (b["quarantined"].get<bool>()) out << "  QUARANTINED: " << str(b["quarantine_reason"]) << "\n";
  if (b["critical"].get<bool>()) out << "  critical: " << str(b["critical_role"]) << "\n";
  out << "  enabled " << (b["enabled"].get<bool>() ? "yes" : "no") << ", security level "
      << b["security_level"] << ", temperature " << fmt("%.1f C", b["temperature_c"].get<double>())
      << ", last write " << str(b["last_activity"]) << "\n";
  out << "  registers:";
  int i = 0;
  for (auto& r : b["registers"]) {
    if (i % 8 == 0) out << "\n   " << (i < 10 ? " " : "") << i << ":";
    out << " " << hex32(r.get<uint64_t>());
    ++i;
  }
  out << "\n  config blob: " << str(b["config_blob"]).size() / 2 << " bytes, sha256 "
      << str(b["config_blob_sha256"]).substr(0, 16) << "\n";
  auto& h = b["health"];
  out << "  breaker " << str(h["breaker"]) << ", " << h["failures"] << " consecutive failures, "
      << h["restarts"] << " actor restarts" << (h["given_up"].get<bool>() ? ", GIVEN UP" : "")
      << "\n";
  auto& f = b["faults"];
  if (f["error_rate"].get<double>() > 0 || f["latency_ms"].get<int>() > 0 ||
      f["offline"].get<bool>() || f["stuck_register"].get<int>() >= 0 ||
      f["thermal_spike"].get<bool>())
    out << "  injected faults: " << f.dump() << "\n";
}

void render_checkpoint(const json& c, std::ostream& out) {
  out << str(c["id"]) << "  " << str(c["created_at"]) << "  " << str(c["type"]);
  if (c.value("pinned", false)) out << "  pinned";
  if (!str(c["name"]).empty()) out << "  \"" << str(c["name"]) << "\"";
  out << "\n";
}

void render_rollback(const json& b, std::ostream& out) {
  bool dry = b.value("dry_run", false);
  out << (dry ? "rollback plan for " : "rollback to ") << str(b.value("checkpoint", json("?")))
      << " (" << str(b.value("type", json("?"))) << ")\n";
  if (b.contains("plan")) {
    auto& p = b["plan"];
    if (p.contains("steps"))
      for (auto& st : p["steps"])
        out << "  step " << str(st["name"]) << " (" << str(st["component"]) << ")"
            << (st["items"].empty() ? std::string()
                                    : ": " + std::to_string(st["items"].size()) + " item(s)")
            << "\n";
    out << "  configuration: "
        << (p.value("configuration", false)
                ? (p.value("configuration_differs", false) ? "restored (differs)"
                                                           : "restored (unchanged)")
                : "not included")
        << "\n";
    if (p.contains("order"))
      out << "  devices in order: " << p["order"].size()
          << "; differing: " << p["differences"].size() << "\n";
    for (auto& d : p.value("differences", json::array())) {
      out << "    " << str(d["id"]) << ":";
      if (!d["registers"].empty()) out << " registers " << d["registers"].dump();
      if (d["config_blob"].get<bool>()) out << " config-blob";
      if (d["enabled"].get<bool>()) out << " enabled";
      if (d["security_level"].get<bool>()) out << " security-level";
      out << "\n";
    }
    if (p.contains("database")) {
      auto& d = p["database"];
      out << "  database " << str(d["database"]) << " (" << str(d["server_version"])
          << "):" << (d.value("sequences_differ", false) ? " sequences differ" : " sequences equal")
          << "\n";
      for (auto& t : d["tables"])
        out << "    " << str(t["table"]) << ": " << t["rows_checkpoint"].get<uint64_t>()
            << " rows in the checkpoint, " << t["rows_now"].get<uint64_t>() << " now"
            << (t["differs"].get<bool>() ? ", differs" : "") << "\n";
    }
  }
  if (b.contains("skipped_quarantined") && !b["skipped_quarantined"].empty())
    out << "  quarantined, never written: " << b["skipped_quarantined"].dump() << "\n";
  if (b.contains("warnings"))
    for (auto& w : b["warnings"])
      out << "  warning: " << str(w) << "\n";
  if (b.contains("plan") && b["plan"].contains("dependents") && !b["plan"]["dependents"].empty())
    out << "  groups that depend on the selection, rolled back with it: "
        << b["plan"]["dependents"].dump() << "\n";
  if (b.contains("estimate") && dry) {
    auto& e = b["estimate"];
    out << "  estimated duration: "
        << (e["duration_ms"].is_null() ? std::string("unknown")
                                       : fmt("%.1f ms", e["duration_ms"].get<double>()))
        << " (" << str(e.value("basis", json(""))) << ")\n";
  }
  if (b.contains("pre_rollback"))
    out << "  pre-rollback checkpoint: " << str(b["pre_rollback"]) << " (undo with 'dsmilctl "
        << "rollback undo')\n";
  if (b.contains("rolled_back")) {
    // Each component, with how many of its items when it restored some.
    auto& rb = b["rolled_back"];
    std::string list;
    for (auto& c : rb["components"]) {
      auto name = c.get<std::string>();
      list += (list.empty() ? "" : ", ") + name;
      if (rb.contains(name) && !rb[name].empty())
        list += " (" + std::to_string(rb[name].size()) + ")";
    }
    out << "  rolled back: " << (list.empty() ? std::string("nothing differed") : list) << "\n";
  }
  if (b.contains("failed"))
    for (auto& f : b["failed"])
      out << "  FAILED " << str(f["id"]) << ": " << str(f["error"]) << "\n";
  if (b.contains("compensated")) {
    auto& c = b["compensated"];
    out << "  compensated " << c["steps"].dump() << ": "
        << (c["ok"].get<bool>() ? "back at the pre-rollback state, verified" : "FAILED") << "\n";
  }
  if (b.contains("outcome")) out << "  outcome: " << str(b["outcome"]) << "\n";
  std::string phases;
  for (auto& p : b["phases_completed"])
    phases += (phases.empty() ? "" : ", ") + str(p);
  out << "  phases completed: " << (phases.empty() ? "none" : phases);
  if (!b["failed_phase"].is_null()) out << "; failed in " << str(b["failed_phase"]);
  out << "\n";
  if (b.contains("duration_ms"))
    out << "  " << (dry ? "planned" : (b["success"].get<bool>() ? "done" : "stopped")) << " in "
        << fmt("%.1f ms", b["duration_ms"].get<double>()) << "\n";
}

} // namespace

void render(const std::string& command, const json& b, std::ostream& out) {
  if (command == store_check_request::command) {
    if (!b.contains("clean")) return;
    out << "store check" << (b["read_data"].get<bool>() ? " (read every byte)" : " (structure)")
        << ": " << b["packs"] << " packs, " << b["chunks"] << " chunks";
    if (b["read_data"].get<bool>()) out << ", " << b["bytes_read"] << " bytes read";
    out << "\n";
    for (auto& p : b["problems"])
      out << "  BAD MANIFEST " << str(p) << "\n";
    for (auto& d : b["damaged"]) {
      out << "  DAMAGED chunk " << str(d["chunk"]).substr(0, 16) << " in " << str(d["pack"])
          << " at " << d["offset"] << ": " << str(d["problem"]) << "\n";
      for (auto& c : d["checkpoints"])
        out << "    needed by checkpoint " << str(c) << "\n";
    }
    if (b["clean"].get<bool>()) out << "  clean\n";
    return;
  }
  if (command == rollback_request::command) {
    if (b.contains("checkpoint")) render_rollback(b, out);
    return;
  }
  if (command == rollback_cancel_request::command) {
    out << "rollback " << str(b["saga"]) << " (" << str(b["phase"])
        << ") told to stop; it compensates: see 'dsmilctl rollback show " << str(b["saga"])
        << "'\n";
    return;
  }
  if (command == rollback_history_request::command || command == rollback_show_request::command) {
    if (b.contains("error")) return;
    auto line = [&](const json& r) {
      out << str(r["id"]) << "  " << str(r.value("type", json("?"))) << " to "
          << str(r.value("target", json("?"))).substr(0, 13) << "  " << str(r["outcome"]);
      if (r.contains("failed_phase")) out << " (failed in " << str(r["failed_phase"]) << ")";
      if (r.contains("duration_ms")) out << "  " << fmt("%.1f ms", r["duration_ms"].get<double>());
      if (r.value("recovered", false)) out << "  recovered at start-up";
      out << "\n";
    };
    if (command == rollback_history_request::command) {
      if (b["rollbacks"].empty()) out << "no rollbacks yet\n";
      for (auto& r : b["rollbacks"])
        line(r);
      return;
    }
    line(b);
    for (auto key : {"initiated_by", "reason", "pre_rollback", "error"})
      if (b.contains(key) && !b[key].get<std::string>().empty())
        out << "  " << key << ": " << str(b[key]) << "\n";
    out << "  phases completed: " << b["phases_completed"].dump() << "\n";
    out << "  steps done: " << b["steps_done"].dump() << "\n";
    for (auto& r : b["journal"]) {
      out << "  journal " << str(r["t"]);
      for (auto key : {"phase", "step", "outcome", "reason"})
        if (r.contains(key))
          out << " " << key << "=" << (r[key].is_string() ? str(r[key]) : r[key].dump());
      out << "\n";
    }
    return;
  }
  if (b.contains("error")) return;
  if (command == status_request::command) return render_status(b, out);
  if (command == device_list_request::command) return render_device_list(b, out);
  if (command == device_show_request::command || command == device_set_request::command)
    return render_device(b, out);
  if (command == device_fault_request::command) {
    out << str(b["id"]) << " faults now " << b["faults"].dump() << "\n";
    return;
  }
  if (command == device_crash_request::command) {
    out << str(b["id"]) << ": device actor crashed; its group supervisor restarts it\n";
    return;
  }
  if (command == agent_list_request::command) {
    if (b["agents"].empty()) out << "no agents on this node ([agents] backend = \"none\")\n";
    for (auto& a : b["agents"]) {
      char line[160];
      std::snprintf(line, sizeof line, "%-10s %-8s tasks %-10llu state %.16s\n",
                    str(a["id"]).c_str(), str(a["state"]).c_str(),
                    static_cast<unsigned long long>(a["tasks_done"].get<uint64_t>()),
                    str(a["state_sha256"]).c_str());
      out << line;
    }
    return;
  }
  if (command == agent_show_request::command) {
    out << "agent " << str(b["id"]) << "\n  state       " << str(b["state"]) << "\n  tasks done  "
        << b["tasks_done"] << "\n  state hash  " << str(b["state_sha256"]) << "\n";
    return;
  }
  if (command == agent_load_request::command) {
    out << "reference agents: " << b["tasks_per_second"] << " tasks per second\n";
    return;
  }
  if (command == config_show_request::command || command == config_set_request::command) {
    for (auto& [k, v] : b.items())
      out << k << " = " << v.dump() << "\n";
    return;
  }
  if (command == checkpoint_create_request::command) {
    out << "created checkpoint " << str(b["id"]) << " (" << b["devices"] << " devices, "
        << b["new_bytes"] << " new bytes of " << b["logical_bytes"] << ", "
        << fmt("%.1f ms", b["duration_ms"].get<double>()) << ")\n";
    if (b.contains("pruned") && !b["pruned"].empty())
      out << "retention removed " << b["pruned"].size() << " older automatic checkpoint(s)\n";
    return;
  }
  if (command == checkpoint_list_request::command) {
    if (b["checkpoints"].empty()) out << "no checkpoints yet: dsmilctl checkpoint create\n";
    for (auto& c : b["checkpoints"])
      render_checkpoint(c, out);
    return;
  }
  if (command == checkpoint_show_request::command) {
    render_checkpoint(b, out);
    out << "  description: " << str(b["description"]) << "\n  parent: " << str(b["parent"])
        << "\n  signed by " << str(b["provider"]) << " key " << str(b["key_id"]).substr(0, 16)
        << "\n  " << b["devices"] << " devices, " << b["logical_bytes"] << " bytes of state\n";
    out << "  configuration: " << b["configuration"].dump() << "\n";
    if (b.contains("database") && b["database"].is_object()) {
      auto& d = b["database"];
      out << "  database " << str(d["database"]) << " (" << str(d["server_version"]) << "), "
          << d["sequences"] << " sequences:\n";
      for (auto& t : d["tables"])
        out << "    " << str(t["table"]) << "  " << t["rows"] << " rows, " << t["bytes"]
            << " bytes, sha256 " << str(t["sha256"]).substr(0, 16) << "\n";
    }
    return;
  }
  if (command == keys_show_request::command || command == keys_init_request::command) {
    out << "provider   " << str(b["provider"]) << " (" << str(b["scheme"]) << ")\n"
        << "key id     " << str(b["key_id"]) << "\n"
        << "public key " << str(b["pem"]) << "\n";
    if (b.contains("private_key")) out << "private    " << str(b["private_key"]) << " (0600)\n";
    if (b.contains("handle"))
      out << "tpm        " << str(b["tcti"]) << ", handle " << str(b["handle"]) << "\n"
          << "attestation key " << str(b["attestation_key_id"]) << " (" << str(b["attestation_pem"])
          << ")\n";
    if (b.contains("counter")) out << "counter    " << b["counter"] << "\n";
    if (b.contains("exported"))
      for (auto& p : b["exported"])
        out << "exported   " << str(p) << "\n";
    return;
  }
  if (command == checkpoint_verify_request::command) {
    out << str(b["id"]) << ": valid\n";
    for (auto& c : b["checks"])
      out << "  " << str(c) << "\n";
    return;
  }
  if (command == checkpoint_delete_request::command) {
    out << "deleted checkpoint " << str(b["id"]);
    if (b.contains("bytes_reclaimed")) out << ", " << b["bytes_reclaimed"] << " bytes reclaimed";
    if (b.contains("gc_error")) out << " (space not reclaimed yet: " << str(b["gc_error"]) << ")";
    out << "\n";
    return;
  }
  if (command == checkpoint_pin_request::command) {
    out << str(b["id"]) << (b["pinned"].get<bool>() ? " pinned\n" : " unpinned\n");
    return;
  }
  if (command == store_prune_request::command) {
    out << "pruned " << b["pruned"].size() << " automatic checkpoint(s)\n";
    for (auto& id : b["pruned"])
      out << "  " << str(id) << "\n";
    return;
  }
  if (command == retention_request::command) {
    for (auto& [k, v] : b.items())
      out << k << " = " << v.dump() << "\n";
    return;
  }
  if (command == store_gc_request::command) {
    out << "gc: " << b["packs_removed"] << " packs removed, " << b["packs_rewritten"]
        << " rewritten, " << b["orphan_packs_removed"] << " orphans removed, "
        << b["bytes_reclaimed"] << " bytes reclaimed\n";
    return;
  }
  if (command == tls_issue_request::command) return; // dsmilctl says which files it wrote
  if (command == tls_revoke_request::command) {
    out << "revoked " << str(b["name"]) << ": " << b["serials"].size()
        << " certificate(s), refused from their next request on\n";
    return;
  }
  if (command == tls_list_request::command) {
    out << "CA " << str(b["ca_file"])
        << (b.value("own_ca", true) ? " (the node's own)\n" : " (an operator's)\n");
    for (auto& c : b["credentials"])
      out << "  " << str(c["name"]) << "  " << str(c["role"]) << "  until " << str(c["not_after"])
          << "  serial " << str(c["serial"]).substr(0, 12)
          << (c.value("revoked", false) ? "  REVOKED" : "") << "\n";
    return;
  }
  if (command == audit_request::command) {
    for (auto& r : b["records"]) {
      out << r["seq"] << "  " << str(r["at"]) << "  " << str(r["identity"]) << " ("
          << str(r["role"]) << ")  " << str(r["command"]);
      if (!str(r["target"]).empty()) out << " " << str(r["target"]);
      out << "  " << str(r["outcome"]) << "\n";
    }
    return;
  }
  if (command == audit_verify_request::command) {
    if (!b.contains("valid")) return;
    out << "audit log " << str(b["log"]) << ": " << b["records"] << " records, "
        << (b["valid"].get<bool>() ? "chain and signed head intact"
                                   : "DAMAGED: " + str(b["problem"]))
        << "\n";
    return;
  }
  out << b.dump(2) << "\n";
}

} // namespace dsmil
