// dsmilctl: the operator's client for a dsmild node.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node_client.hpp"
#include "actors/remote_client.hpp"
#include "runtime/auth/node_pki.hpp"
#include "runtime/os/env.hpp"
#include "runtime/store/manifest.hpp"
#include "cli/ctl_commands.hpp"
#include "cli/render.hpp"
#include "dsmil/version.hpp"
#include "runtime/store/store.hpp"
#include "runtime/config/node_config.hpp"

using nlohmann::json;

namespace {

constexpr const char* exit_codes =
    "Credentials: --cert/--key/--ca, else $DSMIL_CERT/$DSMIL_KEY/$DSMIL_CA, else the node's admin "
    "credential under --data-dir (default ./data: <data_dir>/tls/admin.crt, admin.key, ca.crt).\n"
    "Exit codes: 0 success; 1 other failure; 2 bad input (usage, unknown or invalid device id, "
    "bad value, no credential found); 3 not found (checkpoint id); 4 refused (quarantined "
    "device, critical device without --ack-critical, thermal limit, permission denied, revoked "
    "or expired credential); 5 integrity failure (tampered or damaged checkpoint or audit log); "
    "6 node not reachable or TLS handshake refused; 7 device or rollback failure.";

int die(const std::string& line, int code) {
  std::fprintf(stderr, "dsmilctl: %s\n", line.c_str());
  return code;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"dsmilctl " DSMIL_VERSION ": control a dsmil-recovery node (dsmild)."};
  app.require_subcommand(1);
  app.footer(exit_codes);
  const char* env_node = std::getenv("DSMIL_NODE");
  std::string node = env_node ? env_node : "127.0.0.1:7411";
  bool as_json = false;
  int timeout_s = 120;
  app.add_option("--node", node, "HOST:PORT of the node (default 127.0.0.1:7411 or $DSMIL_NODE)");
  app.add_flag("--json", as_json, "print one JSON document on stdout");
  std::string store_dir;
  app.add_option("--store", store_dir,
                 "verify in this store directory, read-only, without a node (checkpoint verify "
                 "only; needs no TPM: public keys are in the store)");
  app.add_option("--timeout", timeout_s, "seconds to wait for the node's answer")
      ->check(CLI::PositiveNumber);
  std::string cert_file, key_file, ca_file, data_dir = "data";
  app.add_option("--cert", cert_file, "client certificate, PEM (or $DSMIL_CERT)");
  app.add_option("--key", key_file, "its private key, PEM (or $DSMIL_KEY)");
  app.add_option("--ca", ca_file, "the CA of the node's certificate, PEM (or $DSMIL_CA)");
  app.add_option("--data-dir", data_dir,
                 "a node's data dir: use its admin credential (tls/admin.crt, tls/admin.key, "
                 "tls/ca.crt) where --cert/--key/--ca and $DSMIL_* name none (default ./data)");

  std::string command;
  json args = json::object();

  auto* status = app.add_subcommand("status", "node, devices, store and configuration at a glance");
  status->callback([&] { command = dsmil::status_request::command; });

  auto* device = app.add_subcommand("device", "inspect and change devices")->require_subcommand(1);
  std::string dev_id;
  device->add_subcommand("list", "all 84 devices with state and health")->callback([&] {
    command = dsmil::device_list_request::command;
  });
  auto* dshow = device->add_subcommand("show", "one device: registers, blob, flags, health");
  dshow->add_option("ID", dev_id, "device id, e.g. 0x8005")->required();
  dshow->callback([&] {
    command = dsmil::device_show_request::command;
    args["id"] = dev_id;
  });

  auto* dset = device->add_subcommand("set", "write to a device");
  std::string reg_text, value_text;
  bool enable = false, disable = false;
  int level = -1;
  dset->add_option("ID", dev_id, "device id")->required();
  dset->add_option("--register", reg_text, "register index (with --value)");
  dset->add_option("--value", value_text, "32-bit value, decimal or 0x hex (with --register)");
  auto* en = dset->add_flag("--enable", enable, "enable the device");
  dset->add_flag("--disable", disable, "disable the device")->excludes(en);
  dset->add_option("--security-level", level, "security level 0-4");
  dset->callback([&] { command = dsmil::device_set_request::command; });

  auto* dfault = device->add_subcommand("fault", "inject faults into a simulated device");
  double error_rate = -1;
  int latency = -1, stuck = -2;
  bool offline = false, online = false, spike = false, no_spike = false, clear = false;
  dfault->add_option("ID", dev_id, "device id")->required();
  dfault->add_option("--error-rate", error_rate, "probability 0-1 that a driver call fails");
  dfault->add_option("--latency-ms", latency, "added latency per call");
  dfault->add_flag("--offline", offline, "the device stops answering");
  dfault->add_flag("--online", online, "the device answers again");
  dfault->add_option("--stuck-register", stuck, "writes to this register are lost (-1: none)");
  dfault->add_flag("--thermal-spike", spike, "temperature above the critical limit");
  dfault->add_flag("--no-thermal-spike", no_spike, "temperature back to normal");
  dfault->add_flag("--clear", clear, "remove all faults first");
  dfault->callback([&] { command = dsmil::device_fault_request::command; });

  auto* dcrash =
      device->add_subcommand("crash", "crash the device's actor (its supervisor restarts it)");
  dcrash->add_option("ID", dev_id, "device id")->required();
  dcrash->callback([&] {
    command = dsmil::device_crash_request::command;
    args["id"] = dev_id;
  });

  auto* agent =
      app.add_subcommand("agent", "the agents of the agents component")->require_subcommand(1);
  std::string agent_id;
  agent->add_subcommand("list", "every agent: state, state hash, tasks done")->callback([&] {
    command = dsmil::agent_list_request::command;
  });
  auto* ashow = agent->add_subcommand("show", "one agent");
  ashow->add_option("ID", agent_id, "agent id, e.g. agent-07")->required();
  ashow->callback([&] {
    command = dsmil::agent_show_request::command;
    args["id"] = agent_id;
  });

  auto* aload = agent->add_subcommand(
      "load", "the reference host's work: tasks per second over all agents (shows it without one)");
  int64_t tasks_per_second = -1;
  aload->add_option("TASKS_PER_SECOND", tasks_per_second, "0 stops the work");
  aload->callback([&] {
    command = dsmil::agent_load_request::command;
    if (tasks_per_second >= 0) args["tasks_per_second"] = tasks_per_second;
  });

  auto* config =
      app.add_subcommand("config", "the system configuration component")->require_subcommand(1);
  config->add_subcommand("show", "current configuration")->callback([&] {
    command = dsmil::config_show_request::command;
  });
  auto* cset = config->add_subcommand("set", "change one key");
  std::string key, value;
  cset->add_option("KEY", key, "agent_concurrency_limit, thermal_threshold_c or config_data")
      ->required();
  cset->add_option("VALUE", value, "new value")->required();
  cset->callback([&] {
    command = dsmil::config_set_request::command;
    args["key"] = key;
    args["value"] = value;
  });

  auto* cp = app.add_subcommand("checkpoint", "create, list, show, verify and delete checkpoints")
                 ->require_subcommand(1);
  std::string cp_id, name, description;
  auto* ccreate = cp->add_subcommand("create", "capture devices and configuration, signed");
  ccreate->add_option("--name", name, "short name");
  ccreate->add_option("--description", description, "why this checkpoint exists");
  std::string cp_type = "manual";
  ccreate->add_option("--type", cp_type,
                      "manual (default), automatic (subject to retention) or emergency");
  ccreate->callback([&] {
    command = dsmil::checkpoint_create_request::command;
    args["name"] = name;
    args["description"] = description;
    args["type"] = cp_type;
  });
  cp->add_subcommand("list", "all checkpoints, oldest first")->callback([&] {
    command = dsmil::checkpoint_list_request::command;
  });
  bool chain = false, quick = false;
  struct by_id {
    const char* sub;
    const char* what;
    std::string cmd;
  };
  for (auto& [sub, what, cmd] :
       {by_id{"show", "contents of a checkpoint", dsmil::checkpoint_show_request::command},
        by_id{"verify", "check signature and every stored byte",
              dsmil::checkpoint_verify_request::command},
        by_id{"delete", "remove a checkpoint", dsmil::checkpoint_delete_request::command}}) {
    auto* c = cp->add_subcommand(sub, what);
    c->add_option("ID", cp_id, "checkpoint id (or a unique prefix of at least 4 characters)")
        ->required();
    if (cmd == dsmil::checkpoint_verify_request::command) {
      c->add_flag("--chain", chain, "walk parent links and signatures to the root");
      c->add_flag("--quick", quick, "signatures, roots and indexes only; read no chunk data");
    }
    c->callback([&, name = cmd] {
      command = name;
      args["id"] = cp_id;
      if (chain) args["chain"] = true;
      if (quick) args["quick"] = true;
    });
  }

  for (auto [sub, on] : {std::pair{"pin", true}, std::pair{"unpin", false}}) {
    auto* c = cp->add_subcommand(sub, on ? "keep a checkpoint: delete and retention skip it"
                                         : "let a checkpoint be deleted again");
    c->add_option("ID", cp_id, "checkpoint id (or unique prefix)")->required();
    c->callback([&, on] {
      command = dsmil::checkpoint_pin_request::command;
      args["id"] = cp_id;
      args["pin"] = on;
    });
  }

  auto* store =
      app.add_subcommand("store", "the checkpoint store as a whole")->require_subcommand(1);
  store->add_subcommand("gc", "reclaim the space of chunks no checkpoint needs")->callback([&] {
    command = dsmil::store_gc_request::command;
  });
  store->add_subcommand("prune", "apply the retention policy to automatic checkpoints now")
      ->callback([&] { command = dsmil::store_prune_request::command; });

  auto* retention = app.add_subcommand("retention", "which automatic checkpoints are kept")
                        ->require_subcommand(1);
  retention->add_subcommand("show", "the policy in force")->callback([&] {
    command = dsmil::retention_request::command;
  });
  auto* rset = retention->add_subcommand("set", "change one rule (until the node restarts)");
  std::string rkey, rvalue;
  rset->add_option("KEY", rkey, "keep_last, keep_hourly, keep_daily, keep_weekly or max_count")
      ->required();
  rset->add_option("VALUE", rvalue, "a whole number")->required();
  rset->callback([&] {
    command = dsmil::retention_request::command;
    args["key"] = rkey;
    args["value"] = rvalue;
  });
  bool read_data = false;
  auto* scheck =
      store->add_subcommand("check", "find damaged chunks and the checkpoints they affect");
  scheck->add_flag("--read-data", read_data, "read every stored byte (CRC64, inflate, SHA-256)");
  scheck->callback([&] {
    command = dsmil::store_check_request::command;
    args["read_data"] = read_data;
  });

  auto* keys = app.add_subcommand("keys", "the signing key, attestation key and counter")
                   ->require_subcommand(1);
  keys->add_subcommand("show", "provider, key id, handle, PEM path, counter")->callback([&] {
    command = dsmil::keys_show_request::command;
  });
  keys->add_subcommand("init", "make sure the keys exist and their public PEMs are exported")
      ->callback([&] { command = dsmil::keys_init_request::command; });

  auto* rb = app.add_subcommand("rollback", "roll the system back to a checkpoint");
  std::string devices, groups, components, agents, rb_type, reason;
  bool dry_run = false, ack = false;
  rb->add_option("ID", cp_id, "checkpoint id (or unique prefix)");
  rb->add_option("--type", rb_type,
                 "full (default), incremental (only what differs), selective (with --components/"
                 "--devices/--groups/--agents and the groups depending on them), emergency "
                 "(pre-empts)");
  rb->add_option("--components", components, "only these components, e.g. configuration,devices");
  rb->add_option("--devices", devices, "only these devices, e.g. 0x8010,0x8031");
  rb->add_option("--groups", groups, "only these groups, e.g. 1,3");
  rb->add_option("--agents", agents, "only these agents, e.g. agent-03,agent-41");
  rb->add_option("--reason", reason, "why, kept in the rollback history");
  rb->add_flag("--dry-run", dry_run, "print the plan, warnings and estimate; change nothing");
  rb->add_flag("--ack-critical", ack, "allow changes to critical devices (TPM, boot, crypto)");
  rb->callback([&] {
    if (command.empty()) command = dsmil::rollback_request::command;
  });
  rb->fallthrough(); // `rollback undo --ack-critical`
  bool undo = false;
  rb->add_subcommand("undo", "roll back to the state before the last completed rollback")
      ->callback([&] {
        command = dsmil::rollback_request::command;
        undo = true;
      });
  rb->add_subcommand("cancel", "stop the running rollback: it puts back what it changed")
      ->callback([&] { command = dsmil::rollback_cancel_request::command; });
  rb->add_subcommand("history", "every rollback: type, target, outcome, phases, duration")
      ->callback([&] { command = dsmil::rollback_history_request::command; });
  auto* rb_show = rb->add_subcommand("show", "one rollback with its journal");
  std::string rb_id;
  rb_show->add_option("ID", rb_id, "rollback id (or unique prefix)")->required();
  rb_show->callback([&] {
    command = dsmil::rollback_show_request::command;
    args["id"] = rb_id;
  });

  dsmil::cli::access_options access;
  dsmil::cli::add_access_commands(app, command, args, access);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return die(std::string(e.what()) + "; see 'dsmilctl --help'", 2);
  }

  // Arguments that need checking before they go out.
  if (command == dsmil::device_set_request::command) {
    args["id"] = dev_id;
    if (!reg_text.empty() || !value_text.empty()) {
      int64_t r, v;
      if (reg_text.empty() || value_text.empty())
        return die("--register and --value go together", 2);
      if (!dsmil::cli::parse_value(reg_text, r))
        return die("--register must be a register index, got '" + reg_text + "'", 2);
      if (!dsmil::cli::parse_value(value_text, v))
        return die("--value must be a 32-bit number (decimal or 0x hex), got '" + value_text + "'",
                   2);
      args["register"] = r;
      args["value"] = v;
    }
    if (enable) args["enabled"] = true;
    if (disable) args["enabled"] = false;
    if (level != -1) args["security_level"] = level;
  } else if (command == dsmil::device_fault_request::command) {
    args["id"] = dev_id;
    if (clear) args["clear"] = true;
    if (error_rate >= 0) args["error_rate"] = error_rate;
    if (latency >= 0) args["latency_ms"] = latency;
    if (offline) args["offline"] = true;
    if (online) args["offline"] = false;
    if (stuck >= -1) args["stuck_register"] = stuck;
    if (spike) args["thermal_spike"] = true;
    if (no_spike) args["thermal_spike"] = false;
  } else if (command == dsmil::rollback_request::command) {
    if (undo) {
      args["undo"] = true;
    } else if (cp_id.empty()) {
      return die("rollback needs a checkpoint ID ('dsmilctl checkpoint list'), or one of undo, "
                 "history, show ID",
                 2);
    } else {
      args["id"] = cp_id;
    }
    args["dry_run"] = dry_run;
    args["ack_critical"] = ack;
    if (!rb_type.empty()) args["type"] = rb_type;
    if (!reason.empty()) args["reason"] = reason;
    if (!components.empty()) args["components"] = dsmil::cli::split(components);
    if (!devices.empty()) args["devices"] = dsmil::cli::split(devices);
    if (!agents.empty()) args["agents"] = dsmil::cli::split(agents);
    if (!groups.empty()) {
      json g = json::array();
      for (auto& s : dsmil::cli::split(groups)) {
        int64_t v;
        if (!dsmil::cli::parse_value(s, v) || v > 6)
          return die("--groups takes group numbers 0-6, got '" + s + "'", 2);
        g.push_back(v);
      }
      args["groups"] = g;
    }
  }

  if (!store_dir.empty()) {
    if (command != dsmil::checkpoint_verify_request::command)
      return die("--store works with 'checkpoint verify' only; other commands need a node "
                 "(--node)",
                 2);
    return dsmil::cli::verify_offline(store_dir, args, as_json);
  }

  std::string host;
  uint16_t port = 0;
  if (auto err = dsmil::parse_host_port(node, host, port)) return die("--node: " + err.message, 2);

  // tls issue: the key is made here and never leaves this machine; the
  // node signs its public half.
  std::string issued_key;
  if (command == dsmil::tls_issue_request::command) {
    if (auto err = dsmil::cli::check_out_dir(access.out_dir, access.name))
      return die(err.message, 2);
    auto key = dsmil::new_private_key();
    auto pub = key ? dsmil::public_key_of(*key) : dsmil::result<std::string>(key.err());
    if (!pub) return die(pub.err().message, 1);
    issued_key = *key;
    args["public_key"] = *pub;
  }

  auto cred = dsmil::cli::find_credential(cert_file, key_file, ca_file, data_dir);
  if (!cred) return die(cred.err().message, 2);
  auto signer = dsmil::load_signer(*cred);
  if (!signer) return die(signer.err().message, 2);
  if (auto err = dsmil::cli::check_validity(signer->info())) return die(err.message, 4);

  caf::actor_system_config caf_cfg;
  dsmil::configure_client(caf_cfg, *cred);
  caf::actor_system sys{caf_cfg};
  auto remote = dsmil::connect_node(sys, host, port);
  if (!remote) {
    const std::string& why = remote.err().message;
    if (why.rfind("the TLS handshake", 0) == 0)
      return die("dsmild at " + node + ": " + why + " (certificate " + cred->cert + ")", 6);
    return die("cannot reach dsmild at " + node + " (" + why +
                   "); start it with 'dsmild' or pass --node HOST:PORT",
               6);
  }

  dsmil::control_reply reply;
  bool got = false;
  bool node_lost = false;
  dsmil::error failure;
  caf::scoped_actor self{sys};
  const bool streamed = command == dsmil::rollback_request::command && !dry_run;
  // A helper actor asks the node and hands the answer over. It monitors the
  // node, so a node that goes away mid-command is known at once, not after
  // --timeout; and it prints the progress a rollback streams meanwhile.
  const bool tty = ::isatty(2) != 0;
  if (streamed) args["progress"] = as_json || tty;
  caf::actor waiter = self;
  auto t = std::chrono::seconds(timeout_s);
  auto remote_node = *remote;
  sys.spawn([=](caf::event_based_actor* a) -> caf::behavior {
    a->monitor(remote_node);
    a->set_down_handler([=](caf::down_msg&) {
      a->send(waiter, dsmil::lost_atom::value);
      a->quit();
    });
    dsmil::ask_gate(
        a, remote_node, *signer, caf::duration{t}, command, args,
        [=](dsmil::control_reply& r) {
          a->send(waiter, std::move(r));
          a->quit();
        },
        [=](caf::error& e) {
          a->send(waiter, e);
          a->quit();
        });
    return {[=](dsmil::rollback_progress& p) {
      auto j = json::parse(p.body, nullptr, false);
      if (j.is_discarded()) return;
      if (as_json) {
        std::cout << json{{"progress", j}}.dump() << std::endl;
      } else if (tty) {
        std::fprintf(stderr, "\r\033[K%s %s %s/%s devices", j.value("phase", "").c_str(),
                     j.value("component", "").c_str(), j["devices_done"].dump().c_str(),
                     j["devices_total"].dump().c_str());
        std::fflush(stderr);
      }
    }};
  });
  self->receive(
      [&](dsmil::control_reply& r) {
        reply = std::move(r);
        got = true;
      },
      [&](dsmil::lost_atom) { node_lost = true; },
      [&](caf::error& e) { failure = dsmil::from_caf(e); });
  if (streamed && tty && !as_json) std::fprintf(stderr, "\r\033[K");
  if (node_lost) {
    if (command == dsmil::rollback_request::command)
      return die("dsmild at " + node +
                     " went away during the rollback; when it starts again it finishes or "
                     "compensates the rollback before taking commands: see 'dsmilctl rollback "
                     "history' then",
                 6);
    return die("dsmild at " + node + " went away during '" + command +
                   "'; whether it took effect is unknown: check with 'dsmilctl status' once "
                   "the node is back",
               6);
  }
  if (!got) {
    if (failure.code == dsmil::errc::timeout)
      return die("dsmild at " + node + " did not answer within " + std::to_string(timeout_s) +
                     " s; raise --timeout or check its log",
                 6);
    return die("lost the connection to dsmild at " + node + " (" + failure.message + ")", 6);
  }
  auto body = json::parse(reply.body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  auto code = static_cast<dsmil::errc>(reply.code);
  if (as_json && streamed) {
    std::cout << body.dump() << "\n"; // JSON lines: progress lines, then the result
  } else if (as_json) {
    std::cout << body.dump(2) << "\n";
  } else {
    dsmil::render(command, body, std::cout);
  }
  if (code != dsmil::errc::none) {
    std::fprintf(stderr, "dsmilctl: %s\n", reply.message.c_str());
    return dsmil::exit_code(code);
  }
  if (command == dsmil::tls_issue_request::command)
    return dsmil::cli::write_credential(access.out_dir, access.name, issued_key, body, as_json);
  return 0;
}
