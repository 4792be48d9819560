/* demo.c — `strand demo`: the contract at work without a model. Worker
 * threads make tensors and hand them to a cleaner thread that releases them
 * (as a garbage collector's cleaner would); a few are kept alive on purpose so
 * that the memory figures and the leak report have something to show; then
 * everything is released and the figures return to zero. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strand.h"
#include "commands.h"

#define WORKERS 4
#define PER_WORKER 25000
#define KEPT 12
#define RING 1024

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  strand_tensor *items[RING];
  size_t head, count;
  int closed;
} handoff;

static handoff to_cleaner = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};
static strand_tensor *kept[KEPT];

static void push(strand_tensor *t) {
  pthread_mutex_lock(&to_cleaner.lock);
  while (to_cleaner.count == RING) pthread_cond_wait(&to_cleaner.changed, &to_cleaner.lock);
  to_cleaner.items[(to_cleaner.head + to_cleaner.count++) % RING] = t;
  pthread_cond_broadcast(&to_cleaner.changed);
  pthread_mutex_unlock(&to_cleaner.lock);
}

static strand_tensor *pop(void) {
  pthread_mutex_lock(&to_cleaner.lock);
  while (to_cleaner.count == 0 && !to_cleaner.closed)
    pthread_cond_wait(&to_cleaner.changed, &to_cleaner.lock);
  strand_tensor *t = NULL;
  if (to_cleaner.count) {
    t = to_cleaner.items[to_cleaner.head];
    to_cleaner.head = (to_cleaner.head + 1) % RING;
    to_cleaner.count--;
    pthread_cond_broadcast(&to_cleaner.changed);
  }
  pthread_mutex_unlock(&to_cleaner.lock);
  return t;
}

static void *cleaner(void *arg) {
  long *released = arg;
  strand_tensor *t;
  while ((t = pop()) != NULL) {
    strand_tensor_release(t);
    (*released)++;
  }
  return NULL;
}

/* The function name shows up in the leak report's trace. */
__attribute__((noinline)) strand_status keep_a_few_embeddings(int worker);
__attribute__((noinline)) strand_status keep_a_few_embeddings(int worker) {
  int64_t shape[] = {1, 768};
  for (int i = worker; i < KEPT; i += WORKERS) {
    strand_status st = strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 2, &kept[i]);
    if (st != STRAND_OK) return st;
  }
  return STRAND_OK;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  int64_t shape[] = {8, 64};
  char origin[64];
  snprintf(origin, sizeof origin, "demo worker %d", id);
  strand_leak_set_origin(origin);
  for (int i = 0; i < PER_WORKER; i++) {
    strand_tensor *t;
    if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 2, &t) != STRAND_OK) {
      fprintf(stderr, "strand demo: %s\n", strand_errmsg());
      exit(1);
    }
    void *data;
    strand_tensor_data(t, &data);
    ((float *)data)[0] = (float)i;
    push(t); /* the cleaner thread drops the last reference */
  }
  if (keep_a_few_embeddings(id) != STRAND_OK) {
    fprintf(stderr, "strand demo: %s\n", strand_errmsg());
    exit(1);
  }
  strand_leak_set_origin(NULL);
  return NULL;
}

static void print_memory(const char *when) {
  strand_memory_stats st = {.struct_size = sizeof st};
  strand_memory_get_stats(&st);
  printf("%s\n  %-10s %12s %12s\n", when, "category", "live bytes", "peak bytes");
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
    printf("  %-10s %12llu %12llu\n", strand_memory_category_name((strand_memory_category)c),
           (unsigned long long)st.live_bytes[c], (unsigned long long)st.peak_bytes[c]);
  printf("  %-10s %12llu %12llu\n  live objects: %llu tensors; allocations: %llu\n\n", "total",
         (unsigned long long)st.total_live_bytes, (unsigned long long)st.total_peak_bytes,
         (unsigned long long)st.live_objects[STRAND_KIND_TENSOR],
         (unsigned long long)st.allocations);
}

int strand_cmd_demo(int argc, char **argv) {
  if (argc > 1) {
    printf("usage: strand demo\n\n%s\n", "Makes and releases tensors across threads "
           "and prints the memory and leak report.");
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  if (strand_leak_set_level(STRAND_LEAK_ALL, 0) != STRAND_OK) return 1;
  printf("strand %s demo: %d worker threads make %d tensors each; a cleaner thread releases "
         "them.\n\n", strand_version(), WORKERS, PER_WORKER);
  long released = 0;
  pthread_t cleaner_thread, workers[WORKERS];
  pthread_create(&cleaner_thread, NULL, cleaner, &released);
  for (int i = 0; i < WORKERS; i++)
    pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < WORKERS; i++) pthread_join(workers[i], NULL);
  pthread_mutex_lock(&to_cleaner.lock);
  to_cleaner.closed = 1;
  pthread_cond_broadcast(&to_cleaner.changed);
  pthread_mutex_unlock(&to_cleaner.lock);
  pthread_join(cleaner_thread, NULL);
  printf("released on the cleaner thread: %ld tensors made on %d other threads\n\n", released,
         WORKERS);
  print_memory("native memory with the kept tensors alive:");
  printf("leak report (objects still alive, by creation site):\n");
  uint64_t live = 0;
  if (strand_leak_report_print(stdout, &live) != STRAND_OK) {
    fprintf(stderr, "strand demo: %s\n", strand_errmsg());
    return 1;
  }
  for (int i = 0; i < KEPT; i++) strand_tensor_release(kept[i]);
  printf("\n");
  print_memory("after releasing them:");
  strand_memory_stats st = {.struct_size = sizeof st};
  strand_memory_get_stats(&st);
  printf("%s\n", st.total_live_objects == 0 && st.total_live_bytes == 0
                     ? "nothing left alive: 0 objects, 0 bytes"
                     : "LEAK: objects are still alive");
  return st.total_live_objects == 0 && st.total_live_bytes == 0 ? 0 : 1;
}
