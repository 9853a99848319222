#include <set>
#include <sys/stat.h>

#include <doctest/doctest.h>

#include "runtime/config/node_config.hpp"
#include "runtime/os/fault_env.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/store/state_codec.hpp"
#include "runtime/store/store.hpp"
#include "runtime/base/uuid.hpp"
#include "tests/test_env.hpp"

using namespace dsmil;
using dsmil::test::read;
using dsmil::test::write;

namespace {

struct state_fixture {
  device_map map = *device_map::parse(embedded_devices_toml(), "d");
  sim_driver sim{map, 5450, test::test_env()};
  system_config cfg;

  std::vector<device_state> devices() {
    std::vector<device_state> out;
    for (auto& d : map.devices())
      out.push_back(*sim.read(d.id));
    return out;
  }
};

std::string pack_path(const std::string& store) {
  auto packs = test::packs(store);
  REQUIRE(packs.size() == 1);
  return packs.front();
}

} // namespace

TEST_CASE("a checkpoint round-trips every device and the configuration, and verifies") {
  test::env_dir tmp;
  state_fixture s;
  s.cfg.config_data = "abc";
  auto store = checkpoint_store::open(test::test_env(), tmp.path());
  REQUIRE_MESSAGE(store.ok(), store.err().message);
  auto info = (*store)->create({"base", "first", checkpoint_type::manual}, s.devices(), s.cfg);
  REQUIRE_MESSAGE(info.ok(), info.err().message);
  CHECK(is_uuid_v7(info->id));
  CHECK(info->device_count == 84);
  CHECK(info->parent_id.empty());
  CHECK(info->new_bytes == info->logical_bytes);

  auto loaded = (*store)->load(info->id);
  REQUIRE_MESSAGE(loaded.ok(), loaded.err().message);
  auto expect = s.devices();
  REQUIRE(loaded->devices.size() == expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    CHECK(same_restorable_state(loaded->devices[i], expect[i]));
    CHECK(loaded->devices[i].temperature_c == expect[i].temperature_c);
  }
  CHECK(loaded->configuration.config_data == "abc");
  CHECK(loaded->info.name == "base");

  auto report = (*store)->verify(info->id);
  REQUIRE_MESSAGE(report.ok(), report.err().message);
  CHECK(report->checks.back().find("85 read") != std::string::npos);

  // Reopening finds the checkpoint again.
  store->reset();
  auto again = checkpoint_store::open(test::test_env(), tmp.path());
  REQUIRE(again.ok());
  REQUIRE((*again)->list().size() == 1);
  CHECK((*again)->list()[0].name == "base");
  CHECK((*again)->verify(info->id).ok());
}

TEST_CASE("unchanged chunks are stored once; a change stores only the changed device") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto first = *store->create({}, s.devices(), s.cfg);
  auto second = *store->create({}, s.devices(), s.cfg);
  CHECK(second.new_bytes == 0);
  CHECK(second.parent_id == first.id);
  CHECK(second.parent_manifest_sha256 ==
        sha256_hex(read(tmp.path() + "/manifests/" + first.id + ".json")));
  device_patch p;
  p.id = 0x8031;
  p.register_index = {0};
  p.register_value = {42};
  REQUIRE_FALSE(s.sim.write(p));
  auto third = *store->create({}, s.devices(), s.cfg);
  CHECK(third.new_bytes == encode_device(*s.sim.read(0x8031)).size());
  CHECK(store->chunk_count() == 86);
  CHECK(store->list().size() == 3);
  CHECK(store->list().back().id == third.id); // UUIDv7 orders by creation
}

TEST_CASE("tampering is found, and the error names the damaged file") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto info = *store->create({"t", "", checkpoint_type::manual}, s.devices(), s.cfg);
  const std::string json_path = tmp.path() + "/manifests/" + info.id + ".json";
  const std::string sig_path = tmp.path() + "/manifests/" + info.id + ".sig";

  SUBCASE("a changed manifest") {
    auto body = read(json_path);
    auto pos = body.find("\"name\": \"t\"");
    REQUIRE(pos != std::string::npos);
    body[pos + 9] = 'x';
    write(json_path, body);
    auto v = store->verify(info.id);
    REQUIRE_FALSE(v.ok());
    CHECK(v.err().code == errc::integrity_error);
    CHECK(v.err().message.find("manifests/" + info.id + ".json") == 0);
    CHECK(store->load(info.id).err().message.find(".json") != std::string::npos);
  }
  SUBCASE("a changed signature") {
    auto sig = read(sig_path);
    auto pos = sig.find("\"value\": \"") + 20;
    sig[pos] = sig[pos] == '0' ? '1' : '0';
    write(sig_path, sig);
    auto v = store->verify(info.id);
    REQUIRE_FALSE(v.ok());
    CHECK(v.err().message.find("manifests/" + info.id + ".sig: signature does not verify") == 0);
  }
  SUBCASE("a manifest re-signed with another key") {
    test::env_dir other;
    auto foreign = std::move(*checkpoint_store::open(test::test_env(), other.path()));
    auto finfo = *foreign->create({}, s.devices(), s.cfg);
    write(sig_path, read(other.path() + "/manifests/" + finfo.id + ".sig"));
    auto v = store->verify(info.id);
    REQUIRE_FALSE(v.ok());
    CHECK(v.err().message.find(".sig") != std::string::npos);
  }
  SUBCASE("a flipped bit in a pack") {
    auto pack = pack_path(tmp.path());
    auto bytes = read(pack);
    bytes[bytes.size() / 2] ^= 0x04;
    write(pack, bytes);
    auto v = store->verify(info.id);
    REQUIRE_FALSE(v.ok());
    auto rel = pack.substr(tmp.path().size() + 1);
    CHECK(v.err().message.find(rel + ": chunk ") == 0);
    CHECK((v.err().message.find("CRC64 mismatch") != std::string::npos ||
           v.err().message.find("bad record") != std::string::npos ||
           v.err().message.find("record holds chunk") != std::string::npos));
    CHECK_FALSE(store->load(info.id).ok());
  }
  SUBCASE("a missing signature") {
    REQUIRE_FALSE(test::test_env().remove(sig_path));
    CHECK(store->verify(info.id).err().message ==
          "manifests/" + info.id + ".sig: signature file is missing");
  }
}

TEST_CASE("the signing key is private (0600) and its public half is stored by key id") {
  test::env_dir tmp;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  REQUIRE(test::test_env().exists(tmp.path() + "/keys/signing.key"));
  if (!test::on_memory_env()) { // the memory env keeps no permission bits
    struct stat st;
    REQUIRE(::stat((tmp.path() + "/keys/signing.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  CHECK(test::test_env().exists(tmp.path() + "/keys/" + store->key().key_id() + ".pem"));
  CHECK(*key_id_of(store->key().public_pem()) == store->key().key_id());
}

TEST_CASE("a failed fsync loses no earlier checkpoint, leaves no partial one, and is sticky") {
  test::env_dir tmp;
  state_fixture s;
  fault_env faults(test::test_env());
  auto store = std::move(*checkpoint_store::open(faults, tmp.path()));
  auto first = *store->create({"ok", "", checkpoint_type::manual}, s.devices(), s.cfg);
  device_patch p;
  p.id = 0x8031;
  p.register_index = {1};
  p.register_value = {1};
  REQUIRE_FALSE(s.sim.write(p));

  int injected = 0;
  for (int n = 0; n < 16; ++n) { // fail at each fsync of the create in turn
    CAPTURE(n);
    faults.fail_sync_after(n);
    auto r = store->create({"doomed", "", checkpoint_type::manual}, s.devices(), s.cfg);
    faults.clear();
    if (r.ok()) break; // this create needs fewer fsyncs than n
    ++injected;
    CHECK(r.err().code == errc::io_error);
    CHECK(store->list().size() == 1);
    // Sticky: the store refuses changes until reopened.
    CHECK(store->remove(first.id).code == errc::io_error);
    store.reset();
    store = std::move(*checkpoint_store::open(faults, tmp.path()));
    REQUIRE(store->list().size() == 1);
    CHECK(store->list()[0].id == first.id);
    CHECK(store->verify(first.id).ok());
    CHECK(test::test_env().list_dir(tmp.path() + "/tmp")->empty());
  }
  // A create fsyncs pack, index, signature and manifest and their directories:
  // the loop must have failed several of them, or it tested nothing.
  CHECK(injected >= 4);
}

TEST_CASE("every byte of a record is covered: a flip in the first kilobyte of a pack is found") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  store->create({"a", "", checkpoint_type::manual}, s.devices(), s.cfg).value();
  const auto pack = pack_path(tmp.path());
  const auto bytes = read(pack);
  REQUIRE(bytes.size() > 1024);
  for (size_t at = 0; at < 1024; ++at) {
    CAPTURE(at);
    auto bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    write(pack, bad);
    auto rep = store->check(true);
    REQUIRE(rep.ok());
    CHECK_FALSE(rep->clean());
  }
  write(pack, bytes);
  CHECK(store->check(true)->clean());
}

TEST_CASE(
    "an index whose pack never made it is not loaded, nothing dedups against it, gc removes it") {
  // A pack and its index are renamed into place together and their
  // directories fsynced at once: a crash can keep the index without the pack.
  test::env_dir tmp;
  state_fixture s;
  std::string idx_name;
  {
    auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
    auto a = *store->create({"a", "", checkpoint_type::manual}, s.devices(), s.cfg);
    // What the crash left: the index alone, no pack, no manifest.
    const auto pack = pack_path(tmp.path());
    REQUIRE_FALSE(test::test_env().remove(pack));
    REQUIRE_FALSE(test::test_env().remove(tmp.path() + "/manifests/" + a.id + ".json"));
    REQUIRE_FALSE(test::test_env().remove(tmp.path() + "/manifests/" + a.id + ".sig"));
    idx_name = pack.substr(pack.rfind('/') + 1);
    idx_name = idx_name.substr(0, idx_name.size() - 5) + ".idx";
  }
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  CHECK(store->list().empty());
  // The same state again: its chunks are stored anew, not taken as present.
  auto b = *store->create({"b", "", checkpoint_type::manual}, s.devices(), s.cfg);
  CHECK(b.new_bytes == b.logical_bytes);
  CHECK(store->verify(b.id).ok());
  CHECK(store->check(true)->clean());
  CHECK(test::test_env().exists(tmp.path() + "/index/" + idx_name));
  REQUIRE(store->gc().ok());
  CHECK_FALSE(test::test_env().exists(tmp.path() + "/index/" + idx_name));
  CHECK(store->verify(b.id).ok());
}

TEST_CASE("delete removes a checkpoint durably; children still verify and say the parent is gone") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto a = *store->create({}, s.devices(), s.cfg);
  auto b = *store->create({}, s.devices(), s.cfg);
  CHECK_FALSE(store->remove(a.id));
  CHECK(store->verify(a.id).err().code == errc::not_found);
  CHECK(store->remove(a.id).code == errc::not_found);
  auto v = store->verify(b.id);
  REQUIRE(v.ok());
  CHECK(v->checks[2].find("no longer in the store") != std::string::npos);
  CHECK_FALSE(test::test_env().exists(tmp.path() + "/manifests/" + a.id + ".json"));
  CHECK_FALSE(test::test_env().exists(tmp.path() + "/manifests/" + a.id + ".sig"));
}

TEST_CASE("opening sweeps in-flight files and orphaned signatures, and holds the store lock") {
  test::env_dir tmp;
  {
    auto store = checkpoint_store::open(test::test_env(), tmp.path());
    REQUIRE(store.ok());
    auto second = checkpoint_store::open(test::test_env(), tmp.path());
    REQUIRE_FALSE(second.ok());
    CHECK(second.err().code == errc::busy);
    CHECK(second.err().message.find("in use by another process") != std::string::npos);
  }
  write(tmp.path() + "/tmp/half-written.json.tmp", "{");
  write(tmp.path() + "/manifests/01900000-0000-7000-8000-000000000000.sig", "{}");
  auto store = checkpoint_store::open(test::test_env(), tmp.path());
  REQUIRE(store.ok());
  CHECK(test::test_env().list_dir(tmp.path() + "/tmp")->empty());
  CHECK(test::test_env().list_dir(tmp.path() + "/manifests")->empty());
}

TEST_CASE("ids resolve from unique prefixes") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto a = *store->create({}, s.devices(), s.cfg);
  auto b = *store->create({}, s.devices(), s.cfg);
  CHECK(*store->resolve(a.id) == a.id);
  CHECK(*store->resolve(b.id.substr(0, 30)) == b.id);
  CHECK(store->resolve(a.id.substr(0, 4)).err().code == errc::invalid_argument); // both match
  CHECK(store->resolve("zz").err().code == errc::not_found);
  CHECK(store->resolve("ffff").err().code == errc::not_found);
}

TEST_CASE("UUIDv7 ids are well formed and strictly increasing, even within one millisecond") {
  uuid_v7_generator gen;
  std::string last;
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    auto id = gen.next(1'700'000'000'000'000'000);
    CHECK(is_uuid_v7(id));
    CHECK(id > last);
    last = id;
    seen.insert(id);
  }
  CHECK(seen.size() == 5000);
}

TEST_CASE("device records round-trip and malformed ones are rejected") {
  device_state s;
  s.id = 0x8031;
  s.registers = {1, 2, 0xFFFFFFFF};
  s.config_blob = {9, 8, 7};
  s.enabled = true;
  s.security_level = 3;
  s.temperature_c = 51.5;
  s.last_activity_ns = 123456789;
  auto bytes = encode_device(s);
  auto back = decode_device(bytes);
  REQUIRE(back.ok());
  CHECK(same_restorable_state(*back, s));
  CHECK(back->last_activity_ns == s.last_activity_ns);
  CHECK_FALSE(decode_device(bytes.substr(0, bytes.size() - 1)).ok());
  CHECK_FALSE(decode_device(bytes + "x").ok());
  auto bad = bytes;
  bad[0] = 'X';
  CHECK_FALSE(decode_device(bad).ok());
}

TEST_CASE("after a failed fsync, gc refuses to delete anything until the store is reopened") {
  test::env_dir tmp;
  state_fixture s;
  fault_env faults(test::test_env());
  auto store = std::move(*checkpoint_store::open(faults, tmp.path()));
  auto a = *store->create({"a", "", checkpoint_type::manual}, s.devices(), s.cfg);
  faults.fail_sync_after(0);
  CHECK_FALSE(store->create({"b", "", checkpoint_type::manual}, s.devices(), s.cfg).ok());
  faults.clear();
  auto gc = store->gc();
  REQUIRE_FALSE(gc.ok());
  CHECK(gc.err().message.find("refuses deletes") != std::string::npos);
  store.reset();
  store = std::move(*checkpoint_store::open(faults, tmp.path()));
  CHECK(store->gc().ok());
  CHECK(store->verify(a.id).ok());
}

TEST_CASE("quick verification checks signatures and indexes without reading data") {
  test::env_dir tmp;
  state_fixture s;
  auto store = std::move(*checkpoint_store::open(test::test_env(), tmp.path()));
  auto info = *store->create({"q", "", checkpoint_type::manual}, s.devices(), s.cfg);
  auto q = store->verify(info.id, true);
  REQUIRE(q.ok());
  CHECK(q->checks.back().find("quick: data not read") != std::string::npos);
  // A damaged payload escapes the quick check and is caught by the full one.
  auto pack = pack_path(tmp.path());
  auto bytes = read(pack);
  bytes[bytes.size() - 3] ^= 0x40;
  write(pack, bytes);
  CHECK(store->verify(info.id, true).ok());
  CHECK_FALSE(store->verify(info.id).ok());
  // A missing pack is found without reading data.
  REQUIRE_FALSE(test::test_env().remove(pack));
  auto gone = store->verify(info.id, true);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.err().message.find("pack missing") != std::string::npos);
}
