// Rollback sagas. Validation plans the rollback; preparation takes a
// pre-rollback checkpoint of the current state (the compensation target) and
// starts the saga's journal; execution restores one step at a time (the
// configuration, then device groups in dependency order); verification reads
// every restored device back and compares it with the checkpoint bit for bit;
// cleanup ends the journal. A failed step, a verification mismatch, a timeout
// or an emergency pre-emption compensates: the steps that started are put back
// to the pre-rollback state in reverse order and verified. Every transition is
// a journal record fsynced before the work it announces, so a node killed at
// any instant finds the saga at start-up and compensates (or resumes) it.
#include <algorithm>
#include <future>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node_impl.hpp"
#include "runtime/rollback_plan.hpp"
#include "runtime/saga_journal.hpp"
#include "runtime/system_config_ops.hpp"

namespace dsmil {

const char* const saga_phases[5] = {"validation", "preparation", "execution", "verification",
                                    "cleanup"};

namespace {

// One unit of execution and compensation.
struct saga_step {
  std::string name; ///< "configuration" or "group N"
  bool configuration = false;
  int group = -1;
  std::vector<device_id> devices;
};

json ids_json(const std::vector<device_id>& ids) {
  json a = json::array();
  for (auto id : ids)
    a.push_back(format_device_id(id));
  return a;
}

json step_json(const saga_step& s) {
  json j = {{"name", s.name}, {"devices", ids_json(s.devices)}};
  if (s.configuration) j["configuration"] = true;
  if (s.group >= 0) j["group"] = s.group;
  return j;
}

saga_step step_from_json(const json& j) {
  saga_step s;
  s.name = j.at("name").get<std::string>();
  s.configuration = j.value("configuration", false);
  s.group = j.value("group", -1);
  for (auto& d : j.at("devices"))
    s.devices.push_back(static_cast<device_id>(std::stoul(d.get<std::string>(), nullptr, 16)));
  return s;
}

std::string describe_mismatch(const device_state& got, const device_state& want) {
  auto d = diff_device(got, want);
  std::string s;
  for (auto r : d.registers) {
    if (r >= got.registers.size() || r >= want.registers.size()) continue;
    char buf[96];
    std::snprintf(buf, sizeof(buf), "register %u reads 0x%08x, checkpoint has 0x%08x; ", r,
                  got.registers[r], want.registers[r]);
    s += buf;
  }
  if (d.blob) s += "config blob differs; ";
  if (d.enabled) s += "enabled flag differs; ";
  if (d.security_level) s += "security level differs; ";
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

json diff_json(const device_diff& d) {
  return {{"id", format_device_id(d.id)},
          {"registers", d.registers},
          {"config_blob", d.blob},
          {"enabled", d.enabled},
          {"security_level", d.security_level}};
}

std::string journal_dir(const node_context& ctx) {
  return ctx.store->dir() + "/journal";
}

double ms_since(int64_t start_ns) {
  return static_cast<double>(env::posix().steady_ns() - start_ns) / 1e6;
}

// -- history ------------------------------------------------------------------

// One saga as its journal tells it.
json summarize(const std::string& id, const std::vector<json>& records) {
  json s = {{"id", id}, {"outcome", "interrupted"}};
  if (records.empty() || records.front()["t"] != "begin") return s;
  auto& b = records.front();
  for (auto key : {"type", "target", "pre_rollback", "initiated_by", "reason", "started_at"})
    if (b.contains(key)) s[key] = b[key];
  json phases = json::array({"validation", "preparation"});
  std::vector<std::string> done_steps, compensated_steps;
  int devices_total = 0;
  for (auto& st : b["steps"])
    devices_total += static_cast<int>(st["devices"].size());
  s["devices_planned"] = devices_total;
  s["steps"] = b["steps"];
  for (auto& r : records) {
    auto t = r["t"].get<std::string>();
    if (t == "phase") { // a phase record starts it: the one before it completed
      auto ph = r["phase"].get<std::string>();
      if (ph == "verification") phases.push_back("execution");
      if (ph == "cleanup") phases.push_back("verification");
    }
    if (t == "step_done") done_steps.push_back(b["steps"][r["step"].get<size_t>()]["name"]);
    if (t == "compensate_done") {
      s["compensated"] = r.value("ok", false);
      if (r.contains("failed")) s["compensation_failed"] = r["failed"];
    }
    if (t == "recovered") s["recovered"] = true;
    if (t == "end") {
      s["outcome"] = r["outcome"];
      for (auto key : {"failed_phase", "error", "failed", "duration_ms"})
        if (r.contains(key)) s[key] = r[key];
      if (r["outcome"] == "completed") phases.push_back("cleanup");
    }
  }
  s["phases_completed"] = phases;
  s["steps_done"] = done_steps;
  return s;
}

// Reads what is new since the last call (lock held): at the first call
// every journal, later only the sagas started since or still running. Ended
// sagas are summarized once and kept, so a node with a long history does
// not re-read it for every rollback. Returns the summaries of the sagas
// still running (not kept: their journals still change).
result<std::map<std::string, json>> refresh_history(node_context& ctx) {
  const auto dir = journal_dir(ctx);
  if (!ctx.history_loaded) {
    auto ids = list_journals(env::posix(), dir);
    if (!ids) return ids.err();
    ctx.journal_ids.insert(ids->begin(), ids->end());
    ctx.unsummarized = ctx.journal_ids;
    ctx.history_loaded = true;
  }
  std::map<std::string, json> running;
  for (auto it = ctx.unsummarized.begin(); it != ctx.unsummarized.end();) {
    const auto& id = *it;
    auto records = read_journal(env::posix(), journal_path(dir, id));
    if (!records && records.err().code == errc::not_found) { // removed: it never began
      ctx.journal_ids.erase(id);
      it = ctx.unsummarized.erase(it);
      continue;
    }
    if (!records) return records.err();
    auto s = summarize(id, *records);
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

// -- steps ------------------------------------------------------------------------

// Reads `ids` back and names each that is not bit for bit in `states`, or
// cannot be read.
json read_back(device_calls& calls, const std::vector<device_id>& ids,
               const std::map<device_id, device_state>& states) {
  json failed = json::array();
  std::vector<std::pair<device_id, error>> errors;
  for (auto& s : calls.read_many(ids, errors))
    if (!same_restorable_state(s, states.at(s.id)))
      failed.push_back(
          {{"id", format_device_id(s.id)}, {"error", describe_mismatch(s, states.at(s.id))}});
  for (auto& [dev, e] : errors)
    failed.push_back({{"id", format_device_id(dev)}, {"error", "cannot read back: " + e.message}});
  return failed;
}

// Puts the steps back to `states` / `config`, last first, and reads every
// device back. A device already in its state is not written (a write that
// was refused left it there). Returns what could not be put back.
json apply_states(node_context& ctx, device_calls& calls, const std::vector<saga_step>& steps,
                  const std::vector<size_t>& order, const std::map<device_id, device_state>& states,
                  const system_config& config) {
  json failed = json::array();
  std::vector<device_id> touched;
  for (auto i : order) {
    auto& st = steps[i];
    if (st.configuration) {
      std::lock_guard<std::mutex> lock(ctx.mu);
      restore_config(ctx.configuration, config);
      if (!ctx.configuration.same_restorable(config))
        failed.push_back({{"id", "configuration"}, {"error", "differs after restore"}});
      continue;
    }
    std::vector<device_id> ids;
    for (auto d : st.devices)
      if (states.count(d)) ids.push_back(d);
    std::vector<std::pair<device_id, error>> errors;
    std::set<device_id> in_place;
    for (auto& s : calls.read_many(ids, errors))
      if (same_restorable_state(s, states.at(s.id))) in_place.insert(s.id);
    std::vector<device_patch> patches;
    for (auto d : ids)
      if (!in_place.count(d)) patches.push_back(restore_patch(states.at(d)));
    errors.clear();
    calls.write_many(patches, errors);
    for (auto& [dev, e] : errors)
      failed.push_back({{"id", format_device_id(dev)}, {"error", e.message}});
    for (auto& p : patches)
      if (std::none_of(errors.begin(), errors.end(), [&](auto& e) { return e.first == p.id; }))
        touched.push_back(p.id);
  }
  for (auto& f : read_back(calls, touched, states))
    failed.push_back(f);
  return failed;
}

std::map<device_id, device_state> by_id(const std::vector<device_state>& v) {
  std::map<device_id, device_state> m;
  for (auto& s : v)
    m[s.id] = s;
  return m;
}

// -- validation -----------------------------------------------------------------

struct validated {
  std::string type;
  std::string target_id;
  checkpoint_contents target;
  std::vector<device_state> current;
  system_config current_config;
  rollback_plan plan;
  std::vector<saga_step> steps;
};

// Plans the rollback. `on_current` (may be empty) is called as soon as the
// current state of every device has been read: a saga starts its
// pre-rollback checkpoint then, while the target is loaded and checked.
status validate(node_context& ctx, device_calls& calls, const json& args, json& result,
                validated& v, const std::function<void()>& on_current) {
  std::string type = args.value("type", std::string());
  const bool has_selection = args.contains("devices") || args.contains("groups");
  if (type.empty()) type = has_selection ? "selective" : "full";
  if (type != "full" && type != "incremental" && type != "selective" && type != "emergency")
    return make_error(errc::invalid_argument, "rollback type must be full, incremental, "
                                              "selective or emergency, got '" +
                                                  type + "'");
  if (type == "selective" && !has_selection)
    return make_error(errc::invalid_argument,
                      "a selective rollback needs --devices or --groups (what to roll back)");
  if ((type == "full" || type == "emergency") && has_selection)
    return make_error(errc::invalid_argument,
                      "a " + type +
                          " rollback restores everything; drop --devices/--groups or "
                          "use --type selective");
  v.type = type;
  result["type"] = type;

  std::string id;
  if (args.value("undo", false)) {
    // Undo: back to the state before the newest completed rollback.
    auto h = history(ctx);
    if (!h) return h.err();
    for (auto it = h->rbegin(); it != h->rend(); ++it)
      if ((*it)["outcome"] == "completed" && it->contains("pre_rollback")) {
        id = (*it)["pre_rollback"].get<std::string>();
        result["undoes"] = (*it)["id"];
        break;
      }
    if (id.empty())
      return make_error(errc::not_found, "no completed rollback to undo ('dsmilctl rollback "
                                         "history' lists them)");
  } else {
    auto a = arg_string(args, "id");
    if (!a) return a.err();
    id = *a;
  }
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto resolved = ctx.store->resolve(id);
    if (!resolved) return resolved.err();
    v.target_id = *resolved;
    result["checkpoint"] = *resolved;
    v.current_config = ctx.configuration;
  }
  rollback_selection sel;
  if (args.contains("devices"))
    for (auto& d : args["devices"]) {
      auto dev = parse_device_id(d.get<std::string>(), ctx.cfg.devices);
      if (!dev) return dev.err();
      sel.devices.push_back(*dev);
    }
  if (args.contains("groups"))
    for (auto& g : args["groups"]) {
      auto n = g.get<int64_t>();
      if (n < 0 || n >= group_count)
        return make_error(errc::invalid_argument,
                          "no such group " + std::to_string(n) + "; groups are 0-6");
      sel.groups.push_back(static_cast<uint8_t>(n));
    }
  std::vector<device_id> ids;
  for (auto& d : ctx.cfg.devices.devices())
    ids.push_back(d.id);
  std::vector<std::pair<device_id, error>> errors;
  v.current = calls.read_many(ids, errors);
  if (!errors.empty()) {
    // The pre-rollback checkpoint needs every device: without it there is
    // nothing to compensate to.
    auto& [dev, e] = errors.front();
    return make_error(e.code, "device " + format_device_id(dev) + " cannot be read (" + e.message +
                                  "); the pre-rollback checkpoint needs every device");
  }
  if (on_current) on_current();
  // The signature, roots and every chunk are checked on load; an emergency
  // rollback keeps this (it trusts nothing unsigned) and skips the rest. No
  // ctx.mu: while a saga runs nothing that changes the store is accepted,
  // and the store's index has its own lock.
  auto target = ctx.store->load(v.target_id);
  if (!target)
    return make_error(target.err().code, "checkpoint " + v.target_id +
                                             " failed verification: " + target.err().message);
  v.target = std::move(*target);
  auto plan = plan_rollback(ctx.cfg.devices, v.target, v.current, v.current_config, sel);
  if (!plan) return plan.err();
  v.plan = std::move(*plan);
  auto& p = v.plan;

  // Steps: what each type restores.
  std::set<device_id> differing;
  for (auto& d : p.diffs)
    differing.insert(d.id);
  const bool incremental = type == "incremental";
  if (p.restore_configuration && (!incremental || p.configuration_differs))
    v.steps.push_back({"configuration", true, -1, {}});
  for (auto group : ctx.cfg.devices.restore_order()) {
    saga_step st{"group " + std::to_string(group), false, group, {}};
    for (auto dev : p.devices)
      if (ctx.cfg.devices.find(dev)->group == group && (!incremental || differing.count(dev)))
        st.devices.push_back(dev);
    if (!st.devices.empty()) v.steps.push_back(std::move(st));
  }

  json diffs = json::array();
  for (auto& d : p.diffs)
    diffs.push_back(diff_json(d));
  json steps = json::array();
  size_t planned = 0;
  for (auto& st : v.steps) {
    steps.push_back(step_json(st));
    planned += st.devices.size();
  }
  std::vector<device_id> order;
  for (auto& st : v.steps)
    order.insert(order.end(), st.devices.begin(), st.devices.end());
  result["plan"] = {{"configuration", std::any_of(v.steps.begin(), v.steps.end(),
                                                  [](auto& s) { return s.configuration; })},
                    {"configuration_differs", p.configuration_differs},
                    {"order", ids_json(order)},
                    {"steps", steps},
                    {"dependents", p.dependents},
                    {"differences", diffs}};

  auto warnings = p.warnings;
  if (type != "emergency" && !v.target.security.pcrs.empty()) {
    // The platform state today against the one the checkpoint was taken under.
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto now = ctx.store->key().read_pcrs();
    if (!now) {
      warnings.push_back("PCRs could not be read to compare with the checkpoint's (" +
                         now.err().message + ")");
    } else if (!now->empty()) {
      std::map<int, std::string> today(now->begin(), now->end());
      std::string differ;
      for (auto& [index, value] : v.target.security.pcrs) {
        auto it = today.find(index);
        if (it != today.end() && it->second != value)
          differ += (differ.empty() ? "" : ", ") + std::to_string(index);
      }
      if (!differ.empty())
        warnings.push_back("platform state differs from the checkpoint's: PCR " + differ +
                           " changed since it was taken");
    }
  }
  for (auto g : p.dependents)
    warnings.push_back("group " + std::to_string(g) +
                       " depends on the selection and is rolled back with it");
  result["warnings"] = warnings;
  result["skipped_quarantined"] = ids_json(p.quarantined);
  result["estimate"] = estimate(ctx, type, planned);
  return {};
}

// -- the saga ---------------------------------------------------------------------

class saga {
public:
  saga(node_context& ctx, device_calls& calls, saga_status& status, const progress_fn& progress)
      : ctx_(ctx), calls_(calls), status_(status), progress_(progress) {}

  control_reply run(const json& args);

private:
  // Ends a saga that changed nothing; the history still records it.
  control_reply fail(const char* phase, const error& e) {
    result_["failed_phase"] = phase;
    result_["duration_ms"] = ms_since(start_);
    result_["outcome"] = "refused";
    if (!journal_) {
      auto j = saga_journal::create(env::posix(), journal_dir(ctx_), status_.id);
      if (j) {
        note_journal(ctx_, status_.id);
        journal_ = std::move(*j);
        defer({{"t", "begin"},
               {"saga", status_.id},
               {"type", v_.type},
               {"target", v_.target_id},
               {"initiated_by", initiated_by_},
               {"reason", reason_},
               {"started_at", env::posix().now_unix_ns()},
               {"steps", json::array()}});
      }
    }
    if (journal_)
      commit({{"t", "end"},
              {"outcome", "refused"},
              {"failed_phase", phase},
              {"error", e.message},
              {"duration_ms", result_["duration_ms"]}});
    return error_reply(e, result_);
  }
  void report(const std::string& phase, const std::string& component, size_t done) {
    if (!progress_) return;
    progress_({{"saga", status_.id},
               {"phase", phase},
               {"component", component},
               {"devices_done", done},
               {"devices_total", devices_total_}});
  }
  void enter(int phase) {
    const auto now = env::posix().steady_ns();
    result_["phase_ms"][saga_phases[status_.phase.load()]] =
        static_cast<double>(now - phase_start_) / 1e6;
    phase_start_ = now;
    status_.phase = phase;
    report(saga_phases[phase], "", devices_done_);
  }
  // Records that need to be durable only before the next commit (group commit).
  void defer(json record) { pending_.push_back(std::move(record)); }
  status commit(json record) {
    pending_.push_back(std::move(record));
    auto batch = std::move(pending_);
    pending_.clear();
    return journal_->append_all(std::move(batch));
  }
  // Compensates the steps that started and ends the saga; returns the reply.
  control_reply compensate(const char* phase, const error& cause, const std::string& outcome);

  node_context& ctx_;
  device_calls& calls_;
  saga_status& status_;
  const progress_fn& progress_;
  int64_t start_ = env::posix().steady_ns();
  int64_t phase_start_ = start_;
  json result_;
  validated v_;
  std::unique_ptr<saga_journal> journal_;
  std::vector<size_t> started_; ///< steps whose step_start is journalled
  std::vector<json> pending_;   ///< deferred records, written with the next commit
  size_t devices_total_ = 0, devices_done_ = 0;
  std::string initiated_by_, reason_;
};

control_reply saga::compensate(const char* phase, const error& cause, const std::string& outcome) {
  spdlog::warn("rollback {} failed in {} ({}): compensating {} step(s)", status_.id, phase,
               cause.message, started_.size());
  result_["failed_phase"] = phase;
  std::vector<size_t> order(started_.rbegin(), started_.rend());
  json names = json::array();
  for (auto i : order)
    names.push_back(v_.steps[i].name);
  json failed;
  if (auto err = commit({{"t", "compensate_start"}, {"steps", order}, {"reason", cause.message}})) {
    failed = json::array({{{"id", "journal"}, {"error", err.message}}});
  } else {
    report("compensation", "", devices_done_);
    failed = apply_states(ctx_, calls_, v_.steps, order, by_id(v_.current), v_.current_config);
  }
  const bool ok = failed.empty();
  defer({{"t", "compensate_done"}, {"ok", ok}, {"failed", failed}});
  result_["compensated"] = {{"steps", names}, {"ok", ok}, {"failed", failed}};
  result_["duration_ms"] = ms_since(start_);
  std::string out = ok ? outcome : "compensation_failed";
  commit({{"t", "end"},
          {"outcome", out},
          {"failed_phase", phase},
          {"error", cause.message},
          {"failed", result_.value("failed", json::array())},
          {"duration_ms", ms_since(start_)}});
  result_["outcome"] = out;
  std::string msg =
      cause.message +
      (ok ? "; every step that ran was put back to the "
            "pre-rollback state and verified"
          : "; COMPENSATION FAILED for " + std::to_string(failed.size()) + " item(s), first " +
                failed[0]["id"].get<std::string>() + ": " + failed[0]["error"].get<std::string>());
  return error_reply(make_error(cause.code == errc::none ? errc::rollback_failed : cause.code, msg),
                     result_);
}

control_reply saga::run(const json& args) {
  result_ = {{"saga", status_.id},
             {"dry_run", false},
             {"success", false},
             {"phases_completed", json::array()},
             {"failed_phase", nullptr}};
  initiated_by_ = args.value("initiated_by", std::string("dsmilctl"));
  reason_ = args.value("reason", std::string());
  // -- validation, with the pre-rollback checkpoint and the journal started
  // as soon as the current state is known
  std::future<result<checkpoint_info>> pre;
  std::future<result<std::unique_ptr<saga_journal>>> journal;
  auto start_preparation = [&] {
    pre = std::async(std::launch::async, [this] {
      std::lock_guard<std::mutex> lock(ctx_.mu);
      checkpoint_request req;
      req.type = "pre-rollback";
      req.name = "pre-rollback " + status_.id;
      req.description = "state before rollback " + status_.id + " to " + v_.target_id;
      return ctx_.store->create(req, v_.current, v_.current_config);
    });
    journal = std::async(std::launch::async, [this] {
      auto j = saga_journal::create(env::posix(), journal_dir(ctx_), status_.id);
      if (j) note_journal(ctx_, status_.id);
      return j;
    });
  };
  auto err = validate(ctx_, calls_, args, result_, v_, start_preparation);
  if (!err && !v_.plan.critical_changes.empty() && !args.value("ack_critical", false) &&
      v_.type != "emergency") {
    std::string list;
    for (auto d : v_.plan.critical_changes)
      list += (list.empty() ? "" : ", ") + format_device_id(d) + " (" +
              ctx_.cfg.devices.find(d)->critical_role + ")";
    err = make_error(errc::critical_unacknowledged,
                     "rollback would change critical device " + list +
                         "; review with --dry-run, then repeat with --ack-critical");
  }
  {
    std::lock_guard<std::mutex> lock(ctx_.saga_mu); // status reads them
    status_.type = v_.type;
    status_.target = v_.target_id;
  }
  if (journal.valid()) {
    auto j = journal.get();
    if (j) journal_ = std::move(*j);
    if (!j && !err) err = j.err();
  }
  if (pre.valid()) {
    auto p = pre.get();
    if (p) {
      result_["pre_rollback"] = p->id;
      if (err) {
        // Refused: the state it saved was never left.
        std::lock_guard<std::mutex> lock(ctx_.mu);
        ctx_.store->remove(p->id);
        result_.erase("pre_rollback");
      }
    } else if (!err) {
      err = make_error(p.err().code, "cannot take the pre-rollback checkpoint: " + p.err().message);
      return fail("preparation", err);
    }
  }
  if (err) return fail("validation", err);
  for (auto& st : v_.steps)
    devices_total_ += st.devices.size();
  result_["phases_completed"].push_back("validation");

  // -- preparation: the pre-rollback checkpoint is in place; the journal's
  // begin record goes out with the first step
  enter(1);
  json steps = json::array();
  for (auto& st : v_.steps)
    steps.push_back(step_json(st));
  defer({{"t", "begin"},
         {"saga", status_.id},
         {"type", v_.type},
         {"target", v_.target_id},
         {"pre_rollback", result_["pre_rollback"]},
         {"initiated_by", initiated_by_},
         {"reason", reason_},
         {"started_at", env::posix().now_unix_ns()},
         {"steps", steps}});
  result_["phases_completed"].push_back("preparation");

  // -- execution
  enter(2);
  defer({{"t", "phase"}, {"phase", "execution"}});
  auto target = by_id(v_.target.devices);
  const auto step_limit = int64_t{ctx_.cfg.rollback_step_timeout_ms} * 1000000;
  const auto saga_limit = int64_t{ctx_.cfg.rollback_timeout_ms} * 1000000;
  json rolled_back = json::array();
  std::vector<device_id> restored;
  for (size_t i = 0; i < v_.steps.size(); ++i) {
    if (status_.preempt)
      return compensate("execution", make_error(errc::busy, "pre-empted by an emergency rollback"),
                        "preempted");
    auto& st = v_.steps[i];
    // Durable before the step touches anything, with the records before it.
    if (auto err = commit({{"t", "step_start"}, {"step", i}})) {
      if (i == 0) return fail("preparation", err); // the saga never began
      return compensate("execution", err, "compensated");
    }
    started_.push_back(i);
    report("execution", st.name, devices_done_);
    const auto step_start = env::posix().steady_ns();
    if (st.configuration) {
      std::lock_guard<std::mutex> lock(ctx_.mu);
      restore_config(ctx_.configuration, v_.target.configuration);
      rolled_back.push_back("configuration");
    } else {
      std::vector<device_patch> patches;
      for (auto dev : st.devices)
        patches.push_back(restore_patch(target.at(dev)));
      std::vector<std::pair<device_id, error>> errors;
      for (auto& s : calls_.write_many(patches, errors))
        restored.push_back(s.id);
      devices_done_ += st.devices.size() - errors.size();
      if (!errors.empty()) {
        json failed = json::array();
        for (auto& [dev, e] : errors)
          failed.push_back({{"id", format_device_id(dev)}, {"error", e.message}});
        result_["failed"] = failed;
        defer({{"t", "step_failed"}, {"step", i}, {"failed", failed}});
        auto& [dev, e] = errors.front();
        return compensate(
            "execution",
            make_error(errc::rollback_failed, "rollback stopped in " + st.name + ": device " +
                                                  format_device_id(dev) + ": " + e.message),
            "compensated");
      }
    }
    defer({{"t", "step_done"}, {"step", i}});
    const auto now = env::posix().steady_ns();
    if (now - step_start > step_limit)
      return compensate(
          "execution",
          make_error(errc::timeout, st.name + " took longer than step_timeout_ms (" +
                                        std::to_string(ctx_.cfg.rollback_step_timeout_ms) + " ms)"),
          "compensated");
    if (now - start_ > saga_limit)
      return compensate("execution",
                        make_error(errc::timeout, "the rollback took longer than timeout_ms (" +
                                                      std::to_string(ctx_.cfg.rollback_timeout_ms) +
                                                      " ms)"),
                        "compensated");
  }
  if (!restored.empty()) rolled_back.push_back("devices");
  result_["rolled_back"] = {{"components", rolled_back}, {"devices", ids_json(restored)}};
  result_["phases_completed"].push_back("execution");

  // -- verification: read back and compare bit for bit
  enter(3);
  defer({{"t", "phase"}, {"phase", "verification"}});
  json failed = read_back(calls_, restored, target);
  {
    std::lock_guard<std::mutex> lock(ctx_.mu);
    for (auto& st : v_.steps)
      if (st.configuration && !ctx_.configuration.same_restorable(v_.target.configuration))
        failed.push_back({{"id", "configuration"}, {"error", "differs after restore"}});
  }
  if (!failed.empty()) {
    result_["failed"] = failed;
    return compensate("verification",
                      make_error(errc::rollback_failed,
                                 "verification failed for " + std::to_string(failed.size()) +
                                     " item(s), first " + failed[0]["id"].get<std::string>() +
                                     ": " + failed[0]["error"].get<std::string>()),
                      "compensated");
  }
  result_["phases_completed"].push_back("verification");

  // -- cleanup
  enter(4);
  defer({{"t", "phase"}, {"phase", "cleanup"}});
  result_["phases_completed"].push_back("cleanup");
  result_["phase_ms"]["cleanup"] = ms_since(phase_start_);
  result_["duration_ms"] = ms_since(start_);
  if (auto err =
          commit({{"t", "end"}, {"outcome", "completed"}, {"duration_ms", result_["duration_ms"]}}))
    return compensate("cleanup", err, "compensated");
  result_["success"] = true;
  result_["outcome"] = "completed";
  report("done", "", devices_done_);
  spdlog::info(
      "rollback {} to {} done ({}): {} devices{}, {:.1f} ms", status_.id, v_.target_id, v_.type,
      restored.size(),
      std::any_of(v_.steps.begin(), v_.steps.end(), [](auto& s) { return s.configuration; })
          ? " and configuration"
          : "",
      ms_since(start_));
  return ok_reply(result_);
}

} // namespace

control_reply run_rollback(node_context& ctx, device_calls& calls, const json& args,
                           saga_status* status, const progress_fn& progress) {
  if (status) return saga(ctx, calls, *status, progress).run(args);
  // Dry run: validation alone.
  const auto start = env::posix().steady_ns();
  json result = {{"dry_run", true},
                 {"success", false},
                 {"phases_completed", json::array()},
                 {"failed_phase", nullptr}};
  validated v;
  if (auto err = validate(ctx, calls, args, result, v, nullptr)) {
    result["failed_phase"] = "validation";
    result["duration_ms"] = ms_since(start);
    return error_reply(err, result);
  }
  result["phases_completed"].push_back("validation");
  result["success"] = true;
  result["duration_ms"] = ms_since(start);
  return ok_reply(result);
}

// -- recovery ------------------------------------------------------------------

namespace {

void recover_saga(node_context& ctx, device_calls& calls, const std::string& dir,
                  const std::string& id);

} // namespace

void recover_sagas(node_context& ctx, device_calls& calls) {
  auto dir = journal_dir(ctx);
  auto ids = list_journals(env::posix(), dir);
  if (!ids) {
    spdlog::error("cannot list saga journals in {}: {}", dir, ids.err().message);
    return;
  }
  for (auto& id : *ids) {
    try {
      recover_saga(ctx, calls, dir, id);
    } catch (const std::exception& e) {
      spdlog::error("saga {}: its journal cannot be settled ({}); left for the next start", id,
                    e.what());
    }
  }
}

namespace {

void recover_saga(node_context& ctx, device_calls& calls, const std::string& dir,
                  const std::string& id) {
  auto records = read_journal(env::posix(), journal_path(dir, id));
  if (!records) {
    spdlog::error("saga {}: {}", id, records.err().message);
    return;
  }
  auto& rs = *records;
  if (std::any_of(rs.begin(), rs.end(), [](const json& r) { return r["t"] == "end"; })) return;
  if (rs.empty() || rs.front()["t"] != "begin") {
    // Killed before its begin record was durable: nothing was touched.
    spdlog::info("saga {} never began; removing its journal", id);
    remove_durable(env::posix(), journal_path(dir, id));
    return;
  }
  const auto start = env::posix().steady_ns();
  auto& begin = rs.front();
  std::vector<saga_step> steps;
  for (auto& st : begin["steps"])
    steps.push_back(step_from_json(st));
  std::vector<size_t> started;
  for (auto& r : rs)
    if (r["t"] == "step_start") started.push_back(r["step"].get<size_t>());
  auto journal = saga_journal::reopen(env::posix(), dir, id);
  if (!journal) {
    spdlog::error("saga {}: {}", id, journal.err().message);
    return;
  }
  auto& jl = **journal;
  const bool resume = ctx.cfg.rollback_on_interrupted == "resume";
  auto load = [&](const std::string& cp) {
    std::lock_guard<std::mutex> lock(ctx.mu);
    return ctx.store->load(cp);
  };
  jl.append({{"t", "recovered"}, {"policy", resume ? "resume" : "compensate"}});
  if (resume) {
    auto target = load(begin["target"].get<std::string>());
    if (target) {
      std::vector<size_t> all;
      for (size_t i = 0; i < steps.size(); ++i)
        all.push_back(i);
      auto failed =
          apply_states(ctx, calls, steps, all, by_id(target->devices), target->configuration);
      if (failed.empty()) {
        jl.append({{"t", "end"}, {"outcome", "completed"}, {"duration_ms", ms_since(start)}});
        spdlog::warn("saga {} was interrupted; resumed to its target {}", id,
                     begin["target"].get<std::string>());
        return;
      }
      spdlog::warn("saga {}: resuming failed ({}); compensating", id, failed.dump());
      for (size_t i = 0; i < steps.size(); ++i)
        if (std::find(started.begin(), started.end(), i) == started.end()) started.push_back(i);
    }
  }
  auto pre = load(begin["pre_rollback"].get<std::string>());
  if (!pre) {
    spdlog::error("saga {} was interrupted and cannot be compensated: pre-rollback checkpoint "
                  "{}: {}",
                  id, begin["pre_rollback"].get<std::string>(), pre.err().message);
    return;
  }
  std::vector<size_t> order(started.rbegin(), started.rend());
  jl.append({{"t", "compensate_start"}, {"steps", order}, {"reason", "interrupted"}});
  auto failed = apply_states(ctx, calls, steps, order, by_id(pre->devices), pre->configuration);
  const bool ok = failed.empty();
  jl.append({{"t", "compensate_done"}, {"ok", ok}, {"failed", failed}});
  if (!ok) {
    // No end record: the next start tries again.
    spdlog::error("saga {} was interrupted; compensation failed for {}", id, failed.dump());
    return;
  }
  jl.append({{"t", "end"},
             {"outcome", "compensated"},
             {"failed_phase", "interrupted"},
             {"error", "the node stopped during the rollback"},
             {"duration_ms", ms_since(start)}});
  spdlog::warn("saga {} was interrupted; compensated {} step(s) back to pre-rollback "
               "checkpoint {}",
               id, order.size(), begin["pre_rollback"].get<std::string>());
}

} // namespace

// -- history commands ------------------------------------------------------------

control_reply cmd_rollback_history(node_context& ctx, device_calls&, const json& args) {
  auto h = history(ctx);
  if (!h) return error_reply(h.err());
  size_t limit = args.value("limit", size_t{50});
  json out = json::array();
  for (auto it = h->rbegin(); it != h->rend() && out.size() < limit; ++it) {
    json s = *it;
    s.erase("steps");
    out.push_back(std::move(s));
  }
  return ok_reply({{"rollbacks", out}, {"total", h->size()}});
}

control_reply cmd_rollback_show(node_context& ctx, device_calls&, const json& args) {
  auto id = arg_string(args, "id");
  if (!id) return error_reply(id.err());
  auto dir = journal_dir(ctx);
  auto ids = list_journals(env::posix(), dir);
  if (!ids) return error_reply(ids.err());
  std::vector<std::string> hits;
  for (auto& s : *ids)
    if (s.compare(0, id->size(), *id) == 0) hits.push_back(s);
  if (hits.empty())
    return error_reply(make_error(
        errc::not_found, "no rollback '" + *id + "'; 'dsmilctl rollback history' lists them"));
  if (hits.size() > 1)
    return error_reply(make_error(errc::invalid_argument,
                                  "rollback id prefix '" + *id + "' matches " +
                                      std::to_string(hits.size()) + " rollbacks; give more of it"));
  auto records = read_journal(env::posix(), journal_path(dir, hits[0]));
  if (!records) return error_reply(records.err());
  auto s = summarize(hits[0], *records);
  s["journal"] = *records;
  return ok_reply(s);
}

} // namespace dsmil
