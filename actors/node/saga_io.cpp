// dsmil.saga_io: a rollback saga's worker for what blocks. It validates the
// rollback (capturing every component, loading and checking the checkpoint)
// and, as soon as the current state is known, takes the pre-rollback
// checkpoint and creates the journal, on threads of the env, both joined
// before validation's verdict goes back; then it appends the saga's journal
// records, each batch fsynced before it answers. One per saga, linked to it.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/caf_glue.hpp"
#include "actors/node/saga_protocol.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/saga/journal.hpp"

namespace dsmil {

using namespace rollback_detail;

namespace {

class saga_io final : public caf::blocking_actor {
public:
  saga_io(caf::actor_config& cfg, std::shared_ptr<node_context> ctx,
          std::shared_ptr<saga_status> st)
      : caf::blocking_actor(cfg), ctx_(std::move(ctx)), st_(std::move(st)) {}
  const char* name() const override { return "dsmil.saga_io"; }

  void act() override {
    try {
      serve();
    } catch (const actor_killed&) {
      fail_state(caf::exit_reason::kill);
    }
    give_back();
  }

private:
  void serve() {
    actor_calls calls(this, *ctx_);
    bool running = true;
    receive_while([&] { return running; })(
        [&](prepare_atom, const std::string& args) {
          auto out = std::make_shared<saga_prepared>();
          try {
            prepare(calls, json::parse(args), *out);
          } catch (const std::exception& e) {
            out->err = make_error(errc::internal, std::string("internal error: ") + e.what());
          }
          if (calls.exit_requested()) running = false;
          return out;
        },
        [&](commit_atom, journal_batch& batch) -> caf::result<commit_atom> {
          if (auto err = commit(std::move(*batch))) return to_caf(err);
          return commit_atom::value;
        },
        [&](finish_atom) {
          give_back();
          return release(calls);
        },
        [&](caf::exit_msg& m) {
          if (m.reason == caf::exit_reason::kill) throw actor_killed{};
          running = false; // the saga ended, or the node stops
        });
    for (auto& w : release(calls))
      spdlog::warn("rollback {}: {}", st_->id, w);
  }

  // Every component runs again (agents resume), once.
  std::vector<std::string> release(actor_calls& calls) {
    std::vector<std::string> warnings;
    if (!held_) return warnings;
    held_ = false;
    component_set components(*ctx_, calls);
    // Bounded: a component still inside a call the saga abandoned (hung in
    // apply) is released when that call returns, without the saga waiting.
    calls.set_deadline(ctx_->os->steady_ns() +
                       int64_t{ctx_->cfg.rollback_compensation_step_timeout_ms} * 1000000);
    release_all(components, warnings);
    calls.set_deadline(0);
    return warnings;
  }

  status commit(std::vector<journal_record> batch) {
    if (!journal_) {
      auto j = saga_journal::create(*ctx_->os, journal_dir(*ctx_), st_->id);
      if (!j) return j.err();
      note_journal(*ctx_, st_->id);
      journal_ = std::move(*j);
    }
    return journal_->append_all(std::move(batch));
  }

  // The space reserve, released for the saga's safety net when space was
  // short, is held again.
  void give_back() {
    std::lock_guard<std::recursive_mutex> lock(ctx_->mu);
    if (ctx_->reserve && ctx_->reserve->held() < ctx_->reserve->wanted()) hold_reserve(*ctx_);
  }

  // Whether the file system has room for what the saga writes before it can
  // compensate (pre-rollback checkpoint, journal), counting the reserve; the
  // error names both figures. `release` says whether the reserve is needed.
  error check_room(const validated& v, bool& release) {
    uint64_t state_bytes = 0;
    size_t records = 0;
    for (auto& [name, img] : v.current) {
      for (auto& [key, bytes] : img.records)
        state_bytes += key.size() + bytes.size() + 64;
      for (auto& [key, bytes] : img.streams)
        state_bytes += bytes.size();
      records += img.records.size() + img.streams.size();
    }
    const uint64_t need = rollback_safety_net_bytes(records, state_bytes);
    auto fs = ctx_->os->space(ctx_->store->dir());
    if (!fs) return {}; // cannot tell: the checkpoint itself will say
    uint64_t reserve = 0;
    {
      std::lock_guard<std::recursive_mutex> lock(ctx_->mu);
      reserve = ctx_->reserve->held();
    }
    release = fs->free < 2 * need; // with room to spare for what else writes meanwhile
    if (fs->free + reserve >= need) return {};
    return make_error(errc::no_space,
                      "no space left for the rollback's safety net: its pre-rollback checkpoint "
                      "and journal need about " +
                          std::to_string(need) + " bytes, the store's file system has " +
                          std::to_string(fs->free) + " free and the reserve " +
                          std::to_string(reserve) +
                          "; free space (checkpoint delete, store gc) and try again");
  }

  void prepare(actor_calls& calls, const json& args, saga_prepared& out) {
    auto& ctx = *ctx_;
    out.result = {{"saga", st_->id},
                  {"dry_run", false},
                  {"success", false},
                  {"phases_completed", json::array()},
                  {"failed_phase", nullptr}};
    auto& v = out.v;
    result<checkpoint_info> pre = make_error(errc::internal, "not taken");
    result<std::unique_ptr<saga_journal>> journal = make_error(errc::internal, "not started");
    std::unique_ptr<thread_handle> pre_thread, journal_thread;
    error no_room; // the safety net would not fit: refused before anything is written
    bool release = false;
    auto start_preparation = [&] {
      if ((no_room = check_room(v, release))) return;
      pre_thread = ctx.os->start_thread([this, &ctx, &v, release, &pre] {
        std::lock_guard<std::recursive_mutex> lock(ctx.mu);
        // The reserve was kept for this: the pre-rollback checkpoint and the
        // journal never fail for lack of the space it held. Released only
        // when the free space alone is short (and held again after the saga).
        if (release)
          if (auto err = ctx.reserve->release())
            spdlog::warn("rollback {}: the space reserve cannot be released: {}", st_->id,
                         err.message);
        checkpoint_request req;
        req.type = checkpoint_type::pre_rollback;
        req.name = "pre-rollback " + st_->id;
        req.description = "state before rollback " + st_->id + " to " + v.target_id;
        pre = create_checkpoint(*ctx.store, req, v.current, &ctx.streams);
      });
      journal_thread = ctx.os->start_thread([this, &ctx, &journal] {
        journal = saga_journal::create(*ctx.os, journal_dir(ctx), st_->id);
        if (journal) note_journal(ctx, st_->id);
      });
    };
    component_set components(ctx, calls);
    // Held still (agents quiesced) from before the current state is
    // captured until the saga ends: the pre-rollback checkpoint is the
    // state compensation puts back, with no work lost in between.
    // Bounded like a step, plus the agents' time to quiesce (after which
    // the late ones are cancelled): a component hung in an earlier saga's
    // call refuses this one instead of holding it up.
    std::vector<std::string> held_warnings;
    calls.set_deadline(
        ctx.os->steady_ns() +
        (int64_t{ctx.cfg.rollback_step_timeout_ms} + ctx.cfg.agents.stop_timeout_ms) * 1000000);
    auto err = hold_all(components, held_warnings);
    calls.set_deadline(0);
    held_ = out.held = !err;
    if (!err) err = validate(ctx, calls, components, args, out.result, v, start_preparation);
    if (!held_warnings.empty()) {
      auto& w = out.result["warnings"];
      if (!w.is_array()) w = json::array();
      for (auto& line : held_warnings)
        w.push_back(line);
    }
    if (!err && no_room) err = no_room;
    if (!err && !v.needs_ack.empty() && !args.value("ack_critical", false) &&
        v.type != rollback_type::emergency) {
      std::string list;
      for (auto& item : v.needs_ack)
        list += (list.empty() ? "" : ", ") + item;
      err = make_error(errc::critical_unacknowledged,
                       "rollback would change critical device " + list +
                           "; review with --dry-run, then repeat with --ack-critical");
    }
    {
      std::lock_guard<std::mutex> lock(ctx.saga_mu); // status reads them
      st_->type = enum_name(v.type);
      st_->target = v.target_id;
    }
    if (journal_thread) {
      journal_thread->join();
      if (journal) journal_ = std::move(*journal);
      if (!journal && !err) err = journal.err();
    }
    out.borrowed = release;
    if (pre_thread) {
      pre_thread->join();
      if (pre) {
        if (err) {
          // Refused: the state it saved was never left.
          std::lock_guard<std::recursive_mutex> lock(ctx.mu);
          ctx.store->remove(pre->id);
        } else {
          out.pre_rollback = pre->id;
          out.result["pre_rollback"] = pre->id;
        }
      } else if (!err) {
        out.err = make_error(pre.err().code,
                             "cannot take the pre-rollback checkpoint: " + pre.err().message);
        out.failed_phase = saga_phase::preparation;
        return;
      }
    }
    out.err = err;
  }

  std::shared_ptr<node_context> ctx_;
  std::shared_ptr<saga_status> st_;
  std::unique_ptr<saga_journal> journal_;
  bool held_ = false; ///< hold_all() succeeded and release() has not run
};

} // namespace

caf::actor spawn_saga_io(caf::event_based_actor* saga, std::shared_ptr<node_context> ctx,
                         std::shared_ptr<saga_status> st) {
  return saga->spawn<saga_io, caf::linked>(std::move(ctx), std::move(st));
}

} // namespace dsmil
