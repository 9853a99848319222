// The replies about agents (dsmil/control.hpp: agent list, agent show, and
// the agents a checkpoint holds), with their fields() lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsmil {

/// One agent of the agents component (`agent list`, `agent show`).
struct agent_view {
  std::string id;
  std::string state;        ///< running, paused, stopped, failed
  std::string state_sha256; ///< of its snapshot now
  uint64_t tasks_done = 0;
};

struct agent_list_reply {
  std::vector<agent_view> agents;
};

/// The reference host's load, as it is after `agent load`.
struct agent_load_reply {
  uint64_t tasks_per_second = 0;
};

/// One agent as a checkpoint holds it.
struct agent_image_view {
  std::string id;
  std::string state_sha256; ///< of its snapshot
};

template <class F> void fields(F& f, agent_view& x) {
  f("id", x.id), f("state", x.state), f("state_sha256", x.state_sha256),
      f("tasks_done", x.tasks_done);
}
template <class F> void fields(F& f, agent_list_reply& x) {
  f("agents", x.agents);
}
template <class F> void fields(F& f, agent_load_reply& x) {
  f("tasks_per_second", x.tasks_per_second);
}
template <class F> void fields(F& f, agent_image_view& x) {
  f("id", x.id), f("state_sha256", x.state_sha256);
}

} // namespace dsmil
