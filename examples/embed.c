/* embed.c: a C runtime that embeds a dsmil-recovery node through the C API,
 * with the 80 reference agents working under it. It checkpoints, lets the
 * agents work, stops their work, rolls back, and checks that every agent is
 * running with its state bit-equal to the checkpoint's.
 *
 *   cc embed.c $(pkg-config --cflags --libs dsmil) -o embed
 *   ./embed DATA_DIR
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <dsmil/dsmil.h>

#define AGENTS 80

/* A completion the main thread waits for. */
struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  dsmil_checkpoint_result checkpoint;
  dsmil_rollback_result rollback;
  int progress_events;
};

static void checkpoint_done(const dsmil_checkpoint_result* r, void* ctx) {
  struct waiter* w = ctx;
  pthread_mutex_lock(&w->mu);
  w->checkpoint = *r;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void rollback_progress(const char* saga, const char* phase, const char* component,
                              int64_t done, int64_t total, void* ctx) {
  struct waiter* w = ctx;
  (void)saga, (void)phase, (void)component, (void)done, (void)total;
  pthread_mutex_lock(&w->mu);
  ++w->progress_events;
  pthread_mutex_unlock(&w->mu);
}

static void rollback_done(const dsmil_rollback_result* r, void* ctx) {
  struct waiter* w = ctx;
  pthread_mutex_lock(&w->mu);
  w->rollback = *r;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void wait_for(struct waiter* w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  w->done = 0;
  pthread_mutex_unlock(&w->mu);
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static int fail(dsmil_node* node, const char* what, int rc) {
  fprintf(stderr, "embed: %s: %s (%s)\n", what, dsmil_last_error(), dsmil_strerror(rc));
  dsmil_node_stop(node);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: embed DATA_DIR\n");
    return 2;
  }
  dsmil_options opts;
  memset(&opts, 0, sizeof opts);
  opts.data_dir = argv[1];
  opts.log_level = "warn";
  opts.config_text = "[agents]\nbackend = \"sim\"\ncount = 80\nstate_kib = 64\n"
                     "tasks_per_second = 4000\n";
  dsmil_node* node = NULL;
  int rc = dsmil_node_start(&opts, &node);
  if (rc) return fail(NULL, "start", rc);

  const dsmil_checkpoint_manager* cm = dsmil_checkpoint_manager_get();
  const dsmil_rollback_engine* re = dsmil_rollback_engine_get();
  struct waiter w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);

  rc = cm->create_checkpoint_async(node, "before-work", DSMIL_CHECKPOINT_MANUAL, "embed.c",
                                   checkpoint_done, &w);
  if (rc) return fail(node, "checkpoint", rc);
  wait_for(&w);
  if (w.checkpoint.status) {
    fprintf(stderr, "embed: checkpoint: %s\n", w.checkpoint.error_message);
    dsmil_node_stop(node);
    return 1;
  }
  static dsmil_agent_view want[AGENTS], now[AGENTS];
  uint32_t count = 0;
  rc = dsmil_checkpoint_agents(node, w.checkpoint.checkpoint_id, want, AGENTS, &count);
  if (rc) return fail(node, "checkpoint agents", rc);
  if (count != AGENTS) {
    fprintf(stderr, "embed: the checkpoint holds %u agents, not %d\n", count, AGENTS);
    dsmil_node_stop(node);
    return 1;
  }

  /* The agents work, then stop taking tasks so that their state holds
   * still once the rollback has put it back. */
  sleep_ms(300);
  rc = dsmil_command(node, "agent.load", "{\"tasks_per_second\": 0}", NULL);
  if (rc) return fail(node, "agent load", rc);
  sleep_ms(100);
  rc = dsmil_agent_list(node, now, AGENTS, &count);
  if (rc) return fail(node, "agent list", rc);
  int changed = 0;
  for (uint32_t i = 0; i < count; ++i)
    changed += strcmp(now[i].state_sha256, want[i].state_sha256) != 0;
  if (changed == 0) {
    fprintf(stderr, "embed: no agent changed its state in 300 ms of work\n");
    dsmil_node_stop(node);
    return 1;
  }

  dsmil_rollback_request req;
  memset(&req, 0, sizeof req);
  req.checkpoint_id = w.checkpoint.checkpoint_id;
  req.type = DSMIL_ROLLBACK_FULL;
  req.reason = "embed example";
  req.initiated_by = "examples/embed.c";
  rc = re->execute_rollback_async(node, &req, rollback_progress, rollback_done, &w);
  if (rc) return fail(node, "rollback", rc);
  wait_for(&w);
  if (w.rollback.status || !w.rollback.success) {
    fprintf(stderr, "embed: rollback %s: %s\n", w.rollback.outcome, w.rollback.error_message);
    dsmil_node_stop(node);
    return 1;
  }

  rc = dsmil_agent_list(node, now, AGENTS, &count);
  if (rc) return fail(node, "agent list", rc);
  for (uint32_t i = 0; i < count; ++i) {
    if (strcmp(now[i].id, want[i].id) != 0 || strcmp(now[i].state, "running") != 0 ||
        strcmp(now[i].state_sha256, want[i].state_sha256) != 0) {
      fprintf(stderr, "embed: %s is %s with state %.16s, the checkpoint has %s at %.16s\n",
              now[i].id, now[i].state, now[i].state_sha256, want[i].id, want[i].state_sha256);
      dsmil_node_stop(node);
      return 1;
    }
  }
  printf("embed.c: %u agents running and bit-equal to checkpoint %.8s after rollback %s "
         "(%d had changed, %d progress events)\n",
         count, w.checkpoint.checkpoint_id, w.rollback.saga_id, changed, w.progress_events);
  dsmil_node_stop(node);
  return 0;
}
