#include "bench/control_bench.hpp"

#include <atomic>
#include <cstdio>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/embed/embedded.hpp"
#include "actors/node_client.hpp"
#include "actors/remote_client.hpp"
#include "bench/bench_util.hpp"
#include "dsmil/node.hpp"
#include "runtime/auth/node_pki.hpp"

namespace dsmil::bench {

using nlohmann::json;

result<json> run_control_bench(const control_bench_options& o) {
  auto work = work_dir::make("control-bench", o.dir);
  if (!work) return work.err();
  spdlog::set_level(spdlog::level::warn);
  node_options opts;
  opts.data_dir = (*work)->path() + "/data";
  opts.log_level = "warn";
  auto started = node::start(opts);
  if (!started) return started.err();
  auto& n = **started;
  auto port = n.listen("127.0.0.1", 0);
  if (!port) return port.err();

  // The admin credential the node made, as dsmilctl finds it.
  const credential_files cred{opts.data_dir + "/" + tls_layout::admin_cert,
                              opts.data_dir + "/" + tls_layout::admin_key,
                              opts.data_dir + "/" + tls_layout::ca_cert};
  caf::actor_system_config tls_cfg;
  if (auto err = configure_client(tls_cfg, cred)) return err;
  caf::actor_system tls_client{tls_cfg};
  auto signer = load_signer(cred);
  if (!signer) return signer.err();
  auto gate = connect_node(tls_client, "127.0.0.1", *port);
  if (!gate) return gate.err();

  // The same control actor behind a plaintext CAF endpoint: what the node
  // offered before it had TLS, for comparison only.
  auto& in = n.internals();
  auto plain_port = in.sys->middleman().publish(*in.handles.control, 0, "127.0.0.1", true);
  if (!plain_port)
    return make_error(errc::unavailable, "cannot publish: " + caf::to_string(plain_port.error()));
  caf::actor_system_config plain_cfg;
  configure_actor_system(plain_cfg);
  caf::actor_system plain_client{plain_cfg};
  auto plain = plain_client.middleman().remote_actor<node_api>("127.0.0.1", *plain_port);
  if (!plain) return make_error(errc::unavailable, caf::to_string(plain.error()));

  const auto timeout = std::chrono::seconds(30);
  std::vector<double> tls_ms, challenge_ms, plain_ms, local_ms, connect_ms;
  gate_nonce next; // a kept connection carries each answer's nonce to the next request
  auto timed = [](auto&& f) -> result<double> {
    const double t0 = now_s();
    if (auto err = f()) return err;
    return (now_s() - t0) * 1e3;
  };
  auto fails = [](const result<control_reply>& r) -> status {
    if (!r) return r.err();
    if (r->code != 0) return make_error(static_cast<errc>(r->code), r->message);
    return {};
  };
  for (unsigned i = 0; i < o.requests + 20; ++i) {
    auto t = timed([&] {
      return fails(ask_gate(tls_client, *gate, *signer, timeout, "status", json::object(), &next));
    });
    if (!t) return t.err();
    auto c = timed([&] {
      return fails(ask_gate(tls_client, *gate, *signer, timeout, "status", json::object()));
    });
    if (!c) return c.err();
    auto p = timed(
        [&] { return fails(ask_node(plain_client, *plain, timeout, "status", json::object())); });
    if (!p) return p.err();
    auto l = timed([&]() -> status {
      auto a = n.call(status_request{});
      return a.code == errc::none ? status{} : make_error(a.code, a.message);
    });
    if (!l) return l.err();
    if (i < 20) continue; // warm-up: connections and caches
    tls_ms.push_back(*t);
    challenge_ms.push_back(*c);
    plain_ms.push_back(*p);
    local_ms.push_back(*l);
  }
  // The same status round trips while another client holding a credential
  // floods the gate with requests it refuses (a nonce it never issued):
  // each refusal is audited (fsynced, head signed) on dsmil.audit, not on
  // the gate, so status should barely notice.
  std::vector<double> flood_ms;
  std::atomic<bool> flooding{true};
  std::atomic<uint64_t> refused{0};
  std::string flood_error; // the flooder's, read after it is joined
  std::atomic<bool> flooder_done{false};
  std::thread flooder([&] {
    struct set_on_exit {
      std::atomic<bool>& f;
      ~set_on_exit() { f = true; } // however the flooder ends
    } done{flooder_done};
    caf::actor_system_config cfg;
    if (auto err = configure_client(cfg, cred)) return void(flood_error = err.message);
    caf::actor_system sys{cfg};
    auto g = connect_node(sys, "127.0.0.1", *port);
    if (!g) return void(flood_error = g.err().message);
    caf::scoped_actor self{sys};
    while (flooding) {
      signed_request bogus;
      bogus.command = "status";
      bogus.nonce = std::string(32, '\0');
      self->request(*g, timeout, bogus)
          .receive(
              [&](signed_reply& r) {
                if (r.reply.code == static_cast<uint8_t>(errc::permission_denied)) ++refused;
              },
              [&](caf::error& e) { flood_error = caf::to_string(e); });
      if (!flood_error.empty()) return;
    }
  });
  spdlog::set_level(spdlog::level::err); // not a warning line per refusal
  const double flood_t0 = now_s();
  for (unsigned i = 0; i < o.requests && !flooder_done; ++i) {
    auto t = timed([&] {
      return fails(ask_gate(tls_client, *gate, *signer, timeout, "status", json::object(), &next));
    });
    if (!t) {
      flooding = false;
      flooder.join();
      return t.err();
    }
    flood_ms.push_back(*t);
  }
  const double flood_s = now_s() - flood_t0;
  flooding = false;
  flooder.join();
  spdlog::set_level(spdlog::level::warn);
  if (!flood_error.empty())
    return make_error(errc::unavailable, "the flooding client failed: " + flood_error);

  // A dsmilctl invocation: a client actor system, the TLS handshake, one
  // signed request.
  for (unsigned i = 0; i < o.connections; ++i) {
    auto c = timed([&]() -> status {
      caf::actor_system_config cfg;
      if (auto err = configure_client(cfg, cred)) return err;
      caf::actor_system sys{cfg};
      auto g = connect_node(sys, "127.0.0.1", *port);
      if (!g) return g.err();
      return fails(ask_gate(sys, *g, *signer, timeout, "status", json::object()));
    });
    if (!c) return c.err();
    connect_ms.push_back(*c);
  }
  caf::anon_send_exit(*plain, caf::exit_reason::user_shutdown);
  n.stop();
  const double p99 = percentile(tls_ms, 0.99);
  return json{{"requests", o.requests},
              {"status_p50_ms", percentile(tls_ms, 0.5)},
              {"status_p99_ms", p99},
              {"status_max_ms", percentile(tls_ms, 1.0)},
              {"challenge_p50_ms", percentile(challenge_ms, 0.5)},
              {"challenge_p99_ms", percentile(challenge_ms, 0.99)},
              {"plaintext_p50_ms", percentile(plain_ms, 0.5)},
              {"plaintext_p99_ms", percentile(plain_ms, 0.99)},
              {"in_process_p50_ms", percentile(local_ms, 0.5)},
              {"in_process_p99_ms", percentile(local_ms, 0.99)},
              {"flood_status_p50_ms", percentile(flood_ms, 0.5)},
              {"flood_status_p99_ms", percentile(flood_ms, 0.99)},
              {"flood_refusals", refused.load()},
              {"flood_refusals_per_s", static_cast<double>(refused.load()) / flood_s},
              {"connections", o.connections},
              {"connect_p50_ms", percentile(connect_ms, 0.5)},
              {"connect_p99_ms", percentile(connect_ms, 0.99)},
              {"target_met", p99 < 5.0}};
}

void print_control_report(const json& r) {
  std::printf("status round trip, request to answer, %u requests each, interleaved:\n",
              r["requests"].get<unsigned>());
  auto line = [&](const char* what, const char* key) {
    std::printf("  %-44s p50 %7.3f ms  p99 %7.3f ms\n", what,
                r[std::string(key) + "_p50_ms"].get<double>(),
                r[std::string(key) + "_p99_ms"].get<double>());
  };
  line("mutual TLS, signed, nonce carried (kept conn.)", "status");
  line("mutual TLS, nonce asked + signed request", "challenge");
  line("plaintext CAF endpoint, loopback", "plaintext");
  line("in-process call", "in_process");
  const double plain = r["plaintext_p50_ms"].get<double>();
  if (plain > 0)
    std::printf("security costs %.3f ms at p50 (%.1fx the plaintext round trip); target p99 < "
                "5 ms: %s\n",
                r["status_p50_ms"].get<double>() - plain, r["status_p50_ms"].get<double>() / plain,
                r["target_met"].get<bool>() ? "met" : "NOT met");
  std::printf("  %-44s p50 %7.3f ms  p99 %7.3f ms\n", "the same while a client is refused (flood)",
              r["flood_status_p50_ms"].get<double>(), r["flood_status_p99_ms"].get<double>());
  std::printf("  (%llu refusals audited meanwhile, %.0f/s)\n",
              static_cast<unsigned long long>(r["flood_refusals"].get<uint64_t>()),
              r["flood_refusals_per_s"].get<double>());
  std::printf("  a new connection (TLS handshake + one signed request), %u times: p50 %.2f ms, "
              "p99 %.2f ms\n",
              r["connections"].get<unsigned>(), r["connect_p50_ms"].get<double>(),
              r["connect_p99_ms"].get<double>());
}

} // namespace dsmil::bench
