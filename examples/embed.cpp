// embed.cpp: a runtime that embeds a dsmil-recovery node in its own actor
// system, with the 80 reference agents working under it. It checkpoints,
// lets the agents work, stops their work, rolls back, and checks that every
// agent is running with its state bit-equal to the checkpoint's.
//
//   c++ -std=c++17 embed.cpp $(pkg-config --cflags --libs dsmil) -o embed
//   ./embed DATA_DIR
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <dsmil/node.hpp>

namespace {

int fail(const std::string& what, const std::string& line) {
  std::fprintf(stderr, "embed: %s: %s\n", what.c_str(), line.c_str());
  return 1;
}

std::map<std::string, std::string> hashes(const dsmil::agent_list_reply& r) {
  std::map<std::string, std::string> out;
  for (const auto& a : r.agents)
    out[a.id] = a.state_sha256;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: embed DATA_DIR\n");
    return 2;
  }
  caf::actor_system_config cfg;
  dsmil::prepare(cfg);
  caf::actor_system sys{cfg};

  dsmil::node_options opts;
  opts.data_dir = argv[1];
  opts.log_level = "warn";
  opts.config_text = "[agents]\nbackend = \"sim\"\ncount = 80\nstate_kib = 64\n"
                     "tasks_per_second = 4000\n";
  auto started = dsmil::node::start(sys, opts);
  if (!started) return fail("start", started.err().message);
  auto& node = **started;

  dsmil::checkpoint_create_request cp;
  cp.name = "before-work";
  auto created = node.checkpoint(cp).get();
  if (created.code != dsmil::errc::none) return fail("checkpoint", created.message);
  const std::string id = created.body->id;
  auto held = node.show(id);
  if (held.code != dsmil::errc::none || !held.body->agents) return fail("show", held.message);
  std::map<std::string, std::string> want;
  for (const auto& a : *held.body->agents)
    want[a.id] = a.state_sha256;

  // The agents work, then stop taking tasks so that their state holds still
  // once the rollback has put it back.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  dsmil::agent_load_request stop_work;
  stop_work.tasks_per_second = 0;
  auto stopped = node.call(stop_work);
  if (stopped.code != dsmil::errc::none) return fail("agent load", stopped.message);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto before = node.agents();
  if (before.code != dsmil::errc::none) return fail("agent list", before.message);
  size_t changed = 0;
  for (const auto& [agent, sha] : hashes(*before.body))
    changed += want[agent] != sha;
  if (changed == 0) return fail("work", "no agent changed its state in 300 ms of work");

  dsmil::rollback_request rb;
  rb.id = id;
  rb.type = "full";
  rb.reason = "embed example";
  size_t events = 0;
  auto rolled =
      node.rollback(
              rb, [&events](const dsmil::rollback_event&) { ++events; }, "examples/embed.cpp")
          .get();
  if (rolled.code != dsmil::errc::none || !rolled.body->success)
    return fail("rollback", rolled.message);

  auto after = node.agents();
  if (after.code != dsmil::errc::none) return fail("agent list", after.message);
  if (after.body->agents.size() != want.size())
    return fail("agents", std::to_string(after.body->agents.size()) + " agents after, " +
                              std::to_string(want.size()) + " in the checkpoint");
  for (const auto& a : after.body->agents) {
    if (a.state != "running") return fail(a.id, "is " + a.state + " after the rollback");
    if (want[a.id] != a.state_sha256)
      return fail(a.id, "state " + a.state_sha256.substr(0, 16) +
                            " differs from the checkpoint's " + want[a.id].substr(0, 16));
  }
  std::printf("embed.cpp: %zu agents running and bit-equal to checkpoint %s after rollback %s "
              "(%zu had changed, %zu progress events)\n",
              want.size(), id.substr(0, 8).c_str(), rolled.body->saga->c_str(), changed, events);
  node.stop();
  return 0;
}
