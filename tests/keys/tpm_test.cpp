// The tpm key provider against a real TPM 2.0 (swtpm): signing, PCR capture,
// persistence of the key, tampering, and a TPM that goes away.
#include <chrono>
#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>

#include "runtime/keys/fallback_key.hpp"
#include "runtime/store/store.hpp"
#include "runtime/keys/tpm_key.hpp"
#include "tests/swtpm.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;

namespace {

std::unique_ptr<key_provider> tpm_key_at(const test::swtpm& t) {
  tpm_options o;
  o.tcti = t.tcti();
  auto k = open_tpm_key(o);
  REQUIRE_MESSAGE(k.ok(), k.err().message);
  return std::move(*k);
}

std::string counter_line(const verify_report& r) {
  for (auto& l : r.checks)
    if (l.rfind("counter: ", 0) == 0) return l;
  return "(no counter line)";
}

device_state device(device_id id, uint32_t v) {
  device_state d;
  d.id = id;
  d.registers = {v, v + 1, v + 2};
  d.enabled = true;
  return d;
}

} // namespace

TEST_CASE("tpm: the signing key is made persistent once and signs what OpenSSL verifies") {
  test::swtpm tpm;
  auto k = tpm_key_at(tpm);
  CHECK(k->provider() == "tpm");
  CHECK(k->key_id().size() == 64);
  const std::string id = k->key_id();
  k.reset();
  // Opening again finds the same persistent key instead of making another.
  auto again = tpm_key_at(tpm);
  CHECK(again->key_id() == id);

  const digest d = sha256("manifest body");
  auto sig = again->sign_digest(d);
  REQUIRE_MESSAGE(sig.ok(), sig.err().message);
  CHECK_FALSE(verify_digest(again->public_pem(), d, *sig));
  CHECK(verify_digest(again->public_pem(), sha256("another body"), *sig).code ==
        errc::integrity_error);

  // A key in another TPM is another key (another owner seed).
  test::swtpm second;
  auto foreign = tpm_key_at(second);
  CHECK(foreign->key_id() != id);
  auto foreign_sig = foreign->sign_digest(d);
  REQUIRE(foreign_sig.ok());
  CHECK(verify_digest(again->public_pem(), d, *foreign_sig).code == errc::integrity_error);
}

TEST_CASE("tpm: evidence: PCRs in full, a quote over them, a counter that only goes up") {
  test::swtpm tpm;
  auto k = tpm_key_at(tpm);
  const digest root = sha256("merkle root of a checkpoint");
  auto before = k->attest(root);
  REQUIRE_MESSAGE(before.ok(), before.err().message);
  REQUIRE(before->pcrs.size() == 24);
  CHECK(before->pcrs[0].first == 0);
  CHECK(before->pcrs[23].first == 23);
  CHECK(before->pcrs[16].second == std::string(64, '0')); // PCR 16 starts at zero
  CHECK_FALSE(verify_quote(before->quote_attest, before->quote_signature, before->ak_public_pem,
                           root, before->pcrs));
  CHECK(before->ak_key_id != k->key_id());

  const std::string extend = "TPM2TOOLS_TCTI='" + tpm.tcti() +
                             "' tpm2_pcrextend 16:sha256=" + std::string(64, 'a') + " >/dev/null";
  REQUIRE(std::system(extend.c_str()) == 0);
  auto after = k->attest(root);
  REQUIRE(after.ok());
  CHECK(after->pcrs[16].second != before->pcrs[16].second);
  CHECK(after->pcrs[0].second == before->pcrs[0].second);
  CHECK(after->counter == before->counter + 1);
  CHECK(*k->counter() == after->counter);

  // Each part of a quote is checked, and the error says which.
  auto bad = [&](const std::string& attest, const digest& q,
                 const std::vector<std::pair<int, std::string>>& pcrs) {
    auto e = verify_quote(attest, after->quote_signature, after->ak_public_pem, q, pcrs);
    CHECK(e.code == errc::integrity_error);
    return e.message;
  };
  auto flipped = after->quote_attest;
  flipped[flipped.size() - 3] ^= 1;
  CHECK(bad(flipped, root, after->pcrs).find("attestation key's signature does not match") !=
        std::string::npos);
  CHECK(bad(after->quote_attest, sha256("another checkpoint"), after->pcrs)
            .find("not this manifest's merkle root") != std::string::npos);
  CHECK(bad(after->quote_attest, root, before->pcrs).find("PCR digest does not match") !=
        std::string::npos);
  auto fewer = after->pcrs;
  fewer.pop_back();
  CHECK(bad(after->quote_attest, root, fewer).find("other PCRs") != std::string::npos);
  // An older quote presented as this one fails on its PCR digest, not silently.
  CHECK(verify_quote(before->quote_attest, before->quote_signature, before->ak_public_pem, root,
                     after->pcrs)
            .code == errc::integrity_error);

  tpm_options wrong;
  wrong.tcti = tpm.tcti();
  wrong.pcrs = {3, 24};
  CHECK(open_tpm_key(wrong).err().message == "PCR 24 does not exist: PCRs are 0-23");
  // The AK handle holds a restricted key: the signing key may not live there.
  wrong.pcrs = {0};
  wrong.signing_handle = 0x81010002;
  CHECK(open_tpm_key(wrong).err().code == errc::config_error);
}

TEST_CASE("tpm: checkpoints signed in the TPM verify from a copy of the store without it") {
  test::swtpm tpm;
  test::temp_dir tmp;
  const std::string dir = tmp.path() + "/store";
  std::string id;
  {
    auto store = checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm));
    REQUIRE_MESSAGE(store.ok(), store.err().message);
    auto info = (*store)->create({"tpm", "", checkpoint_type::manual}, {device(0x8000, 7)},
                                 system_config{});
    REQUIRE_MESSAGE(info.ok(), info.err().message);
    id = info->id;
    CHECK(info->provider == "tpm");
    auto loaded = (*store)->load(id);
    REQUIRE(loaded.ok());
    CHECK(loaded->security.pcrs.size() == 24);
    CHECK(loaded->security.counter > 0);
  }
  tpm.stop(); // no TPM from here on
  const std::string copy = tmp.path() + "/copy";
  REQUIRE(std::system(("cp -a '" + dir + "' '" + copy + "'").c_str()) == 0);
  auto store = checkpoint_store::open(env::posix(), copy); // software key for new work
  REQUIRE_MESSAGE(store.ok(), store.err().message);
  auto report = (*store)->verify(id);
  REQUIRE_MESSAGE(report.ok(), report.err().message);
  CHECK(report->checks[0].find("signature: valid (ecdsa-p256-sha256, tpm key") == 0);
  CHECK(report->checks[2] == "pcrs: 24 SHA-256 PCR values captured under the signature");
  CHECK(report->checks[3].find("quote: valid (attestation key ") == 0);
  CHECK(report->checks[4].find("counter: ") == 0);

  // The attestation key's PEM, replaced by another's: named.
  const auto ak_id = (*store)->load(id)->security.ak_key_id;
  const std::string ak_pem = copy + "/keys/" + ak_id + ".pem";
  const auto saved = test::slurp(ak_pem);
  test::spit(ak_pem, test::slurp(copy + "/keys/" + (*store)->info(id)->key_id + ".pem"));
  auto swapped = (*store)->verify(id);
  REQUIRE_FALSE(swapped.ok());
  CHECK(swapped.err().message ==
        "keys/" + ak_id + ".pem: not the attestation key the manifest names (altered)");
  test::spit(ak_pem, saved);
  // The signing key's PEM with a flipped byte: refused.
  const std::string sign_pem = copy + "/keys/" + (*store)->info(id)->key_id + ".pem";
  const auto good_pem = test::slurp(sign_pem);
  auto pem = good_pem;
  pem[40] = pem[40] == 'A' ? 'B' : 'A';
  test::spit(sign_pem, pem);
  CHECK((*store)->verify(id).err().code == errc::integrity_error);
  // It also verifies store.toml.sig (the TPM key signed it): the store is
  // refused at open until the key is restored.
  store->reset();
  auto refused = checkpoint_store::open(env::posix(), copy);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.err().message.find("public key does not match its key id") != std::string::npos);
  test::spit(sign_pem, good_pem);
  store = checkpoint_store::open(env::posix(), copy);
  REQUIRE_MESSAGE(store.ok(), store.err().message);

  // The PCR values are under the signature: changing one breaks it.
  const std::string manifest = copy + "/manifests/" + id + ".json";
  auto body = test::slurp(manifest);
  auto at = body.find("\"16\": \"");
  REQUIRE(at != std::string::npos);
  body[at + 7] = body[at + 7] == '0' ? '1' : '0';
  test::spit(manifest, body);
  store->reset();
  store = checkpoint_store::open(env::posix(), copy);
  auto tampered = (*store)->verify(id);
  REQUIRE_FALSE(tampered.ok());
  CHECK(tampered.err().code == errc::integrity_error);
}

TEST_CASE("tpm: a thousand signatures in a row leak no transient handle") {
  test::swtpm tpm;
  test::temp_dir tmp;
  auto store = std::move(*checkpoint_store::open(env::posix(), tmp.path(), {}, tpm_key_at(tpm)));
  // Every checkpoint signs once and reads the PCRs; swtpm has no resource
  // manager, so a leaked transient object would end this loop with 0x902.
  for (int i = 0; i < 1000; ++i) {
    auto info = store->create({"n" + std::to_string(i), "", checkpoint_type::automatic},
                              {device(0x8001, static_cast<uint32_t>(i))}, system_config{});
    REQUIRE_MESSAGE(info.ok(), "checkpoint " << i << ": " << info.err().message);
  }
  CHECK(store->list().size() == 1000);
}

TEST_CASE("tpm: a TPM that goes away gives one clear error and no checkpoint") {
  test::swtpm tpm;
  test::temp_dir tmp;
  auto store = std::move(*checkpoint_store::open(env::posix(), tmp.path(), {}, tpm_key_at(tpm)));
  REQUIRE(store->create({"ok", "", checkpoint_type::manual}, {device(0x8000, 1)}, system_config{})
              .ok());
  tpm.stop();
  auto failed =
      store->create({"lost", "", checkpoint_type::manual}, {device(0x8000, 2)}, system_config{});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.err().code == errc::unavailable);
  CHECK(failed.err().message.find("TPM at '" + tpm.tcti() + "'") == 0);
  CHECK(store->list().size() == 1);

  tpm_options o;
  o.tcti = tpm.tcti();
  auto none = open_tpm_key(o);
  REQUIRE_FALSE(none.ok());
  CHECK(none.err().code == errc::unavailable);
  CHECK(parse_tpm_handle("0x81010001").ok());
  CHECK(parse_tpm_handle("0x80000001").err().message ==
        "TPM handle '0x80000001' is not a persistent handle (0x81000000-0x81FFFFFF), e.g. "
        "0x81010001");
}

TEST_CASE("tpm: an old checkpoint presented as the newest is reported as replayed") {
  test::swtpm tpm;
  test::temp_dir tmp;
  const std::string dir = tmp.path() + "/store", old_copy = tmp.path() + "/old";
  auto store = std::move(*checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm)));
  auto a = *store->create({"a", "", checkpoint_type::manual}, {device(0x8000, 1)}, system_config{});
  auto b = *store->create({"b", "", checkpoint_type::manual}, {device(0x8000, 2)}, system_config{});
  auto checks = store->verify(b.id);
  REQUIRE_MESSAGE(checks.ok(), checks.err().message);
  CHECK(counter_line(*checks).find("(the newest; no higher value seen)") != std::string::npos);
  // An operator's backup of the store, taken now.
  store.reset();
  REQUIRE(std::system(("cp -a '" + dir + "' '" + old_copy + "'").c_str()) == 0);
  store = std::move(*checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm)));
  auto c = *store->create({"c", "", checkpoint_type::manual}, {device(0x8000, 3)}, system_config{});
  CHECK(store->verify(c.id).ok());
  // Older checkpoints stay valid: only the newest must carry the highest value.
  CHECK(store->verify(a.id).ok());

  // Deleting the newest is not a replay: the head record names b.
  REQUIRE_FALSE(store->remove(c.id));
  auto after_delete = store->verify(b.id);
  REQUIRE_MESSAGE(after_delete.ok(), after_delete.err().message);
  CHECK(counter_line(*after_delete).find("newer ones deleted, head record at") !=
        std::string::npos);
  store.reset();

  // The old copy shows b as the newest, validly signed; the TPM's counter says
  // later state existed.
  auto replayed = std::move(*checkpoint_store::open(env::posix(), old_copy, {}, tpm_key_at(tpm)));
  auto r = replayed->verify(b.id);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::integrity_error);
  CHECK(r.err().message.find("checkpoint " + b.id + " is presented as the newest") == 0);
  CHECK(r.err().message.find("(the TPM): validly signed, but older state replayed") !=
        std::string::npos);
  // A manifest removed by hand (no head record) is caught the same way.
  replayed.reset();
  auto s = std::move(*checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm)));
  auto d = *s->create({"d", "", checkpoint_type::manual}, {device(0x8000, 4)}, system_config{});
  s.reset();
  std::remove((dir + "/manifests/" + d.id + ".json").c_str());
  s = std::move(*checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm)));
  CHECK(s->verify(b.id).err().message.find("older state replayed") != std::string::npos);
}

TEST_CASE("tpm: an encrypted store's data key is sealed in the TPM and only it opens it") {
  test::swtpm tpm, other;
  test::temp_dir tmp;
  store_options o;
  o.encrypt = true;
  const std::string dir = tmp.path() + "/store";
  std::string id;
  {
    auto s = std::move(*checkpoint_store::open(env::posix(), dir, o, tpm_key_at(tpm)));
    auto info =
        s->create({"sealed", "", checkpoint_type::manual}, {device(0x8000, 9)}, system_config{});
    REQUIRE_MESSAGE(info.ok(), info.err().message);
    id = info->id;
  }
  CHECK_FALSE(std::ifstream(dir + "/keys/data.key").good());
  CHECK(test::slurp(dir + "/keys/data.key.sealed").rfind("tpm ", 0) == 0);
  {
    auto s = std::move(*checkpoint_store::open(env::posix(), dir, o, tpm_key_at(tpm)));
    auto loaded = s->load(id);
    REQUIRE_MESSAGE(loaded.ok(), loaded.err().message);
    CHECK(loaded->devices.at(0).registers.at(0) == 9);
  }
  // Another TPM cannot unseal it: the store opens for structure checks only.
  auto s = std::move(*checkpoint_store::open(env::posix(), dir, o, tpm_key_at(other)));
  CHECK_FALSE(s->can_read_content());
  CHECK(s->load(id).err().message.find("keys/data.key.sealed: TPM at") != std::string::npos);
  CHECK(s->verify(id, true).ok()); // signatures and structure still verify
}

TEST_CASE("tpm: behind its breaker, a lost TPM fails checkpoints, or falls back to software") {
  breaker_config cfg;
  cfg.failure_threshold = 2;
  cfg.open_ms = 600000;
  SUBCASE("fail: never an unsigned checkpoint; the breaker opens and fails fast") {
    test::swtpm tpm;
    test::temp_dir tmp;
    auto key = with_tpm_breaker(env::posix(), tpm_key_at(tpm), nullptr, cfg);
    auto store = std::move(*checkpoint_store::open(env::posix(), tmp.path(), {}, std::move(key)));
    REQUIRE(store->create({"ok", "", checkpoint_type::manual}, {device(0x8000, 1)}, system_config{})
                .ok());
    tpm.stop();
    for (int i = 0; i < 2; ++i)
      CHECK(store->create({"x", "", checkpoint_type::manual}, {device(0x8000, 2)}, system_config{})
                .err()
                .code == errc::unavailable);
    auto fast =
        store->create({"x", "", checkpoint_type::manual}, {device(0x8000, 2)}, system_config{});
    CHECK(fast.err().code == errc::circuit_open);
    CHECK(fast.err().message.find("the TPM circuit breaker is open after 2 failures (last: TPM "
                                  "at '" +
                                  tpm.tcti() + "'") == 0);
    CHECK(store->list().size() == 1);
  }
  SUBCASE("software: signed with the software key, and verify says so") {
    test::swtpm tpm;
    test::temp_dir tmp;
    REQUIRE(std::system(("mkdir -p '" + tmp.path() + "/keys' '" + tmp.path() + "/tmp'").c_str()) ==
            0);
    auto soft = open_software_key(env::posix(), tmp.path() + "/keys", tmp.path() + "/tmp");
    REQUIRE_MESSAGE(soft.ok(), soft.err().message);
    auto key = with_tpm_breaker(env::posix(), tpm_key_at(tpm), std::move(*soft), cfg);
    auto store = std::move(*checkpoint_store::open(env::posix(), tmp.path(), {}, std::move(key)));
    auto first =
        store->create({"tpm", "", checkpoint_type::manual}, {device(0x8000, 1)}, system_config{});
    REQUIRE(first.ok());
    CHECK(first->provider == "tpm");
    tpm.stop();
    for (int i = 0; i < 3; ++i) { // TPM errors, then the open breaker: all fall back
      auto fb = store->create({"fallback", "", checkpoint_type::manual},
                              {device(0x8000, static_cast<uint32_t>(2 + i))}, system_config{});
      REQUIRE_MESSAGE(fb.ok(), fb.err().message);
      CHECK(fb->provider == "software");
      auto report = store->verify(fb->id);
      REQUIRE_MESSAGE(report.ok(), report.err().message);
      CHECK(report->checks[0].find("signature: valid (ecdsa-p256-sha256, software key") == 0);
      const auto body = test::slurp(tmp.path() + "/manifests/" + fb->id + ".json");
      CHECK(body.find("\"provider\": \"software\"") != std::string::npos);
      CHECK(body.find("\"security\"") == std::string::npos); // no TPM evidence claimed
    }
    CHECK(store->verify(first->id).ok()); // the TPM-signed one still verifies
  }
}

TEST_CASE("tpm: a data key sealed under a PCR policy opens only while those PCRs hold") {
  test::swtpm tpm;
  tpm_options o;
  o.tcti = tpm.tcti();
  o.seal_pcrs = {16};
  auto k = std::move(*open_tpm_key(o));
  const std::string secret(32, 'k');
  auto blob = k->seal(secret);
  REQUIRE_MESSAGE(blob.ok(), blob.err().message);
  auto back = k->unseal(*blob);
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  CHECK(*back == secret);
  // PCR 23 is not in the policy: extending it changes nothing.
  const std::string base = "TPM2TOOLS_TCTI='" + tpm.tcti() + "' tpm2_pcrextend ";
  REQUIRE(std::system((base + "23:sha256=" + std::string(64, 'c') + " >/dev/null").c_str()) == 0);
  CHECK(k->unseal(*blob).ok());
  REQUIRE(std::system((base + "16:sha256=" + std::string(64, 'c') + " >/dev/null").c_str()) == 0);
  auto refused = k->unseal(*blob);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.err().message.find("under the PCR policy (PCR 16 changed since the key was "
                                   "sealed?)") != std::string::npos);
  // Without a policy the same key seals and unseals whatever the PCRs say.
  tpm_options plain;
  plain.tcti = tpm.tcti();
  auto p = std::move(*open_tpm_key(plain));
  auto free_blob = p->seal(secret);
  REQUIRE(free_blob.ok());
  REQUIRE(std::system((base + "16:sha256=" + std::string(64, 'd') + " >/dev/null").c_str()) == 0);
  CHECK(*p->unseal(*free_blob) == secret);
}
