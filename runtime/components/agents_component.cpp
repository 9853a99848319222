#include "runtime/components/agents_component.hpp"

#include <algorithm>
#include <atomic>
#include <map>

#include <nlohmann/json.hpp>

#include "runtime/os/env.hpp"

namespace dsmil {

using json = nlohmann::json;

namespace {

constexpr const char* record = "agents";
constexpr const char* step_name = "agents";

// The agents an image holds, by id, with their state when captured.
result<std::map<std::string, std::string>> agents_of(const component_image& image) {
  auto it = image.records.find(record);
  if (it == image.records.end())
    return make_error(errc::integrity_error, "the agents record is missing");
  auto j = json::parse(it->second, nullptr, false);
  if (!j.is_array()) return make_error(errc::integrity_error, "the agents record is damaged");
  std::map<std::string, std::string> out;
  for (auto& a : j) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_string())
      return make_error(errc::integrity_error, "the agents record is damaged");
    const auto id = a["id"].get<std::string>();
    if (image.streams.count(id) == 0)
      return make_error(errc::integrity_error, "agent " + id + " has no state in the image");
    out.emplace(id, a.value("state", std::string()));
  }
  return out;
}

std::string list_of(const std::vector<std::string>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size() && i < 5; ++i)
    out += (i ? ", " : "") + ids[i];
  if (ids.size() > 5) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

double ms_between(int64_t from_ns, int64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

} // namespace

agents_component::agents_component(std::shared_ptr<agent_host> host, agents_settings s, env& e)
    : host_(std::move(host)), settings_(s), env_(e) {}

void agents_component::parallel(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::atomic<size_t> next{0};
  const size_t k = std::min<size_t>(n, std::max<uint32_t>(1, settings_.threads));
  env_.run_parallel(k, [&](size_t) {
    for (size_t i; (i = next.fetch_add(1)) < n;)
      fn(i);
  });
}

result<std::string> agents_component::snapshot(const std::string& id) {
  std::string bytes;
  auto err = host_->snapshot(id, [&](std::string_view run) -> status {
    bytes.append(run);
    return {};
  });
  if (err) return make_error(err.code, "agent " + id + " cannot be snapshotted: " + err.message);
  return bytes;
}

result<std::vector<std::string>> agents_component::quiesce_all(const std::vector<std::string>& ids,
                                                               std::vector<std::string>& warnings) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.stop_timeout_ms);
  std::vector<status> late(ids.size());
  parallel(ids.size(), [&](size_t i) { late[i] = host_->quiesce(ids[i], deadline); });
  std::vector<std::string> quiesced;
  error failed;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!late[i]) {
      quiesced.push_back(ids[i]);
      continue;
    }
    // Late (or refusing): its pending work is dropped, which quiesces it.
    if (auto err = host_->cancel_pending(ids[i])) {
      if (!failed)
        failed = make_error(err.code, "agent " + ids[i] + " did not quiesce (" + late[i].message +
                                          ") and cannot be cancelled: " + err.message);
      continue;
    }
    quiesced.push_back(ids[i]);
    warnings.push_back("agent " + ids[i] + " did not quiesce within stop_timeout_ms (" +
                       std::to_string(settings_.stop_timeout_ms) + " ms: " + late[i].message +
                       "); its pending work was cancelled");
  }
  if (failed) {
    resume_all(quiesced, warnings);
    return failed;
  }
  return quiesced;
}

void agents_component::resume_all(const std::vector<std::string>& ids,
                                  std::vector<std::string>& warnings) {
  std::vector<status> errs(ids.size());
  parallel(ids.size(), [&](size_t i) { errs[i] = host_->resume(ids[i]); });
  for (size_t i = 0; i < ids.size(); ++i)
    if (errs[i]) warnings.push_back("agent " + ids[i] + " cannot be resumed: " + errs[i].message);
}

result<component_image> agents_component::capture() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto agents = host_->list();
  std::vector<std::string> ids;
  json rec = json::array();
  for (auto& a : agents) {
    ids.push_back(a.id);
    rec.push_back({{"id", a.id}, {"state", agent_state_name(a.state)}});
  }
  component_image image;
  image.records.emplace(record, rec.dump());
  // Held by a rollback: quiesced already, and they stay so.
  const int64_t start = env_.steady_ns();
  if (!holding_) {
    auto q = quiesce_all(ids, image.warnings);
    if (!q) return q.err();
  }
  const int64_t quiesced = env_.steady_ns();
  // Quiesced, an agent's version is that of the state it will snapshot:
  // the same as last time, and the last snapshot is this one.
  std::vector<uint64_t> versions(ids.size(), 0);
  if (std::any_of(agents.begin(), agents.end(), [](auto& a) { return a.version != 0; })) {
    std::map<std::string, uint64_t> now;
    for (auto& a : host_->list())
      now[a.id] = a.version;
    for (size_t i = 0; i < ids.size(); ++i)
      versions[i] = now.count(ids[i]) ? now[ids[i]] : 0;
  }
  std::vector<result<stream_bytes>> snaps(ids.size(), make_error(errc::internal, "not taken"));
  std::atomic<size_t> reused{0};
  parallel(ids.size(), [&](size_t i) {
    auto last = last_.find(ids[i]);
    if (versions[i] != 0 && last != last_.end() && last->second.first == versions[i]) {
      snaps[i] = last->second.second;
      ++reused;
      return;
    }
    auto s = snapshot(ids[i]);
    if (s)
      snaps[i] = stream_bytes(std::move(*s));
    else
      snaps[i] = s.err();
  });
  const int64_t taken = env_.steady_ns();
  if (!holding_) resume_all(ids, image.warnings);
  const int64_t resumed = env_.steady_ns();
  std::map<std::string, std::pair<uint64_t, stream_bytes>> last; // agents gone are forgotten
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!snaps[i]) return snaps[i].err();
    last[ids[i]] = {versions[i], *snaps[i]};
    image.streams.emplace(ids[i], std::move(*snaps[i]));
  }
  last_ = std::move(last);
  const uint32_t avg = settings_.chunk_kib * 1024;
  image.chunking = chunker_params{avg / 4, avg, avg * 4};
  image.detail = {{"count", ids.size()},
                  {"snapshot_ms", ms_between(quiesced, taken)},
                  {"unchanged", reused.load()}};
  // From the first quiesce asked to the last resume answered: no agent
  // paused longer.
  if (!holding_) image.detail["max_pause_ms"] = ms_between(start, resumed);
  return image;
}

result<component_plan> agents_component::plan(const component_image& now,
                                              const component_image& target,
                                              const plan_request& request) {
  auto n = agents_of(now);
  if (!n) return n.err();
  auto t = agents_of(target);
  if (!t) return make_error(t.err().code, "in the checkpoint: " + t.err().message);
  component_plan out;
  // The selection within the component: "agent:ID" items.
  std::set<std::string> named;
  for (auto& item : request.items)
    if (item.rfind(item_prefix, 0) == 0) {
      auto id = item.substr(std::string(item_prefix).size());
      if (t->count(id) == 0) {
        std::vector<std::string> known;
        for (auto& [k, state] : *t)
          known.push_back(k);
        return make_error(errc::invalid_argument,
                          "no agent '" + id + "' in the checkpoint; it holds " +
                              (known.empty() ? std::string("none") : list_of(known)));
      }
      named.insert(id);
    }
  std::vector<std::string> restore, differ, missing;
  for (auto& [id, state] : *t) {
    if (n->count(id) == 0) {
      missing.push_back(id);
      continue;
    }
    const bool differs = now.streams.at(id) != target.streams.at(id);
    if (differs) differ.push_back(id);
    const bool chosen = request.whole ? (request.type != rollback_type::incremental || differs)
                                      : named.count(id) > 0;
    if (chosen) restore.push_back(id);
  }
  out.differs = !differ.empty();
  if (!missing.empty())
    out.warnings.push_back("agent(s) " + list_of(missing) +
                           " of the checkpoint are not on this host: left out");
  std::vector<std::string> added;
  for (auto& [id, state] : *n)
    if (t->count(id) == 0) added.push_back(id);
  if (!added.empty() && (request.whole || !named.empty()))
    out.warnings.push_back("agent(s) " + list_of(added) +
                           " are not in the checkpoint: left as they are");
  if (!restore.empty()) out.steps.push_back({name(), step_name, restore});
  out.plan_detail = {{"agents", restore}, {"agents_differ", differ.size()}};
  return out;
}

std::vector<failed_item> agents_component::apply(const saga_step& step,
                                                 const component_image& target) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto& ids = step.items;
  std::vector<std::string> errs(ids.size());
  parallel(ids.size(), [&](size_t i) {
    auto& id = ids[i];
    auto want = target.streams.find(id);
    if (want == target.streams.end()) {
      errs[i] = "the checkpoint holds no state for it";
      return;
    }
    auto now = snapshot(id);
    if (now && *now == want->second) return; // already in its state: not written
    // Outside a rollback's hold (never, from the node) it is quiesced here.
    if (!holding_)
      if (auto err = host_->quiesce(id, std::chrono::steady_clock::now() +
                                            std::chrono::milliseconds(settings_.stop_timeout_ms)))
        if (auto c = host_->cancel_pending(id)) {
          errs[i] = "cannot be quiesced: " + c.message;
          return;
        }
    if (auto err = host_->restore(id, want->second)) errs[i] = "restore failed: " + err.message;
    if (!holding_)
      if (auto err = host_->resume(id))
        if (errs[i].empty()) errs[i] = "restored, but cannot be resumed: " + err.message;
  });
  std::vector<failed_item> out;
  for (size_t i = 0; i < ids.size(); ++i)
    if (!errs[i].empty()) out.push_back({ids[i], errs[i]});
  return out;
}

std::vector<failed_item> agents_component::read_back(const saga_step& step,
                                                     const component_image& target) {
  const auto& ids = step.items;
  std::vector<std::string> errs(ids.size());
  parallel(ids.size(), [&](size_t i) {
    auto want = target.streams.find(ids[i]);
    auto now = snapshot(ids[i]);
    if (!now)
      errs[i] = now.err().message;
    else if (want == target.streams.end() || *now != want->second)
      errs[i] = "its state differs from the checkpoint's after restore";
  });
  std::vector<failed_item> out;
  for (size_t i = 0; i < ids.size(); ++i)
    if (!errs[i].empty()) out.push_back({ids[i], errs[i]});
  return out;
}

result<std::vector<std::string>> agents_component::hold() {
  std::lock_guard<std::mutex> lock(mu_);
  if (holding_) return std::vector<std::string>{};
  std::vector<std::string> ids, warnings;
  for (auto& a : host_->list())
    ids.push_back(a.id);
  auto q = quiesce_all(ids, warnings);
  if (!q) return q.err();
  holding_ = true;
  return warnings;
}

std::vector<std::string> agents_component::release() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> warnings;
  if (!holding_) return warnings;
  // Every agent runs again, whichever way the rollback ended: those held
  // and any the host lists now.
  std::vector<std::string> ids;
  for (auto& a : host_->list())
    ids.push_back(a.id);
  resume_all(ids, warnings);
  holding_ = false;
  return warnings;
}

} // namespace dsmil
