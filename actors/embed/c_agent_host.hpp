// dsmil::agent_host over a C runtime's dsmil_agent_host callbacks (the C
// API, dsmil/dsmil.h): a C status code becomes a dsmil::error naming the
// callback and the agent.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

#include "dsmil/agents.hpp"
#include "dsmil/dsmil.h"

namespace dsmil {

/// dsmil::agent_host over the C callbacks.
class c_agent_host final : public agent_host {
public:
  explicit c_agent_host(const dsmil_agent_host& h) : h_(h) {}

  std::vector<agent_info> list() override {
    std::vector<agent_info> out;
    auto add = [](void* ctx, const char* id, dsmil_agent_state st, uint64_t done,
                  uint64_t version) {
      auto* v = static_cast<std::vector<agent_info>*>(ctx);
      agent_info a;
      a.id = id ? id : "";
      a.state = st <= DSMIL_AGENT_FAILED ? static_cast<agent_state>(st) : agent_state::failed;
      a.tasks_done = done;
      a.version = version;
      v->push_back(std::move(a));
    };
    h_.list(h_.ctx, add, &out);
    return out;
  }

  status quiesce(const std::string& agent,
                 std::chrono::steady_clock::time_point deadline) override {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return check(h_.quiesce(h_.ctx, agent.c_str(), std::max<int64_t>(0, left.count())), "quiesce",
                 agent);
  }

  status cancel_pending(const std::string& agent) override {
    return check(h_.cancel_pending(h_.ctx, agent.c_str()), "cancel_pending", agent);
  }

  status snapshot(const std::string& agent, const agent_sink& sink) override {
    struct sink_state {
      const agent_sink* sink;
      status err;
    } st{&sink, {}};
    auto fn = [](void* ctx, const void* bytes, size_t size) -> int {
      auto* s = static_cast<sink_state*>(ctx);
      s->err = (*s->sink)(std::string_view(static_cast<const char*>(bytes), size));
      return s->err ? static_cast<int>(s->err.code) : 0;
    };
    const int rc = h_.snapshot(h_.ctx, agent.c_str(), fn, &st);
    if (st.err) return st.err;
    return check(rc, "snapshot", agent);
  }

  status restore(const std::string& agent, std::string_view bytes) override {
    return check(h_.restore(h_.ctx, agent.c_str(), bytes.data(), bytes.size()), "restore", agent);
  }

  status resume(const std::string& agent) override {
    return check(h_.resume(h_.ctx, agent.c_str()), "resume", agent);
  }

private:
  static status check(int rc, const char* what, const std::string& agent) {
    if (rc == 0) return {};
    const errc code = rc > 0 && rc <= static_cast<int>(errc::database_unavailable)
                          ? static_cast<errc>(rc)
                          : errc::internal;
    return make_error(code, "the agent host's " + std::string(what) + " of " + agent +
                                " returned " + std::to_string(rc) + " (" + dsmil_strerror(rc) +
                                ")");
  }

  dsmil_agent_host h_;
};

} // namespace dsmil
