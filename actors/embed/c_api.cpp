// The C API (dsmil/dsmil.h) over dsmil::node: C structs in and out, error
// codes, no exception across the boundary.
#include "dsmil/dsmil.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>

#include "actors/embed/c_agent_host.hpp"
#include "actors/embed/embedded.hpp"
#include "dsmil/fields_json.hpp"
#include "dsmil/node.hpp"

struct dsmil_node {
  std::unique_ptr<dsmil::node> n;
  std::shared_ptr<dsmil::agent_host> host; ///< the C callbacks, when given
};

namespace {

using namespace dsmil;

thread_local std::string last_error;

int fail(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

int fail(const error& e) {
  return fail(static_cast<int>(e.code), e.message);
}

template <class A> int code_of(const A& a) {
  if (a.code != errc::none) return fail(static_cast<int>(a.code), a.message);
  return DSMIL_OK;
}

/// Runs `f` (returning a dsmil_status) with nothing escaping but the code.
template <class F> int guarded(F&& f) noexcept {
  try {
    last_error.clear();
    return f();
  } catch (const std::bad_alloc&) {
    return fail(DSMIL_E_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(DSMIL_E_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(DSMIL_E_INTERNAL, "internal error");
  }
}

template <size_t N> void copy_to(char (&dst)[N], const std::string& s) {
  const size_t n = std::min(N - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

void copy_to(char* dst, size_t cap, const std::string& s) {
  const size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

char* dup(const std::string& s) {
  auto* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

std::string str(const char* s) {
  return s ? s : "";
}

int need_node(const dsmil_node* n) {
  if (!n || !n->n) return fail(DSMIL_E_INVALID_ARGUMENT, "the node handle is NULL or stopped");
  return DSMIL_OK;
}

// -- requests ------------------------------------------------------------------------

const char* type_name(dsmil_checkpoint_type t) {
  switch (t) {
  case DSMIL_CHECKPOINT_AUTOMATIC:
    return "automatic";
  case DSMIL_CHECKPOINT_EMERGENCY:
    return "emergency";
  default:
    return "manual";
  }
}

result<rollback_request> to_request(const dsmil_rollback_request* r) {
  if (!r || !r->checkpoint_id)
    return make_error(errc::invalid_argument, "the rollback request names no checkpoint");
  static const char* types[] = {"full", "incremental", "selective", "emergency"};
  if (r->type < DSMIL_ROLLBACK_FULL || r->type > DSMIL_ROLLBACK_EMERGENCY)
    return make_error(errc::invalid_argument,
                      "rollback type " + std::to_string(r->type) + " is not a dsmil_rollback_type");
  rollback_request req;
  req.id = r->checkpoint_id;
  req.type = types[r->type];
  auto strings = [](const char* const* v, size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i)
      out.push_back(str(v[i]));
    return out;
  };
  if (r->components && r->component_count > 0)
    req.components = strings(r->components, r->component_count);
  if (r->agents && r->agent_count > 0) req.agents = strings(r->agents, r->agent_count);
  req.reason = str(r->reason);
  req.ack_critical = r->ack_critical != 0;
  return req;
}

void fill(dsmil_checkpoint_info* out, const checkpoint_view& v) {
  std::memset(out, 0, sizeof *out);
  copy_to(out->id, v.id);
  copy_to(out->name, v.name);
  copy_to(out->type, v.type);
  copy_to(out->created_at, v.created_at);
  out->logical_bytes = v.logical_bytes;
  out->devices = v.devices;
  out->pinned = v.pinned ? 1 : 0;
}

template <class T, class F>
int fill_array(const std::vector<T>& v, uint32_t max, uint32_t* count, F&& each) {
  if (count) *count = static_cast<uint32_t>(v.size());
  for (size_t i = 0; i < v.size() && i < max; ++i)
    each(i, v[i]);
  if (v.size() > max)
    return fail(DSMIL_E_BUFFER_TOO_SMALL, "room for " + std::to_string(max) + " of " +
                                              std::to_string(v.size()) + "; pass a longer array");
  return DSMIL_OK;
}

void fill(dsmil_agent_view* out, const std::string& id, const std::string& state,
          const std::string& sha, uint64_t tasks) {
  std::memset(out, 0, sizeof *out);
  copy_to(out->id, id);
  copy_to(out->state, state);
  copy_to(out->state_sha256, sha);
  out->tasks_done = tasks;
}

} // namespace

extern "C" {

const char* dsmil_strerror(int code) {
  if (code == DSMIL_E_BUFFER_TOO_SMALL) return "buffer_too_small";
  if (code < 0 || code > static_cast<int>(errc::database_unavailable)) return "unknown_error";
  return dsmil::to_string(static_cast<errc>(code));
}

const char* dsmil_last_error(void) {
  return last_error.c_str();
}

void dsmil_free(char* p) {
  std::free(p);
}

int dsmil_node_start(const dsmil_options* o, dsmil_node** out) {
  return guarded([&] {
    if (!out) return fail(DSMIL_E_INVALID_ARGUMENT, "dsmil_node_start: out is NULL");
    *out = nullptr;
    node_options opts;
    if (o) {
      opts.config_file = str(o->config_file);
      opts.config_text = str(o->config_text);
      opts.data_dir = str(o->data_dir);
      opts.log_level = o->log_level ? o->log_level : "info";
      opts.request_timeout = std::chrono::milliseconds(std::max<int64_t>(0, o->request_timeout_ms));
      if (o->agents) {
        const auto& h = *o->agents;
        if (!h.list || !h.quiesce || !h.cancel_pending || !h.snapshot || !h.restore || !h.resume)
          return fail(DSMIL_E_INVALID_ARGUMENT,
                      "the agent host lacks a callback: list, quiesce, cancel_pending, snapshot, "
                      "restore and resume are all required");
        opts.agents = std::make_shared<c_agent_host>(h);
      }
    }
    auto n = node::start(opts);
    if (!n) return fail(n.err());
    *out = new dsmil_node{std::move(*n), opts.agents};
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_node_listen(dsmil_node* n, const char* host, uint16_t port, uint16_t* bound) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto p = n->n->listen(host ? host : "127.0.0.1", port);
    if (!p) return fail(p.err());
    if (bound) *bound = *p;
    return static_cast<int>(DSMIL_OK);
  });
}

void dsmil_node_stop(dsmil_node* n) {
  if (!n) return;
  guarded([&] {
    n->n.reset(); // stops it and waits for its actor system
    delete n;
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_command(dsmil_node* n, const char* command, const char* args_json, char** reply_json) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    if (!command) return fail(DSMIL_E_INVALID_ARGUMENT, "dsmil_command: command is NULL");
    std::promise<std::pair<errc, std::string>> done;
    auto f = done.get_future();
    ask_json(n->n->internals(), command, str(args_json), [&done](errc code, std::string body) {
      done.set_value({code, std::move(body)});
    });
    auto [code, body] = f.get();
    if (reply_json) *reply_json = dup(body);
    if (code == errc::none) return static_cast<int>(DSMIL_OK);
    auto j = nlohmann::json::parse(body, nullptr, false);
    std::string line = "command failed";
    if (!j.is_discarded() && j.contains("error")) line = j["error"].value("message", line);
    return fail(static_cast<int>(code), line);
  });
}

// -- checkpoint manager ----------------------------------------------------------------

int dsmil_checkpoint_create_async(dsmil_node* n, const char* name, dsmil_checkpoint_type type,
                                  const char* description, dsmil_checkpoint_completion_fn cb,
                                  void* user) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    checkpoint_create_request req;
    req.name = str(name);
    req.description = str(description);
    req.type = type_name(type);
    n->n->ask(std::move(req), [cb, user](answer<checkpoint_create_reply> a) {
      if (!cb) return;
      dsmil_checkpoint_result r;
      std::memset(&r, 0, sizeof r);
      r.status = static_cast<int>(a.code);
      copy_to(r.error_message, a.message);
      if (a.body) {
        copy_to(r.checkpoint_id, a.body->id);
        r.operation_duration_ms = static_cast<uint64_t>(a.body->duration_ms);
        r.new_bytes = a.body->new_bytes;
        r.logical_bytes = a.body->logical_bytes;
        if (a.body->capture && a.body->capture->contains("agents"))
          r.max_agent_pause_ms = (*a.body->capture)["agents"].value("max_pause_ms", 0.0);
      }
      cb(&r, user);
    });
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_checkpoint_list(dsmil_node* n, dsmil_checkpoint_info* list, uint32_t max,
                          uint32_t* count) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    if (!list && max > 0) return fail(DSMIL_E_INVALID_ARGUMENT, "list is NULL");
    auto a = n->n->checkpoints();
    if (int rc = code_of(a)) return rc;
    return fill_array(a.body->checkpoints, max, count,
                      [&](size_t i, const checkpoint_view& v) { fill(&list[i], v); });
  });
}

int dsmil_checkpoint_details(dsmil_node* n, const char* id, dsmil_checkpoint_info* info,
                             char** details_json) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto a = n->n->show(str(id));
    if (details_json) *details_json = dup(to_json_answer(a).dump());
    if (int rc = code_of(a)) return rc;
    if (info) fill(info, *a.body);
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_checkpoint_agents(dsmil_node* n, const char* id, dsmil_agent_view* agents, uint32_t max,
                            uint32_t* count) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    if (!agents && max > 0) return fail(DSMIL_E_INVALID_ARGUMENT, "agents is NULL");
    auto a = n->n->show(str(id));
    if (int rc = code_of(a)) return rc;
    std::vector<agent_image_view> none;
    const auto& v = a.body->agents ? *a.body->agents : none;
    return fill_array(v, max, count, [&](size_t i, const agent_image_view& x) {
      fill(&agents[i], x.id, "", x.state_sha256, 0);
    });
  });
}

int dsmil_checkpoint_delete_async(dsmil_node* n, const char* id, dsmil_checkpoint_completion_fn cb,
                                  void* user) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    n->n->ask(checkpoint_delete_request{str(id)}, [cb, user](answer<checkpoint_delete_reply> a) {
      if (!cb) return;
      dsmil_checkpoint_result r;
      std::memset(&r, 0, sizeof r);
      r.status = static_cast<int>(a.code);
      copy_to(r.error_message, a.message);
      if (a.body) copy_to(r.checkpoint_id, a.body->id);
      cb(&r, user);
    });
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_checkpoint_validate(dsmil_node* n, const char* id, int chain,
                              dsmil_validation_result* out) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    const auto t0 = std::chrono::steady_clock::now();
    auto a = n->n->verify(str(id), chain != 0);
    if (out) {
      std::memset(out, 0, sizeof *out);
      out->signature_valid = a.body && a.body->valid ? 1 : 0;
      out->validation_errors_count = a.code == errc::none ? 0 : 1;
      copy_to(out->first_error, a.message);
      out->validation_duration_ms =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0)
                                    .count());
    }
    return code_of(a);
  });
}

int dsmil_agent_list(dsmil_node* n, dsmil_agent_view* agents, uint32_t max, uint32_t* count) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    if (!agents && max > 0) return fail(DSMIL_E_INVALID_ARGUMENT, "agents is NULL");
    auto a = n->n->agents();
    if (int rc = code_of(a)) return rc;
    return fill_array(a.body->agents, max, count, [&](size_t i, const agent_view& x) {
      fill(&agents[i], x.id, x.state, x.state_sha256, x.tasks_done);
    });
  });
}

// -- rollback engine -------------------------------------------------------------------

int dsmil_rollback_plan(dsmil_node* n, const dsmil_rollback_request* r, char** plan_json) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto req = to_request(r);
    if (!req) return fail(req.err());
    auto a = n->n->plan(std::move(*req));
    if (plan_json) *plan_json = dup(to_json_answer(a).dump());
    return code_of(a);
  });
}

int dsmil_rollback_execute_async(dsmil_node* n, const dsmil_rollback_request* r,
                                 dsmil_rollback_progress_fn progress_cb,
                                 dsmil_rollback_completion_fn cb, void* user) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto req = to_request(r);
    if (!req) return fail(req.err());
    std::function<void(const rollback_event&)> progress;
    if (progress_cb)
      progress = [progress_cb, user](const rollback_event& e) {
        progress_cb(e.saga.c_str(), e.phase.c_str(), e.component.c_str(), e.devices_done,
                    e.devices_total, user);
      };
    const std::string by = r->initiated_by ? r->initiated_by : "c-api";
    n->n->rollback_async(
        std::move(*req), progress,
        [cb, user](answer<rollback_reply> a) {
          if (!cb) return;
          dsmil_rollback_result res;
          std::memset(&res, 0, sizeof res);
          res.status = static_cast<int>(a.code);
          copy_to(res.error_message, a.message);
          if (a.body) {
            const auto& b = *a.body;
            res.success = b.success ? 1 : 0;
            if (b.saga) copy_to(res.saga_id, *b.saga);
            if (b.outcome) copy_to(res.outcome, *b.outcome);
            if (b.failed_phase) copy_to(res.failed_phase, *b.failed_phase);
            res.warnings = b.warnings ? static_cast<uint32_t>(b.warnings->size()) : 0;
          }
          cb(&res, user);
        },
        by);
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_rollback_status(dsmil_node* n, char* saga_id, char* phase) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto a = n->n->call(status_request{});
    if (int rc = code_of(a)) return rc;
    const auto& r = a.body->rollback;
    if (saga_id) copy_to(saga_id, DSMIL_ID_LENGTH, r ? r->id : "");
    if (phase) copy_to(phase, 32, r ? r->phase : "");
    return static_cast<int>(DSMIL_OK);
  });
}

int dsmil_rollback_cancel(dsmil_node* n) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    return code_of(n->n->call(rollback_cancel_request{}));
  });
}

int dsmil_rollback_history(dsmil_node* n, uint32_t limit, char** history_json) {
  return guarded([&] {
    if (int rc = need_node(n)) return rc;
    auto a = n->n->history(limit);
    if (history_json) *history_json = dup(to_json_answer(a).dump());
    return code_of(a);
  });
}

const dsmil_checkpoint_manager* dsmil_checkpoint_manager_get(void) {
  static const dsmil_checkpoint_manager m = {
      dsmil_checkpoint_create_async, dsmil_checkpoint_list, dsmil_checkpoint_details,
      dsmil_checkpoint_delete_async, dsmil_checkpoint_validate};
  return &m;
}

const dsmil_rollback_engine* dsmil_rollback_engine_get(void) {
  static const dsmil_rollback_engine e = {dsmil_rollback_plan, dsmil_rollback_execute_async,
                                          dsmil_rollback_status, dsmil_rollback_cancel,
                                          dsmil_rollback_history};
  return &e;
}

} // extern "C"
