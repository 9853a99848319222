#include "actors/devices/supervisors.hpp"

#include <deque>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"

namespace dsmil {

namespace {

constexpr auto fan_out_timeout = std::chrono::seconds(30);

bool abnormal(const caf::error& reason) {
  return reason && reason != caf::exit_reason::normal && reason != caf::exit_reason::user_shutdown;
}

// What every supervisor does alike: reads, writes and crash injection go to
// whatever `route` names for the device (an actor or an error); `health`
// answers health_atom in the supervisor's own way.
template <class Self, class Route, class Health>
device_service::behavior_type routing_behavior(Self self, Route route, Health health) {
  return {
      [=](read_atom a, device_id id) -> caf::result<device_state> {
        auto h = route(id);
        if (!h) return h.error();
        return self->delegate(*h, a, id);
      },
      [=](device_patch& p) -> caf::result<device_state> {
        auto h = route(p.id);
        if (!h) return h.error();
        return self->delegate(*h, std::move(p));
      },
      health,
      [=](crash_atom a, device_id id) {
        auto h = route(id);
        if (h) self->send(*h, a, id);
      },
      [=](retry_atom, uint64_t) {},
  };
}

// -- group supervisor ---------------------------------------------------------

struct child {
  device_service handle;
  std::shared_ptr<device_slot> slot;
  std::deque<int64_t> restarts_ms; // inside the intensity window
  uint32_t restarts = 0;
  bool given_up = false;
};

struct group_state {
  supervisor_config cfg;
  uint8_t group = 0;
  std::map<device_id, child> children;
  static inline const char* name = "dsmil.group_supervisor";
};

using group_ptr = device_service::stateful_pointer<group_state>;

void start_child(group_ptr self, device_id id) {
  auto& c = self->state.children[id];
  c.handle = spawn_device_actor(self, {id, self->state.cfg.drv, c.slot, self->state.cfg.retry});
  self->monitor(c.handle);
}

void on_child_down(group_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  for (auto& [id, c] : st.children) {
    if (c.handle.address() != dm.source) continue;
    c.handle = nullptr;
    if (!abnormal(dm.reason)) return;
    auto now = clock_ms(self);
    while (!c.restarts_ms.empty() && now - c.restarts_ms.front() >= st.cfg.supervision.window_ms)
      c.restarts_ms.pop_front();
    if (c.restarts_ms.size() >= st.cfg.supervision.max_restarts) {
      // Escalate: stop restarting, isolate the device behind an open breaker.
      c.given_up = true;
      {
        std::lock_guard<std::mutex> guard(c.slot->mu);
        c.slot->breaker.trip(now);
      }
      spdlog::error("device {} crashed {} times within {} ms: given up, group {} degraded",
                    format_device_id(id), c.restarts_ms.size() + 1, st.cfg.supervision.window_ms,
                    st.group);
      return;
    }
    c.restarts_ms.push_back(now);
    ++c.restarts;
    spdlog::warn("device actor {} went down ({}); restarting (restart {} in window)",
                 format_device_id(id), from_caf(dm.reason).message, c.restarts_ms.size());
    start_child(self, id);
    return;
  }
}

device_service::behavior_type group_supervisor(group_ptr self, supervisor_config cfg,
                                               uint8_t group) {
  self->state.cfg = std::move(cfg);
  self->state.group = group;
  for (auto& d : self->state.cfg.map->devices()) {
    if (d.group != group) continue;
    self->state.children[d.id].slot = std::make_shared<device_slot>(self->state.cfg.breaker);
    start_child(self, d.id);
  }
  self->set_down_handler([=](caf::down_msg& dm) { on_child_down(self, dm); });
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& [id, c] : self->state.children)
      if (c.handle) self->send_exit(c.handle, em.reason);
    self->quit(em.reason);
  });
  auto route = [=](device_id id) -> caf::expected<device_service> {
    auto it = self->state.children.find(id);
    if (it == self->state.children.end())
      return to_caf(make_error(errc::no_such_device, "no such device " + format_device_id(id)));
    if (it->second.given_up || !it->second.handle)
      return to_caf(
          make_error(errc::unavailable, "device " + format_device_id(id) + " was given up after " +
                                            std::to_string(it->second.restarts + 1) +
                                            " crashes; group degraded; restart the node"));
    return it->second.handle;
  };
  return routing_behavior(self, route, [=](health_atom) -> std::vector<device_health> {
    std::vector<device_health> out;
    for (auto& [id, c] : self->state.children) {
      device_health h;
      h.id = id;
      h.restarts = c.restarts;
      h.given_up = c.given_up;
      std::lock_guard<std::mutex> guard(c.slot->mu);
      c.slot->breaker.allow(clock_ms(self)); // let an expired open breaker show half-open
      h.breaker = to_string(c.slot->breaker.state());
      h.failures = c.slot->breaker.consecutive_failures();
      out.push_back(std::move(h));
    }
    return out;
  });
}

// -- device supervisor --------------------------------------------------------

struct devsup_state {
  supervisor_config cfg;
  std::map<uint8_t, device_service> groups;
  static inline const char* name = "dsmil.device_supervisor";
};

using devsup_ptr = device_service::stateful_pointer<devsup_state>;

void start_group(devsup_ptr self, uint8_t g) {
  auto h = self->spawn(group_supervisor, self->state.cfg, g);
  self->monitor(h);
  self->state.groups[g] = h;
}

// Collects the health of every group into one reply.
struct health_collector {
  caf::typed_response_promise<std::vector<device_health>> promise;
  std::vector<device_health> all;
  size_t left = 0;
  bool done = false;
};

device_service::behavior_type device_supervisor(devsup_ptr self, supervisor_config cfg) {
  self->state.cfg = std::move(cfg);
  for (uint8_t g = 0; g < group_count; ++g)
    start_group(self, g);
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& [g, h] : self->state.groups)
      self->send_exit(h, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [g, h] : self->state.groups) {
      if (h.address() != dm.source || !abnormal(dm.reason)) continue;
      spdlog::error("group supervisor {} went down ({}); restarting it and its devices", g,
                    from_caf(dm.reason).message);
      start_group(self, g);
      return;
    }
  });
  auto route = [=](device_id id) -> caf::expected<device_service> {
    uint8_t g = static_cast<uint8_t>((id >> 4) & 0xF);
    auto it = self->state.groups.find(g);
    if (id < first_device_id || id > last_device_id || it == self->state.groups.end() ||
        self->state.cfg.map->find(id) == nullptr)
      return to_caf(make_error(errc::no_such_device,
                               "no such device " + format_device_id(id) +
                                   "; device ids are 0x80G0-0x80GB for groups G = 0-6"));
    return it->second;
  };
  return routing_behavior(self, route,
                          [=](health_atom a) -> caf::result<std::vector<device_health>> {
                            auto c = std::make_shared<health_collector>();
                            c->promise = self->make_response_promise<std::vector<device_health>>();
                            c->left = self->state.groups.size();
                            // Each answered request's timeout is cancelled: CAF 0.17
                            // keeps it in the clock until it fires otherwise.
                            for (auto& [g, h] : self->state.groups) {
                              auto req = self->request(h, fan_out_timeout, a);
                              const auto id = req.id();
                              req.then(
                                  [=](std::vector<device_health>& part) {
                                    self->clock().cancel_request_timeout(self, id);
                                    c->all.insert(c->all.end(), part.begin(), part.end());
                                    if (--c->left == 0 && !c->done) {
                                      c->done = true;
                                      std::sort(c->all.begin(), c->all.end(),
                                                [](auto& x, auto& y) { return x.id < y.id; });
                                      c->promise.deliver(std::move(c->all));
                                    }
                                  },
                                  [=](caf::error& err) {
                                    self->clock().cancel_request_timeout(self, id);
                                    if (!c->done) {
                                      c->done = true;
                                      c->promise.deliver(std::move(err));
                                    }
                                  });
                            }
                            return c->promise;
                          });
}

// -- root supervisor ------------------------------------------------------------

// Top of the tree: owns the device supervisor, restarts it within the same
// intensity limit, and stops (taking the node's devices down with an error
// every caller sees) when that limit is exceeded.
struct root_state {
  supervisor_config cfg;
  device_service devices;
  std::deque<int64_t> restarts_ms;
  static inline const char* name = "dsmil.root_supervisor";
};

using root_ptr = device_service::stateful_pointer<root_state>;

void start_devices(root_ptr self) {
  self->state.devices = self->spawn(device_supervisor, self->state.cfg);
  self->monitor(self->state.devices);
}

device_service::behavior_type root_supervisor(root_ptr self, supervisor_config cfg) {
  self->state.cfg = std::move(cfg);
  start_devices(self);
  self->set_exit_handler([=](caf::exit_msg& em) {
    self->send_exit(self->state.devices, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.devices.address() || !abnormal(dm.reason)) return;
    auto now = clock_ms(self);
    while (!st.restarts_ms.empty() && now - st.restarts_ms.front() >= st.cfg.supervision.window_ms)
      st.restarts_ms.pop_front();
    if (st.restarts_ms.size() >= st.cfg.supervision.max_restarts) {
      spdlog::critical("device supervisor failed {} times within {} ms: stopping the device tree",
                       st.restarts_ms.size() + 1, st.cfg.supervision.window_ms);
      self->quit(dm.reason);
      return;
    }
    st.restarts_ms.push_back(now);
    spdlog::error("device supervisor went down ({}); restarting the device tree",
                  from_caf(dm.reason).message);
    start_devices(self);
  });
  auto route = [=](device_id) -> caf::expected<device_service> { return self->state.devices; };
  return routing_behavior(self, route,
                          [=](health_atom a) -> caf::result<std::vector<device_health>> {
                            return self->delegate(self->state.devices, a);
                          });
}

} // namespace

device_service spawn_root_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(root_supervisor, std::move(cfg));
}

} // namespace dsmil
