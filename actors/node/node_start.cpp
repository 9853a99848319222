// start_node(): opens the store, builds the simulator and the key, and
// spawns the node's actor tree (device supervisors, component handlers,
// dsmil.control and its workers, the automatic checkpoint timer).
#include <cstdio>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/agents/sim_agents.hpp"
#include "actors/caf_glue.hpp"
#include "actors/devices/supervisors.hpp"
#include "actors/node/node.hpp"
#include "actors/node/node_impl.hpp"
#include "runtime/components/agents_component.hpp"
#include "runtime/pg/database_component.hpp"
#include "runtime/keys/fallback_key.hpp"
#include "runtime/keys/tpm_key.hpp"
#include "simd/cpu_features.hpp"

namespace dsmil {

// -- start ------------------------------------------------------------------------

result<node_handles> start_node(caf::actor_system& sys, const node_config& cfg, env& e,
                                std::vector<std::shared_ptr<component>> extra,
                                std::shared_ptr<agent_host> host_agents) {
  if (host_agents && cfg.agents.backend != "none")
    return make_error(errc::config_error,
                      "[agents] backend = \"" + cfg.agents.backend +
                          "\" and an agent host given by the embedding runtime: a node has one "
                          "agent host; set backend = \"none\" or register none");
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
  // Everything under the data dir is made private to this user; a data
  // dir made by an older build (0644 files in 0755 directories) or opened
  // up by hand is named, once.
  if (auto loose = loose_modes(e, cfg.data_dir); !loose.empty()) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", loose.front().second);
    spdlog::warn("data dir {}: {} files or directories other users may read or enter (e.g. {}, "
                 "mode {}); run chmod -R go-rwx {}",
                 cfg.data_dir, loose.size(), loose.front().first, mode, cfg.data_dir);
  }
  auto store = checkpoint_store::open(e, cfg.data_dir + "/store", so, std::move(key));
  if (!store) return store.err();
  ctx->store = std::move(*store);
  ctx->streams.set_budget(uint64_t{cfg.store_cache_mib} << 20);
  ctx->reserve = std::make_unique<space_reserve>(e, cfg.data_dir + "/store.reserve");
  hold_reserve(*ctx);
  system_config initial;
  initial.config_version = cfg.configuration.config_version;
  initial.agent_concurrency_limit = cfg.configuration.agent_concurrency_limit;
  initial.thermal_threshold_c = cfg.configuration.thermal_threshold_c;
  initial.config_data = cfg.configuration.config_data;
  initial.avx512_present = simd::detect_cpu().avx512f;
  ctx->configuration = std::make_shared<configuration_component>(std::move(initial));
  // PCRs are read through the store's key, which serialises its TPM calls.
  auto security =
      std::make_shared<security_component>([c = ctx.get()] { return c->store->key().read_pcrs(); });
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

  // The reference agent host: its agents come last (restored last).
  std::shared_ptr<sim_agent_host> agents_sim;
  if (cfg.agents.backend == "sim") {
    sim_agents_config ac;
    ac.count = cfg.agents.count;
    ac.state_kib = cfg.agents.state_kib;
    // No work until start-up recovery is done: an interrupted saga held the
    // agents still, and they stay so until it is settled.
    ac.tasks_per_second = 0;
    ac.seed = cfg.seed;
    if (!cfg.agents.state_dir.empty())
      ac.state_dir = cfg.agents.state_dir.front() == '/'
                         ? cfg.agents.state_dir
                         : cfg.data_dir + "/" + cfg.agents.state_dir;
    auto host = sim_agent_host::start(sys, ac, e);
    if (!host) return host.err();
    agents_sim = *host;
    ctx->agents = agents_sim;
    ctx->agents_sim = agents_sim;
    ctx->on_ready = [host = agents_sim, rate = cfg.agents.tasks_per_second] {
      host->set_load(rate);
    };
  }
  if (host_agents) ctx->agents = std::move(host_agents);
  // The database before the agents: agents that use it resume after it is back.
  std::shared_ptr<component> database;
  if (!cfg.database.conninfo.empty()) {
    database_settings ds;
    ds.conninfo = cfg.database.conninfo;
    ds.passfile = cfg.database.passfile;
    ds.tables = cfg.database.tables;
    ds.optional = cfg.database.optional;
    ds.chunk_kib = cfg.database.chunk_kib;
    ds.capture_timeout_ms = cfg.component_call_timeout_ms;
    ds.restore_timeout_ms = cfg.rollback_step_timeout_ms;
    database =
        std::make_shared<database_component>(ds, std::make_shared<store_stream_port>(*ctx->store));
  }
  if (ctx->agents) {
    agents_settings as;
    as.stop_timeout_ms = cfg.agents.stop_timeout_ms;
    as.chunk_kib = cfg.agents.chunk_kib;
    extra.push_back(std::make_shared<agents_component>(ctx->agents, as, e));
  }

  // The handlers of the components besides the devices (whose device
  // actors are their own): configuration, security, then the host's.
  extra.insert(extra.begin(), {ctx->configuration, security});
  for (auto& c : extra)
    ctx->handlers.push_back(spawn_component_handler(sys, std::move(c), cfg.breaker, e));
  if (database) {
    // Its breaker opens after [database] failure_threshold failed calls
    // and tries again after 2 s: a checkpoint works within moments of the
    // server's return, and a dead server costs a fast failure meanwhile.
    breaker_config b = cfg.breaker;
    b.failure_threshold = cfg.database.failure_threshold;
    b.open_ms = std::min<uint32_t>(b.open_ms, 2000);
    b.success_threshold = 1;
    ctx->handlers.insert(ctx->handlers.begin() + 2,
                         spawn_component_handler(sys, std::move(database), b, e));
  }

  // Who may use the control endpoint, and the record of what they did.
  // What the PKI made or renewed is news; anything else a warning.
  auto warn = [](const std::string& line) {
    if (line.rfind("made ", 0) == 0 || line.rfind("renewed ", 0) == 0)
      spdlog::info("{}", line);
    else
      spdlog::warn("{}", line);
  };
  auto pki = node_pki::open(e, cfg, warn);
  if (!pki) return pki.err();
  ctx->pki = *pki;
  auto node_key = e.read_file(ctx->pki->files().key);
  auto node_cert = e.read_file(ctx->pki->files().cert);
  if (!node_key) return node_key.err();
  if (!node_cert) return node_cert.err();
  auto signer = request_signer::load(*node_cert, *node_key);
  if (!signer) return signer.err();
  auto audit = audit_log::open(
      e, cfg.data_dir, [s = *signer](const std::string& bytes) { return s.sign_bytes(bytes); },
      [cert = *node_cert](const std::string& bytes, const std::string& sig) {
        return check_signature(cert, bytes, sig);
      },
      warn);
  if (!audit) return audit.err();
  ctx->audit = std::move(*audit);

  ctx->endpoint = std::make_shared<published_endpoint>();
  node_handles h;
  h.pki = ctx->pki;
  h.audit = ctx->audit;
  h.sim = ctx->sim;
  h.endpoint = ctx->endpoint;
  h.find_actor = [weak = std::weak_ptr<node_context>(ctx)](const std::string& name) {
    caf::actor a;
    auto c = weak.lock();
    if (!c) return a;
    std::lock_guard<std::mutex> lock(c->saga_mu);
    if (name == "dsmil.reader") a = caf::actor_cast<caf::actor>(c->reader);
    if (name == "dsmil.writer") a = caf::actor_cast<caf::actor>(c->writer);
    if (name == "dsmil.scheduler") a = caf::actor_cast<caf::actor>(c->scheduler);
    if (name == "dsmil.saga" && c->running) a = caf::actor_cast<caf::actor>(c->running->actor);
    return a;
  };
  h.control = std::make_shared<node_api>(spawn_control(sys, ctx));
  h.agents_sim = agents_sim;
  // The agents stop with the node.
  if (agents_sim) agents_sim->link_to(caf::actor_cast<caf::actor>(*h.control));
  return h;
}

} // namespace dsmil
