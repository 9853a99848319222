#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/node.hpp"
#include "actors/node/node_impl.hpp"
#include "actors/devices/supervisors.hpp"
#include "runtime/keys/fallback_key.hpp"
#include "runtime/keys/tpm_key.hpp"
#include "simd/cpu_features.hpp"

namespace dsmil {

namespace {

const std::map<std::string, command_fn>& commands() {
  static const std::map<std::string, command_fn> table = {
      {"status", cmd_status},
      {"device.list", cmd_device_list},
      {"device.show", cmd_device_show},
      {"device.set", cmd_device_set},
      {"device.fault", cmd_device_fault},
      {"device.crash", cmd_device_crash},
      {"config.show", cmd_config_show},
      {"config.set", cmd_config_set},
      {"checkpoint.create", cmd_checkpoint_create},
      {"checkpoint.list", cmd_checkpoint_list},
      {"checkpoint.show", cmd_checkpoint_show},
      {"checkpoint.verify", cmd_checkpoint_verify},
      {"checkpoint.delete", cmd_checkpoint_delete},
      {"store.check", cmd_store_check},
      {"store.gc", cmd_store_gc},
      {"store.prune", cmd_store_prune},
      {"retention", cmd_retention},
      {"checkpoint.pin", cmd_checkpoint_pin},
      {"rollback.history", cmd_rollback_history},
      {"rollback.show", cmd_rollback_show},
      {"keys.show", cmd_keys_show},
      {"keys.init", cmd_keys_init},
  };
  return table;
}

// Commands that change devices, configuration or the store: refused while a
// rollback saga runs, so the saga's pre-rollback state stays the truth.
bool mutates(const std::string& command) {
  static const std::set<std::string> m = {
      "device.set", "config.set",  "checkpoint.create", "checkpoint.delete", "checkpoint.pin",
      "store.gc",   "store.prune", "keys.init",         "retention"};
  return m.count(command) > 0;
}

control_reply dispatch(node_context& ctx, device_calls& calls, const control_request& req,
                       const json& args) {
  auto it = commands().find(req.command);
  if (it == commands().end())
    return error_reply(make_error(errc::invalid_argument, "unknown command '" + req.command + "'"));
  if (mutates(req.command) && !(req.command == "retention" && !args.contains("key"))) {
    std::lock_guard<std::mutex> lock(ctx.saga_mu);
    if (ctx.running)
      return error_reply(
          make_error(errc::busy, "rollback " + ctx.running->id + " is running (" +
                                     enum_name(ctx.running->phase.load()) + "); '" + req.command +
                                     "' waits until it ends ('dsmilctl rollback show " +
                                     ctx.running->id + "')"));
  }
  try {
    std::lock_guard<std::recursive_mutex> lock(ctx.mu);
    auto reply = it->second(ctx, calls, args);
    if (req.command == "status" && reply.code == 0) {
      auto body = json::parse(reply.body);
      std::lock_guard<std::mutex> saga_lock(ctx.saga_mu);
      body["rollback"] = ctx.running ? json{{"id", ctx.running->id},
                                            {"type", ctx.running->type},
                                            {"target", ctx.running->target},
                                            {"phase", enum_name(ctx.running->phase.load())}}
                                     : json(nullptr);
      reply.body = body.dump();
    }
    return reply;
  } catch (const json::exception& e) {
    return error_reply(
        make_error(errc::invalid_argument, std::string("malformed arguments: ") + e.what()));
  } catch (const std::exception& e) {
    return error_reply(make_error(errc::internal, std::string("internal error: ") + e.what()));
  }
}

result<json> parse_args(const control_request& req) {
  auto args = json::parse(req.args.empty() ? "{}" : req.args, nullptr, false);
  if (args.is_discarded() || !args.is_object())
    return make_error(errc::invalid_argument, "arguments are not a JSON object");
  return args;
}

// One rollback saga: waits its turn (an emergency waits for the saga it
// pre-empts to compensate), runs, answers the client directly.
void saga_loop(caf::blocking_actor* self, std::shared_ptr<node_context> ctx,
               std::shared_ptr<saga_status> st) {
  self->receive([&](control_request& req) -> control_reply {
    auto client = caf::actor_cast<caf::actor>(self->current_sender());
    auto args = parse_args(req);
    bool my_turn = false;
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      my_turn = !ctx->running || ctx->running == st;
      if (!my_turn) ctx->next_saga = caf::actor_cast<caf::actor>(self);
    }
    // An emergency rollback waits here for the saga it pre-empted to
    // compensate; that saga hands over as it ends.
    if (!my_turn) self->receive([](tick_atom) {});
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      if (ctx->running != st) ctx->emergency_waiting = false;
      ctx->running = st;
      st->actor = caf::actor_cast<caf::actor>(self);
    }
    device_calls calls(self, *ctx);
    progress_fn progress;
    if (args && args->value("progress", false) && client)
      progress = [&](const json& p) { self->send(client, rollback_progress{p.dump()}); };
    control_reply reply;
    try {
      reply = args ? run_rollback(*ctx, calls, *args, st.get(), progress) : error_reply(args.err());
    } catch (const std::exception& e) {
      reply = error_reply(make_error(errc::internal, std::string("internal error: ") + e.what()));
    }
    {
      std::lock_guard<std::recursive_mutex> lock(ctx->mu);
      // Released for the saga's safety net when space was short: held again.
      if (ctx->reserve->held() < ctx->reserve->wanted()) hold_reserve(*ctx);
    }
    caf::actor next;
    {
      std::lock_guard<std::mutex> lock(ctx->saga_mu);
      ctx->running.reset();
      std::swap(next, ctx->next_saga);
    }
    if (next) self->send(next, tick_atom::value);
    if (reply.code != 0) spdlog::info("rollback {}: {}", st->id, reply.message);
    return reply;
  });
}

// The node's detached actors, each named here (CAF's logs and exit reasons
// name them so): dsmil.control serves commands one at a time; dsmil.saga runs
// one rollback saga and ends with it. Nothing else in the node runs on a
// thread of its own but the env's workers.
class saga_actor final : public caf::blocking_actor {
public:
  saga_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx,
             std::shared_ptr<saga_status> st)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), st_(std::move(st)) {}
  const char* name() const override { return "dsmil.saga"; }
  void act() override { saga_loop(this, ctx_, st_); }

private:
  std::shared_ptr<node_context> ctx_;
  std::shared_ptr<saga_status> st_;
};

// Starts a saga for a rollback request, or says why not.
caf::result<control_reply> start_saga(caf::blocking_actor* self,
                                      const std::shared_ptr<node_context>& ctx,
                                      control_request& req, const json& args) {
  const bool emergency = args.value("type", std::string()) == "emergency";
  auto st = std::make_shared<saga_status>();
  st->id = ctx->saga_ids.next(ctx->os->now_unix_ns());
  st->type = args.value("type", std::string());
  {
    std::lock_guard<std::mutex> lock(ctx->saga_mu);
    if (ctx->running) {
      auto& r = *ctx->running;
      std::string running = "rollback " + r.id + " (" + (r.type.empty() ? "?" : r.type) +
                            (r.target.empty() ? "" : " to " + r.target) + ", " +
                            enum_name(r.phase.load()) + ")";
      if (!emergency)
        return error_reply(make_error(errc::busy, running + " is running; wait for it to end, or "
                                                            "pre-empt it with --type emergency"));
      if (ctx->emergency_waiting)
        return error_reply(make_error(errc::busy, "an emergency rollback already waits for " +
                                                      running + " to compensate"));
      r.preempt = true;
      // Stops its wait for a step's devices at once (it then compensates).
      if (r.actor) self->send(r.actor, preempt_atom::value);
      ctx->emergency_waiting = true;
      spdlog::warn("emergency rollback {} pre-empts {}", st->id, running);
    } else {
      ctx->running = st;
    }
  }
  auto saga = self->spawn<saga_actor>(ctx, st);
  self->delegate(saga, std::move(req));
  return caf::delegated<control_reply>{};
}

void node_loop(caf::blocking_actor* self, std::shared_ptr<node_context> ctx) {
  device_calls calls(self, *ctx);
  // Sagas a crash interrupted are settled before any command is taken.
  recover_sagas(*ctx, calls);
  bool running = true;
  self->receive_while([&] { return running; })(
      [&](control_request& req) -> caf::result<control_reply> {
        auto args = parse_args(req);
        if (!args) return error_reply(args.err());
        if (req.command == "rollback") {
          try {
            if (!args->value("dry_run", false)) return start_saga(self, ctx, req, *args);
            return run_rollback(*ctx, calls, *args, nullptr, nullptr);
          } catch (const json::exception& e) {
            return error_reply(make_error(errc::invalid_argument,
                                          std::string("malformed arguments: ") + e.what()));
          }
        }
        auto reply = dispatch(*ctx, calls, req, *args);
        if (reply.code != 0)
          spdlog::info("{}: {}", req.command, reply.message);
        else
          spdlog::debug("{}: ok", req.command);
        return reply;
      },
      [&](caf::exit_msg& em) {
        spdlog::info("control actor stopping: {}", caf::to_string(em.reason));
        running = false;
      });
  self->send_exit(ctx->devices, caf::exit_reason::user_shutdown);
}

class control_actor final : public caf::blocking_actor {
public:
  control_actor(caf::actor_config& cfg, std::shared_ptr<node_context> ctx)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)) {}
  const char* name() const override { return "dsmil.control"; }
  void act() override { node_loop(this, ctx_); }

private:
  std::shared_ptr<node_context> ctx_;
};

} // namespace

// -- shared helpers ---------------------------------------------------------------

control_reply ok_reply(const json& body) {
  return control_reply{0, "", body.dump()};
}

control_reply error_reply(const error& e, const json& body) {
  json b = body;
  b["error"] = {{"code", to_string(e.code)}, {"message", e.message}};
  return control_reply{static_cast<uint8_t>(e.code), e.message, b.dump()};
}

result<std::string> arg_string(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_string() || it->get<std::string>().empty())
    return make_error(errc::invalid_argument, std::string("missing argument '") + key + "'");
  return it->get<std::string>();
}

result<device_id> arg_device(const node_context& ctx, const json& args, const char* key) {
  auto s = arg_string(args, key);
  if (!s) return s.err();
  return parse_device_id(*s, ctx.cfg.devices);
}

json to_json(const checkpoint_info& i) {
  return {{"id", i.id},
          {"name", i.name},
          {"description", i.description},
          {"type", enum_name(i.type)},
          {"created_at", i.created_at},
          {"parent", i.parent_id.empty() ? json(nullptr) : json(i.parent_id)},
          {"devices", i.device_count},
          {"logical_bytes", i.logical_bytes},
          {"new_bytes", i.new_bytes},
          {"key_id", i.key_id},
          {"pinned", i.pinned},
          {"provider", i.provider}};
}

json to_json(const system_config& c) {
  return {{"config_version", c.config_version},
          {"avx512_present", c.avx512_present},
          {"agent_concurrency_limit", c.agent_concurrency_limit},
          {"thermal_threshold_c", c.thermal_threshold_c},
          {"config_data", c.config_data}};
}

// -- start ------------------------------------------------------------------------

result<node_handles> start_node(caf::actor_system& sys, const node_config& cfg, env& e,
                                std::vector<std::shared_ptr<component>> extra) {
  {
    std::set<std::string> names = {"configuration", "security", "devices"};
    for (auto& c : extra)
      if (!c || !names.insert(c->name()).second)
        return make_error(errc::invalid_argument,
                          "component '" + (c ? c->name() : std::string()) +
                              "' is given twice or clashes with one of the node's own");
  }
  auto ctx = std::make_shared<node_context>();
  ctx->os = &e;
  ctx->cfg = cfg;
  ctx->started_ns = e.now_unix_ns();
  store_options so;
  so.encrypt = cfg.store_encrypt;
  so.deflate_level = cfg.store_deflate_level;
  so.chunking = {cfg.chunk_min_kib * 1024, cfg.chunk_avg_kib * 1024, cfg.chunk_max_kib * 1024};
  so.pack_target_bytes = uint64_t{cfg.pack_target_mib} << 20;
  so.threads = cfg.store_threads;
  so.passphrase_file = cfg.key_passphrase_file;
  std::unique_ptr<key_provider> key; // software: the store opens its own
  if (cfg.key_provider == key_provider_kind::tpm) {
    tpm_options to;
    to.tcti = cfg.key_tcti;
    to.signing_handle = cfg.key_handle;
    to.pcrs = cfg.key_pcrs;
    to.seal_pcrs = cfg.key_seal_pcrs;
    auto k = open_tpm_key(to);
    if (!k) return k.err();
    std::unique_ptr<key_provider> software;
    if (cfg.key_on_tpm_failure == tpm_failure_policy::software) {
      const std::string store_dir = cfg.data_dir + "/store";
      for (auto sub : {"/keys", "/tmp"})
        if (auto err = e.create_dirs(store_dir + sub)) return err;
      auto s =
          open_software_key(e, store_dir + "/keys", store_dir + "/tmp", cfg.key_passphrase_file);
      if (!s) return s.err();
      software = std::move(*s);
    }
    key = with_tpm_breaker(e, std::move(*k), std::move(software), cfg.breaker);
  }
  auto store = checkpoint_store::open(e, cfg.data_dir + "/store", so, std::move(key));
  if (!store) return store.err();
  ctx->store = std::move(*store);
  ctx->reserve = std::make_unique<space_reserve>(e, cfg.data_dir + "/store.reserve");
  hold_reserve(*ctx);
  system_config initial;
  initial.config_version = cfg.configuration.config_version;
  initial.agent_concurrency_limit = cfg.configuration.agent_concurrency_limit;
  initial.thermal_threshold_c = cfg.configuration.thermal_threshold_c;
  initial.config_data = cfg.configuration.config_data;
  initial.avx512_present = simd::detect_cpu().avx512f;
  ctx->configuration = std::make_shared<configuration_component>(std::move(initial));
  // PCRs are read through the store's key: serialised with its other uses.
  auto security = std::make_shared<security_component>([c = ctx.get()] {
    std::lock_guard<std::recursive_mutex> lock(c->mu);
    return c->store->key().read_pcrs();
  });
  ctx->shared_components.push_back(std::make_shared<serialized_component>(ctx->configuration));
  ctx->shared_components.push_back(std::make_shared<serialized_component>(security));
  for (auto& c : extra)
    ctx->shared_components.push_back(std::make_shared<serialized_component>(std::move(c)));
  ctx->retention = cfg.retention;

  ctx->sim = std::make_shared<sim_driver>(ctx->cfg.devices, cfg.seed, e, cfg.thermal_critical_c);
  if (!cfg.sim_state_file.empty()) {
    auto path = cfg.sim_state_file.front() == '/' ? cfg.sim_state_file
                                                  : cfg.data_dir + "/" + cfg.sim_state_file;
    if (auto err = ctx->sim->persist_to(path)) return err;
  }
  for (auto& [id, f] : cfg.faults)
    ctx->sim->set_fault(id, f);
  auto map = std::make_shared<const device_map>(ctx->cfg.devices);
  auto guarded = std::make_shared<guarded_driver>(map, ctx->sim);

  supervisor_config sc;
  sc.drv = guarded;
  sc.map = map;
  sc.breaker = cfg.breaker;
  sc.retry = cfg.retry;
  sc.supervision = cfg.supervision;
  ctx->devices = spawn_root_supervisor(sys, sc);

  ctx->published_port = std::make_shared<std::atomic<uint16_t>>(cfg.listen_port);
  node_handles h;
  h.sim = ctx->sim;
  h.published_port = ctx->published_port;
  h.control = std::make_shared<caf::actor>(sys.spawn<control_actor>(ctx));
  if (cfg.automatic_interval_s > 0) {
    // Automatic checkpoints: a timer on the actor clock asks the control
    // actor, like any client would; retention runs after each one.
    auto control = *h.control;
    auto every = std::chrono::seconds(cfg.automatic_interval_s);
    auto timer = sys.spawn([control, every](caf::event_based_actor* self) -> caf::behavior {
      self->link_to(control);
      self->delayed_send(self, every, tick_atom::value);
      return {[=](tick_atom) {
        json args = {{"type", "automatic"}, {"name", "automatic"}};
        self->request(control, caf::infinite, control_request{"checkpoint.create", args.dump()})
            .then([](const control_reply& r) {
              if (r.code != 0) spdlog::warn("automatic checkpoint failed: {}", r.message);
            });
        self->delayed_send(self, every, tick_atom::value);
      }};
    });
    h.scheduler = std::make_shared<caf::actor>(timer);
  }
  return h;
}

} // namespace dsmil
