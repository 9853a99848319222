#include <algorithm>

#include <doctest/doctest.h>

#include "runtime/devices/device_map.hpp"
#include "runtime/config/node_config.hpp"

using namespace dsmil;

namespace {

// A valid map with the 84 devices, to which each test adds one defect.
std::string base_map() {
  std::string s = "[defaults]\nregister_count = 16\nconfig_blob_size = 64\n";
  const char* deps[] = {"[]", "[0]", "[0, 1]", "[0]", "[0, 3]", "[0]", "[]"};
  for (int g = 0; g < 7; ++g)
    s += "[[group]]\nindex = " + std::to_string(g) + "\nrole = \"g\"\ndepends_on = " + deps[g] +
         "\n";
  for (int g = 0; g < 7; ++g)
    for (int x = 0; x < 12; ++x) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "[[device]]\nid = 0x%04X\n", 0x8000 + g * 16 + x);
      s += buf;
    }
  return s;
}

std::string error_of(const std::string& text) {
  auto m = device_map::parse(text, "test.toml");
  REQUIRE_FALSE(m.ok());
  CHECK(m.err().code == errc::config_error);
  return m.err().message;
}

int line_of(const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  REQUIRE(pos != std::string::npos);
  return 1 +
         static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

} // namespace

TEST_CASE(
    "the embedded device map has the 84 DSMIL devices with their quarantine and critical lists") {
  auto m = device_map::parse(embedded_devices_toml(), "devices.toml");
  REQUIRE_MESSAGE(m.ok(), m.err().message);
  CHECK(m->devices().size() == 84);
  CHECK(m->find(0x8000)->name == "DSMIL0D0");
  CHECK(m->find(0x806B)->name == "DSMIL6DB");
  CHECK(m->find(0x800C) == nullptr);
  CHECK(m->find(0x806C) == nullptr);
  std::vector<device_id> q, c;
  for (auto& d : m->devices()) {
    if (d.quarantined) q.push_back(d.id);
    if (d.critical) c.push_back(d.id);
  }
  CHECK(q == std::vector<device_id>{0x8009, 0x800A, 0x800B, 0x8019, 0x8029});
  CHECK(c == std::vector<device_id>{0x8005, 0x8008, 0x8011});
  CHECK(m->find(0x8009)->quarantine_reason.find("5220.22-M") != std::string::npos);
  CHECK(m->find(0x8005)->register_count == 32); // per-device override
  CHECK(m->find(0x8006)->register_count == 16); // default
  CHECK(m->find(0x8006)->config_blob_size == 256);
  // Every group comes after the groups it depends on.
  auto order = m->restore_order();
  REQUIRE(order.size() == 7);
  auto pos = [&](uint8_t g) { return std::find(order.begin(), order.end(), g) - order.begin(); };
  for (auto& g : m->groups())
    for (auto dep : g.depends_on)
      CHECK(pos(dep) < pos(g.index));
}

TEST_CASE("device map errors name the file and the line") {
  SUBCASE("unknown key") {
    auto text = base_map() + "[[quarantine]]\nid = 0x8009\nreason = \"wipe\"\ncolour = \"red\"\n";
    auto msg = error_of(text);
    CHECK(msg.find("test.toml:" + std::to_string(line_of(text, "colour")) + ":") == 0);
    CHECK(msg.find("unknown key 'colour'") != std::string::npos);
  }
  SUBCASE("unknown top-level table") {
    auto msg = error_of(base_map() + "[devicez]\nx = 1\n");
    CHECK(msg.find("unknown key 'devicez'") != std::string::npos);
  }
  SUBCASE("duplicate id") {
    auto text = base_map() + "[[device]]\nid = 0x8031\n";
    auto msg = error_of(text);
    CHECK(msg.find("duplicate id 0x8031") != std::string::npos);
    auto second = text.rfind("id = 0x8031");
    int second_line =
        1 +
        static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(second), '\n'));
    CHECK(msg.find("test.toml:" + std::to_string(second_line) + ":") == 0);
    CHECK(msg.find("(first at line " + std::to_string(line_of(text, "id = 0x8031")) + ")") !=
          std::string::npos);
  }
  SUBCASE("id outside 0x8000-0x806B") {
    auto text = base_map() + "[[device]]\nid = 0x9000\n";
    auto msg = error_of(text);
    CHECK(msg.find("id 0x9000 is outside 0x8000-0x806B") != std::string::npos);
    CHECK(msg.find("test.toml:" + std::to_string(line_of(text, "id = 0x9000")) + ":") == 0);
  }
  SUBCASE("an id in range that is not a device slot") {
    auto msg = error_of(base_map() + "[[device]]\nid = 0x800C\n");
    CHECK(msg.find("0x800c is not a device slot") != std::string::npos);
  }
  SUBCASE("quarantine entry naming no device") {
    auto text = base_map() + "[[quarantine]]\nid = 0x800D\nreason = \"x\"\n";
    auto msg = error_of(text);
    CHECK(msg.find("quarantine entry names 0x800d, which is not a device") != std::string::npos);
    CHECK(msg.find("test.toml:" + std::to_string(line_of(text, "id = 0x800D")) + ":") == 0);
  }
  SUBCASE("bad type") {
    auto text = base_map();
    text.replace(text.find("register_count = 16"), 19, "register_count = \"16\"");
    auto msg = error_of(text);
    CHECK(msg.find("test.toml:2: 'register_count' must be an integer, got string") == 0);
  }
  SUBCASE("TOML syntax error") {
    auto msg = error_of(base_map() + "[[device]\nid = \n");
    CHECK(msg.find("test.toml:") == 0);
  }
  SUBCASE("a missing device") {
    auto text = base_map();
    text.erase(text.find("[[device]]\nid = 0x8044\n"),
               std::string("[[device]]\nid = 0x8044\n").size());
    CHECK(error_of(text).find("device 0x8044 is missing") != std::string::npos);
  }
  SUBCASE("a dependency cycle") {
    auto text = base_map();
    text.replace(text.find("depends_on = []"), 15, "depends_on = [4]");
    CHECK(error_of(text).find("cycle") != std::string::npos);
  }
}

TEST_CASE("device ids parse in the forms an operator types, and only existing ones") {
  auto m = device_map::parse(embedded_devices_toml(), "devices.toml");
  REQUIRE(m.ok());
  CHECK(*parse_device_id("0x8005", *m) == 0x8005);
  CHECK(*parse_device_id("0X806b", *m) == 0x806B);
  CHECK(*parse_device_id("8031", *m) == 0x8031);
  CHECK(parse_device_id("0x800C", *m).err().code == errc::no_such_device);
  CHECK(parse_device_id("0x806C", *m).err().code == errc::no_such_device);
  CHECK(parse_device_id("hello", *m).err().code == errc::invalid_argument);
  CHECK(parse_device_id("", *m).err().code == errc::invalid_argument);
}

TEST_CASE("the embedded node configuration loads, and node config errors name the file and line") {
  auto c = node_config::embedded();
  REQUIRE_MESSAGE(c.ok(), c.err().message);
  CHECK(c->listen_host == "127.0.0.1");
  CHECK(c->listen_port == 7411);
  CHECK(c->breaker.failure_threshold == 5);
  CHECK(c->retry.attempts == 3);
  CHECK(c->devices.devices().size() == 84);

  auto bad = node_config::parse(
      "[node]\nlisten = \"127.0.0.1:7411\"\n\n[retry]\nattempts = \"three\"\n", "node.toml", "");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().message == "node.toml:5: 'attempts' must be an integer, got string");

  auto unknown = node_config::parse("[breaker]\nfailure_treshold = 3\n", "node.toml", "");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.err().message.find("node.toml:2: unknown key 'failure_treshold' in [breaker]") ==
        0);

  auto fault = node_config::parse("[devices.faults.\"0x800C\"]\noffline = true\n", "node.toml", "");
  REQUIRE_FALSE(fault.ok());
  CHECK(fault.err().message.find("no such device 0x800C") != std::string::npos);

  auto faults = node_config::parse(
      "[devices.faults.\"0x8031\"]\nerror_rate = 0.5\nstuck_register = 2\n", "node.toml", "");
  REQUIRE_MESSAGE(faults.ok(), faults.err().message);
  CHECK(faults->faults.at(0x8031).error_rate == 0.5);
  CHECK(faults->faults.at(0x8031).stuck_register == 2);
}

TEST_CASE("store settings in the node config are checked") {
  auto bad = node_config::parse("[store]\nchunk_avg_kib = 48\n", "node.toml", "");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().message.find("node.toml: [store] avg chunk size must be a power of two") == 0);
  auto level = node_config::parse("[store]\ndeflate_level = 9\n", "node.toml", "");
  REQUIRE_FALSE(level.ok());
  CHECK(level.err().message.find("node.toml:2: 'deflate_level' must be between 0 and 3") == 0);
  auto ok = node_config::parse("[store]\nencrypt = true\n", "node.toml", "");
  REQUIRE(ok.ok());
  CHECK(ok->store_encrypt);
  CHECK(ok->store_cache_mib == 128);
  auto cache = node_config::parse("[store]\ncache_mib = 0\n", "node.toml", "");
  REQUIRE(cache.ok());
  CHECK(cache->store_cache_mib == 0);
  auto bad_cache = node_config::parse("[store]\ncache_mib = -1\n", "node.toml", "");
  REQUIRE_FALSE(bad_cache.ok());
  CHECK(bad_cache.err().message.find("node.toml:2: 'cache_mib' must be") == 0);
}

TEST_CASE("key settings in the node config are checked") {
  auto tpm =
      node_config::parse("[keys]\nprovider = \"tpm\"\ntcti = \"swtpm:host=127.0.0.1,"
                         "port=2321\"\nhandle = \"0x81010007\"\npcrs = [0, 7]\nseal_pcrs = [7]\n"
                         "on_tpm_failure = \"software\"\n",
                         "node.toml", "");
  REQUIRE_MESSAGE(tpm.ok(), tpm.err().message);
  CHECK(tpm->key_provider == key_provider_kind::tpm);
  CHECK(tpm->key_tcti == "swtpm:host=127.0.0.1,port=2321");
  CHECK(tpm->key_handle == 0x81010007);
  CHECK(tpm->key_pcrs == std::vector<int>{0, 7});
  CHECK(tpm->key_on_tpm_failure == tpm_failure_policy::software);
  CHECK(tpm->key_seal_pcrs == std::vector<int>{7});
  auto embedded = node_config::embedded();
  REQUIRE(embedded.ok());
  CHECK(embedded->key_on_tpm_failure == tpm_failure_policy::fail);
  CHECK(embedded->key_provider == key_provider_kind::software);
  CHECK(embedded->rollback_on_interrupted == interrupted_policy::compensate);
  CHECK(embedded->key_pcrs.size() == 24);

  CHECK(node_config::parse("[keys]\nprovider = \"hsm\"\n", "node.toml", "").err().message ==
        "node.toml:2: [keys] provider must be \"software\" or \"tpm\", got \"hsm\"");
  CHECK(
      node_config::parse("[keys]\non_tpm_failure = \"ignore\"\n", "node.toml", "").err().message ==
      "node.toml:2: [keys] on_tpm_failure must be \"fail\" or \"software\", got "
      "\"ignore\"");
  auto resume = node_config::parse("[rollback]\non_interrupted = \"resume\"\n", "node.toml", "");
  REQUIRE(resume.ok());
  CHECK(resume->rollback_on_interrupted == interrupted_policy::resume);
  CHECK(node_config::parse("[rollback]\non_interrupted = \"Resume\"\n", "node.toml", "")
            .err()
            .message ==
        "node.toml:2: [rollback] on_interrupted must be \"compensate\" or \"resume\", got "
        "\"Resume\"");
  CHECK(node_config::parse("[keys]\nhandle = \"0x1234\"\n", "node.toml", "").err().message ==
        "node.toml: [keys] TPM handle '0x1234' is not a persistent handle (0x81000000-0x81FFFFFF), "
        "e.g. 0x81010001");
  CHECK(node_config::parse("[keys]\npcrs = [3, 30]\n", "node.toml", "").err().message ==
        "node.toml: [keys] pcrs must be an array of PCR numbers 0-23");
}

TEST_CASE("component settings in the node config are checked") {
  auto embedded = node_config::embedded();
  REQUIRE(embedded.ok());
  CHECK(embedded->component_call_timeout_ms == 60000);
  auto set = node_config::parse("[components]\ncall_timeout_ms = 2500\n", "node.toml", "");
  REQUIRE_MESSAGE(set.ok(), set.err().message);
  CHECK(set->component_call_timeout_ms == 2500);
  auto zero = node_config::parse("[components]\ncall_timeout_ms = 0\n", "node.toml", "");
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.err().message.find("node.toml:2: 'call_timeout_ms' must be between 1 and") == 0);
  auto unknown = node_config::parse("[components]\ntimeout = 5\n", "node.toml", "");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.err().message.find("timeout") != std::string::npos);
}

TEST_CASE("agent chunk sizes in the node config are checked") {
  auto embedded = node_config::embedded();
  REQUIRE(embedded.ok());
  CHECK(embedded->agents.chunk_kib == 16);
  auto set = node_config::parse("[agents]\nchunk_kib = 64\n", "node.toml", "");
  REQUIRE_MESSAGE(set.ok(), set.err().message);
  CHECK(set->agents.chunk_kib == 64);
  auto odd = node_config::parse("[agents]\nchunk_kib = 24\n", "node.toml", "");
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.err().message ==
        "node.toml:2: [agents] chunk_kib must be a power of two (4 to 1024), got 24");
  auto big = node_config::parse("[agents]\nchunk_kib = 4096\n", "node.toml", "");
  REQUIRE_FALSE(big.ok());
  CHECK(big.err().message.find("node.toml:2: 'chunk_kib' must be between 4 and 1024") == 0);
}

TEST_CASE("database settings in the node config are checked; a password is refused unechoed") {
  auto embedded = node_config::embedded();
  REQUIRE(embedded.ok());
  CHECK(embedded->database.conninfo.empty()); // no database component by default
  auto set = node_config::parse("[database]\nconninfo = \"host=/run/postgresql dbname=app\"\n"
                                "tables = [\"orders\", \"audit.log\"]\noptional = true\n"
                                "failure_threshold = 2\npassfile = \"/etc/dsmil/pgpass\"\n",
                                "node.toml", "");
  REQUIRE_MESSAGE(set.ok(), set.err().message);
  CHECK(set->database.tables == std::vector<std::string>{"orders", "audit.log"});
  CHECK(set->database.optional);
  CHECK(set->database.failure_threshold == 2);
  CHECK(set->database.chunk_kib == 4);
  for (const char* with_password :
       {"host=h password=s3cret dbname=d", "host=h  password = 's3 cret' dbname=d",
        "postgresql://ops:s3cret@h/d", "postgresql://h/d?sslmode=require&password=s3cret"}) {
    CAPTURE(with_password);
    CHECK(conninfo_has_password(with_password));
    auto bad = node_config::parse(std::string("[database]\nconninfo = \"") + with_password + "\"\n",
                                  "node.toml", "");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.err().code == errc::config_error);
    CHECK(bad.err().message.find("node.toml:2: [database] conninfo holds a password") == 0);
    CHECK(bad.err().message.find("s3") == std::string::npos);
  }
  for (const char* without :
       {"host=h dbname=d user=ops", "host=h application_name='password=x' dbname=d",
        "postgresql://ops@h/d", "postgresql://h:5433/d?sslmode=require"})
    CHECK_FALSE(conninfo_has_password(without));
  auto none = node_config::parse("[database]\noptional = true\n", "node.toml", "");
  REQUIRE_FALSE(none.ok());
  CHECK(none.err().message.find("[database] needs conninfo") != std::string::npos);
  auto odd =
      node_config::parse("[database]\nconninfo = \"dbname=d\"\nchunk_kib = 12\n", "node.toml", "");
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.err().message.find("chunk_kib must be a power of two") != std::string::npos);
}
