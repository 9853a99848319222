// The audit log's hash chain and signed head: every edit, removal,
// truncation or record slipped in behind the node's back is found, naming
// the first bad record; a damaged log is still appended to.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "runtime/auth/audit_log.hpp"
#include "runtime/auth/pki.hpp"
#include "runtime/base/crypto.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using nlohmann::json;

namespace {

struct log_fixture {
  test::env_dir dir;
  env& e = test::test_env();
  std::string key = *new_private_key();
  std::string cert;
  std::vector<std::string> warnings;

  log_fixture() {
    cert_spec s;
    s.name = "node";
    s.not_after_s = 4000000000;
    cert = *make_ca_cert(key, s);
  }

  std::unique_ptr<audit_log> open(const std::string& signing_key = {}) {
    auto signer = request_signer::load(cert, signing_key.empty() ? key : signing_key);
    if (!signer) {
      // A key of its own (the head signed by someone else).
      cert_spec s;
      s.name = "other";
      s.not_after_s = 4000000000;
      signer = request_signer::load(*make_ca_cert(signing_key, s), signing_key);
    }
    REQUIRE(signer);
    auto log = audit_log::open(
        e, dir.path(), [s = *signer](const std::string& b) { return s.sign_bytes(b); },
        [c = cert](const std::string& b, const std::string& sig) {
          return check_signature(c, b, sig);
        },
        [this](const std::string& w) { warnings.push_back(w); });
    REQUIRE_MESSAGE(log, log.err().message);
    return std::move(*log);
  }

  std::string path() { return dir.path() + "/" + audit_layout::log; }
  std::vector<std::string> lines() {
    std::vector<std::string> out;
    auto text = *e.read_file(path());
    size_t pos = 0;
    while (pos < text.size()) {
      auto end = text.find('\n', pos);
      out.push_back(text.substr(pos, end - pos));
      pos = end + 1;
    }
    return out;
  }
  void write(const std::vector<std::string>& ls) {
    std::string text;
    for (auto& l : ls)
      text += l + "\n";
    REQUIRE_FALSE(write_durable(e, dir.path(), path(), text));
  }
};

audit_record rec(const std::string& who, const std::string& command) {
  audit_record r;
  r.identity = who;
  r.role = "operator";
  r.command = command;
  r.target = "0x8031";
  r.outcome = "ok";
  return r;
}

} // namespace

TEST_CASE("audit log: appended records chain and verify; the same after reopening") {
  log_fixture f;
  auto log = f.open();
  CHECK(log->verify().valid); // empty
  for (int i = 0; i < 5; ++i)
    REQUIRE_FALSE(log->append(rec("alice", "device.set")));
  auto c = log->verify();
  CHECK(c.valid);
  CHECK(c.records == 5);
  auto again = f.open();
  CHECK(again->verify().valid);
  CHECK(again->problem().empty());
  REQUIRE_FALSE(again->append(rec("bob", "rollback")));
  auto all = *again->read();
  REQUIRE(all.size() == 6);
  CHECK(all[5].seq == 6);
  CHECK(all[5].identity == "bob");
  CHECK(f.warnings.empty());
}

TEST_CASE("audit log: an edited, removed, reordered, truncated or added record is found") {
  log_fixture f;
  auto log = f.open();
  for (int i = 0; i < 5; ++i)
    REQUIRE_FALSE(log->append(rec("alice", "device.set")));
  const auto good = f.lines();
  REQUIRE(good.size() == 5);

  SUBCASE("edited") {
    auto ls = good;
    auto j = json::parse(ls[2]);
    j["identity"] = "mallory";
    ls[2] = j.dump();
    f.write(ls);
    auto c = log->verify();
    CHECK_FALSE(c.valid);
    CHECK(c.first_bad == 3);
    CHECK(c.problem.find("edited") != std::string::npos);
  }
  SUBCASE("removed") {
    auto ls = good;
    ls.erase(ls.begin() + 1);
    f.write(ls);
    auto c = log->verify();
    CHECK_FALSE(c.valid);
    CHECK(c.first_bad == 2);
  }
  SUBCASE("reordered") {
    auto ls = good;
    std::swap(ls[3], ls[4]);
    f.write(ls);
    CHECK(log->verify().first_bad == 4);
  }
  SUBCASE("truncated") {
    auto ls = good;
    ls.pop_back();
    f.write(ls);
    auto c = log->verify();
    CHECK_FALSE(c.valid);
    CHECK(c.first_bad == 5);
    CHECK(c.problem.find("missing (the log was truncated)") != std::string::npos);
  }
  SUBCASE("a sixth record with a correct hash, appended behind the node's back") {
    auto ls = good;
    json prev = json::parse(ls.back());
    json j = {{"seq", 6},          {"at", "2026-12-03T00:00:00.000Z"},
              {"identity", "eve"}, {"role", "admin"},
              {"command", "x"},    {"target", ""},
              {"outcome", "ok"},   {"prev", prev["hash"]}};
    j["hash"] = sha256_hex(prev["hash"].get<std::string>() + j.dump());
    ls.push_back(j.dump());
    f.write(ls);
    auto c = log->verify();
    CHECK_FALSE(c.valid);
    CHECK(c.first_bad == 6);
    CHECK(c.problem.find("not covered by the node's signature") != std::string::npos);
  }
  SUBCASE("the whole log rewritten, the head signed with another key") {
    auto forged_key = *new_private_key();
    auto forger = f.open(forged_key);
    REQUIRE_FALSE(forger->append(rec("eve", "device.set")));
    auto c = log->verify();
    CHECK_FALSE(c.valid);
    CHECK(c.problem.find("signature is not the node's") != std::string::npos);
  }
}

TEST_CASE("audit log: a damaged log opens with a warning and is still appended to") {
  log_fixture f;
  {
    auto log = f.open();
    for (int i = 0; i < 3; ++i)
      REQUIRE_FALSE(log->append(rec("alice", "checkpoint.create")));
  }
  auto ls = f.lines();
  ls[0] = "garbage";
  f.write(ls);
  auto log = f.open();
  CHECK_FALSE(log->problem().empty());
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0].find("is damaged: record 1") != std::string::npos);
  REQUIRE_FALSE(log->append(rec("bob", "rollback")));
  CHECK(log->verify().first_bad == 1);
}

TEST_CASE("audit log: a record whose head was not signed yet (the node stopped between) is "
          "signed at the next open") {
  log_fixture f;
  {
    auto log = f.open();
    REQUIRE_FALSE(log->append(rec("alice", "checkpoint.create")));
  }
  auto head = *f.e.read_file(f.dir.path() + "/" + audit_layout::head);
  {
    auto log = f.open();
    REQUIRE_FALSE(log->append(rec("alice", "rollback")));
  }
  // The head as it was before the second append: the log is one ahead.
  REQUIRE_FALSE(write_durable(f.e, f.dir.path(), f.dir.path() + "/" + audit_layout::head, head));
  auto log = f.open();
  CHECK(log->problem().empty());
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0].find("record 2 was appended as the node stopped") != std::string::npos);
  CHECK(log->verify().valid);
}
