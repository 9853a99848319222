#include "actors/agents/sim_agents.hpp"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <deque>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "runtime/base/coding.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/env.hpp"
#include "simd/crc64.hpp"

namespace dsmil {

namespace {

using task_atom = caf::atom_constant<caf::atom("task")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using link_atom = caf::atom_constant<caf::atom("link")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using load_atom = caf::atom_constant<caf::atom("load")>;

constexpr char magic[4] = {'D', 'S', 'A', 'G'};
constexpr uint32_t format_version = 1;
constexpr size_t task_bytes = 4096;
constexpr size_t max_pending = 4096; ///< tasks waiting at a quiesced agent; older ones dropped
constexpr auto tick = std::chrono::milliseconds(10);

// Writes the snapshot header (magic, version, tasks_done) at `out`.
void encode_header(char* out, uint64_t tasks_done) {
  std::memcpy(out, magic, 4);
  coding::encode_fixed32(out + 4, format_version);
  coding::encode_fixed64(out + 8, tasks_done);
}

std::string encode(uint64_t tasks_done, const std::string& blob) {
  std::string out(sim_agent_host::header_size + blob.size(), '\0');
  encode_header(out.data(), tasks_done);
  std::memcpy(out.data() + sim_agent_host::header_size, blob.data(), blob.size());
  return out;
}

// An agent's state file (<state_dir>/<id>.state), laid out as the device
// simulator's: a header, then two slots; integers little-endian.
//   header := "DSAGST02" u32 slot_bytes u32 0 u64 crc64(previous 16 bytes)
//   slot   := u64 sequence u64 crc64(sequence, snapshot) snapshot
// A slot with sequence 0 or a bad CRC is ignored; the valid slot with the
// higher sequence is the state. A slot is written in place with one
// write_at() (no fsync, as for the devices: it survives a kill, not a power
// cut; a kill during it leaves a bad CRC, and the other slot in charge): a
// tenth of the cost of a new file and a rename, once most of a pause.
constexpr char file_magic[8] = {'D', 'S', 'A', 'G', 'S', 'T', '0', '2'};
constexpr size_t file_header_bytes = 24;
constexpr size_t slot_header_bytes = 16;

uint64_t slot_crc(uint64_t sequence, std::string_view snapshot) {
  char head[8];
  coding::encode_fixed64(head, sequence);
  return simd::crc64(snapshot.data(), snapshot.size(), simd::crc64(head, sizeof(head)));
}

std::string file_header(size_t slot_bytes) {
  std::string h(file_header_bytes, '\0');
  std::memcpy(h.data(), file_magic, 8);
  coding::encode_fixed32(h.data() + 8, static_cast<uint32_t>(slot_bytes));
  coding::encode_fixed64(h.data() + 16, simd::crc64(h.data(), 16));
  return h;
}

// The newest snapshot in a state file's bytes and its sequence; a file of
// the first format (one snapshot, "DSAG" v1) is sequence 0.
status parse_state_file(const std::string& path, const std::string& bytes, std::string& snapshot,
                        uint64_t& sequence) {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), magic, 4) == 0 &&
      coding::decode_fixed32(bytes.data() + 4) == 1) {
    snapshot = bytes;
    sequence = 0;
    return {};
  }
  auto bad = [&](const std::string& why) {
    return make_error(errc::integrity_error, "agent state file " + path + ": " + why);
  };
  if (bytes.size() < file_header_bytes || std::memcmp(bytes.data(), file_magic, 8) != 0 ||
      coding::decode_fixed64(bytes.data() + 16) != simd::crc64(bytes.data(), 16))
    return bad("not an agent state file (bad header)");
  const size_t slot_bytes = coding::decode_fixed32(bytes.data() + 8);
  if (slot_bytes <= slot_header_bytes || bytes.size() < file_header_bytes + 2 * slot_bytes)
    return bad("it is cut short");
  sequence = 0;
  for (size_t k = 0; k < 2; ++k) {
    const char* slot = bytes.data() + file_header_bytes + k * slot_bytes;
    const uint64_t seq = coding::decode_fixed64(slot);
    const std::string_view snap(slot + slot_header_bytes, slot_bytes - slot_header_bytes);
    if (seq == 0 || seq <= sequence || coding::decode_fixed64(slot + 8) != slot_crc(seq, snap))
      continue;
    sequence = seq;
    snapshot.assign(snap);
  }
  if (sequence == 0) return bad("neither slot holds a whole state");
  return {};
}

// The state a snapshot holds, checked against the agents' state size.
status decode(std::string_view bytes, size_t state_bytes, uint64_t& tasks_done, std::string& blob) {
  if (bytes.size() != sim_agent_host::header_size + state_bytes ||
      std::memcmp(bytes.data(), magic, 4) != 0 ||
      coding::decode_fixed32(bytes.data() + 4) != format_version)
    return make_error(errc::invalid_argument, "not a snapshot of a sim agent with state_kib = " +
                                                  std::to_string(state_bytes / 1024) + " (" +
                                                  std::to_string(bytes.size()) + " bytes)");
  tasks_done = coding::decode_fixed64(bytes.data() + 8);
  blob.assign(bytes.substr(sim_agent_host::header_size));
  return {};
}

} // namespace

// One agent's state. Its actor takes tasks and runs them under `mu`; the
// host's calls (from the node's threads) take `mu` too, so a snapshot or a
// restore falls between two tasks, never inside one.
struct agent_slot {
  std::mutex mu;
  std::condition_variable cancelled; ///< a stuck agent's quiesce waits on it
  std::string blob;
  uint64_t tasks_done = 0;
  bool quiesced = false;
  bool dirty = false;
  std::deque<uint64_t> pending;
  bool never_quiesce = false;
  bool fail_restore = false;
  std::string parked, resumed;          ///< snapshots at the last park and resume, when recording
  std::unique_ptr<random_rw_file> file; ///< its state file, once written in the format above
  uint64_t sequence = 0;                ///< of the newest slot in it
  uint64_t version = 1;                 ///< bumped by every change (agent_info::version)
  std::string slot;                     ///< the slot being written, kept for the next one
};

struct sim_agent_host::shared {
  caf::actor_system* sys = nullptr;
  env* os = nullptr;
  sim_agents_config cfg;
  std::vector<std::string> ids;
  std::vector<caf::actor> agents;
  caf::actor coordinator;
  std::unique_ptr<agent_slot[]> slots;
  std::atomic<bool> stopped{false};
  std::atomic<bool> recording{false};
  std::atomic<uint32_t> load{0};           ///< the coordinator's tasks per second
  std::atomic<uint64_t> task_seed{0x5eed}; ///< run_tasks() draws its tasks from it

  std::string file(size_t i) const { return cfg.state_dir + "/" + ids[i] + ".state"; }

  // REQUIRES: slots[i].mu held.
  void run(agent_slot& a, uint64_t seed) {
    const size_t n = a.blob.size() / task_bytes;
    if (n == 0) return;
    uint64_t r = seed;
    const size_t at = (splitmix64(r) % n) * task_bytes;
    for (size_t k = 0; k < task_bytes; k += 8) {
      const uint64_t v = splitmix64(r);
      std::memcpy(a.blob.data() + at + k, &v, 8);
    }
    ++a.tasks_done;
    ++a.version;
    a.dirty = true;
  }

  // Writes (tasks_done, blob) into the slot of agent i's file not holding the
  // newest; the first write makes the file whole (replacing one of the first
  // format). REQUIRES: slots[i].mu held, a state directory.
  status store(size_t i, uint64_t tasks_done, const std::string& blob) {
    auto& a = slots[i];
    const uint64_t seq = a.sequence + 1;
    const size_t snapshot = sim_agent_host::header_size + blob.size();
    const size_t slot_bytes = slot_header_bytes + snapshot;
    a.slot.resize(slot_bytes);
    char* p = a.slot.data();
    encode_header(p + slot_header_bytes, tasks_done);
    std::memcpy(p + slot_header_bytes + sim_agent_host::header_size, blob.data(), blob.size());
    coding::encode_fixed64(p, seq);
    coding::encode_fixed64(p + 8, slot_crc(seq, {p + slot_header_bytes, snapshot}));
    const uint64_t at = file_header_bytes + (seq & 1) * slot_bytes;
    if (!a.file) {
      std::string whole = file_header(slot_bytes);
      whole.resize(file_header_bytes + 2 * slot_bytes, '\0');
      std::memcpy(whole.data() + at, p, slot_bytes);
      if (auto err = write_durable(*os, cfg.state_dir, file(i), whole)) return err;
      auto f = os->open_random_rw_file(file(i), private_file_mode);
      if (!f) return f.err();
      a.file = std::move(*f);
    } else if (auto err = a.file->write_at(at, a.slot)) {
      return err;
    }
    a.sequence = seq;
    return {};
  }

  // Parks agent i: it accepts no work until resumed, and its state is left
  // where a killed process finds it. REQUIRES: slots[i].mu held.
  status park(size_t i) {
    auto& a = slots[i];
    a.quiesced = true;
    if (recording) a.parked = encode(a.tasks_done, a.blob);
    if (!a.dirty || cfg.state_dir.empty()) return {};
    auto err = store(i, a.tasks_done, a.blob);
    if (!err) a.dirty = false;
    return err;
  }
};

namespace {

// An agent: takes the coordinator's tasks, or keeps them pending while
// quiesced; runs what is pending when resumed.
caf::behavior agent(caf::event_based_actor*, std::shared_ptr<sim_agent_host::shared> s, size_t i) {
  return {
      [s, i](task_atom, uint64_t seed) {
        auto& a = s->slots[i];
        std::lock_guard<std::mutex> lock(a.mu);
        if (!a.quiesced) return s->run(a, seed);
        a.pending.push_back(seed);
        if (a.pending.size() > max_pending) a.pending.pop_front();
      },
      [s, i](resume_atom) {
        auto& a = s->slots[i];
        std::lock_guard<std::mutex> lock(a.mu);
        while (!a.quiesced && !a.pending.empty()) {
          s->run(a, a.pending.front());
          a.pending.pop_front();
        }
      },
  };
}

struct coordinator_state {
  uint64_t next = 0;
  uint64_t seed = 0;
  uint32_t tasks_per_second = 0;
  bool ticking = false;
  static inline const char* name = "dsmil.agents";
};

caf::behavior coordinator(caf::stateful_actor<coordinator_state>* self,
                          std::vector<caf::actor> agents, uint32_t tasks_per_second,
                          uint64_t seed) {
  self->state.seed = seed;
  for (auto& a : agents)
    self->link_to(a);
  auto start_ticking = [self] {
    auto& st = self->state;
    if (st.tasks_per_second == 0 || st.ticking) return;
    st.ticking = true;
    self->send(self, tick_atom::value);
  };
  self->state.tasks_per_second = tasks_per_second;
  start_ticking();
  return {
      [=](tick_atom) {
        auto& st = self->state;
        if (st.tasks_per_second == 0) {
          st.ticking = false;
          return;
        }
        const uint64_t per_tick = std::max<uint64_t>(1, st.tasks_per_second / 100);
        for (uint64_t k = 0; k < per_tick; ++k)
          self->send(agents[st.next++ % agents.size()], task_atom::value, splitmix64(st.seed));
        self->delayed_send(self, tick, tick_atom::value);
      },
      [=](load_atom, uint32_t rate) {
        self->state.tasks_per_second = rate;
        start_ticking();
      },
      [=](link_atom, const caf::actor& a) { self->link_to(a); },
  };
}

} // namespace

result<std::shared_ptr<sim_agent_host>>
sim_agent_host::start(caf::actor_system& sys, const sim_agents_config& cfg, env& e) {
  auto s = std::make_shared<shared>();
  s->sys = &sys;
  s->os = &e;
  s->cfg = cfg;
  s->slots = std::make_unique<agent_slot[]>(cfg.count);
  const size_t state_bytes = size_t{cfg.state_kib} * 1024;
  if (!cfg.state_dir.empty())
    if (auto err = e.create_dirs(cfg.state_dir)) return err;
  for (uint32_t i = 0; i < cfg.count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "agent-%02u", i);
    s->ids.push_back(id);
    auto& a = s->slots[i];
    if (!cfg.state_dir.empty() && e.exists(s->file(i))) {
      auto bytes = e.read_file(s->file(i));
      if (!bytes) return bytes.err();
      std::string snapshot;
      if (auto err = parse_state_file(s->file(i), *bytes, snapshot, a.sequence))
        return make_error(err.code, err.message + "; remove " + cfg.state_dir +
                                        " to start the agents afresh");
      if (auto err = decode(snapshot, state_bytes, a.tasks_done, a.blob))
        return make_error(errc::config_error,
                          "agent state file " + s->file(i) + ": " + err.message +
                              "; it was made with other [agents] settings: remove " +
                              cfg.state_dir + " to start the agents afresh");
      // A file of the first format is replaced by the first write.
      if (a.sequence > 0) {
        auto f = e.open_random_rw_file(s->file(i), private_file_mode);
        if (!f) return f.err();
        a.file = std::move(*f);
      }
    } else {
      uint64_t r = cfg.seed ^ (0x9e3779b97f4a7c15ull * (i + 1));
      a.blob.resize(state_bytes);
      for (size_t k = 0; k + 8 <= state_bytes; k += 8) {
        const uint64_t v = splitmix64(r);
        std::memcpy(a.blob.data() + k, &v, 8);
      }
      // Its file made now, durably, not at its first quiesce.
      if (!cfg.state_dir.empty())
        if (auto err = s->store(i, a.tasks_done, a.blob)) return err;
    }
  }
  for (uint32_t i = 0; i < cfg.count; ++i)
    s->agents.push_back(sys.spawn(agent, s, size_t{i}));
  s->coordinator = sys.spawn(coordinator, s->agents, cfg.tasks_per_second, cfg.seed);
  s->load = cfg.tasks_per_second;
  return std::shared_ptr<sim_agent_host>(new sim_agent_host(std::move(s)));
}

sim_agent_host::~sim_agent_host() {
  stop();
}

void sim_agent_host::stop() {
  if (s_->stopped.exchange(true)) return;
  caf::anon_send_exit(s_->coordinator, caf::exit_reason::user_shutdown);
}

void sim_agent_host::set_load(uint32_t tasks_per_second) {
  s_->load = tasks_per_second;
  caf::anon_send(s_->coordinator, load_atom::value, tasks_per_second);
}

uint32_t sim_agent_host::load() const {
  return s_->load;
}

void sim_agent_host::link_to(const caf::actor& a) {
  caf::anon_send(s_->coordinator, link_atom::value, a);
}

result<size_t> sim_agent_host::find(const std::string& agent) const {
  for (size_t i = 0; i < s_->ids.size(); ++i)
    if (s_->ids[i] == agent) return i;
  return make_error(errc::not_found,
                    "no agent '" + agent + "'; agents are agent-00 to " + s_->ids.back());
}

std::vector<agent_info> sim_agent_host::list() {
  std::vector<agent_info> out;
  for (size_t i = 0; i < s_->ids.size(); ++i) {
    auto& a = s_->slots[i];
    std::lock_guard<std::mutex> lock(a.mu);
    out.push_back({s_->ids[i], a.quiesced ? agent_state::paused : agent_state::running,
                   a.tasks_done, a.version});
  }
  return out;
}

status sim_agent_host::quiesce(const std::string& agent,
                               std::chrono::steady_clock::time_point deadline) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::unique_lock<std::mutex> lock(a.mu);
  // Stuck in a task: quiesced only by cancel_pending.
  if (a.never_quiesce && !a.cancelled.wait_until(lock, deadline, [&] { return a.quiesced; }))
    return make_error(errc::timeout, "agent " + agent + " is stuck in a task");
  return s_->park(*i);
}

status sim_agent_host::cancel_pending(const std::string& agent) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  a.pending.clear();
  auto err = s_->park(*i);
  a.cancelled.notify_all();
  return err;
}

status sim_agent_host::snapshot(const std::string& agent, const agent_sink& sink) {
  auto i = find(agent);
  if (!i) return i.err();
  std::string bytes;
  {
    auto& a = s_->slots[*i];
    std::lock_guard<std::mutex> lock(a.mu);
    bytes = encode(a.tasks_done, a.blob);
  }
  return sink(bytes);
}

status sim_agent_host::restore(const std::string& agent, std::string_view bytes) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.fail_restore)
    return make_error(errc::io_error, "agent " + agent + ": injected restore failure");
  if (!a.quiesced)
    return make_error(errc::busy, "agent " + agent + " is running; quiesce it first");
  uint64_t done = 0;
  std::string blob;
  if (auto err = decode(bytes, a.blob.size(), done, blob))
    return make_error(err.code, "agent " + agent + ": " + err.message);
  if (!s_->cfg.state_dir.empty())
    if (auto err = s_->store(*i, done, blob))
      return make_error(err.code, "agent " + agent + ": " + err.message);
  a.blob = std::move(blob);
  a.tasks_done = done;
  ++a.version;
  a.dirty = false;
  return {};
}

status sim_agent_host::resume(const std::string& agent) {
  auto i = find(agent);
  if (!i) return i.err();
  {
    auto& a = s_->slots[*i];
    std::lock_guard<std::mutex> lock(a.mu);
    if (s_->recording && a.quiesced) a.resumed = encode(a.tasks_done, a.blob);
    a.quiesced = false;
  }
  caf::anon_send(s_->agents[*i], resume_atom::value); // runs what is pending
  return {};
}

status sim_agent_host::set_never_quiesce(const std::string& agent, bool on) {
  auto i = find(agent);
  if (!i) return i.err();
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  s_->slots[*i].never_quiesce = on;
  return {};
}

status sim_agent_host::run_tasks(const std::string& agent, uint64_t n) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.quiesced) return make_error(errc::busy, "agent " + agent + " is quiesced");
  uint64_t r = s_->task_seed.fetch_add(1) * 0x9e3779b97f4a7c15ull;
  for (uint64_t k = 0; k < n; ++k)
    s_->run(a, splitmix64(r));
  return {};
}

void sim_agent_host::record_states(bool on) {
  s_->recording = on;
}

std::string sim_agent_host::parked_state(const std::string& agent) const {
  auto i = find(agent);
  if (!i) return {};
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  return s_->slots[*i].parked;
}

std::string sim_agent_host::resumed_state(const std::string& agent) const {
  auto i = find(agent);
  if (!i) return {};
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  return s_->slots[*i].resumed;
}

result<std::string> sim_agent_host::read_state_file(env& e, const std::string& path) {
  auto bytes = e.read_file(path);
  if (!bytes) return bytes.err();
  std::string snapshot;
  uint64_t sequence = 0;
  if (auto err = parse_state_file(path, *bytes, snapshot, sequence)) return err;
  return snapshot;
}

status sim_agent_host::set_fail_restore(const std::string& agent, bool on) {
  auto i = find(agent);
  if (!i) return i.err();
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  s_->slots[*i].fail_restore = on;
  return {};
}

} // namespace dsmil
