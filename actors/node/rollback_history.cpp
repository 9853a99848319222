// The saga history: read from the journals once, kept current as sagas start
// and end; estimates; the rollback history and show commands.
#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/rollback_detail.hpp"
#include "dsmil/fields_json.hpp"
#include "runtime/components/system_config_ops.hpp"
#include "runtime/saga/history.hpp"
#include "runtime/saga/journal.hpp"
#include "runtime/saga/plan.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace rollback_detail {

// Reads what is new since the last call (lock held): at the first call
// every journal, later only the sagas started since or still running. Ended
// sagas are summarized once and kept, so a node with a long history does
// not re-read it for every rollback. Returns the summaries of the sagas
// still running (not kept: their journals still change).
result<std::map<std::string, json>> refresh_history(node_context& ctx) {
  const auto dir = journal_dir(ctx);
  if (!ctx.history_loaded) {
    auto ids = list_journals(*ctx.os, dir);
    if (!ids) return ids.err();
    ctx.journal_ids.insert(ids->begin(), ids->end());
    ctx.unsummarized = ctx.journal_ids;
    ctx.history_loaded = true;
  }
  std::map<std::string, json> running;
  for (auto it = ctx.unsummarized.begin(); it != ctx.unsummarized.end();) {
    const auto& id = *it;
    auto records = read_journal(*ctx.os, journal_path(dir, id));
    if (!records && records.err().code == errc::not_found) { // removed: it never began
      ctx.journal_ids.erase(id);
      it = ctx.unsummarized.erase(it);
      continue;
    }
    if (!records && records.err().code == errc::integrity_error) {
      // Listed with what is wrong (not kept: it may be repaired); the rest
      // of the history still reads.
      running.emplace(
          id, json{{"id", id}, {"outcome", "unreadable"}, {"error", records.err().message}});
      ++it;
      continue;
    }
    if (!records) return records.err();
    auto s = summarize_saga(id, *records);
    if (s["outcome"] == "interrupted") {
      running.emplace(id, std::move(s));
      ++it;
      continue;
    }
    if (s["outcome"] == "completed" && s.contains("duration_ms"))
      ctx.completed_sagas.push_back({s.value("type", ""), s.value("devices_planned", int64_t{0}),
                                     s["duration_ms"].get<double>()});
    ctx.saga_history.emplace(id, std::move(s));
    it = ctx.unsummarized.erase(it);
  }
  return running;
}

// A saga's journal was created: the history learns of it without listing
// the journal directory again.
void note_journal(node_context& ctx, const std::string& id) {
  std::lock_guard<std::mutex> lock(ctx.history_mu);
  if (!ctx.history_loaded) return; // the first refresh lists it
  ctx.journal_ids.insert(id);
  ctx.unsummarized.insert(id);
}

void note_changed(node_context& ctx, const std::string& id) {
  std::lock_guard<std::mutex> lock(ctx.history_mu);
  if (!ctx.history_loaded) return;
  ctx.saga_history.erase(id);
  ctx.unsummarized.insert(id);
}

// Calls `fn` with every saga's summary, oldest first.
template <class F> status for_each_saga(node_context& ctx, F fn) {
  std::lock_guard<std::mutex> lock(ctx.history_mu);
  auto running = refresh_history(ctx);
  if (!running) return running.err();
  for (auto& id : ctx.journal_ids) {
    auto it = ctx.saga_history.find(id);
    fn(it != ctx.saga_history.end() ? it->second : running->at(id));
  }
  return {};
}

result<std::vector<json>> history(node_context& ctx) {
  std::vector<json> out;
  if (auto err = for_each_saga(ctx, [&](const json& s) { out.push_back(s); })) return err;
  return out;
}

// Median duration of completed sagas like this one: same type, and a device
// count within a factor of two when there are such.
json estimate(node_context& ctx, const std::string& type, size_t devices) {
  std::vector<double> same_type, similar;
  {
    std::lock_guard<std::mutex> lock(ctx.history_mu);
    auto running = refresh_history(ctx);
    if (!running) return {{"error", running.err().message}};
    for (auto& t : ctx.completed_sagas) {
      if (t.type != type) continue;
      same_type.push_back(t.duration_ms);
      if (t.devices * 2 >= static_cast<int64_t>(devices) &&
          static_cast<size_t>(t.devices) <= devices * 2 + 1)
        similar.push_back(t.duration_ms);
    }
  }
  auto& use = similar.empty() ? same_type : similar;
  if (use.empty())
    return {{"duration_ms", nullptr},
            {"basis", "no earlier completed " + type + " rollback to estimate from"}};
  std::sort(use.begin(), use.end());
  double median =
      use.size() % 2 ? use[use.size() / 2] : (use[use.size() / 2 - 1] + use[use.size() / 2]) / 2;
  return {{"duration_ms", median},
          {"basis", "median of " + std::to_string(use.size()) + " earlier " + type +
                        " rollback(s)" + (similar.empty() ? "" : " of a similar size")}};
}

} // namespace rollback_detail

// -- history commands ------------------------------------------------------------

namespace {

// A summary as the history keeps it (JSON, runtime/saga/history.hpp), typed.
result<saga_summary> typed_summary(const json& s) {
  saga_summary out;
  auto why = from_json_fields(s, out);
  if (!why.empty())
    return make_error(errc::internal,
                      "rollback " + s.value("id", std::string("?")) + "'s summary: " + why);
  return out;
}

} // namespace

answer<rollback_history_reply> run(node_context& ctx, actor_calls&,
                                   const rollback_history_request& req) {
  auto h = history(ctx);
  if (!h) return fail(h.err());
  rollback_history_reply out;
  out.total = h->size();
  for (auto it = h->rbegin();
       it != h->rend() && out.rollbacks.size() < size_t(std::max<int64_t>(req.limit, 0)); ++it) {
    auto s = typed_summary(*it);
    if (!s) return fail(s.err());
    s->steps.reset();
    out.rollbacks.push_back(std::move(*s));
  }
  return ok(std::move(out));
}

answer<rollback_show_reply> run(node_context& ctx, actor_calls&, const rollback_show_request& req) {
  if (auto err = require(req.id, "id")) return fail(err);
  auto dir = journal_dir(ctx);
  auto ids = list_journals(*ctx.os, dir);
  if (!ids) return fail(ids.err());
  std::vector<std::string> hits;
  for (auto& s : *ids)
    if (s.compare(0, req.id.size(), req.id) == 0) hits.push_back(s);
  if (hits.empty())
    return fail(make_error(errc::not_found,
                           "no rollback '" + req.id + "'; 'dsmilctl rollback history' lists them"));
  if (hits.size() > 1)
    return fail(make_error(errc::invalid_argument, "rollback id prefix '" + req.id + "' matches " +
                                                       std::to_string(hits.size()) +
                                                       " rollbacks; give more of it"));
  auto records = read_journal(*ctx.os, journal_path(dir, hits[0]));
  if (!records) return fail(records.err());
  auto s = typed_summary(summarize_saga(hits[0], *records));
  if (!s) return fail(s.err());
  rollback_show_reply out;
  static_cast<saga_summary&>(out) = std::move(*s);
  out.journal = json::array();
  for (auto& r : *records)
    out.journal.push_back(to_json(r));
  return ok(std::move(out));
}

answer<rollback_cancel_reply> run(node_context& ctx, actor_calls&, const rollback_cancel_request&) {
  std::lock_guard<std::mutex> lock(ctx.saga_mu);
  if (!ctx.running || ctx.running->type == "settle")
    return fail(make_error(errc::not_found, "no rollback is running ('dsmilctl status' shows one "
                                            "when it does)"));
  auto& r = *ctx.running;
  if (ctx.emergency_waiting)
    return fail(make_error(errc::busy,
                           "rollback " + r.id + " is already stopping for an emergency rollback"));
  r.cancelled = true;
  r.preempt = true;
  // Stops its wait for a step's devices at once (it then compensates).
  if (auto a = caf::actor_cast<caf::actor>(r.actor)) caf::anon_send(a, preempt_atom::value);
  spdlog::warn("rollback {} cancelled", r.id);
  return ok(rollback_cancel_reply{r.id, enum_name(r.phase.load())});
}

} // namespace dsmil
