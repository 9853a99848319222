// Internals of the node's actors (control, reader, writer, sagas), shared by
// their command files.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/blocking_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/devices/device_service.hpp"
#include "actors/node/component_handler.hpp"
#include "actors/node/node.hpp"
#include "actors/messages.hpp"
#include "actors/node_api.hpp"
#include "dsmil/agents.hpp"
#include "dsmil/system_config.hpp"
#include "runtime/components/checkpoint_images.hpp"
#include "runtime/components/configuration_component.hpp"
#include "runtime/components/devices_component.hpp"
#include "runtime/components/security_component.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/saga/saga_types.hpp"
#include "runtime/store/reserve.hpp"
#include "runtime/store/store.hpp"
#include "runtime/auth/audit_log.hpp"
#include "runtime/auth/node_pki.hpp"
#include "runtime/base/uuid.hpp"

namespace dsmil {

using nlohmann::json;

/// The rollback saga that is running (or a saga settling what its
/// compensation could not put back: type "settle"), as the node sees it.
struct saga_status {
  std::string id;
  std::string type;
  std::string target;
  std::atomic<bool> preempt{false};   ///< an emergency rollback waits for this one to compensate
  std::atomic<bool> cancelled{false}; ///< preempt came from rollback.cancel
  std::atomic<saga_phase> phase{saga_phase::validation};
  caf::actor_addr actor; ///< the saga's actor, once it runs (guarded by saga_mu): told preempt_atom
};

/// What an estimate needs of a completed saga.
struct saga_timing {
  std::string type;
  int64_t devices = 0;
  double duration_ms = 0;
};

struct node_context {
  /// Every file, clock and thread effect of the node: the env start_node()
  /// was given.
  env* os = nullptr;
  node_config cfg;
  std::shared_ptr<sim_driver> sim;
  device_service devices; ///< the root supervisor
  std::unique_ptr<checkpoint_store> store;
  /// The streams checkpoints wrote last (the agents'): see stream_cache.
  stream_cache streams;
  /// Room for a rollback's safety net, outside the store (guarded by mu).
  std::unique_ptr<space_reserve> reserve;
  /// The components besides devices (whose component speaks through the
  /// calling actor's actor_calls: see component_set).
  std::shared_ptr<configuration_component> configuration; ///< for config show/set
  /// The agents' host, when the node has the agents component ([agents]
  /// backend, or a host's): for agent list and show. Thread-safe.
  std::shared_ptr<agent_host> agents;
  /// The same host when it is the reference one, for its load lever.
  std::shared_ptr<sim_agent_host> agents_sim;
  /// The handlers of configuration, security, then a host's components, in
  /// that order: checkpoints and sagas reach them only by message.
  std::vector<handler_ref> handlers;
  retention_policy retention; ///< applied after each automatic checkpoint
  int64_t started_ns = 0;
  std::shared_ptr<published_endpoint> endpoint;
  /// Who may use the control endpoint (its CA, revocations) and what they
  /// did (the audit log): served by tls.* and audit commands.
  std::shared_ptr<node_pki> pki;
  std::shared_ptr<audit_log> audit;
  /// Run once, when start-up recovery is done and commands are served
  /// (the reference agents start working then).
  std::function<void()> on_ready;

  /// Held by dsmil.writer for each command and by a rollback saga for its
  /// store work, so the two never change the store at once (dsmil.reader
  /// takes it never: the store, the configuration and the history guard
  /// themselves). Recursive: some commands call helpers that take it too.
  std::recursive_mutex mu;
  /// The running saga (guarded by saga_mu).
  std::mutex saga_mu;
  std::shared_ptr<saga_status> running;
  bool emergency_waiting = false; ///< an emergency saga waits for `running` to stop
  /// The saga actor waiting for its turn: `running` sends it tick_atom as it
  /// ends (a message, so the wait is an actor's receive, not a thread's).
  caf::actor next_saga;
  /// Sagas started since the node started: a settler stops when it changes.
  uint64_t sagas_started = 0;
  /// The saga actor putting back what a compensation could not, if any:
  /// told to stop when the node stops.
  caf::actor_addr settler; ///< weak: it holds this context
  /// dsmil.control has stopped: no settler starts from then on (a saga that
  /// ends as the node stops leaves its items to the next start's journal).
  bool stopping = false;
  /// dsmil.reader and dsmil.writer as they are now (restarted by
  /// dsmil.control when they die; guarded by saga_mu). Weak: they hold
  /// this context.
  caf::actor_addr reader, writer;
  caf::actor_addr scheduler; ///< dsmil.scheduler, when automatic checkpoints are on
  uuid_v7_generator saga_ids;
  /// The saga history, read from the journals once and then kept up to date
  /// as sagas start and end (guarded by history_mu).
  std::mutex history_mu;
  bool history_loaded = false;
  std::set<std::string> journal_ids;        ///< every saga with a journal
  std::set<std::string> unsummarized;       ///< of those, not in saga_history yet
  std::map<std::string, json> saga_history; ///< summaries of ended sagas, by id
  std::vector<saga_timing> completed_sagas; ///< for estimates, oldest first
};

/// Thrown out of a blocking actor's wait when the actor is sent
/// caf::exit_reason::kill (CAF leaves a blocking actor alive until it
/// receives an exit message itself): unwinds whatever it was doing; its
/// act() ends it with that reason, and its supervisor takes over.
struct actor_killed {};

/// Longest a device call can take: every attempt with its largest backoff.
std::chrono::milliseconds device_call_timeout(const node_config& cfg);
/// How much longer than the limit a step asked of a component handler is
/// waited for: the handler answers at the limit itself (naming what is not
/// done), and that answer needs a moment to come.
constexpr std::chrono::milliseconds handler_grace{1000};

/// The devices component's handler for one saga (devices_handler.cpp):
/// event-based, asynchronous, linked to `parent` (it ends with it).
handler_ref spawn_devices_handler(caf::event_based_actor* parent,
                                  std::shared_ptr<node_context> ctx);

/// Tells dsmil.writer to settle, from its journal, a saga whose actor
/// stopped before the saga ended (as start-up recovery would).
using recover_atom = caf::atom_constant<caf::atom("recover")>;

/// Calls from one of the node's blocking actors (reader, writer, a saga's
/// worker dsmil.saga_io, the settler) to
/// the device actors and the component handlers. Requests to many devices
/// go out together and are collected afterwards, so they run in parallel.
class actor_calls final : public device_port {
public:
  actor_calls(caf::blocking_actor* self, node_context& ctx) : self_(self), ctx_(ctx) {}

  result<device_state> read(device_id id);
  result<device_state> write(const device_patch& p);
  /// Reads many devices; `errors` gets one entry per device that failed.
  std::vector<device_state> read_many(const std::vector<device_id>& ids,
                                      std::vector<std::pair<device_id, error>>& errors) override;
  std::vector<device_state> write_many(const std::vector<device_patch>& patches,
                                       std::vector<std::pair<device_id, error>>& errors) override;
  result<std::vector<device_health>> health();

  /// A component's handler asked, bounded like a device call (by the
  /// deadline when set, else [components] call_timeout_ms) and pre-emptible
  /// the same way.
  result<component_image> capture(const handler_ref& h);
  result<std::vector<std::string>> hold(const handler_ref& h);
  std::vector<std::string> release(const handler_ref& h);
  result<component_plan> plan(const handler_ref& h, const component_image& now,
                              const component_image& target, const plan_request& req);
  result<std::vector<failed_item>> apply(const handler_ref& h, const saga_step& st,
                                         const component_image& target);
  result<std::vector<failed_item>> read_back(const handler_ref& h, const saga_step& st,
                                             const component_image& target);
  /// Answered by the handler itself (never behind a hung call).
  result<component_health> health(const handler_ref& h);

  /// Every request from now on gives up at `steady_ns` (the node env's
  /// steady clock) if that comes before its own timeout: a saga step's
  /// time limit interrupts the step, on the actor clock. 0: no deadline.
  void set_deadline(int64_t steady_ns) {
    deadline_ns_ = steady_ns;
    deadline_hit_ = false;
  }
  /// Whether a deadline is set and has passed, or a request gave up at it.
  bool past_deadline() const;
  /// While set, a preempt_atom sent to this actor stops the wait for the
  /// outstanding answers at once: they fail with errc::busy (the settler
  /// sets it: a rollback that starts takes over at once).
  void set_preemptible(bool p) {
    preemptible_ = p;
    preempted_ = false;
  }

  caf::blocking_actor* self() { return self_; }
  /// Whether an exit message (the node stopping) ended a wait: the actor
  /// should finish what it does and end. An exit with reason kill throws
  /// actor_killed instead.
  bool exit_requested() const { return exit_requested_; }

private:
  // `t`, or less when the deadline comes first.
  std::chrono::milliseconds timeout(std::chrono::milliseconds t) const;
  template <class T, class Request>
  std::vector<result<T>> gather(size_t n, Request request, std::chrono::milliseconds limit);
  template <class T, class Ask> result<T> ask_handler(const handler_ref& h, Ask ask);
  template <class Atom>
  result<std::vector<failed_item>> ask_step(const handler_ref& h, Atom atom, const saga_step& st,
                                            const component_image& target);

  caf::blocking_actor* self_;
  node_context& ctx_;
  int64_t deadline_ns_ = 0;
  bool preemptible_ = false;
  bool preempted_ = false;    ///< stopped by preempt_atom: later waits end at once too
  bool deadline_hit_ = false; ///< a request gave up at the deadline since it was set
  bool exit_requested_ = false;
  uint64_t gen_ = 0; ///< numbers each gather, so late answers are told apart
};

/// A component behind its handler, called from a blocking actor through
/// its actor_calls (so with the caller's deadline). A call that gets no
/// answer fails: capture and plan with the error, apply and read_back with
/// every item of the step.
class handler_proxy final : public component {
public:
  handler_proxy(handler_ref h, actor_calls& calls) : h_(std::move(h)), calls_(calls) {}
  std::string name() const override { return h_.name; }
  bool optional() const override { return h_.optional; }
  result<component_image> capture() override { return calls_.capture(h_); }
  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& req) override {
    return calls_.plan(h_, now, target, req);
  }
  std::vector<failed_item> apply(const saga_step& st, const component_image& target) override;
  std::vector<failed_item> read_back(const saga_step& st, const component_image& target) override;
  result<std::vector<std::string>> hold() override { return calls_.hold(h_); }
  std::vector<std::string> release() override { return calls_.release(h_); }

private:
  handler_ref h_;
  actor_calls& calls_;
};

/// The node's components in DESIGN order (configuration, security, devices,
/// then a host's): the devices component speaking to the device actors
/// through `calls`, the others to their handlers.
class component_set {
public:
  component_set(node_context& ctx, actor_calls& calls);
  const std::vector<component*>& all() const { return all_; }
  component* find(const std::string& name) const;

private:
  devices_component devices_;
  std::vector<std::unique_ptr<handler_proxy>> proxies_;
  std::vector<component*> all_;
};

/// Captures every component at one instant; an optional one that cannot be
/// reached is left out with a warning. Errors name the component.
result<system_image> capture_all(const component_set& components,
                                 std::vector<std::string>& warnings);
/// Holds every component for a rollback (component::hold), warnings to
/// `warnings`; on error releases what it held and names the component.
status hold_all(const component_set& components, std::vector<std::string>& warnings);
/// Releases every component; what could not be restarted goes to `warnings`.
void release_all(const component_set& components, std::vector<std::string>& warnings);

/// dsmil.control (node_actor.cpp): routes commands, supervises the workers
/// and the sagas.
node_api spawn_control(caf::actor_system& sys, std::shared_ptr<node_context> ctx);
/// The actor of one rollback saga (saga_actor.cpp); it answers the
/// (rollback_request, client) it is sent with control_reply.
caf::actor spawn_saga(caf::actor_system& sys, std::shared_ptr<node_context> ctx,
                      std::shared_ptr<saga_status> st);

control_reply ok_reply(const json& body);
control_reply error_reply(const error& e, const json& body = json::object());
/// `reply` with `warnings` added to its body's "warnings".
control_reply with_warnings(control_reply reply, const std::vector<std::string>& warnings);

/// Argument helpers: errors are invalid_argument naming the argument.
result<std::string> arg_string(const json& args, const char* key);
/// A device id the user typed, resolved against the device map.
result<device_id> arg_device(const node_context& ctx, const std::string& id);

/// Holds the space reserve at its configured or automatic size; a failure
/// (a full disk) is logged, and status warns. REQUIRES: ctx.mu held, or no
/// other thread yet.
void hold_reserve(node_context& ctx);

/// A failed answer of any reply type: `return fail(err);`.
struct fail {
  explicit fail(error e) : e_(std::move(e)) {}
  template <class T> operator answer<T>() const { return answer<T>{e_.code, e_.message, {}}; }
  error e_;
};
template <class T> answer<T> ok(T body) {
  return answer<T>{errc::none, "", std::move(body)};
}
/// A failure that still says what it found.
template <class T> answer<T> fail_with(const error& e, T body) {
  return answer<T>{e.code, e.message, std::move(body)};
}

/// A required string argument: invalid_argument naming it when empty.
error require(const std::string& value, const char* name);

checkpoint_view to_view(const checkpoint_info& i);

// The typed commands, one overload each (dsmil/control.hpp says what they
// do). REQUIRES: ctx.mu held for long reads and changes (dsmil.writer).
// node_devices.cpp:
answer<status_reply> run(node_context&, actor_calls&, const status_request&);
answer<device_list_reply> run(node_context&, actor_calls&, const device_list_request&);
answer<device_reply> run(node_context&, actor_calls&, const device_show_request&);
answer<device_reply> run(node_context&, actor_calls&, const device_set_request&);
answer<device_fault_reply> run(node_context&, actor_calls&, const device_fault_request&);
answer<device_crash_reply> run(node_context&, actor_calls&, const device_crash_request&);
answer<system_config> run(node_context&, actor_calls&, const config_show_request&);
answer<system_config> run(node_context&, actor_calls&, const config_set_request&);
// node_agents.cpp:
answer<agent_list_reply> run(node_context&, actor_calls&, const agent_list_request&);
answer<agent_view> run(node_context&, actor_calls&, const agent_show_request&);
answer<agent_load_reply> run(node_context&, actor_calls&, const agent_load_request&);
answer<rollback_cancel_reply> run(node_context&, actor_calls&, const rollback_cancel_request&);
// node_checkpoints.cpp:
answer<checkpoint_create_reply> run(node_context&, actor_calls&, const checkpoint_create_request&);
answer<checkpoint_list_reply> run(node_context&, actor_calls&, const checkpoint_list_request&);
answer<checkpoint_show_reply> run(node_context&, actor_calls&, const checkpoint_show_request&);
answer<checkpoint_verify_reply> run(node_context&, actor_calls&, const checkpoint_verify_request&);
answer<checkpoint_delete_reply> run(node_context&, actor_calls&, const checkpoint_delete_request&);
answer<checkpoint_pin_reply> run(node_context&, actor_calls&, const checkpoint_pin_request&);
answer<store_check_reply> run(node_context&, actor_calls&, const store_check_request&);
answer<store_gc_reply> run(node_context&, actor_calls&, const store_gc_request&);
answer<store_prune_reply> run(node_context&, actor_calls&, const store_prune_request&);
answer<retention_reply> run(node_context&, actor_calls&, const retention_request&);
// node_keys.cpp:
answer<keys_reply> run(node_context&, actor_calls&, const keys_show_request&);
answer<keys_reply> run(node_context&, actor_calls&, const keys_init_request&);

// node_access.cpp
answer<tls_issue_reply> run(node_context&, actor_calls&, const tls_issue_request&);
answer<tls_revoke_reply> run(node_context&, actor_calls&, const tls_revoke_request&);
answer<tls_list_reply> run(node_context&, actor_calls&, const tls_list_request&);
answer<audit_reply> run(node_context&, actor_calls&, const audit_request&);
answer<audit_verify_reply> run(node_context&, actor_calls&, const audit_verify_request&);

/// What a saga whose compensation failed leaves to put back: its steps in
/// compensation order and the pre-rollback image. A settler retries it
/// after the saga answered, until it is done, a newer rollback takes over,
/// or the node stops.
struct settle_job {
  std::string saga;
  std::string pre_rollback;
  std::vector<saga_step> steps;
  std::vector<size_t> order;
  system_image image;
  std::vector<std::string> items; ///< what the compensation could not put back
};

// Commands (rollback_*.cpp)
/// A rollback's dry run: validation alone. Takes ctx.mu itself around store
/// and configuration work.
control_reply rollback_dry_run(node_context&, actor_calls&, const json& args);
/// One try at a settle job, each step within compensation_step_timeout_ms
/// and pre-emptible; returns what is still not in place.
std::vector<failed_item> settle_attempt(node_context&, actor_calls&, const settle_job& job);
/// Journals that the job is done (a settled record after the saga's end).
status record_settled(node_context&, const settle_job& job);
/// At start-up, after recover_sagas: the job of the saga whose compensation
/// could not put everything back, if one still decides (status warns of it),
/// so that the node goes on trying.
std::optional<settle_job> unsettled_job(node_context&);
/// The actor that settles `job` (see settle_job), dsmil.settler.
void spawn_settler(caf::actor_system& sys, std::shared_ptr<node_context> ctx, settle_job job);
/// At start-up: every saga whose journal has no end record is compensated (or
/// resumed, per [rollback] on_interrupted) before the node takes commands.
void recover_sagas(node_context&, actor_calls&);
/// The same for one saga whose actor stopped before the saga ended (`why`
/// goes into its end record). REQUIRES: ctx.mu held.
void recover_saga(node_context&, actor_calls&, const std::string& id, const std::string& why);
/// Ends the hold of saga `id` (running, or settling) on the node, if it has
/// one: the saga waiting for its turn, if any, gets it.
void release_saga(node_context&, const std::string& id);
// rollback_history.cpp:
answer<rollback_history_reply> run(node_context&, actor_calls&, const rollback_history_request&);
answer<rollback_show_reply> run(node_context&, actor_calls&, const rollback_show_request&);
// rollback_validate.cpp: a dry run (any other rollback is a saga).
answer<rollback_reply> run(node_context&, actor_calls&, const rollback_request&);
/// A saga's or a dry run's reply (JSON, built as the saga goes), typed. A
/// body the type does not describe is logged and left out (the outcome,
/// code and line, stands): tests check the bodies.
answer<rollback_reply> to_rollback_answer(const control_reply& r);

} // namespace dsmil
