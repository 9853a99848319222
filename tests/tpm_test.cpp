// The tpm key provider against a real TPM 2.0 (swtpm): signing, PCR capture,
// persistence of the key, tampering, and a TPM that goes away.
#include <chrono>
#include <cstdlib>

#include <doctest/doctest.h>

#include "runtime/store.hpp"
#include "runtime/tpm_key.hpp"
#include "swtpm.hpp"
#include "test_util.hpp"

using namespace dsmil;

namespace {

std::unique_ptr<key_provider> tpm_key_at(const test::swtpm& t) {
  tpm_options o;
  o.tcti = t.tcti();
  auto k = open_tpm_key(o);
  REQUIRE_MESSAGE(k.ok(), k.err().message);
  return std::move(*k);
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

TEST_CASE("tpm: PCRs are read in full and follow an extend") {
  test::swtpm tpm;
  auto k = tpm_key_at(tpm);
  auto before = k->read_pcrs();
  REQUIRE_MESSAGE(before.ok(), before.err().message);
  REQUIRE(before->size() == 24);
  CHECK((*before)[0].first == 0);
  CHECK((*before)[23].first == 23);
  CHECK((*before)[16].second == std::string(64, '0')); // PCR 16 starts at zero
  const std::string extend = "TPM2TOOLS_TCTI='" + tpm.tcti() +
                             "' tpm2_pcrextend 16:sha256=" + std::string(64, 'a') + " >/dev/null";
  REQUIRE(std::system(extend.c_str()) == 0);
  auto after = k->read_pcrs();
  REQUIRE(after.ok());
  CHECK((*after)[16].second != (*before)[16].second);
  CHECK((*after)[0].second == (*before)[0].second);

  tpm_options bad;
  bad.tcti = tpm.tcti();
  bad.pcrs = {3, 24};
  CHECK(open_tpm_key(bad).err().message == "PCR 24 does not exist: PCRs are 0-23");
}

TEST_CASE("tpm: checkpoints signed in the TPM verify from a copy of the store without it") {
  test::swtpm tpm;
  test::temp_dir tmp;
  const std::string dir = tmp.path() + "/store";
  std::string id;
  {
    auto store = checkpoint_store::open(env::posix(), dir, {}, tpm_key_at(tpm));
    REQUIRE_MESSAGE(store.ok(), store.err().message);
    auto info = (*store)->create({"tpm", "", "manual"}, {device(0x8000, 7)}, system_config{});
    REQUIRE_MESSAGE(info.ok(), info.err().message);
    id = info->id;
    CHECK(info->provider == "tpm");
    auto loaded = (*store)->load(id);
    REQUIRE(loaded.ok());
    CHECK(loaded->pcrs.size() == 24);
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
    auto info = store->create({"n" + std::to_string(i), "", "automatic"},
                              {device(0x8001, static_cast<uint32_t>(i))}, system_config{});
    REQUIRE_MESSAGE(info.ok(), "checkpoint " << i << ": " << info.err().message);
  }
  CHECK(store->list().size() == 1000);
}

TEST_CASE("tpm: a TPM that goes away gives one clear error and no checkpoint") {
  test::swtpm tpm;
  test::temp_dir tmp;
  auto store = std::move(*checkpoint_store::open(env::posix(), tmp.path(), {}, tpm_key_at(tpm)));
  REQUIRE(store->create({"ok", "", "manual"}, {device(0x8000, 1)}, system_config{}).ok());
  tpm.stop();
  auto failed = store->create({"lost", "", "manual"}, {device(0x8000, 2)}, system_config{});
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
