#include "bench/latency_bench.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node/node.hpp"
#include "bench/bench_util.hpp"
#include "bench/node_client.hpp"
#include "runtime/components/component.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/os/env.hpp"

namespace dsmil::bench {

using nlohmann::json;

namespace {

// One large stream, as an agents or database component would have: the
// checkpoint cuts, compresses and stores all of it.
class blob_component final : public component {
public:
  explicit blob_component(std::string data) : data_(std::move(data)) {}
  std::string name() const override { return "blob"; }

  result<component_image> capture() override {
    std::lock_guard<std::mutex> lock(mu_);
    component_image i;
    i.streams["data"] = stream_bytes(data_);
    return i;
  }
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& req) override {
    component_plan p;
    p.differs = !(now == target);
    if (req.whole && p.differs) p.steps.push_back({name(), "data", {}});
    return p;
  }
  std::vector<failed_item> apply(const saga_step&, const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    data_ = target.streams.at("data").str();
    return {};
  }
  std::vector<failed_item> read_back(const saga_step&, const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (data_ != target.streams.at("data")) return {{"data", "differs after restore"}};
    return {};
  }

private:
  std::mutex mu_;
  std::string data_;
};

json summary(std::vector<double> ms) {
  return {{"samples", ms.size()},
          {"p50_ms", percentile(ms, 0.5)},
          {"p99_ms", percentile(ms, 0.99)},
          {"max_ms", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())}};
}

} // namespace

result<json> run_latency_bench(const latency_bench_options& o) {
  auto work = work_dir::make("latency-bench", o.dir);
  if (!work) return work.err();
  const std::string input = (*work)->path() + "/stream.bin";
  if (auto err = generate(input, o.size, o.kind, 5450)) return err;
  auto data = env::posix().read_file(input);
  if (!data) return data.err();
  env::posix().remove(input);

  spdlog::set_level(spdlog::level::warn);
  auto cfg = node_config::embedded();
  if (!cfg) return cfg.err();
  cfg->data_dir = (*work)->path() + "/node";
  caf::actor_system_config caf_cfg;
  configure_actor_system(caf_cfg);
  caf::actor_system sys{caf_cfg};
  auto blob = std::make_shared<blob_component>(std::move(*data));
  auto node = start_node(sys, *cfg, env::posix(), {blob});
  if (!node) return node.err();
  struct stop_node {
    node_handles& n;
    ~stop_node() { caf::anon_send_exit(*n.control, caf::exit_reason::user_shutdown); }
  } stopper{*node};

  // A client as dsmilctl is one, over the loopback network from an actor
  // system of its own (one connection, kept), beside one in this process.
  auto port = sys.middleman().publish(*node->control, 0, "127.0.0.1", true);
  if (!port) return make_error(errc::unavailable, "cannot listen: " + caf::to_string(port.error()));
  caf::actor_system_config client_cfg;
  configure_actor_system(client_cfg);
  caf::actor_system client{client_cfg};
  auto remote = client.middleman().remote_actor<node_api>("127.0.0.1", *port);
  if (!remote)
    return make_error(errc::unavailable,
                      "cannot reach the node: " + caf::to_string(remote.error()));

  auto status_ms = [&](caf::actor_system& from, const node_api& to) -> result<double> {
    const double t0 = now_s();
    auto r = ask(from, to, "status", json::object());
    if (!r) return r.err();
    return (now_s() - t0) * 1e3;
  };
  std::vector<double> idle, during, idle_remote, during_remote;
  for (unsigned i = 0; i < o.requests; ++i) {
    auto ms = status_ms(sys, *node->control);
    if (!ms) return ms.err();
    idle.push_back(*ms);
    ms = status_ms(client, *remote);
    if (!ms) return ms.err();
    idle_remote.push_back(*ms);
  }

  std::atomic<bool> done{false};
  const double t0 = now_s();
  auto checkpoint = std::async(std::launch::async, [&] {
    auto r = ask(sys, *node->control, "checkpoint.create", {{"name", "latency-bench"}},
                 std::chrono::seconds(1800));
    done = true;
    return r;
  });
  while (!done) {
    auto ms = status_ms(sys, *node->control);
    auto remote_ms = status_ms(client, *remote);
    if (!ms || !remote_ms) {
      checkpoint.wait();
      return ms ? remote_ms.err() : ms.err();
    }
    if (done) break;
    during.push_back(*ms);
    during_remote.push_back(*remote_ms);
  }
  auto made = checkpoint.get();
  const double took = now_s() - t0;
  if (!made) return made.err();
  return json{{"stream_bytes", o.size},
              {"idle", summary(idle)},
              {"during", summary(during)},
              {"idle_remote", summary(idle_remote)},
              {"during_remote", summary(during_remote)},
              {"checkpoint_s", took},
              {"checkpoint_mib_s", static_cast<double>(o.size) / (1 << 20) / took}};
}

void print_latency_report(const json& r) {
  std::printf("status latency, request to answer, from this process and over loopback (one kept "
              "connection); the checkpoint stores a %s stream "
              "(cut, compressed, hashed, fsynced) in %.2f s (%.0f MiB/s)\n",
              human(r["stream_bytes"].get<double>()).c_str(), r["checkpoint_s"].get<double>(),
              r["checkpoint_mib_s"].get<double>());
  auto line = [&](const char* what, const json& s, bool target) {
    const double p99 = s["p99_ms"].get<double>();
    std::printf("%-26s %5zu requests: p50 %7.3f ms, p99 %7.3f ms, max %7.3f ms", what,
                s["samples"].get<size_t>(), s["p50_ms"].get<double>(), p99,
                s["max_ms"].get<double>());
    if (target) std::printf(" (target p99 < 50 ms: %s)", p99 < 50 ? "met" : "NOT met");
    std::printf("\n");
  };
  line("in-process, idle node", r["idle"], false);
  line("in-process, during", r["during"], true);
  line("over loopback, idle node", r["idle_remote"], false);
  line("over loopback, during", r["during_remote"], true);
  for (auto [what, key] : {std::pair{"in-process", ""}, std::pair{"over loopback", "_remote"}}) {
    const double idle = r[std::string("idle") + key]["p99_ms"].get<double>();
    if (idle > 0)
      std::printf("p99 during / idle, %s: %.1fx\n", what,
                  r[std::string("during") + key]["p99_ms"].get<double>() / idle);
  }
}

} // namespace dsmil::bench
