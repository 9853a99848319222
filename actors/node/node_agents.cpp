// `agent list` and `agent show`: the agents of the agents component, read
// from their host (each snapshot hashed as it is now).
#include "actors/agents/sim_agents.hpp"
#include "actors/node/node_impl.hpp"
#include "runtime/base/crypto.hpp"

namespace dsmil {

namespace {

result<agent_view> view(agent_host& host, const agent_info& a) {
  std::string bytes;
  auto err = host.snapshot(a.id, [&](std::string_view run) -> status {
    bytes.append(run);
    return {};
  });
  if (err) return make_error(err.code, "agent " + a.id + " cannot be read: " + err.message);
  return agent_view{a.id, agent_state_name(a.state), sha256_hex(bytes), a.tasks_done};
}

error no_agents() {
  return make_error(errc::not_found,
                    "this node runs no agents; set [agents] backend = \"sim\" in its config, or "
                    "embed it in a runtime that registers its agent host");
}

} // namespace

answer<agent_list_reply> run(node_context& ctx, actor_calls&, const agent_list_request&) {
  agent_list_reply out;
  if (!ctx.agents) return ok(std::move(out));
  for (auto& a : ctx.agents->list()) {
    auto v = view(*ctx.agents, a);
    if (!v) return fail(v.err());
    out.agents.push_back(std::move(*v));
  }
  return ok(std::move(out));
}

answer<agent_view> run(node_context& ctx, actor_calls&, const agent_show_request& req) {
  if (auto err = require(req.id, "id")) return fail(err);
  if (!ctx.agents) return fail(no_agents());
  std::string known;
  for (auto& a : ctx.agents->list()) {
    if (a.id == req.id) {
      auto v = view(*ctx.agents, a);
      if (!v) return fail(v.err());
      return ok(std::move(*v));
    }
    if (known.size() < 60) known += (known.empty() ? "" : ", ") + a.id;
  }
  return fail(make_error(errc::not_found, "no agent '" + req.id + "' on this node; it has " +
                                              known + " ('dsmilctl agent list' lists them)"));
}

answer<agent_load_reply> run(node_context& ctx, actor_calls&, const agent_load_request& req) {
  if (!ctx.agents_sim)
    return fail(make_error(errc::not_found,
                           "agent load drives the reference host; this node's agents are " +
                               std::string(ctx.agents ? "its embedding runtime's" : "none") +
                               " (set [agents] backend = \"sim\" to run the reference host)"));
  if (req.tasks_per_second) {
    if (*req.tasks_per_second < 0 || *req.tasks_per_second > 1000000)
      return fail(make_error(errc::invalid_argument,
                             "tasks_per_second must be 0 (no work) to 1000000, got " +
                                 std::to_string(*req.tasks_per_second)));
    ctx.agents_sim->set_load(static_cast<uint32_t>(*req.tasks_per_second));
  }
  return ok(agent_load_reply{ctx.agents_sim->load()});
}

} // namespace dsmil
