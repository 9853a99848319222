#include "runtime/saga/records.hpp"

#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace dsmil {

using nlohmann::json;

// Named enums are their names in JSON; an unknown name is an error, never a
// silent default.
template <class E, class = std::enable_if_t<std::is_enum_v<E>>,
          class = decltype(enum_names<E>::values)>
void to_json(json& j, E e) {
  j = enum_name(e);
}

template <class E, class = std::enable_if_t<std::is_enum_v<E>>,
          class = decltype(enum_names<E>::values)>
void from_json(const json& j, E& e) {
  auto v = parse_enum<E>(j.get<std::string>());
  if (!v) throw std::invalid_argument("'" + j.get<std::string>() + "' is not " + enum_choices<E>());
  e = *v;
}

void to_json(json& j, const saga_step& s) {
  j = {{"component", s.component}, {"name", s.name}, {"items", s.items}};
}

// Journals written before components had names hold device steps as
// {"name", "devices", "group"} and the configuration step with
// "configuration": true.
void from_json(const json& j, saga_step& s) {
  s.name = j.at("name").get<std::string>();
  if (j.contains("component")) {
    s.component = j.at("component").get<std::string>();
    s.items = j.at("items").get<std::vector<std::string>>();
  } else if (j.value("configuration", false)) {
    s.component = "configuration";
    s.items.clear();
  } else {
    s.component = "devices";
    s.items = j.at("devices").get<std::vector<std::string>>();
  }
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(failed_item, id, error)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(begin_record, saga, type, target, pre_rollback,
                                                initiated_by, reason, started_at, steps)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(phase_record, phase)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(step_start_record, step)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(step_done_record, step)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(step_failed_record, step, failed)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(compensate_start_record, steps, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(compensate_done_record, ok, failed)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(recovered_record, policy)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(settled_record, items)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(end_record, outcome, failed_phase, error, failed,
                                                duration_ms)

namespace {

// A field with its default value says nothing: left out (see the header).
void drop_empty(json& j) {
  for (auto it = j.begin(); it != j.end();) {
    const bool empty =
        it->is_string() ? it->get_ref<const std::string&>().empty() : it->is_array() && it->empty();
    if (empty)
      it = j.erase(it);
    else
      ++it;
  }
}

template <size_t I = 0>
result<journal_record::body_type> body_from_json(const std::string& t, const json& j) {
  if constexpr (I == std::variant_size_v<journal_record::body_type>) {
    return make_error(errc::integrity_error, "unknown record type '" + t + "'");
  } else {
    using record = std::variant_alternative_t<I, journal_record::body_type>;
    if (t == record::tag) return journal_record::body_type(j.get<record>());
    return body_from_json<I + 1>(t, j);
  }
}

} // namespace

const char* journal_record::tag() const {
  return std::visit([](const auto& r) { return std::decay_t<decltype(r)>::tag; }, body);
}

json to_json(const journal_record& r) {
  json j;
  std::visit([&](const auto& body) { j = body; }, r.body);
  drop_empty(j);
  j["t"] = r.tag();
  if (r.at != 0) j["at"] = r.at;
  return j;
}

result<journal_record> record_from_json(const json& j, const std::string& where) {
  try {
    if (!j.is_object() || !j.contains("t") || !j["t"].is_string())
      return make_error(errc::integrity_error, where + ": a record without a type");
    auto t = j["t"].get<std::string>();
    auto body = body_from_json(t, j);
    if (!body) return make_error(body.err().code, where + ": " + body.err().message);
    journal_record r;
    r.body = std::move(*body);
    r.at = j.value("at", int64_t{0});
    return r;
  } catch (const std::exception& e) {
    return make_error(errc::integrity_error, where + ": a '" + j.value("t", std::string("?")) +
                                                 "' record does not read: " + e.what());
  }
}

json to_json(const saga_step& s) {
  json j;
  to_json(j, s);
  return j;
}

json to_json(const std::vector<failed_item>& items) {
  json j = json::array();
  for (auto& i : items)
    j.push_back(i);
  return j;
}

} // namespace dsmil
