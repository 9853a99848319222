// The typed control protocol (dsmil/control.hpp): what travels between a
// client and a node, and the JSON `dsmilctl --json` makes of it.
#include <set>

#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node_client.hpp"
#include "dsmil/fields_json.hpp"

namespace dsmil {

namespace {

struct protocol_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  protocol_fixture() {
    configure_actor_system(cfg, false);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  // Through CAF's wire format and back, as between two nodes.
  template <class T> T round_trip(T x) {
    std::vector<char> buf;
    caf::binary_serializer sink{*sys, buf};
    REQUIRE_FALSE(sink(x));
    T out;
    caf::binary_deserializer source{*sys, buf};
    REQUIRE_FALSE(source(out));
    return out;
  }
};

status_reply sample_status() {
  status_reply s;
  s.node.pid = 42;
  s.node.listen = "127.0.0.1:7411";
  s.devices.total = 84;
  s.checkpoints.count = 2;
  s.checkpoints.latest = "0190abcd";
  s.configuration.config_data = "x=1";
  s.store_free_bytes = 1ull << 40;
  s.compensation_incomplete =
      compensation_view{"saga-1", nlohmann::json::array({{{"id", "0x8031"}, {"error", "t"}}})};
  component_status ok_one;
  ok_one.name = "counter";
  ok_one.breaker = "closed";
  component_status silent;
  silent.name = "agents";
  silent.error = "timeout";
  s.components = {ok_one, silent};
  s.warnings = {"one"};
  return s;
}

} // namespace

TEST_CASE_FIXTURE(protocol_fixture,
                  "a reply crosses the wire whole: optional members set and unset, documents") {
  auto in = sample_status();
  auto out = round_trip(answer<status_reply>{errc::none, "", in});
  REQUIRE(out.body);
  CHECK(to_json_fields(*out.body) == to_json_fields(in));
  CHECK(out.body->checkpoints.latest == std::optional<std::string>("0190abcd"));
  CHECK_FALSE(out.body->rollback);
  CHECK(out.body->components[1].error == std::optional<std::string>("timeout"));
  CHECK_FALSE(out.body->components[0].error);
  CHECK(out.body->compensation_incomplete->failed[0]["id"] == "0x8031");

  // A failure without a body, and one with the body of what was found.
  auto failed = round_trip(answer<device_reply>{errc::no_such_device, "no device 0x800C", {}});
  CHECK(failed.code == errc::no_such_device);
  CHECK(failed.message == "no device 0x800C");
  CHECK_FALSE(failed.body);
  checkpoint_verify_reply found;
  found.id = "c1";
  auto partial = round_trip(answer<checkpoint_verify_reply>{errc::integrity_error, "bad", found});
  REQUIRE(partial.body);
  CHECK(partial.body->id == "c1");
  CHECK_FALSE(partial.body->valid);

  device_set_request set;
  set.id = "0x8005";
  set.register_index = 3;
  set.value = 0;
  auto set_out = round_trip(set);
  CHECK(set_out.register_index == std::optional<int64_t>(3));
  CHECK(set_out.value == std::optional<int64_t>(0));
  CHECK_FALSE(set_out.enabled);
  // to_string names the type and its values, for logs.
  CHECK(caf::deep_to_string(set).find("0x8005") != std::string::npos);
  CHECK(caf::to_string(caf::make_message(set)).find("device_set_request") != std::string::npos);
}

TEST_CASE("a reply's JSON is its fields: empty optionals left out, empty nullables null") {
  auto j = to_json_fields(sample_status());
  CHECK(j["checkpoints"]["latest"] == "0190abcd");
  CHECK(j["rollback"].is_null());
  CHECK(j["store_free_bytes"] == 1ull << 40);
  CHECK(j["components"][0].count("error") == 0);
  CHECK(j["components"][1]["error"] == "timeout");
  CHECK(j["configuration"]["config_data"] == "x=1");

  checkpoint_create_reply c;
  c.id = "c1";
  CHECK(to_json_fields(c)["parent"].is_null());
  CHECK(to_json_fields(c).count("warnings") == 0);
  c.warnings = std::vector<std::string>{"counter left out"};
  CHECK(to_json_fields(c)["warnings"][0] == "counter left out");
  CHECK(to_json_fields(c)["id"] == "c1"); // the base's fields, flat

  auto failed = to_json_answer(answer<store_prune_reply>{errc::io_error, "disk", {}});
  CHECK(failed == nlohmann::json{{"error", {{"code", "io_error"}, {"message", "disk"}}}});
}

TEST_CASE("a request is read from JSON strictly: unknown keys and wrong types are named") {
  device_set_request r;
  CHECK(from_json_fields({{"id", "0x8005"}, {"register", 3}, {"value", 7}}, r) == "");
  CHECK(r.id == "0x8005");
  CHECK(r.register_index == std::optional<int64_t>(3));
  CHECK_FALSE(r.enabled); // absent: the default

  device_set_request bad;
  CHECK(from_json_fields({{"id", "0x8005"}, {"regsiter", 3}}, bad) ==
        "unknown argument 'regsiter'");
  CHECK(from_json_fields({{"id", 32773}}, bad) == "'id' must be a string");
  CHECK(from_json_fields({{"id", "x"}, {"enabled", "yes"}}, bad) ==
        "'enabled' must be true or false");
  CHECK(from_json_fields({{"id", "x"}, {"value", 1.5}}, bad) == "'value' must be a whole number");
  CHECK(from_json_fields(nlohmann::json::array(), bad) == "arguments are not a JSON object");

  config_set_request cs;
  CHECK(from_json_fields({{"key", "config_data"}, {"value", ""}}, cs) == "");
  CHECK(cs.value == std::optional<std::string>("")); // given, and empty: not absent

  checkpoint_create_request c;
  CHECK(from_json_fields(nlohmann::json::object(), c) == "");
  CHECK(c.type == "manual");
}

TEST_CASE_FIXTURE(protocol_fixture,
                  "what a component adds to a rollback's reply stays beside the reply's own keys") {
  nlohmann::json body = {{"saga", "s1"},
                         {"success", true},
                         {"phases_completed", {"validation"}},
                         {"failed_phase", nullptr},
                         {"skipped_quarantined", {"0x8009"}}};
  rollback_reply r;
  REQUIRE(from_json_fields(body, r) == "");
  CHECK(r.saga == std::optional<std::string>("s1"));
  CHECK(r.details.value == nlohmann::json{{"skipped_quarantined", {"0x8009"}}});
  auto out = round_trip(r);
  CHECK(out.details.value == r.details.value);
  auto j = to_json_fields(out);
  CHECK(j["skipped_quarantined"] == nlohmann::json{"0x8009"});
  CHECK(j["failed_phase"].is_null());
  CHECK(j.count("details") == 0);
  // A request has no such room: a key it does not name is refused.
  rollback_request req;
  CHECK(from_json_fields({{"id", "c1"}, {"skipped_quarantined", true}}, req) ==
        "unknown argument 'skipped_quarantined'");
}

TEST_CASE("every command has one request type, found by its name") {
  std::set<std::string> names;
  std::apply([&](auto... rs) { (names.insert(decltype(rs)::command), ...); }, node_requests{});
  CHECK(names.size() == std::tuple_size<node_requests>::value);
  for (auto& name : names) {
    std::string found;
    CHECK(with_request_type(name, [&](auto r) { found = decltype(r)::command; }));
    CHECK(found == name);
  }
  CHECK_FALSE(with_request_type("device.frobnicate", [](auto) {}));
  CHECK(changes_state(device_set_request{}));
  CHECK_FALSE(changes_state(device_show_request{}));
  CHECK_FALSE(changes_state(retention_request{}));
  CHECK(changes_state(retention_request{"keep_last", "3"}));
}

TEST_CASE_FIXTURE(protocol_fixture,
                  "arguments that do not fit a command are refused before anything is sent") {
  // An actor that would answer anything: it must never be asked.
  int asked = 0;
  auto node = caf::actor_cast<node_api>(sys->spawn([&](caf::event_based_actor*) -> caf::behavior {
    return {[&](device_show_request&) {
      ++asked;
      return answer<device_reply>{};
    }};
  }));
  auto r = ask_node(*sys, node, std::chrono::seconds(5), "device.show", {{"id", 5}});
  REQUIRE(r);
  CHECK(r->code == static_cast<uint8_t>(errc::invalid_argument));
  CHECK(r->message == "malformed arguments: 'id' must be a string");
  CHECK(nlohmann::json::parse(r->body)["error"]["code"] == "invalid_argument");
  CHECK(asked == 0);
  r = ask_node(*sys, node, std::chrono::seconds(5), "device.frobnicate", {});
  REQUIRE(r);
  CHECK(r->code == static_cast<uint8_t>(errc::invalid_argument));
  CHECK(r->message == "unknown command 'device.frobnicate'");
  CHECK(asked == 0);
  r = ask_node(*sys, node, std::chrono::seconds(5), "device.show", {{"id", "0x8005"}});
  REQUIRE(r);
  CHECK(r->code == 0);
  CHECK(asked == 1);
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
}

} // namespace dsmil
