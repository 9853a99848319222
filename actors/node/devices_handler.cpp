// The devices component's handler for a rollback saga: the devices component's
// own logic (runtime/components/devices_component.hpp) in its stages, with the
// reads and writes between them sent to the device actors, many at once. It is
// event-based and has no thread: a saga step on devices costs messages only.
//
// Restores never overlap on a device: a restore that starts (a compensation
// after its step was abandoned at its time limit, or pre-empted) supersedes
// the one before, which sends no further writes; writes it already sent are
// ahead of the new restore's reads in each device actor's mailbox, so the new
// restore sees them.
#include <caf/all.hpp>

#include "actors/node/fan_out.hpp"
#include "actors/node/node_impl.hpp"

namespace dsmil {

namespace {

// The devices component here reads and writes nothing itself.
class no_port final : public device_port {
public:
  std::vector<device_state> read_many(const std::vector<device_id>& ids,
                                      device_errors& errors) override {
    for (auto id : ids)
      errors.emplace_back(id, make_error(errc::internal, "no port"));
    return {};
  }
  std::vector<device_state> write_many(const std::vector<device_patch>& patches,
                                       device_errors& errors) override {
    for (auto& p : patches)
      errors.emplace_back(p.id, make_error(errc::internal, "no port"));
    return {};
  }
};

struct devices_handler_state {
  std::shared_ptr<node_context> ctx;
  no_port port;
  std::unique_ptr<devices_component> devices;
  uint64_t restores = 0; ///< numbers each restore: an older one stops writing
  static inline const char* name = "dsmil.devices";
};

using devices_ptr = component_handler::stateful_pointer<devices_handler_state>;
using states_fn = std::function<void(std::vector<device_state>, device_errors)>;
using time_point = caf::actor_clock::time_point;

// A device call's timeout: its own, or less when the step's limit comes
// first (at least 1 ms: a call made after the limit fails at once).
std::chrono::milliseconds call_timeout(devices_ptr self, time_point limit) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(limit - self->clock().now());
  return std::max(std::chrono::milliseconds(1),
                  std::min(left, device_call_timeout(self->state.ctx->cfg)));
}

// Asks every device of `ids` at once (`ask(t, i)` asks the i-th, with
// timeout `t`); `then` gets the states answered and each device's error.
template <class Ask>
void call_all(devices_ptr self, std::vector<device_id> ids, time_point limit, Ask ask,
              states_fn then) {
  const auto t = call_timeout(self, limit);
  fan_out<device_state>(
      self, ids.size(), [t, ask](size_t i) { return ask(t, i); },
      [ids, then](std::vector<result<device_state>> answers) {
        std::vector<device_state> states;
        device_errors errors;
        for (size_t i = 0; i < ids.size(); ++i) {
          if (answers[i])
            states.push_back(std::move(*answers[i]));
          else
            errors.emplace_back(ids[i], answers[i].err());
        }
        then(std::move(states), std::move(errors));
      });
}

void read_all(devices_ptr self, std::vector<device_id> ids, time_point limit, states_fn then) {
  auto d = self->state.ctx->devices;
  call_all(
      self, ids, limit,
      [self, d, ids](std::chrono::milliseconds t, size_t i) {
        return self->request(d, t, read_atom::value, ids[i]);
      },
      std::move(then));
}

void write_all(devices_ptr self, std::vector<device_patch> patches, time_point limit,
               states_fn then) {
  auto d = self->state.ctx->devices;
  std::vector<device_id> ids;
  for (auto& p : patches)
    ids.push_back(p.id);
  call_all(
      self, std::move(ids), limit,
      [self, d, patches](std::chrono::milliseconds t, size_t i) {
        return self->request(d, t, patches[i]);
      },
      std::move(then));
}

component_handler::behavior_type devices_handler(devices_ptr self,
                                                 std::shared_ptr<node_context> ctx) {
  self->state.devices = std::make_unique<devices_component>(ctx->cfg.devices, self->state.port);
  self->state.ctx = std::move(ctx);
  // Ends with its saga, however that ends.
  self->set_exit_handler([self](caf::exit_msg& m) { self->quit(m.reason); });
  return {
      [self](capture_atom) -> caf::result<image_ref> {
        auto rp = self->make_response_promise<image_ref>();
        const auto limit = self->clock().now() + device_call_timeout(self->state.ctx->cfg);
        read_all(self, self->state.devices->all_ids(), limit,
                 [rp](std::vector<device_state> states, device_errors errors) mutable {
                   auto img = devices_component::image_of(states, errors);
                   if (img)
                     rp.deliver(image_ref::of(std::move(*img)));
                   else
                     rp.deliver(to_caf(img.err()));
                 });
        return rp;
      },
      [self](plan_atom, const image_ref& now, const image_ref& target,
             const plan_request& req) -> caf::result<component_plan> {
        auto p = self->state.devices->plan(*now, *target, req);
        if (!p) return to_caf(p.err());
        return std::move(*p);
      },
      [self](apply_atom, const saga_step& st, const image_ref& target,
             caf::timespan within) -> caf::result<std::vector<failed_item>> {
        const auto limit = self->clock().now() + within;
        auto rp = self->make_response_promise<std::vector<failed_item>>();
        auto job = std::make_shared<devices_component::step_job>(
            self->state.devices->start_step(st, *target));
        const uint64_t restore = ++self->state.restores;
        read_all(self, job->wanted, limit,
                 [self, rp, job, limit, restore](std::vector<device_state> read,
                                                 device_errors errors) mutable {
                   auto patches = devices_component::patches_after_read(*job, read, errors);
                   if (restore != self->state.restores) {
                     // Superseded while it read: writes nothing.
                     for (auto& p : patches)
                       job->failed.push_back({format_device_id(p.id),
                                              "not written: a newer restore of the "
                                              "devices took over"});
                     rp.deliver(std::move(job->failed));
                     return;
                   }
                   write_all(self, std::move(patches), limit,
                             [rp, job](std::vector<device_state>, device_errors errors) mutable {
                               rp.deliver(devices_component::after_write(*job, errors));
                             });
                 });
        return rp;
      },
      [self](read_back_atom, const saga_step& st, const image_ref& target,
             caf::timespan within) -> caf::result<std::vector<failed_item>> {
        const auto limit = self->clock().now() + within;
        auto rp = self->make_response_promise<std::vector<failed_item>>();
        auto job = std::make_shared<devices_component::step_job>(
            self->state.devices->start_step(st, *target));
        read_all(self, job->wanted, limit,
                 [rp, job](std::vector<device_state> read, device_errors errors) mutable {
                   rp.deliver(devices_component::compare(*job, read, errors));
                 });
        return rp;
      },
      // Devices change only when written: nothing to hold still.
      [](hold_atom) { return std::vector<std::string>{}; },
      [](release_atom) { return std::vector<std::string>{}; },
      [](health_atom) {
        component_health h;
        h.name = "devices";
        h.breaker = "closed"; // each device has its own, in the device health
        return h;
      },
      [](tick_atom, uint64_t) {}, // its limits are its calls' timeouts
  };
}

} // namespace

handler_ref spawn_devices_handler(caf::event_based_actor* parent,
                                  std::shared_ptr<node_context> ctx) {
  handler_ref ref;
  ref.name = "devices";
  ref.handle = parent->spawn<caf::linked>(devices_handler, std::move(ctx));
  return ref;
}

} // namespace dsmil
