// dsmilctl against a real dsmild process, as an operator uses them.
#include <arpa/inet.h>
#include <cstdlib>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/process.hpp"
#include "tests/swtpm.hpp"
#include "tests/test_util.hpp"

using namespace dsmil::test;
using nlohmann::json;

namespace {

struct running_node {
  temp_dir dir;
  std::unique_ptr<child_process> proc;
  std::string endpoint;

  explicit running_node(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        program("DSMILD"),    "--listen",    "127.0.0.1:0", "--data-dir",
        dir.path() + "/data", "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<child_process>(argv);
    auto line = proc->read_line();
    const std::string prefix = "dsmild listening on ";
    REQUIRE_MESSAGE(line.compare(0, prefix.size(), prefix) == 0,
                    "dsmild did not start: '" << line << "' " << slurp(proc->stderr_path()));
    endpoint = line.substr(prefix.size());
    CHECK(proc->read_line().find("dsmilctl --node " + endpoint + " --data-dir " + dir.path() +
                                 "/data status") != std::string::npos);
  }

  run_result ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {program("DSMILCTL"), "--node", endpoint, "--data-dir",
                                     dir.path() + "/data"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  json ctl_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = ctl(args);
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    // A rollback prints JSON lines (progress, then the result): the result is the last.
    auto lines = r.out.find("\n{");
    if (lines != std::string::npos) {
      auto end = r.out.find_last_not_of('\n');
      return json::parse(r.out.substr(r.out.rfind('\n', end) + 1));
    }
    return json::parse(r.out);
  }
};

// One line on stderr, starting with the program's name.
void check_one_line(const run_result& r, const std::string& text) {
  CAPTURE(r.err);
  CHECK(r.err.find(text) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("dsmilctl: ", 0) == 0);
}

} // namespace

TEST_CASE("the README scenario: checkpoint, change, roll back, read back the checkpointed state") {
  running_node n;
  auto status = n.ctl({"status"});
  REQUIRE(status.rc == 0);
  CHECK(status.out.find("84 (sim), 5 quarantined, 3 critical") != std::string::npos);
  CHECK(status.out.find(n.endpoint) != std::string::npos);

  auto before = n.ctl_json({"device", "show", "0x8031"});
  auto cp = n.ctl({"checkpoint", "create", "--name", "before-change"});
  REQUIRE_MESSAGE(cp.rc == 0, cp.err);
  CHECK(cp.out.find("created checkpoint ") == 0);
  auto id = n.ctl_json({"checkpoint", "list"})["checkpoints"][0]["id"].get<std::string>();

  REQUIRE(n.ctl({"device", "set", "0x8031", "--register", "3", "--value", "0xdeadbeef"}).rc == 0);
  REQUIRE(n.ctl({"device", "set", "0x8010", "--disable"}).rc == 0);
  REQUIRE(n.ctl({"config", "set", "agent_concurrency_limit", "12"}).rc == 0);
  auto changed = n.ctl_json({"device", "show", "0x8031"});
  CHECK(changed["registers"][3] == 0xdeadbeefu);

  auto dry = n.ctl({"rollback", id, "--dry-run"});
  CHECK(dry.rc == 0);
  CHECK(dry.out.find("0x8031: registers [3]") != std::string::npos);
  CHECK(dry.out.find("0x8010: enabled") != std::string::npos);
  CHECK(n.ctl_json({"device", "show", "0x8031"})["registers"][3] == 0xdeadbeefu);

  auto rb = n.ctl({"rollback", id});
  CHECK_MESSAGE(rb.rc == 0, rb.err);
  CHECK(
      rb.out.find("phases completed: validation, preparation, execution, verification, cleanup") !=
      std::string::npos);
  CHECK(rb.out.find("done in ") != std::string::npos);
  auto after = n.ctl_json({"device", "show", "0x8031"});
  CHECK(after["registers"] == before["registers"]);
  CHECK(after["config_blob"] == before["config_blob"]);
  CHECK(n.ctl_json({"device", "show", "0x8010"})["enabled"] == true);
  CHECK(n.ctl_json({"config", "show"})["agent_concurrency_limit"] == 80);

  auto rj = n.ctl_json({"rollback", id});
  CHECK(rj["success"] == true);
  // Progress came first, one JSON line per report.
  auto raw = n.ctl({"--json", "rollback", id, "--reason", "cli test"});
  REQUIRE(raw.rc == 0);
  std::istringstream lines(raw.out);
  std::string line;
  std::vector<json> progress;
  while (std::getline(lines, line))
    if (line.rfind("{\"progress\"", 0) == 0) progress.push_back(json::parse(line)["progress"]);
  REQUIRE(progress.size() >= 5);
  CHECK(progress.front()["phase"] == "preparation");
  CHECK(progress.back()["phase"] == "done");
  CHECK(progress.back()["devices_done"] == progress.back()["devices_total"]);
  auto history = n.ctl({"rollback", "history"});
  CHECK(history.rc == 0);
  CHECK(history.out.find("completed") != std::string::npos);
  auto hj = n.ctl_json({"rollback", "history"});
  REQUIRE(hj["rollbacks"].size() >= 3);
  CHECK(hj["rollbacks"][0]["reason"] == "cli test");
  auto shown = n.ctl({"rollback", "show", hj["rollbacks"][0]["id"].get<std::string>()});
  CHECK(shown.rc == 0);
  CHECK(shown.out.find("journal end outcome=completed") != std::string::npos);
  auto undo = n.ctl({"rollback", "undo", "--ack-critical"});
  CHECK_MESSAGE(undo.rc == 0, undo.err);
  CHECK(undo.out.find("rollback to ") == 0);
  auto none = n.ctl({"rollback"});
  CHECK(none.rc == 2);
  check_one_line(none, "rollback needs a checkpoint ID");
  CHECK(rj["duration_ms"].get<double>() < 1000.0);

  auto verify = n.ctl({"checkpoint", "verify", id.substr(0, 13)});
  CHECK(verify.rc == 0);
  CHECK(verify.out.find("signature: valid (ecdsa-p256-sha256, software key") != std::string::npos);

  auto list = n.ctl_json({"device", "list"});
  REQUIRE(list["devices"].size() == 84);
  CHECK(list["devices"][0]["id"] == "0x8000");
  CHECK(list["devices"][9]["quarantined"] == true);

  CHECK(n.ctl({"checkpoint", "delete", id}).rc == 0);
  auto remaining = n.ctl_json({"checkpoint", "list"});
  for (auto& c : remaining["checkpoints"]) {
    CHECK(c["id"] != id);
    CHECK(c["type"] == "pre-rollback"); // one per rollback, kept for undo
  }
  CHECK(n.proc->stop(SIGTERM) == 0);
}

TEST_CASE("bad input: one clear line, a non-zero exit, and nothing changed") {
  running_node n;
  REQUIRE(n.ctl({"checkpoint", "create"}).rc == 0);
  auto list_before = n.ctl_json({"checkpoint", "list"});
  auto devices_before = n.ctl_json({"device", "list"});
  auto dev_before = n.ctl_json({"device", "show", "0x8009"});

  auto r = n.ctl({"device", "show", "0x800C"});
  CHECK(r.rc == 2);
  check_one_line(r, "no such device 0x800C");
  r = n.ctl({"device", "show", "banana"});
  CHECK(r.rc == 2);
  check_one_line(r, "'banana' is not a device id");
  r = n.ctl({"device", "set", "0x8009", "--enable"});
  CHECK(r.rc == 4);
  check_one_line(r, "0x8009 (DSMIL0D9) is quarantined");
  r = n.ctl({"device", "set", "0x8009", "--register", "0", "--value", "1"});
  CHECK(r.rc == 4);
  r = n.ctl({"device", "set", "0x8031", "--register", "1", "--value", "0x1FFFFFFFF"});
  CHECK(r.rc == 2);
  check_one_line(r, "--value must be a 32-bit number");
  r = n.ctl({"checkpoint", "show", "01234567-dead"});
  CHECK(r.rc == 3);
  check_one_line(r, "no checkpoint '01234567-dead'");
  r = n.ctl({"rollback", "01234567-dead"});
  CHECK(r.rc == 3);
  check_one_line(r, "no checkpoint");
  const auto cp = list_before["checkpoints"][0]["id"].get<std::string>();
  r = n.ctl({"rollback", cp, "--components", "configuration,nope"});
  CHECK(r.rc == 2);
  check_one_line(r, "no component 'nope'; this node has configuration, security, devices");
  r = n.ctl({"rollback", cp, "--type", "full", "--components", "devices"});
  CHECK(r.rc == 2);
  check_one_line(r, "a full rollback restores everything");
  r = n.ctl({"config", "set", "thermal_threshold_c", "hot"});
  CHECK(r.rc == 2);
  check_one_line(r, "thermal_threshold_c must be a number");
  r = n.ctl({"device", "frobnicate"});
  CHECK(r.rc == 2);
  CHECK(r.err.rfind("dsmilctl: ", 0) == 0);

  CHECK(n.ctl_json({"checkpoint", "list"}) == list_before);
  auto devices_after = n.ctl_json({"device", "list"});
  for (size_t i = 0; i < 84; ++i) {
    CHECK(devices_after["devices"][i]["enabled"] == devices_before["devices"][i]["enabled"]);
    CHECK(devices_after["devices"][i]["security_level"] ==
          devices_before["devices"][i]["security_level"]);
  }
  CHECK(n.ctl_json({"device", "show", "0x8009"})["registers"] == dev_before["registers"]);
}

TEST_CASE("a node killed with kill -9 restarts on its own port at once, clients still connected") {
  temp_dir dir;
  auto start = [&](const std::string& listen, const std::string& data = "data") {
    return std::make_unique<child_process>(
        std::vector<std::string>{program("DSMILD"), "--listen", listen, "--data-dir",
                                 dir.path() + "/" + data, "--log-level", "warn"});
  };
  auto first = start("127.0.0.1:0");
  const std::string prefix = "dsmild listening on ";
  auto line = first->read_line();
  REQUIRE(line.rfind(prefix, 0) == 0);
  const std::string endpoint = line.substr(prefix.size());
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  const std::string data_dir = dir.path() + "/data";
  REQUIRE(
      run({program("DSMILCTL"), "--node", endpoint, "--data-dir", data_dir, "checkpoint", "create"})
          .rc == 0);

  // A client that stays connected and never closes: once dsmild dies, the
  // node's end of it lingers in FIN-WAIT-2 on the node's port.
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  CHECK(first->stop(SIGKILL) == 128 + SIGKILL);

  auto second = start(endpoint);
  line = second->read_line();
  CHECK_MESSAGE(line == prefix + endpoint, slurp(second->stderr_path()));
  auto list = run({program("DSMILCTL"), "--node", endpoint, "--data-dir", data_dir, "--json",
                   "checkpoint", "list"});
  REQUIRE_MESSAGE(list.rc == 0, list.err);
  CHECK(json::parse(list.out)["checkpoints"].size() == 1);

  // Address reuse is not a second listener: another dsmild on the port is refused.
  auto third = start(endpoint, "other");
  CHECK(third->read_line(5000).empty());
  CHECK(third->wait() == 1);
  CHECK(slurp(third->stderr_path()).find("cannot listen on " + endpoint) != std::string::npos);
  ::close(client);
  second->stop();
}

TEST_CASE("dsmilctl learns at once that its node went away mid-rollback, and says what happens "
          "next") {
  running_node n;
  auto id = n.ctl_json({"checkpoint", "create"})["id"].get<std::string>();
  REQUIRE(n.ctl({"device", "set", "0x8031", "--register", "3", "--value", "7"}).rc == 0);
  // Every call to the device now takes 3 s: the rollback sits in its step.
  REQUIRE(n.ctl({"device", "fault", "0x8031", "--latency-ms", "3000"}).rc == 0);
  child_process ctl({program("DSMILCTL"), "--node", n.endpoint, "--data-dir",
                     n.dir.path() + "/data", "--json", "--timeout", "300", "rollback", id, "--type",
                     "incremental"});
  std::string line;
  do {
    line = ctl.read_line(60000);
  } while (!line.empty() && line.find("\"execution\"") == std::string::npos);
  REQUIRE_MESSAGE(!line.empty(), slurp(ctl.stderr_path()));
  CHECK(n.proc->stop(SIGKILL) == 128 + SIGKILL);
  CHECK(ctl.wait() == 6);
  auto err = slurp(ctl.stderr_path());
  CHECK(err.find("dsmilctl: dsmild at " + n.endpoint + " went away during the rollback") == 0);
  CHECK(err.find("dsmilctl rollback history") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("a selective rollback by component restores that component and nothing else") {
  running_node n;
  auto id = n.ctl_json({"checkpoint", "create"})["id"].get<std::string>();
  REQUIRE(n.ctl({"device", "set", "0x8031", "--register", "3", "--value", "7"}).rc == 0);
  REQUIRE(n.ctl({"config", "set", "agent_concurrency_limit", "12"}).rc == 0);
  auto r = n.ctl({"rollback", id, "--components", "configuration"});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(r.out.find("rolled back: configuration\n") != std::string::npos);
  CHECK(n.ctl_json({"config", "show"})["agent_concurrency_limit"] == 80);
  CHECK(n.ctl_json({"device", "show", "0x8031"})["registers"][3] == 7);
}

TEST_CASE("keys show names the software key and where it lives") {
  running_node n;
  auto keys = n.ctl_json({"keys", "show"});
  CHECK(keys["provider"] == "software");
  CHECK(keys["key_id"].get<std::string>().size() == 64);
  CHECK(keys["private_key"] == n.dir.path() + "/data/store/keys/signing.key");
  CHECK(std::filesystem::exists(keys["pem"].get<std::string>()));
  auto human = n.ctl({"keys", "show"});
  CHECK(human.rc == 0);
  CHECK(human.out.find("provider   software (ecdsa-p256-sha256)") == 0);
}

TEST_CASE("a tampered checkpoint fails verify and rollback with the file named") {
  running_node n;
  REQUIRE(n.ctl({"checkpoint", "create"}).rc == 0);
  auto id = n.ctl_json({"checkpoint", "list"})["checkpoints"][0]["id"].get<std::string>();
  const std::string sig = n.dir.path() + "/data/store/manifests/" + id + ".sig";
  auto text = slurp(sig);
  auto pos = text.find("\"value\": \"") + 30;
  text[pos] = text[pos] == 'a' ? 'b' : 'a';
  spit(sig, text);
  auto v = n.ctl({"checkpoint", "verify", id});
  CHECK(v.rc == 5);
  check_one_line(v, "manifests/" + id + ".sig: signature does not verify");
  auto vj = n.ctl({"--json", "checkpoint", "verify", id});
  CHECK(vj.rc == 5);
  CHECK(json::parse(vj.out)["valid"] == false);
  auto rb = n.ctl({"rollback", id});
  CHECK(rb.rc == 5);
  CHECK(rb.err.find(".sig") != std::string::npos);
}

TEST_CASE(
    "the node not running, the port taken, a malformed config: one line each, non-zero exit") {
  running_node n;
  auto none = run({program("DSMILCTL"), "--node", "127.0.0.1:1", "--data-dir",
                   n.dir.path() + "/data", "status"});
  CHECK(none.rc == 6);
  CHECK(none.err.find("cannot reach dsmild at 127.0.0.1:1") != std::string::npos);
  CHECK(none.err.find("start it with 'dsmild'") != std::string::npos);

  temp_dir other;
  auto taken = run({program("DSMILD"), "--listen", n.endpoint, "--data-dir", other.path()});
  CHECK(taken.rc == 1);
  CHECK(taken.err.find("cannot listen on " + n.endpoint) != std::string::npos);

  auto same_dir =
      run({program("DSMILD"), "--listen", "127.0.0.1:0", "--data-dir", n.dir.path() + "/data"});
  CHECK(same_dir.rc == 1);
  CHECK(same_dir.err.find("in use by another process") != std::string::npos);

  spit(other.path() + "/bad.toml",
       "[node]\nlisten = \"127.0.0.1:7411\"\n[retry]\nattempts = \"3\"\n");
  auto bad = run({program("DSMILD"), "--config", other.path() + "/bad.toml"});
  CHECK(bad.rc == 2);
  CHECK(bad.err ==
        "dsmild: " + other.path() + "/bad.toml:4: 'attempts' must be an integer, got string\n");

  auto missing = run({program("DSMILD"), "--config", other.path() + "/nope.toml"});
  CHECK(missing.rc == 2);
  CHECK(missing.err.find("cannot read config") != std::string::npos);

  auto bad_listen = run({program("DSMILD"), "--listen", "localhost"});
  CHECK(bad_listen.rc == 2);
  CHECK(bad_listen.err.find("is not HOST:PORT") != std::string::npos);
}

TEST_CASE("a crashed device actor is restarted and the device keeps answering through the CLI") {
  running_node n;
  REQUIRE(n.ctl({"device", "set", "0x8042", "--register", "0", "--value", "99"}).rc == 0);
  REQUIRE(n.ctl({"device", "crash", "0x8042"}).rc == 0);
  json dev;
  for (int i = 0; i < 50; ++i) { // the restart is asynchronous: a call may meet the dead actor
    auto r = n.ctl({"--json", "device", "show", "0x8042"});
    if (r.rc != 0) continue;
    dev = json::parse(r.out);
    if (dev["health"]["restarts"] == 1) break;
  }
  CHECK(dev["health"]["restarts"] == 1);
  CHECK(dev["registers"][0] == 99);
}

TEST_CASE("dsmild --keys tpm signs every checkpoint in the TPM and captures the PCRs") {
  // The swtpm that .ci/run (scripts/test) started, else one of our own.
  std::unique_ptr<swtpm> own;
  std::string tcti = std::getenv("DSMIL_SWTPM_TCTI") ? std::getenv("DSMIL_SWTPM_TCTI") : "";
  if (tcti.empty()) {
    own = std::make_unique<swtpm>();
    tcti = own->tcti();
  }
  running_node n({"--keys", "tpm", "--tcti", tcti});
  REQUIRE(n.ctl({"checkpoint", "create", "--name", "signed-in-tpm"}).rc == 0);
  auto list = n.ctl_json({"checkpoint", "list"});
  auto id = list["checkpoints"][0]["id"].get<std::string>();
  auto v = n.ctl_json({"checkpoint", "verify", id});
  CHECK(v["valid"] == true);
  const std::string lines = v.dump();
  CHECK(lines.find("signature: valid (ecdsa-p256-sha256, tpm key") != std::string::npos);
  CHECK(lines.find("pcrs: 24 SHA-256 PCR values captured under the signature") !=
        std::string::npos);
  auto human = n.ctl({"checkpoint", "verify", id});
  CHECK(human.rc == 0);
  CHECK(human.out.find("tpm key") != std::string::npos);

  auto keys = n.ctl_json({"keys", "show"});
  CHECK(keys["provider"] == "tpm");
  CHECK(keys["handle"] == "0x81010001");
  CHECK(lines.find(keys["key_id"].get<std::string>().substr(0, 16)) != std::string::npos);
  CHECK(std::filesystem::exists(keys["pem"].get<std::string>()));
  CHECK(std::filesystem::exists(keys["attestation_pem"].get<std::string>()));
  CHECK(keys["counter"].get<uint64_t>() > 0);
  auto init = n.ctl_json({"keys", "init"});
  CHECK(init["key_id"] == keys["key_id"]); // idempotent: the same persistent key
  CHECK(init["exported"].empty());

  // The platform changes after the checkpoint: a rollback names the PCR.
  const std::string extend = "TPM2TOOLS_TCTI='" + tcti +
                             "' tpm2_pcrextend 23:sha256=" + std::string(64, 'b') + " >/dev/null";
  REQUIRE(std::system(extend.c_str()) == 0);
  auto plan = n.ctl_json({"rollback", id, "--dry-run"});
  CHECK(plan["warnings"].dump().find(
            "platform state differs from the checkpoint's: PCR 23 changed since it was taken") !=
        std::string::npos);

  // A copy of the store verifies with no node and no TPM, and is not changed.
  const std::string copy = n.dir.path() + "/copy";
  REQUIRE(std::system(("cp -a '" + n.dir.path() + "/data/store' '" + copy + "'").c_str()) == 0);
  auto listing = [&] {
    std::string out;
    for (auto& e : std::filesystem::recursive_directory_iterator(copy))
      out += e.path().string() + " " +
             (e.is_regular_file() ? std::to_string(e.file_size()) : std::string("dir")) + "\n";
    return out;
  };
  const auto before = listing();
  auto offline = run({program("DSMILCTL"), "--store", copy, "checkpoint", "verify", id});
  CHECK(offline.rc == 0);
  CHECK(offline.out.find(id + ": valid") == 0);
  CHECK(offline.out.find("signature: valid (ecdsa-p256-sha256, tpm key") != std::string::npos);
  CHECK(offline.out.find("quote: valid (attestation key") != std::string::npos);
  CHECK(offline.out.find("counter: ") != std::string::npos);
  CHECK(listing() == before);
  auto offline_json =
      run({program("DSMILCTL"), "--json", "--store", copy, "checkpoint", "verify", id});
  CHECK(json::parse(offline_json.out)["valid"] == true);
  // Tampered: the manifest's PCR values are under the signature.
  const std::string manifest = copy + "/manifests/" + id + ".json";
  auto text = slurp(manifest);
  auto at = text.find("\"7\": \"");
  REQUIRE(at != std::string::npos);
  text[at + 6] = text[at + 6] == '0' ? '1' : '0';
  spit(manifest, text);
  auto tampered = run({program("DSMILCTL"), "--store", copy, "checkpoint", "verify", id});
  CHECK(tampered.rc == 5);
  check_one_line(tampered, "manifests/" + id + ".json");
  auto nowhere =
      run({program("DSMILCTL"), "--store", n.dir.path() + "/none", "checkpoint", "verify", id});
  CHECK(nowhere.rc == 3);
  check_one_line(nowhere, "no store at " + n.dir.path() + "/none");
  auto wrong_cmd = run({program("DSMILCTL"), "--store", copy, "checkpoint", "list"});
  CHECK(wrong_cmd.rc == 2);

  // Bad --keys: one line, exit 2.
  auto bad = run({program("DSMILD"), "--keys", "hsm", "--data-dir", n.dir.path() + "/x"});
  CHECK(bad.rc == 2);
  CHECK(bad.err == "dsmild: --keys must be \"software\" or \"tpm\", got 'hsm'\n");
}
