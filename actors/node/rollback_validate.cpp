// Rollback validation: every component captured, the target checkpoint
// loaded and checked, and each component's plan with its warnings, then the
// estimate.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "dsmil/fields_json.hpp"
#include "runtime/components/agents_component.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace rollback_detail {

status validate(node_context& ctx, actor_calls& calls, const component_set& components,
                const json& args, json& result, validated& v,
                const std::function<void()>& on_current) {
  std::string type_name = args.value("type", std::string());
  const bool has_selection = args.contains("devices") || args.contains("groups") ||
                             args.contains("components") || args.contains("agents");
  if (type_name.empty()) type_name = has_selection ? "selective" : "full";
  auto parsed = parse_enum<rollback_type>(type_name);
  if (!parsed)
    return make_error(errc::invalid_argument, "rollback type must be " +
                                                  enum_choices<rollback_type>() + ", got '" +
                                                  type_name + "'");
  const rollback_type type = *parsed;
  if (type == rollback_type::selective && !has_selection)
    return make_error(errc::invalid_argument, "a selective rollback needs --components, --devices, "
                                              "--groups or --agents (what to roll back)");
  if (type != rollback_type::selective && has_selection)
    return make_error(errc::invalid_argument,
                      "a " + type_name +
                          " rollback restores everything; drop --components/--devices/--groups/"
                          "--agents or use --type selective");
  v.type = type;
  result["type"] = type_name;

  // The selection: components by name; items within them (device ids, and
  // groups as "group:N") go to every component, each taking what it knows.
  std::vector<std::string> selected, items;
  if (args.contains("components"))
    for (auto& c : args["components"]) {
      auto name = c.get<std::string>();
      if (components.find(name) == nullptr) {
        std::string known;
        for (auto* k : components.all())
          known += (known.empty() ? "" : ", ") + k->name();
        return make_error(errc::invalid_argument,
                          "no component '" + name + "'; this node has " + known);
      }
      selected.push_back(name);
    }
  if (args.contains("devices"))
    for (auto& d : args["devices"])
      items.push_back(d.get<std::string>());
  if (args.contains("agents"))
    for (auto& a : args["agents"])
      items.push_back(agents_component::item_prefix + a.get<std::string>());
  if (args.contains("groups"))
    for (auto& g : args["groups"]) {
      auto n = g.get<int64_t>();
      if (n < 0 || n >= group_count)
        return make_error(errc::invalid_argument,
                          "no such group " + std::to_string(n) + "; groups are 0-6");
      items.push_back("group:" + std::to_string(n));
    }

  std::string id;
  if (args.value("undo", false)) {
    // Undo: back to the state before the newest completed rollback.
    auto h = history(ctx);
    if (!h) return h.err();
    for (auto it = h->rbegin(); it != h->rend(); ++it)
      if ((*it)["outcome"] == "completed" && it->contains("pre_rollback")) {
        id = (*it)["pre_rollback"].get<std::string>();
        result["undoes"] = (*it)["id"];
        break;
      }
    if (id.empty())
      return make_error(errc::not_found, "no completed rollback to undo ('dsmilctl rollback "
                                         "history' lists them)");
  } else {
    auto a = arg_string(args, "id");
    if (!a) return a.err();
    id = *a;
  }
  {
    std::lock_guard<std::recursive_mutex> lock(ctx.mu);
    auto resolved = ctx.store->resolve(id);
    if (!resolved) return resolved.err();
    v.target_id = *resolved;
    result["checkpoint"] = *resolved;
  }
  std::vector<std::string> warnings;
  {
    // The security component reads PCRs through the store's key.
    std::lock_guard<std::recursive_mutex> lock(ctx.mu);
    calls.set_deadline(ctx.os->steady_ns() + int64_t{ctx.cfg.rollback_step_timeout_ms} * 1000000);
    auto now = capture_all(components, warnings);
    calls.set_deadline(0);
    // The pre-rollback checkpoint needs every required component: without
    // it there is nothing to compensate to.
    if (!now)
      return make_error(now.err().code,
                        now.err().message + "; the pre-rollback checkpoint needs it");
    v.current = std::move(*now);
  }
  if (on_current) on_current();
  // The signature, roots and every chunk are checked on load; an emergency
  // rollback keeps this (it trusts nothing unsigned) and skips the rest. No
  // ctx.mu: while a saga runs nothing that changes the store is accepted,
  // and the store's index has its own lock.
  auto target = load_image(ctx, v.target_id);
  if (!target)
    return make_error(target.err().code, "checkpoint " + v.target_id +
                                             " failed verification: " + target.err().message);
  v.target = std::move(*target);

  // Each component's plan, in component order.
  json plan = json::object();
  json steps = json::array();
  for (auto* c : components.all()) {
    auto now = v.current.find(c->name());
    auto then = v.target.find(c->name());
    if (now == v.current.end()) continue; // absent (optional): warned at capture
    if (then == v.target.end()) {
      warnings.push_back("component " + c->name() + " is not in the checkpoint: left as it is");
      continue;
    }
    plan_request req;
    req.type = type;
    req.whole = type != rollback_type::selective ||
                std::find(selected.begin(), selected.end(), c->name()) != selected.end();
    if (!req.whole) req.items = items;
    auto p = c->plan(now->second, then->second, req);
    if (!p) return p.err();
    for (auto& st : p->steps) {
      steps.push_back(to_json(st));
      v.steps.push_back(std::move(st));
    }
    warnings.insert(warnings.end(), p->warnings.begin(), p->warnings.end());
    v.needs_ack.insert(v.needs_ack.end(), p->needs_ack.begin(), p->needs_ack.end());
    plan.update(p->plan_detail);
    result.update(p->reply_detail);
  }
  plan["steps"] = steps;
  result["plan"] = plan;
  result["warnings"] = warnings;
  result["estimate"] = estimate(ctx, type_name, item_count(v.steps));
  return {};
}

} // namespace rollback_detail

control_reply rollback_dry_run(node_context& ctx, actor_calls& calls, const json& args) {
  const auto start = ctx.os->steady_ns();
  json result = {{"dry_run", true},
                 {"success", false},
                 {"phases_completed", json::array()},
                 {"failed_phase", nullptr}};
  validated v;
  component_set components(ctx, calls);
  if (auto err = validate(ctx, calls, components, args, result, v, nullptr)) {
    result["failed_phase"] = "validation";
    result["duration_ms"] = ms_since(ctx, start);
    return error_reply(err, result);
  }
  result["phases_completed"].push_back("validation");
  result["success"] = true;
  result["duration_ms"] = ms_since(ctx, start);
  return ok_reply(result);
}

answer<rollback_reply> run(node_context& ctx, actor_calls& calls, const rollback_request& req) {
  return to_rollback_answer(rollback_dry_run(ctx, calls, to_json_fields(req)));
}

} // namespace dsmil
