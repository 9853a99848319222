// The control gate in-process: every role against every row of the command
// table, and every way a request's identity can be wrong (nonce, signature,
// CA, expiry, revocation, role). TLS itself is tested with real processes
// (tests/cli/access_test.cpp).
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "actors/node/command_classes.hpp"
#include "actors/node/control_gate.hpp"
#include "actors/remote_client.hpp"
#include "runtime/auth/audit_log.hpp"
#include "runtime/auth/node_pki.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// Nonces live 30 s in a node; 1 s here, so that a test sees one expire.
constexpr int64_t nonce_life_ms = 1000;

struct gate_fixture : node_fixture {
  gate_api gate;

  gate_fixture() {
    gate =
        spawn_control_gate(*sys, *node.control, node.pki, node.audit, env::posix(), nonce_life_ms);
  }
  ~gate_fixture() { caf::anon_send_exit(gate, caf::exit_reason::user_shutdown); }

  std::string file(const char* name) {
    return *test::test_env().read_file(ncfg.data_dir + "/" + name);
  }

  // A credential of the node's CA (or of the CA `ca`/`ca_key`), made here.
  request_signer credential(const std::string& name, const std::string& role,
                            int64_t not_after_s = 0, const std::string& ca = {},
                            const std::string& ca_key = {}) {
    auto key = new_private_key();
    REQUIRE(key);
    auto pub = public_key_of(*key);
    REQUIRE(pub);
    std::string cert;
    if (ca.empty() && not_after_s == 0) {
      auto r = parse_enum<dsmil::role>(role);
      REQUIRE(r);
      auto c = node.pki->issue(name, *r, *pub, 30);
      REQUIRE_MESSAGE(c, c.err().message);
      cert = c->cert_pem;
    } else {
      cert_spec s;
      s.name = name;
      s.role = role;
      const int64_t now = env::posix().now_unix_ns() / 1000000000;
      s.not_before_s = now - 86400 * 3;
      s.not_after_s = not_after_s ? not_after_s : now + 86400;
      auto c = issue_cert(ca.empty() ? file(tls_layout::ca_cert) : ca,
                          ca_key.empty() ? file(tls_layout::ca_key) : ca_key, *pub, s);
      REQUIRE_MESSAGE(c, c.err().message);
      cert = *c;
    }
    auto s = request_signer::load(cert, *key);
    REQUIRE_MESSAGE(s, s.err().message);
    return *s;
  }

  control_reply ask(const request_signer& who, const std::string& command,
                    const json& args = json::object()) {
    auto r = ask_gate(*sys, gate, who, std::chrono::seconds(60), command, args);
    REQUIRE_MESSAGE(r, r.err().message);
    return *r;
  }

  challenge nonce() {
    caf::scoped_actor self{*sys};
    challenge out;
    self->request(gate, std::chrono::seconds(10), challenge_request{})
        .receive([&](challenge& c) { out = c; }, [&](caf::error& e) { FAIL(caf::to_string(e)); });
    return out;
  }

  control_reply send(const signed_request& req) {
    caf::scoped_actor self{*sys};
    control_reply out;
    self->request(gate, std::chrono::seconds(60), req)
        .receive([&](signed_reply& r) { out = r.reply; },
                 [&](caf::error& e) { FAIL(caf::to_string(e)); });
    return out;
  }

  size_t audited() { return node.audit->read()->size(); }
};

constexpr uint8_t denied = static_cast<uint8_t>(errc::permission_denied);

} // namespace

TEST_CASE("gate: every command has one row in the command table, and every row a command") {
  std::set<std::string> commands;
  std::apply([&](auto... rs) { (commands.insert(decltype(rs)::command), ...); }, node_requests{});
  for (auto& c : commands)
    CHECK_MESSAGE(std::string(rule_of(c).rule) == c, c);
  std::set<std::string> rows;
  for (auto& r : command_rules()) {
    CHECK_MESSAGE(rows.insert(r.rule).second, r.rule << " is in the table twice");
    const std::string base = std::string(r.rule).substr(0, std::string(r.rule).find(':'));
    CHECK_MESSAGE(commands.count(base) == 1, r.rule << " names no command");
  }
}

TEST_CASE("gate: each role against every row of the table; a refusal changes nothing and is "
          "audited") {
  gate_fixture f;
  auto admin = f.credential("root-admin", "admin");
  const auto cp = f.ask(admin, "checkpoint.create", {{"name", "base"}});
  REQUIRE_MESSAGE(cp.code == 0, cp.message);
  const std::string id = json::parse(cp.body)["id"];
  auto pub = public_key_of(*new_private_key());
  REQUIRE(pub);

  // One request per row of the table.
  const std::map<std::string, std::pair<std::string, json>> requests = {
      {"status", {"status", json::object()}},
      {"device.list", {"device.list", json::object()}},
      {"device.show", {"device.show", {{"id", "0x8005"}}}},
      {"device.set", {"device.set", {{"id", "0x8031"}, {"register", 3}, {"value", 7}}}},
      {"device.fault", {"device.fault", {{"id", "0x8031"}, {"clear", true}}}},
      {"device.crash", {"device.crash", {{"id", "0x8031"}}}},
      {"config.show", {"config.show", json::object()}},
      {"config.set", {"config.set", {{"key", "agent_concurrency_limit"}, {"value", "9"}}}},
      {"agent.list", {"agent.list", json::object()}},
      {"agent.show", {"agent.show", {{"id", "agent-00"}}}},
      {"agent.load", {"agent.load", json::object()}},
      {"agent.load:set", {"agent.load", {{"tasks_per_second", 0}}}},
      {"checkpoint.create", {"checkpoint.create", {{"name", "more"}}}},
      {"checkpoint.list", {"checkpoint.list", json::object()}},
      {"checkpoint.show", {"checkpoint.show", {{"id", id}}}},
      {"checkpoint.verify", {"checkpoint.verify", {{"id", id}, {"quick", true}}}},
      {"checkpoint.delete", {"checkpoint.delete", {{"id", "ffffffff"}}}},
      {"checkpoint.pin", {"checkpoint.pin", {{"id", id}, {"pin", true}}}},
      {"store.check", {"store.check", json::object()}},
      {"store.gc", {"store.gc", json::object()}},
      {"store.prune", {"store.prune", json::object()}},
      {"retention", {"retention", json::object()}},
      {"retention:set", {"retention", {{"key", "keep_last"}, {"value", "10"}}}},
      {"keys.show", {"keys.show", json::object()}},
      {"keys.init", {"keys.init", json::object()}},
      {"rollback.history", {"rollback.history", json::object()}},
      {"rollback.show", {"rollback.show", {{"id", "nonexistent"}}}},
      {"rollback:plan", {"rollback", {{"id", id}, {"dry_run", true}}}},
      {"rollback", {"rollback", {{"id", id}, {"type", "incremental"}}}},
      {"rollback:undo", {"rollback", {{"undo", true}}}},
      {"rollback:emergency", {"rollback", {{"id", id}, {"type", "emergency"}}}},
      {"rollback:critical", {"rollback", {{"id", id}, {"ack_critical", true}}}},
      {"rollback.cancel", {"rollback.cancel", json::object()}},
      {"tls.issue", {"tls.issue", {{"name", "new-one"}, {"role", "viewer"}, {"public_key", *pub}}}},
      {"tls.revoke", {"tls.revoke", {{"name", "nobody"}}}},
      {"tls.list", {"tls.list", json::object()}},
      {"audit", {"audit", json::object()}},
      {"audit.verify", {"audit.verify", json::object()}},
  };
  for (auto& r : command_rules())
    REQUIRE_MESSAGE(requests.count(r.rule) == 1, "no request for row " << r.rule);

  for (auto role_name : {"viewer", "operator", "admin"}) {
    const auto me = *parse_enum<dsmil::role>(role_name);
    auto who = f.credential(std::string("a-") + role_name, role_name);
    for (auto& r : command_rules()) {
      auto& [command, args] = requests.at(r.rule);
      CAPTURE(role_name);
      CAPTURE(r.rule);
      const uint64_t writes = f.node.sim->write_count();
      const size_t records = f.audited();
      auto reply = f.ask(who, command, args);
      // The request itself is well-formed: what comes back is the node's.
      CHECK_MESSAGE(reply.message.rfind("malformed arguments", 0) != 0, reply.message);
      if (may(me, r.least)) {
        CHECK_MESSAGE(reply.code != denied, reply.message);
        continue;
      }
      CHECK(reply.code == denied);
      CHECK(reply.message == std::string("permission denied: a-") + role_name + " (role " +
                                 role_name + ") may not " + r.refusal);
      CHECK(f.node.sim->write_count() == writes);
      auto log = f.node.audit->read();
      REQUIRE(log->size() == records + 1);
      CHECK(log->back().identity == std::string("a-") + role_name);
      CHECK(log->back().command == command);
      CHECK(log->back().outcome.rfind("denied: permission denied", 0) == 0);
    }
  }
  // Every change was audited under the name that made it, and the chain holds.
  auto log = *f.node.audit->read();
  CHECK(std::any_of(log.begin(), log.end(), [](const audit_record& r) {
    return r.identity == "a-operator" && r.command == "checkpoint.create" && r.outcome == "ok";
  }));
  CHECK(f.node.audit->verify().valid);
  // The rollback history names the certificate that started each saga.
  auto history = f.ask(admin, "rollback.history");
  std::set<std::string> by;
  const json hist = json::parse(history.body);
  for (auto& h : hist["rollbacks"])
    by.insert(h.value("initiated_by", ""));
  CHECK(by.count("a-operator") == 1);
  CHECK(by.count("a-admin") == 1);
  CHECK(by.count("a-viewer") == 0);
}

TEST_CASE("gate: a request's identity is checked every time: nonce, signature, CA, expiry, "
          "revocation, role") {
  gate_fixture f;
  auto alice = f.credential("alice", "operator");
  auto bytes = encode_request("status", json::object());
  REQUIRE(bytes);
  auto signed_with = [&](const request_signer& s, const challenge& c) {
    auto sig = s.sign(c.nonce, "status", *bytes);
    REQUIRE(sig);
    return signed_request{"status", *bytes, s.cert_der(), c.nonce, *sig};
  };

  SUBCASE("a nonce is used once") {
    auto req = signed_with(alice, f.nonce());
    CHECK(f.send(req).code == 0);
    auto again = f.send(req);
    CHECK(again.code == denied);
    CHECK(again.message.find("nonce is unknown, used or older than 1 s") != std::string::npos);
  }
  SUBCASE("a nonce expires") {
    auto req = signed_with(alice, f.nonce());
    std::this_thread::sleep_for(std::chrono::milliseconds(nonce_life_ms + 200));
    CHECK(f.send(req).code == denied);
    CHECK(f.send(signed_with(alice, f.nonce())).code == 0);
  }
  SUBCASE("the nonce an answer brings signs the next request, once") {
    gate_nonce next;
    for (int i = 0; i < 3; ++i) {
      auto r = ask_gate(*f.sys, f.gate, alice, std::chrono::seconds(10), "status", json::object(),
                        &next);
      REQUIRE(r);
      CHECK(r->code == 0);
      CHECK(next.value.size() == 32);
    }
    const auto used = next.value;
    REQUIRE(
        ask_gate(*f.sys, f.gate, alice, std::chrono::seconds(10), "status", json::object(), &next));
    CHECK(f.send(signed_with(alice, challenge{used})).code == denied);
    // A carried nonce the node no longer knows: asked for anew, once.
    next.value = std::string(32, 'y');
    auto r =
        ask_gate(*f.sys, f.gate, alice, std::chrono::seconds(10), "status", json::object(), &next);
    REQUIRE(r);
    CHECK(r->code == 0);
  }
  SUBCASE("a nonce the node never issued") {
    CHECK(f.send(signed_with(alice, challenge{std::string(32, 'x')})).code == denied);
    auto forged = f.nonce(); // its time moved on: the gate's HMAC no longer matches
    forged.nonce[7] = static_cast<char>(forged.nonce[7] ^ 1);
    CHECK(f.send(signed_with(alice, forged)).code == denied);
  }
  SUBCASE("asking for nonces without end holds no one up") {
    for (int i = 0; i < 20000; ++i) // more than a table of issued nonces would hold
      REQUIRE(f.nonce().nonce.size() == 32);
    CHECK(f.send(signed_with(alice, f.nonce())).code == 0);
  }
  SUBCASE("a request that fails its checks does not spend the nonce it names") {
    auto c = f.nonce();
    auto forged = signed_with(alice, c);
    forged.signature[forged.signature.size() / 2] ^= 1;
    CHECK(f.send(forged).code == denied);
    CHECK(f.send(signed_with(alice, c)).code == 0);
  }
  SUBCASE("the signature covers the request") {
    auto req = signed_with(alice, f.nonce());
    req.request = *encode_request("checkpoint.create", json::object());
    req.command = "checkpoint.create";
    auto r = f.send(req);
    CHECK(r.code == denied);
    CHECK(r.message.find("signature does not match certificate 'alice'") != std::string::npos);
  }
  SUBCASE("another's certificate with one's own key") {
    auto mallory = f.credential("mallory", "viewer");
    auto req = signed_with(mallory, f.nonce());
    req.cert = alice.cert_der();
    CHECK(f.send(req).code == denied);
  }
  SUBCASE("a certificate from another CA") {
    auto ca_key = *new_private_key();
    cert_spec s;
    s.name = "other CA";
    s.not_before_s = 0;
    s.not_after_s = env::posix().now_unix_ns() / 1000000000 + 86400;
    auto ca = make_ca_cert(ca_key, s);
    REQUIRE(ca);
    auto eve = f.credential("eve", "admin", 0, *ca, ca_key);
    auto r = f.ask(eve, "status");
    CHECK(r.code == denied);
    CHECK(r.message.find("certificate 'eve' is not accepted") != std::string::npos);
  }
  SUBCASE("an expired certificate") {
    auto old = f.credential("old", "admin", env::posix().now_unix_ns() / 1000000000 - 3600);
    auto r = f.ask(old, "status");
    CHECK(r.code == denied);
    CHECK(r.message == "certificate 'old' expired");
  }
  SUBCASE("a certificate without a role") {
    auto odd = f.credential("odd", "root", env::posix().now_unix_ns() / 1000000000 + 3600);
    auto r = f.ask(odd, "status");
    CHECK(r.code == denied);
    CHECK(r.message.find("names no role") != std::string::npos);
  }
  SUBCASE("a revoked certificate, from its next request on; others keep working") {
    auto bob = f.credential("bob", "viewer");
    CHECK(f.ask(bob, "status").code == 0);
    auto revoked = f.node.pki->revoke("bob");
    REQUIRE(revoked);
    auto r = f.ask(bob, "status");
    CHECK(r.code == denied);
    CHECK(r.message == "certificate 'bob' is revoked");
    CHECK(f.ask(alice, "status").code == 0);
    CHECK(f.node.pki->revoke("bob").err().code == errc::invalid_argument);
    CHECK(f.node.pki->revoke("nobody").err().code == errc::not_found);
  }
  SUBCASE("garbage where the certificate or the request should be") {
    auto req = signed_with(alice, f.nonce());
    req.cert = "not a certificate";
    CHECK(f.send(req).code == denied);
    auto bad = signed_with(alice, f.nonce());
    bad.request = "\xff\xff\xff\xff";
    auto sig = alice.sign(bad.nonce, bad.command, bad.request);
    bad.signature = *sig;
    auto r = f.send(bad);
    CHECK(r.code == static_cast<uint8_t>(errc::invalid_argument));
    CHECK(r.message == "the request does not decode as 'status'");
  }
  // Every refusal is in the audit log, and the node still serves.
  for (auto& rec : *f.node.audit->read())
    CHECK(rec.outcome.rfind("denied: ", 0) == 0);
  CHECK(f.ask(alice, "status").code == 0);
}

TEST_CASE("gate: a client refused in a loop fills the audit log, not the node's log") {
  std::ostringstream lines;
  auto old = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "gate-test", spdlog::sinks_init_list{std::make_shared<spdlog::sinks::ostream_sink_mt>(lines),
                                           old->sinks().front()});
  spdlog::set_default_logger(logger);
  size_t added = 0;
  {
    gate_fixture f;
    auto alice = f.credential("alice", "operator");
    const size_t before = f.audited();
    signed_request bogus{"status", *encode_request("status", json::object()), alice.cert_der(),
                         std::string(32, 'x'), "signature"};
    for (int i = 0; i < 100; ++i)
      REQUIRE(f.send(bogus).code == denied);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // the next second's refusal
    REQUIRE(f.send(bogus).code == denied);                        // reports those not logged
    added = f.audited() - before;
  }
  spdlog::set_default_logger(old);
  CHECK(added == 101); // every one audited
  // Every refusal is either a line of its own or counted in a summary line.
  size_t one_by_one = 0, summarized = 0;
  std::istringstream in(lines.str());
  for (std::string line; std::getline(in, line);) {
    if (line.find("control: refused status from unverified:alice") != std::string::npos)
      ++one_by_one;
    const auto at = line.find("control: ");
    const auto more = line.find(" more refusal(s) in one second");
    if (at != std::string::npos && more != std::string::npos)
      summarized += std::stoul(line.substr(at + 9, more - at - 9));
  }
  CHECK(one_by_one + summarized == 101);
  CHECK(summarized > 0);
  CHECK(one_by_one < 101);
}
