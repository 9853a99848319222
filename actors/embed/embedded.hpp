// What dsmil::node (dsmil/node.hpp) holds: the actor system it runs in (the
// host's, or one of its own) and the node's handles. Shared by the C++ API
// and the C API built on it.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/duration.hpp>

#include "actors/node/node.hpp"
#include "dsmil/node.hpp"

namespace dsmil {

/// Who hears that the node stopped by itself (node::on_down), shared with
/// the actor that watches it.
struct down_state {
  std::mutex mu;
  bool stopped = false; ///< by stop(): nobody is told
  std::function<void(const std::string&)> f;
};

struct node::impl {
  std::unique_ptr<caf::actor_system_config> own_cfg; ///< with own_sys: a node's own system
  std::unique_ptr<caf::actor_system> own_sys;
  caf::actor_system* sys = nullptr;
  node_handles handles;
  node_description description;
  caf::duration timeout;
  std::string identity; ///< node_options::identity
  caf::actor watcher;   ///< monitors the control actor for on_down
  caf::actor gate;      ///< the published control gate, once listening
  std::shared_ptr<down_state> down;

  std::mutex mu;
  bool stopped = false;
  bool listening = false;
};

/// Sends the command named `command` with JSON arguments (as dsmilctl
/// --json does); `done` gets the error code and the answer as JSON.
void ask_json(node::impl& n, const std::string& command, const std::string& args_json,
              std::function<void(errc, std::string)> done);

} // namespace dsmil
