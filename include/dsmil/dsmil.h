/* dsmil.h: the C API of dsmil-recovery, for runtimes that embed a node in
 * their process (link with `pkg-config --cflags --libs dsmil`).
 *
 * A node (dsmil_node) runs in an actor system of its own, with threads of its
 * own. Its checkpoint manager and rollback engine are the function tables of
 * the original design (dsmil_checkpoint_manager(), dsmil_rollback_engine()),
 * each function also callable by its own name. An embedding runtime's agents
 * join every checkpoint and rollback through a dsmil_agent_host, a struct of
 * C callbacks.
 *
 * Conventions:
 *  - Every function returns a dsmil_status (0 = DSMIL_OK); dsmil_strerror()
 *    names a code, dsmil_last_error() gives the one-line message of the
 *    calling thread's last failed call (owned by the library, valid until the
 *    thread's next call into it).
 *  - No exception and no C++ type crosses this boundary.
 *  - Buffers: what the caller passes (structs, arrays, strings) stays the
 *    caller's and is only read or filled during the call. Strings the library
 *    returns through `char **` are malloc'ed for the caller, who frees them
 *    with dsmil_free(). Strings handed to callbacks belong to the library and
 *    live until the callback returns.
 *  - Callbacks (completion, progress, agent host) run on the node's threads,
 *    several at once for the agent host: keep them short, thread-safe, and
 *    never wait in one for another answer of the node.
 *  - Functions marked "waits" block the calling thread until the node
 *    answers; never call them from a callback.
 */
#ifndef DSMIL_DSMIL_H
#define DSMIL_DSMIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -- errors ------------------------------------------------------------------ */

/* Stable values; the same as dsmilctl's error codes (dsmil/errors.hpp). */
typedef enum dsmil_status {
  DSMIL_OK = 0,
  DSMIL_E_INVALID_ARGUMENT = 1,
  DSMIL_E_CONFIG = 2,
  DSMIL_E_NO_SUCH_DEVICE = 3,
  DSMIL_E_QUARANTINED = 4,
  DSMIL_E_PERMISSION_DENIED = 5,
  DSMIL_E_DEVICE_OFFLINE = 6,
  DSMIL_E_DRIVER = 7,
  DSMIL_E_CIRCUIT_OPEN = 8,
  DSMIL_E_NOT_FOUND = 9,
  DSMIL_E_INTEGRITY = 10,
  DSMIL_E_IO = 11,
  DSMIL_E_CRITICAL_UNACKNOWLEDGED = 12,
  DSMIL_E_ROLLBACK_FAILED = 13,
  DSMIL_E_BUSY = 14,
  DSMIL_E_TIMEOUT = 15,
  DSMIL_E_UNAVAILABLE = 16,
  DSMIL_E_INTERNAL = 17,
  DSMIL_E_NO_SPACE = 18,
  DSMIL_E_DATABASE_UNAVAILABLE = 19,
  DSMIL_E_BUFFER_TOO_SMALL = 64 /* the C API's own: an array was too short */
} dsmil_status;

/* A static string naming `code`, e.g. "not_found"; never NULL. */
const char* dsmil_strerror(int code);
/* The calling thread's last error line ("" when none); owned by the library. */
const char* dsmil_last_error(void);
/* Frees a string the library returned through a `char **`. NULL is fine. */
void dsmil_free(char* p);

/* -- agent host --------------------------------------------------------------- */

typedef enum dsmil_agent_state {
  DSMIL_AGENT_RUNNING = 0,
  DSMIL_AGENT_PAUSED = 1,
  DSMIL_AGENT_STOPPED = 2,
  DSMIL_AGENT_FAILED = 3
} dsmil_agent_state;

/* list() calls it once per agent; `id` is copied before it returns.
 * `version` changes whenever the agent's state does (0: not tracked); a
 * quiesced agent listed with the version of its last snapshot is not
 * snapshotted again (dsmil::agent_info::version in dsmil/agents.hpp). */
typedef void (*dsmil_agent_add_fn)(void* list_ctx, const char* id, dsmil_agent_state state,
                                   uint64_t tasks_done, uint64_t version);
/* snapshot() calls it with the state's bytes in order (any number of
 * pieces); a non-zero return stops the snapshot: return it from snapshot(). */
typedef int (*dsmil_agent_sink_fn)(void* sink_ctx, const void* bytes, size_t size);

/* What an embedding runtime implements so its agents are checkpointed and
 * rolled back (the same contract as dsmil::agent_host in dsmil/agents.hpp).
 * Each callback returns 0 or a dsmil_status. The struct is copied by
 * dsmil_node_start; `ctx` must stay valid until dsmil_node_stop returns. */
typedef struct dsmil_agent_host {
  void* ctx;
  /* Every agent, in a stable order: calls add() for each. */
  int (*list)(void* ctx, dsmil_agent_add_fn add, void* list_ctx);
  /* Finish or park in-flight work and accept none until resume(); return
   * DSMIL_E_TIMEOUT when not quiesced within timeout_ms. */
  int (*quiesce)(void* ctx, const char* agent, int64_t timeout_ms);
  /* Drop pending and in-flight work; the agent is quiesced afterwards. */
  int (*cancel_pending)(void* ctx, const char* agent);
  /* The agent's whole state, consistent at one instant, through sink(). */
  int (*snapshot)(void* ctx, const char* agent, dsmil_agent_sink_fn sink, void* sink_ctx);
  /* Replace a quiesced agent's state with `bytes` (the library's, for the
   * call); on failure the state is as before; durable when it returns. */
  int (*restore)(void* ctx, const char* agent, const void* bytes, size_t size);
  /* Set the agent running again. */
  int (*resume)(void* ctx, const char* agent);
} dsmil_agent_host;

/* -- node --------------------------------------------------------------------- */

typedef struct dsmil_node dsmil_node;

/* Every field may be NULL/0: the embedded defaults (simulated devices, local
 * store, software keys). Strings are read during dsmil_node_start only. */
typedef struct dsmil_options {
  const char* config_file;        /* a node configuration (TOML) file */
  const char* config_text;        /* or its text */
  const char* data_dir;           /* overrides [node] data_dir */
  const char* log_level;          /* trace, debug, info, warn, error, off; NULL: info */
  const dsmil_agent_host* agents; /* the runtime's agents, or NULL */
  int64_t request_timeout_ms;     /* 0: answers may take as long as they take */
} dsmil_options;

/* Starts a node (waits for its store to open; a rollback a crash interrupted
 * is finished or compensated before it takes commands). *out is the
 * caller's, released by dsmil_node_stop. */
int dsmil_node_start(const dsmil_options* options, dsmil_node** out);
/* Publishes the control endpoint for dsmilctl on host:port (0 picks one);
 * *bound (may be NULL) gets the port. */
int dsmil_node_listen(dsmil_node* node, const char* host, uint16_t port, uint16_t* bound);
/* Stops the node, waits for its threads, frees it. NULL is fine. */
void dsmil_node_stop(dsmil_node* node);

/* Any command of dsmilctl by name ("status", "agent.load", ...) with its
 * arguments as a JSON object (NULL: none); *reply_json (may be NULL) gets
 * the answer as `dsmilctl --json` prints it, for dsmil_free(). Waits. */
int dsmil_command(dsmil_node* node, const char* command, const char* args_json, char** reply_json);

/* -- checkpoint manager --------------------------------------------------------- */

typedef enum dsmil_checkpoint_type {
  DSMIL_CHECKPOINT_MANUAL = 0,
  DSMIL_CHECKPOINT_AUTOMATIC = 1,
  DSMIL_CHECKPOINT_EMERGENCY = 2
} dsmil_checkpoint_type;

#define DSMIL_ID_LENGTH 40     /* a checkpoint or saga id and its NUL */
#define DSMIL_NAME_LENGTH 128  /* names are cut to fit */
#define DSMIL_ERROR_LENGTH 256 /* error lines are cut to fit */

typedef struct dsmil_checkpoint_result {
  int status; /* a dsmil_status */
  char checkpoint_id[DSMIL_ID_LENGTH];
  uint64_t operation_duration_ms;
  uint64_t new_bytes;     /* what the checkpoint added to the store */
  uint64_t logical_bytes; /* its size before dedup and compression */
  double max_agent_pause_ms;
  char error_message[DSMIL_ERROR_LENGTH];
} dsmil_checkpoint_result;

typedef struct dsmil_checkpoint_info {
  char id[DSMIL_ID_LENGTH];
  char name[DSMIL_NAME_LENGTH];
  char type[16];       /* manual, automatic, emergency, pre_rollback */
  char created_at[40]; /* ISO 8601, UTC */
  uint64_t logical_bytes;
  uint32_t devices;
  int pinned;
} dsmil_checkpoint_info;

/* One agent, as it is now or as a checkpoint holds it. */
typedef struct dsmil_agent_view {
  char id[64];
  char state[16]; /* running, paused, stopped, failed; "" in a checkpoint */
  char state_sha256[65];
  uint64_t tasks_done; /* 0 in a checkpoint */
} dsmil_agent_view;

/* `result` is the library's, for the call. */
typedef void (*dsmil_checkpoint_completion_fn)(const dsmil_checkpoint_result* result,
                                               void* user_context);

typedef struct dsmil_validation_result {
  int signature_valid; /* the checkpoint (and, with chain, every parent) checks out */
  uint32_t validation_errors_count;
  char first_error[DSMIL_ERROR_LENGTH];
  uint64_t validation_duration_ms;
} dsmil_validation_result;

/* Takes a checkpoint of every component; completion_cb (may be NULL) gets
 * the result when it is stored. Returns at once. */
int dsmil_checkpoint_create_async(dsmil_node* node, const char* name, dsmil_checkpoint_type type,
                                  const char* description,
                                  dsmil_checkpoint_completion_fn completion_cb, void* user_context);
/* Fills up to `max` checkpoints, oldest first; *count gets how many there
 * are (DSMIL_E_BUFFER_TOO_SMALL when more than max). Waits. */
int dsmil_checkpoint_list(dsmil_node* node, dsmil_checkpoint_info* list, uint32_t max,
                          uint32_t* count);
/* One checkpoint (id or unique prefix); *details_json (may be NULL) gets
 * all of it as `dsmilctl --json checkpoint show` prints it. Waits. */
int dsmil_checkpoint_details(dsmil_node* node, const char* checkpoint_id,
                             dsmil_checkpoint_info* info, char** details_json);
/* The agents a checkpoint holds, as dsmil_agent_list. Waits. */
int dsmil_checkpoint_agents(dsmil_node* node, const char* checkpoint_id, dsmil_agent_view* agents,
                            uint32_t max, uint32_t* count);
/* Deletes a checkpoint (not a pinned one); completion_cb (may be NULL) gets
 * the result. Returns at once. */
int dsmil_checkpoint_delete_async(dsmil_node* node, const char* checkpoint_id,
                                  dsmil_checkpoint_completion_fn completion_cb, void* user_context);
/* Re-reads and checks a checkpoint (signature, every chunk); with `chain`
 * every parent too. Waits. */
int dsmil_checkpoint_validate(dsmil_node* node, const char* checkpoint_id, int chain,
                              dsmil_validation_result* result);

/* The agents now (state hashed as it is now). Waits. */
int dsmil_agent_list(dsmil_node* node, dsmil_agent_view* agents, uint32_t max, uint32_t* count);

/* -- rollback engine --------------------------------------------------------------- */

typedef enum dsmil_rollback_type {
  DSMIL_ROLLBACK_FULL = 0,
  DSMIL_ROLLBACK_INCREMENTAL = 1, /* only what differs */
  DSMIL_ROLLBACK_SELECTIVE = 2,   /* only the components, devices, agents named */
  DSMIL_ROLLBACK_EMERGENCY = 3
} dsmil_rollback_type;

typedef struct dsmil_rollback_request {
  const char* checkpoint_id; /* id or unique prefix */
  dsmil_rollback_type type;
  const char* const* components; /* selective: names, or NULL */
  size_t component_count;
  const char* const* agents; /* selective: agent ids, or NULL */
  size_t agent_count;
  const char* reason;       /* for the history; may be NULL */
  const char* initiated_by; /* for the history; NULL: "c-api" */
  int ack_critical;         /* allow changes to critical devices */
} dsmil_rollback_request;

typedef struct dsmil_rollback_result {
  int status;  /* a dsmil_status; DSMIL_OK when the target state was reached */
  int success; /* the saga completed */
  char saga_id[DSMIL_ID_LENGTH];
  char outcome[16]; /* completed, failed, compensated, preempted, refused */
  char failed_phase[32];
  uint32_t warnings;
  char error_message[DSMIL_ERROR_LENGTH];
} dsmil_rollback_result;

/* Strings are the library's, for the call. */
typedef void (*dsmil_rollback_progress_fn)(const char* saga_id, const char* phase,
                                           const char* component, int64_t devices_done,
                                           int64_t devices_total, void* user_context);
typedef void (*dsmil_rollback_completion_fn)(const dsmil_rollback_result* result,
                                             void* user_context);

/* What the rollback would do, changing nothing; *plan_json (may be NULL)
 * gets the plan, per component. Waits. */
int dsmil_rollback_plan(dsmil_node* node, const dsmil_rollback_request* request, char** plan_json);
/* Runs the rollback as a saga (it completes or compensates); progress_cb
 * and completion_cb may be NULL. Returns at once. */
int dsmil_rollback_execute_async(dsmil_node* node, const dsmil_rollback_request* request,
                                 dsmil_rollback_progress_fn progress_cb,
                                 dsmil_rollback_completion_fn completion_cb, void* user_context);
/* The running rollback's saga id and phase ("" when none runs). Waits. */
int dsmil_rollback_status(dsmil_node* node, char saga_id[DSMIL_ID_LENGTH], char phase[32]);
/* Asks the running rollback to stop: an emergency rollback to the state it
 * started from pre-empts it (the saga compensates). DSMIL_E_NOT_FOUND when
 * none runs. Waits. */
int dsmil_rollback_cancel(dsmil_node* node);
/* The newest `limit` rollbacks as `dsmilctl --json rollback history`
 * prints them, for dsmil_free(). Waits. */
int dsmil_rollback_history(dsmil_node* node, uint32_t limit, char** history_json);

/* -- the original design's function tables ------------------------------------------ */

typedef struct dsmil_checkpoint_manager {
  int (*create_checkpoint_async)(dsmil_node*, const char*, dsmil_checkpoint_type, const char*,
                                 dsmil_checkpoint_completion_fn, void*);
  int (*list_checkpoints)(dsmil_node*, dsmil_checkpoint_info*, uint32_t, uint32_t*);
  int (*get_checkpoint_details)(dsmil_node*, const char*, dsmil_checkpoint_info*, char**);
  int (*delete_checkpoint_async)(dsmil_node*, const char*, dsmil_checkpoint_completion_fn, void*);
  int (*validate_checkpoint_integrity)(dsmil_node*, const char*, int, dsmil_validation_result*);
} dsmil_checkpoint_manager;

typedef struct dsmil_rollback_engine {
  int (*plan_rollback)(dsmil_node*, const dsmil_rollback_request*, char**);
  int (*execute_rollback_async)(dsmil_node*, const dsmil_rollback_request*,
                                dsmil_rollback_progress_fn, dsmil_rollback_completion_fn, void*);
  int (*get_rollback_status)(dsmil_node*, char*, char*);
  int (*cancel_rollback)(dsmil_node*);
  int (*get_rollback_history)(dsmil_node*, uint32_t, char**);
} dsmil_rollback_engine;

/* Static tables of the functions above; never NULL. */
const dsmil_checkpoint_manager* dsmil_checkpoint_manager_get(void);
const dsmil_rollback_engine* dsmil_rollback_engine_get(void);

#ifdef __cplusplus
}
#endif

#endif /* DSMIL_DSMIL_H */
