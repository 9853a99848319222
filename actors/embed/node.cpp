// dsmil::node (dsmil/node.hpp): a node in the host's actor system or one of
// its own. Every command goes to the node's control actor as its typed
// request from a short-lived actor that hands the answer on.
#include <typeindex>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <spdlog/spdlog.h>

#include "actors/agents/sim_agents.hpp"
#include "actors/caf_glue.hpp"
#include "actors/embed/embedded.hpp"
#include "actors/node/control_gate.hpp"
#include "actors/node_client.hpp"
#include "runtime/auth/node_pki.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

template <class A> A failed_answer(const error& e) {
  A a;
  a.code = e.code;
  a.message = e.message;
  return a;
}

result<node_config> load_config(const node_options& o) {
  auto cfg = !o.config_file.empty()   ? node_config::load_file(env::posix(), o.config_file)
             : !o.config_text.empty() ? node_config::parse(o.config_text, "text", "", nullptr)
                                      : node_config::embedded();
  if (!cfg) return cfg;
  if (!o.data_dir.empty()) cfg->data_dir = o.data_dir;
  if (!o.key_provider.empty()) {
    auto kind = parse_enum<key_provider_kind>(o.key_provider);
    if (!kind)
      return make_error(errc::invalid_argument, "key provider must be " +
                                                    enum_choices<key_provider_kind>() + ", got '" +
                                                    o.key_provider + "'");
    cfg->key_provider = *kind;
  }
  if (!o.tcti.empty()) cfg->key_tcti = o.tcti;
  if (!o.log_level.empty() && o.log_level != "config") cfg->log_level = o.log_level;
  if (!o.log_level.empty()) {
    auto level = spdlog::level::from_str(cfg->log_level);
    if (level == spdlog::level::off && cfg->log_level != "off")
      return make_error(errc::invalid_argument, "log level must be trace, debug, info, warn, "
                                                "error or off, got '" +
                                                    cfg->log_level + "'");
  }
  if (o.agents && cfg->agents.backend != "none")
    return make_error(errc::config_error,
                      "[agents] backend = \"" + cfg->agents.backend +
                          "\" and an agent host given by the embedding runtime: a node has one "
                          "agent host; set backend = \"none\" or register none");
  return cfg;
}

} // namespace

void prepare(caf::actor_system_config& cfg) {
  configure_actor_system(cfg, true);
}

status prepare(caf::actor_system_config& cfg, const node_options& opts) {
  auto c = load_config(opts);
  if (!c) return c.err();
  configure_actor_system(cfg, true);
  auto files = tls_files_of(*c);
  cfg.openssl_certificate = files.cert;
  cfg.openssl_key = files.key;
  cfg.openssl_cafile = files.ca;
  cfg.load<caf::openssl::manager>();
  return {};
}

node::node(std::unique_ptr<impl> p) : p_(std::move(p)) {}

node::~node() {
  stop();
  p_->own_sys.reset(); // waits for every actor of the node's own system
}

result<std::unique_ptr<node>> node::start(caf::actor_system& sys, const node_options& opts) {
  const auto& names = sys.config().type_names_by_rtti;
  if (names.count(std::type_index(typeid(control_reply))) == 0)
    return make_error(errc::invalid_argument,
                      "the actor system does not know dsmil's messages: call "
                      "dsmil::prepare(cfg) on its actor_system_config before building it");
  auto cfg = load_config(opts);
  if (!cfg) return cfg.err();
  if (!opts.log_level.empty()) spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  auto handles = start_node(sys, *cfg, env::posix(), {}, opts.agents);
  if (!handles) return handles.err();
  auto p = std::make_unique<impl>();
  p->sys = &sys;
  p->handles = std::move(*handles);
  p->identity = opts.identity.empty() ? "embedded" : opts.identity;
  p->timeout = opts.request_timeout.count() > 0 ? caf::duration{opts.request_timeout}
                                                : caf::duration{caf::infinite};
  p->description.data_dir = cfg->data_dir;
  p->description.config_source = cfg->source;
  p->description.devices = cfg->devices.devices().size();
  p->description.listen_host = cfg->listen_host;
  p->description.listen_port = cfg->listen_port;
  if (opts.agents)
    p->description.agents = opts.agents->list().size();
  else if (p->handles.agents_sim)
    p->description.agents = p->handles.agents_sim->list().size();
  // Tells the host when the node stops by itself.
  auto down = std::make_shared<down_state>();
  p->down = down;
  auto control = caf::actor_cast<caf::actor>(*p->handles.control);
  p->watcher = sys.spawn([control, down](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(control);
    self->set_down_handler([self, down](caf::down_msg& dm) {
      std::function<void(const std::string&)> f;
      {
        std::lock_guard<std::mutex> lock(down->mu);
        if (!down->stopped) f = down->f;
      }
      if (f) f(caf::to_string(dm.reason));
      self->quit();
    });
    return {[](const std::string&) {}}; // it waits for the down message only
  });
  return std::unique_ptr<node>(new node(std::move(p)));
}

status node::check(const node_options& opts) {
  auto cfg = load_config(opts);
  return cfg ? status{} : cfg.err();
}

result<std::unique_ptr<node>> node::start(const node_options& opts) {
  if (auto err = check(opts)) return err;
  auto cfg = std::make_unique<caf::actor_system_config>();
  if (auto err = prepare(*cfg, opts)) return err;
  auto sys = std::make_unique<caf::actor_system>(*cfg);
  auto n = start(*sys, opts);
  if (!n) return n;
  (*n)->p_->own_cfg = std::move(cfg);
  (*n)->p_->own_sys = std::move(sys);
  return n;
}

result<uint16_t> node::listen(const std::string& host, uint16_t port) {
  std::lock_guard<std::mutex> lock(p_->mu);
  if (p_->stopped) return make_error(errc::unavailable, "the node is stopped");
  if (p_->listening) return make_error(errc::busy, "the node listens already");
  const auto& files = p_->handles.pki->files();
  const auto& sc = p_->sys->config();
  if (!p_->sys->has_middleman() || !p_->sys->has_openssl_manager() ||
      sc.openssl_certificate != files.cert || sc.openssl_key != files.key ||
      sc.openssl_cafile != files.ca)
    return make_error(errc::invalid_argument,
                      "the actor system is not prepared for this node's TLS files: call "
                      "dsmil::prepare(cfg, opts) with the node's options before building it");
  auto gate = spawn_control_gate(*p_->sys, *p_->handles.control, p_->handles.pki, p_->handles.audit,
                                 env::posix());
  // SO_REUSEADDR: a node restarted right after a kill -9 binds its port
  // although connections of the old process still linger (FIN-WAIT-2, a
  // client that never closed). Linux still refuses a second listener on it.
  p_->gate = caf::actor_cast<caf::actor>(gate);
  auto bound = caf::openssl::publish(gate, port, host.c_str(), true);
  if (!bound)
    return make_error(errc::unavailable,
                      "cannot listen on " + host + ":" + std::to_string(port) +
                          " (port in use or not permitted); is another node running there? "
                          "pick another HOST:PORT");
  p_->listening = true;
  p_->handles.endpoint->set(host, *bound);
  return *bound;
}

const node_description& node::description() const {
  return p_->description;
}

template <class R> void node::ask(R request, std::function<void(answer<typename R::reply>)> done) {
  using A = answer<typename R::reply>;
  auto api = *p_->handles.control;
  auto t = p_->timeout;
  p_->sys->spawn([api, t, request, done](caf::event_based_actor* self) {
    self->request(api, t, request)
        .then(
            [self, done](A& a) {
              done(std::move(a));
              self->quit();
            },
            [self, done](caf::error& e) {
              done(failed_answer<A>(from_caf(e)));
              self->quit();
            });
  });
}

template <class R> std::future<answer<typename R::reply>> node::ask_future(R request) {
  using A = answer<typename R::reply>;
  auto done = std::make_shared<std::promise<A>>();
  auto f = done->get_future();
  ask(std::move(request), [done](A a) { done->set_value(std::move(a)); });
  return f;
}

template <class R> answer<typename R::reply> node::call(R request) {
  return ask_future(std::move(request)).get();
}

// Every command of dsmil/control.hpp, compiled here once.
#define DSMIL_NODE_COMMAND(R)                                                                      \
  template void node::ask<R>(R, std::function<void(answer<R::reply>)>);                            \
  template std::future<answer<R::reply>> node::ask_future<R>(R);                                   \
  template answer<R::reply> node::call<R>(R);
DSMIL_NODE_COMMAND(status_request)
DSMIL_NODE_COMMAND(device_list_request)
DSMIL_NODE_COMMAND(device_show_request)
DSMIL_NODE_COMMAND(device_set_request)
DSMIL_NODE_COMMAND(device_fault_request)
DSMIL_NODE_COMMAND(device_crash_request)
DSMIL_NODE_COMMAND(config_show_request)
DSMIL_NODE_COMMAND(config_set_request)
DSMIL_NODE_COMMAND(agent_list_request)
DSMIL_NODE_COMMAND(agent_show_request)
DSMIL_NODE_COMMAND(agent_load_request)
DSMIL_NODE_COMMAND(checkpoint_create_request)
DSMIL_NODE_COMMAND(checkpoint_list_request)
DSMIL_NODE_COMMAND(checkpoint_show_request)
DSMIL_NODE_COMMAND(checkpoint_verify_request)
DSMIL_NODE_COMMAND(checkpoint_delete_request)
DSMIL_NODE_COMMAND(checkpoint_pin_request)
DSMIL_NODE_COMMAND(store_check_request)
DSMIL_NODE_COMMAND(store_gc_request)
DSMIL_NODE_COMMAND(store_prune_request)
DSMIL_NODE_COMMAND(retention_request)
DSMIL_NODE_COMMAND(keys_show_request)
DSMIL_NODE_COMMAND(keys_init_request)
DSMIL_NODE_COMMAND(rollback_history_request)
DSMIL_NODE_COMMAND(rollback_show_request)
DSMIL_NODE_COMMAND(rollback_request)
DSMIL_NODE_COMMAND(rollback_cancel_request)
DSMIL_NODE_COMMAND(tls_issue_request)
DSMIL_NODE_COMMAND(tls_revoke_request)
DSMIL_NODE_COMMAND(tls_list_request)
DSMIL_NODE_COMMAND(audit_request)
DSMIL_NODE_COMMAND(audit_verify_request)
#undef DSMIL_NODE_COMMAND
static_assert(std::tuple_size<node_requests>::value == 32,
              "a command was added to dsmil/control.hpp: add it to the list above");

std::future<answer<checkpoint_create_reply>> node::checkpoint(checkpoint_create_request req) {
  return ask_future(std::move(req));
}

answer<checkpoint_list_reply> node::checkpoints() {
  return call(checkpoint_list_request{});
}

answer<checkpoint_show_reply> node::show(const std::string& checkpoint_id) {
  return call(checkpoint_show_request{checkpoint_id});
}

answer<checkpoint_verify_reply> node::verify(const std::string& checkpoint_id, bool chain) {
  checkpoint_verify_request req;
  req.id = checkpoint_id;
  req.chain = chain;
  return call(std::move(req));
}

std::future<answer<checkpoint_delete_reply>> node::remove(const std::string& checkpoint_id) {
  return ask_future(checkpoint_delete_request{checkpoint_id});
}

answer<rollback_reply> node::plan(rollback_request req) {
  req.dry_run = true;
  req.progress = false;
  return call(std::move(req));
}

void node::rollback_async(rollback_request req, std::function<void(const rollback_event&)> progress,
                          std::function<void(answer<rollback_reply>)> done,
                          const std::string& initiated_by) {
  using A = answer<rollback_reply>;
  req.progress = static_cast<bool>(progress);
  auto api = *p_->handles.control;
  auto t = p_->timeout;
  rollback_by by{initiated_by.empty() ? p_->identity : initiated_by, std::move(req)};
  p_->sys->spawn([api, t, by, done, progress](caf::event_based_actor* self) -> caf::behavior {
    self->request(api, t, by)
        .then(
            [self, done](A& a) {
              if (done) done(std::move(a));
              self->quit();
            },
            [self, done](caf::error& e) {
              if (done) done(failed_answer<A>(from_caf(e)));
              self->quit();
            });
    return {[progress](rollback_progress& p) {
      auto j = nlohmann::json::parse(p.body, nullptr, false);
      if (j.is_discarded() || !progress) return;
      rollback_event ev;
      ev.saga = j.value("saga", "");
      ev.phase = j.value("phase", "");
      ev.component = j.value("component", "");
      ev.devices_done = j.value("devices_done", int64_t{0});
      ev.devices_total = j.value("devices_total", int64_t{0});
      progress(ev);
    }};
  });
}

std::future<answer<rollback_reply>>
node::rollback(rollback_request req, std::function<void(const rollback_event&)> progress,
               const std::string& initiated_by) {
  using A = answer<rollback_reply>;
  auto done = std::make_shared<std::promise<A>>();
  auto f = done->get_future();
  rollback_async(
      std::move(req), std::move(progress), [done](A a) { done->set_value(std::move(a)); },
      initiated_by);
  return f;
}

answer<rollback_history_reply> node::history(int64_t limit) {
  rollback_history_request req;
  req.limit = limit;
  return call(std::move(req));
}

answer<agent_list_reply> node::agents() {
  return call(agent_list_request{});
}

void node::on_down(std::function<void(const std::string& reason)> f) {
  std::lock_guard<std::mutex> lock(p_->down->mu);
  p_->down->f = std::move(f);
}

void node::stop() {
  {
    std::lock_guard<std::mutex> lock(p_->mu);
    if (p_->stopped) return;
    p_->stopped = true;
  }
  {
    std::lock_guard<std::mutex> lock(p_->down->mu);
    p_->down->stopped = true;
  }
  auto control = caf::actor_cast<caf::actor>(*p_->handles.control);
  caf::scoped_actor self{*p_->sys};
  if (p_->gate) self->send_exit(p_->gate, caf::exit_reason::user_shutdown);
  self->monitor(control);
  self->send_exit(control, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {});
  self->send_exit(p_->watcher, caf::exit_reason::user_shutdown);
}

void ask_json(node::impl& n, const std::string& command, const std::string& args_json,
              std::function<void(errc, std::string)> done) {
  auto args = nlohmann::json::parse(args_json.empty() ? "{}" : args_json, nullptr, false);
  if (args.is_discarded() || !args.is_object()) {
    const std::string why = "the arguments of '" + command + "' are not a JSON object";
    nlohmann::json body = {
        {"error", {{"code", to_string(errc::invalid_argument)}, {"message", why}}}};
    done(errc::invalid_argument, body.dump());
    return;
  }
  auto api = *n.handles.control;
  auto t = n.timeout;
  n.sys->spawn([api, t, command, args, done](caf::event_based_actor* self) {
    ask_node(
        self, api, t, command, args,
        [self, done](control_reply& r) {
          done(static_cast<errc>(r.code), std::move(r.body));
          self->quit();
        },
        [self, done](caf::error& e) {
          auto err = from_caf(e);
          nlohmann::json body = {
              {"error", {{"code", to_string(err.code)}, {"message", err.message}}}};
          done(err.code, body.dump());
          self->quit();
        });
  });
}

} // namespace dsmil
