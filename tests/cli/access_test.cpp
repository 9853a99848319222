// Who gets in, with real processes: dsmild's mutual TLS endpoint, dsmilctl's
// credentials, roles, revocation, the audit log, several nodes with CAs of
// their own, and peers that misbehave while a legitimate client is served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "runtime/auth/node_pki.hpp"
#include "runtime/auth/pki.hpp"
#include "tests/process.hpp"
#include "tests/test_util.hpp"

using namespace dsmil::test;
using nlohmann::json;

namespace {

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

struct tls_node {
  temp_dir dir;
  std::unique_ptr<child_process> proc;
  std::string endpoint;
  std::string data;

  // dsmild started in `dir` with no --data-dir: it keeps ./data, as the
  // README's commands do.
  explicit tls_node(const std::string& config_text = {}) {
    data = dir.path() + "/data";
    std::string config;
    if (!config_text.empty()) {
      spit(dir.path() + "/dsmil.toml", config_text);
      config = " --config " + quoted(dir.path() + "/dsmil.toml");
    }
    proc = std::make_unique<child_process>(std::vector<std::string>{
        "/bin/sh", "-c",
        "cd " + quoted(dir.path()) + " && exec " + quoted(program("DSMILD")) +
            " --listen 127.0.0.1:0 --log-level warn" + config});
    auto line = proc->read_line();
    const std::string prefix = "dsmild listening on ";
    REQUIRE_MESSAGE(line.rfind(prefix, 0) == 0,
                    "dsmild did not start: '" << line << "' " << slurp(proc->stderr_path()));
    endpoint = line.substr(prefix.size());
  }
  uint16_t port() const {
    return static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  }

  // dsmilctl run in `cwd` (default: the node's dir) with `args`.
  run_result ctl(const std::vector<std::string>& args, const std::string& cwd = {}) {
    std::string cmd = "cd " + quoted(cwd.empty() ? dir.path() : cwd) + " && exec " +
                      quoted(program("DSMILCTL")) + " --node " + endpoint;
    for (auto& a : args)
      cmd += " " + quoted(a);
    return run({"/bin/sh", "-c", cmd});
  }
  std::vector<std::string> as(const std::string& cred_dir, const std::string& name) {
    return {"--cert", cred_dir + "/" + name + ".crt",
            "--key",  cred_dir + "/" + name + ".key",
            "--ca",   cred_dir + "/ca.crt"};
  }
  run_result ctl_as(const std::string& cred_dir, const std::string& name,
                    std::vector<std::string> args) {
    auto a = as(cred_dir, name);
    a.insert(a.end(), args.begin(), args.end());
    return ctl(a);
  }
};

void one_line(const run_result& r, int rc, const std::string& text) {
  CAPTURE(r.err);
  CHECK(r.rc == rc);
  CHECK(r.err.find(text) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// A TCP connection to the node that does whatever the test writes to it.
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// openssl s_client against the node; its exit code and output.
run_result s_client(const tls_node& n, const std::string& extra) {
  return run({"/bin/sh", "-c",
              "openssl s_client -connect " + n.endpoint + " -CAfile " + quoted(n.data) +
                  "/tls/ca.crt " + extra + " </dev/null 2>&1"});
}

} // namespace

TEST_CASE("access: the README's commands need no flags; dsmilctl without a credential says so") {
  tls_node n;
  auto st = n.ctl({"status"});
  REQUIRE_MESSAGE(st.rc == 0, st.err);
  CHECK(st.out.find("node        " + n.endpoint) == 0);
  // The node's own PKI, private to its user.
  for (auto f : {"ca.crt", "ca.key", "node.crt", "node.key", "admin.crt", "admin.key"})
    CHECK(std::filesystem::exists(n.data + "/tls/" + f));
  // Elsewhere, no ./data: exit 2, one line saying what to pass.
  temp_dir elsewhere;
  one_line(n.ctl({"status"}, elsewhere.path()), 2, "no credential: ");
  CHECK(n.ctl({"status"}, elsewhere.path()).err.find("--data-dir") != std::string::npos);
  // --data-dir from anywhere; the environment names files too.
  CHECK(n.ctl({"--data-dir", n.data, "status"}, elsewhere.path()).rc == 0);
  auto env =
      run({"/bin/sh", "-c",
           "cd " + quoted(elsewhere.path()) + " && DSMIL_CERT=" + n.data +
               "/tls/admin.crt DSMIL_KEY=" + n.data + "/tls/admin.key DSMIL_CA=" + n.data +
               "/tls/ca.crt " + quoted(program("DSMILCTL")) + " --node " + n.endpoint + " status"});
  CHECK_MESSAGE(env.rc == 0, env.err);
  // A flag wins over the environment: a missing --cert is named.
  auto flag = run({"/bin/sh", "-c",
                   "cd " + quoted(n.dir.path()) + " && DSMIL_CERT=data/tls/admin.crt " +
                       quoted(program("DSMILCTL")) + " --node " + n.endpoint +
                       " --cert /nonexistent.crt status"});
  one_line(flag, 2, "/nonexistent.crt does not exist");
  // Offline verify of the store needs no credential.
  auto cp = n.ctl({"--json", "checkpoint", "create"});
  REQUIRE_MESSAGE(cp.rc == 0, cp.err);
  const std::string id = json::parse(cp.out)["id"];
  auto offline =
      n.ctl({"--store", n.data + "/store", "checkpoint", "verify", id}, elsewhere.path());
  CHECK_MESSAGE(offline.rc == 0, offline.err);
}

TEST_CASE("access: issued credentials, roles, revocation and the audit log through dsmilctl") {
  tls_node n;
  temp_dir creds;
  auto issued = n.ctl({"tls", "issue", "alice", "--role", "viewer", "--out", creds.path()});
  REQUIRE_MESSAGE(issued.rc == 0, issued.err);
  CHECK(issued.out.find("issued alice (role viewer)") == 0);
  CHECK(std::filesystem::status(creds.path() + "/alice.key").permissions() ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  // Not twice into the same place.
  one_line(n.ctl({"tls", "issue", "alice", "--role", "viewer", "--out", creds.path()}), 2,
           "alice.crt exists");
  one_line(n.ctl({"tls", "issue", "bob", "--role", "root", "--out", creds.path()}), 2,
           "--role must be \"viewer\", \"operator\" or \"admin\", got 'root'");
  REQUIRE(n.ctl({"tls", "issue", "olga", "--role", "operator", "--out", creds.path()}).rc == 0);

  // The viewer reads and is refused changes: one line, exit 4, nothing changed.
  CHECK(n.ctl_as(creds.path(), "alice", {"status"}).rc == 0);
  const auto before = n.ctl({"--json", "checkpoint", "list"}).out;
  one_line(n.ctl_as(creds.path(), "alice", {"checkpoint", "create"}), 4,
           "dsmilctl: permission denied: alice (role viewer) may not create checkpoints");
  one_line(n.ctl_as(creds.path(), "alice", {"device", "set", "0x8031", "--enable"}), 4,
           "permission denied: alice (role viewer) may not write to devices");
  CHECK(n.ctl({"--json", "checkpoint", "list"}).out == before);
  // The operator checkpoints and rolls back, but no emergency and no critical devices.
  auto cp = n.ctl_as(creds.path(), "olga", {"--json", "checkpoint", "create"});
  REQUIRE_MESSAGE(cp.rc == 0, cp.err);
  const std::string id = json::parse(cp.out)["id"];
  CHECK(n.ctl_as(creds.path(), "olga", {"rollback", id, "--type", "incremental"}).rc == 0);
  one_line(n.ctl_as(creds.path(), "olga", {"rollback", id, "--type", "emergency"}), 4,
           "permission denied: olga (role operator) may not run emergency rollbacks");
  one_line(n.ctl_as(creds.path(), "olga", {"tls", "revoke", "alice"}), 4,
           "permission denied: olga (role operator) may not revoke credentials");
  // The rollback history names who started it.
  auto history = json::parse(n.ctl({"--json", "rollback", "history"}).out);
  CHECK(history["rollbacks"][0]["initiated_by"] == "olga");

  // Revoked: refused from the next request on; others keep working.
  CHECK(n.ctl({"tls", "revoke", "alice"}).rc == 0);
  one_line(n.ctl_as(creds.path(), "alice", {"status"}), 4, "certificate 'alice' is revoked");
  CHECK(n.ctl_as(creds.path(), "olga", {"status"}).rc == 0);

  // The audit log has every change and every refusal, by name.
  auto audit = json::parse(n.ctl({"--json", "audit"}).out)["records"];
  std::vector<std::string> seen;
  for (auto& r : audit)
    seen.push_back(r["identity"].get<std::string>() + " " + r["command"].get<std::string>() + " " +
                   r["outcome"].get<std::string>().substr(0, 6));
  for (auto want :
       {"admin tls.issue ok", "alice checkpoint.create denied", "olga rollback ok",
        "olga rollback denied", "admin tls.revoke ok", "unverified:alice status denied"})
    CHECK_MESSAGE(std::find(seen.begin(), seen.end(), want) != seen.end(), want);
  CHECK(n.ctl({"audit", "--since", "2000-01-01"}).rc == 0);
  one_line(n.ctl({"audit", "--since", "yesterday"}), 2, "--since must be a UTC time");
  auto ok = n.ctl({"audit", "verify"});
  CHECK_MESSAGE(ok.rc == 0, ok.err);
  CHECK(ok.out.find("chain and signed head intact") != std::string::npos);

  // An edited record is found, by number; the node keeps serving.
  const std::string log = n.data + "/audit/audit.log";
  auto text = slurp(log);
  auto at = text.find("\"identity\":\"olga\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 17, "\"identity\":\"eve_\"");
  spit(log, text);
  auto bad = n.ctl({"audit", "verify"});
  one_line(bad, 5, "the audit log is damaged: record ");
  CHECK(bad.err.find("(the record was edited)") != std::string::npos);
  CHECK(n.ctl({"status"}).rc == 0);
}

TEST_CASE("access: another node's credential, an expired one, TLS below 1.2, anonymous ciphers "
          "and no certificate are refused at the handshake") {
  tls_node a, b;
  // b's admin credential against a: the handshake fails, exit 6.
  auto other = a.ctl({"--data-dir", b.data, "status"});
  one_line(other, 6, "TLS handshake with " + a.endpoint + " was refused");
  CHECK(b.ctl({"--data-dir", b.data, "status"}).rc == 0);

  // An expired certificate from a's own CA: dsmilctl names it (exit 4), and
  // the node refuses it at the handshake anyway.
  temp_dir creds;
  auto key = *dsmil::new_private_key();
  dsmil::cert_spec s;
  s.name = "old";
  s.role = "admin";
  s.not_before_s = 1000000000;
  s.not_after_s = 1000086400;
  auto cert = dsmil::issue_cert(slurp(a.data + "/tls/ca.crt"), slurp(a.data + "/tls/ca.key"),
                                *dsmil::public_key_of(key), s);
  REQUIRE(cert);
  spit(creds.path() + "/old.crt", *cert);
  spit(creds.path() + "/old.key", key);
  spit(creds.path() + "/ca.crt", slurp(a.data + "/tls/ca.crt"));
  one_line(a.ctl_as(creds.path(), "old", {"status"}), 4, "certificate 'old' expired at 2001-09-10");
  auto expired =
      s_client(a, "-tls1_2 -cert " + creds.path() + "/old.crt -key " + creds.path() + "/old.key");
  CHECK_MESSAGE(expired.out.find("certificate expired") != std::string::npos, expired.out);

  auto no_cert = s_client(a, "-tls1_2");
  CHECK_MESSAGE(no_cert.out.find("alert") != std::string::npos, no_cert.out);
  auto old_tls =
      s_client(a, "-tls1_1 -cert " + a.data + "/tls/admin.crt -key " + a.data + "/tls/admin.key");
  CHECK_MESSAGE(old_tls.out.find("Cipher is (NONE)") != std::string::npos, old_tls.out);
  auto anonymous = s_client(a, "-tls1_2 -cipher aNULL@SECLEVEL=0 -cert " + a.data +
                                   "/tls/admin.crt -key " + a.data + "/tls/admin.key");
  CHECK_MESSAGE(anonymous.out.find("Cipher is (NONE)") != std::string::npos, anonymous.out);
  auto good =
      s_client(a, "-tls1_3 -cert " + a.data + "/tls/admin.crt -key " + a.data + "/tls/admin.key");
  CHECK_MESSAGE(good.out.find("Verify return code: 0 (ok)") != std::string::npos, good.out);
  CHECK(a.ctl({"status"}).rc == 0);
}

TEST_CASE("access: garbage, a handshake stopped half-way and 200 idle connections leave the "
          "node serving a legitimate client") {
  tls_node n;
  // Garbage instead of a ClientHello, and a connection closed at once.
  int g = raw_connect(n.port());
  const char junk[] = "GET / HTTP/1.0\r\n\r\n\x16\x03\x01\xff\xff garbage";
  CHECK(::write(g, junk, sizeof junk) > 0);
  ::close(raw_connect(n.port()));
  // The first bytes of a TLS record, then silence, kept open.
  int half = raw_connect(n.port());
  const unsigned char hello_start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
  CHECK(::write(half, hello_start, sizeof hello_start) > 0);
  // 200 connections that never say anything (CAF 0.17 does not time out a
  // silent peer: dsmild raises its open-file limit to the hard limit).
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i)
    idle.push_back(raw_connect(n.port()));
  for (int round = 0; round < 3; ++round) {
    auto st = n.ctl({"status"});
    CHECK_MESSAGE(st.rc == 0, st.err);
  }
  CHECK(n.ctl({"checkpoint", "create"}).rc == 0);
  for (int fd : idle)
    ::close(fd);
  ::close(half);
  ::close(g);
  CHECK(n.ctl({"status"}).rc == 0);
  CHECK(n.proc->stop(SIGTERM) == 0);
}

TEST_CASE("access: an operator's own PKI in [tls]; its CRL is reread; the node issues nothing") {
  // The operator's CA: here, the one another node made.
  tls_node ca_holder;
  const std::string pki = ca_holder.data + "/tls";
  temp_dir op;
  const std::string crl = op.path() + "/crl.pem";
  tls_node n("[tls]\nca_file = \"" + pki + "/ca.crt\"\ncert_file = \"" + pki +
             "/node.crt\"\nkey_file = \"" + pki + "/node.key\"\ncrl_file = \"" + crl + "\"\n");
  CHECK_FALSE(std::filesystem::exists(n.data + "/tls"));
  // A credential of that CA gets in; the node has no CA key to issue with.
  CHECK(n.ctl({"--data-dir", ca_holder.data, "status"}).rc == 0);
  temp_dir creds;
  one_line(n.ctl({"--data-dir", ca_holder.data, "tls", "issue", "x", "--role", "viewer", "--out",
                  creds.path()}),
           2, "this node uses an operator's PKI");
  // The operator revokes the admin credential in the CRL file; the node
  // rereads it within a second or so.
  auto serial = dsmil::read_cert(slurp(pki + "/admin.crt"));
  REQUIRE(serial);
  auto list = dsmil::make_crl(slurp(pki + "/ca.crt"), slurp(pki + "/ca.key"), {serial->serial},
                              static_cast<int64_t>(std::time(nullptr)), 30);
  REQUIRE(list);
  spit(crl, *list);
  run_result r;
  for (int i = 0; i < 30; ++i) {
    r = n.ctl({"--data-dir", ca_holder.data, "status"});
    if (r.rc != 0) break;
    ::usleep(200000);
  }
  one_line(r, 4, "certificate 'admin' is revoked");
  // A bad [tls] is one line naming what to do.
  spit(op.path() + "/bad.toml", "[tls]\nca_file = \"/x.crt\"\n");
  auto bad = run({program("DSMILD"), "--config", op.path() + "/bad.toml"});
  CHECK(bad.rc == 2);
  CHECK(bad.err.find("[tls] ca_file, cert_file and key_file go together") != std::string::npos);
}
