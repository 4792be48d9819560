/* The any-thread contract under stress: shared objects retained and released
 * by many threads, objects made on one thread and released on another, a
 * cleaner thread that releases what others dropped, and reports, settings
 * and statistics read while all of that runs. Meant for ThreadSanitizer. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 8

#ifdef STRAND_SANITIZER
#define ROUNDS 16000
#else
#define ROUNDS 160000
#endif

/* ---- one shared set, retained and released by everyone ----------------- */

#define SHARED 32
static strand_tensor *shared[SHARED];
static _Atomic int shared_errors;

static void *churn_shared(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
  for (int i = 0; i < ROUNDS; i++) {
    seed = seed * 1103515245u + 12345u;
    strand_tensor *t = shared[(seed >> 8) % SHARED];
    if (strand_tensor_retain(t) != STRAND_OK) {
      atomic_fetch_add(&shared_errors, 1);
      continue;
    }
    const int64_t *dims;
    size_t rank;
    if (strand_tensor_shape(t, &dims, &rank) != STRAND_OK || rank != 1 || dims[0] != 16)
      atomic_fetch_add(&shared_errors, 1);
    strand_tensor_release(t);
  }
  return NULL;
}

TEST(many_threads_retain_and_release_one_shared_set) {
  int64_t shape[] = {16};
  for (int i = 0; i < SHARED; i++) REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &shared[i]));
  atomic_store(&shared_errors, 0);
  test_run_threads(THREADS, churn_shared, NULL);
  CHECK(atomic_load(&shared_errors) == 0);
  for (int i = 0; i < SHARED; i++) strand_tensor_release(shared[i]);
}

/* ---- a blocking queue for hand-offs between threads ---------------------- */

#define QUEUE_CAP 256
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  strand_tensor *items[QUEUE_CAP];
  int head, count, closed;
} queue;

static void queue_init(queue *q) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->changed, NULL);
}

static void queue_push(queue *q, strand_tensor *t) {
  pthread_mutex_lock(&q->lock);
  while (q->count == QUEUE_CAP) pthread_cond_wait(&q->changed, &q->lock);
  q->items[(q->head + q->count++) % QUEUE_CAP] = t;
  pthread_cond_broadcast(&q->changed);
  pthread_mutex_unlock(&q->lock);
}

static strand_tensor *queue_pop(queue *q) {
  pthread_mutex_lock(&q->lock);
  while (q->count == 0 && !q->closed) pthread_cond_wait(&q->changed, &q->lock);
  strand_tensor *t = NULL;
  if (q->count) {
    t = q->items[q->head];
    q->head = (q->head + 1) % QUEUE_CAP;
    q->count--;
    pthread_cond_broadcast(&q->changed);
  }
  pthread_mutex_unlock(&q->lock);
  return t;
}

static void queue_close(queue *q) {
  pthread_mutex_lock(&q->lock);
  q->closed = 1;
  pthread_cond_broadcast(&q->changed);
  pthread_mutex_unlock(&q->lock);
}

static void queue_destroy(queue *q) {
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->changed);
}

/* ---- made on one thread, released on another ------------------------------ */

static queue handoff;
static _Atomic long wrapped_released;
static _Atomic long released_on_creator;
static __thread int thread_tag;

static void on_release(void *data, void *context) {
  if ((intptr_t)context == thread_tag) atomic_fetch_add(&released_on_creator, 1);
  atomic_fetch_add(&wrapped_released, 1);
  free(data);
}

static void *producer(void *arg) {
  thread_tag = (int)(intptr_t)arg;
  int64_t shape[] = {2, 3};
  for (int i = 0; i < ROUNDS / 4; i++) {
    strand_tensor *t = NULL;
    if (i % 2) {
      float *buf = malloc(sizeof(float) * 6);
      if (!buf) abort();
      if (strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 2, buf, sizeof(float) * 6, on_release,
                             (void *)(intptr_t)thread_tag, &t) != STRAND_OK) {
        free(buf);
        continue;
      }
    } else if (strand_tensor_create(STRAND_DTYPE_INT64, shape, 2, &t) != STRAND_OK) {
      continue;
    }
    void *data;
    if (strand_tensor_data(t, &data) == STRAND_OK) ((float *)data)[0] = (float)i;
    queue_push(&handoff, t);
  }
  return NULL;
}

static void *consumer(void *arg) {
  thread_tag = 1000 + (int)(intptr_t)arg;
  strand_tensor *t;
  while ((t = queue_pop(&handoff)) != NULL) {
    void *data;
    if (strand_tensor_data(t, &data) == STRAND_OK) (void)((volatile float *)data)[0];
    strand_tensor_release(t);
  }
  return NULL;
}

static _Atomic int tag_counter;
static void *producer_tagged(void *arg) {
  (void)arg;
  return producer((void *)(intptr_t)(1 + atomic_fetch_add(&tag_counter, 1)));
}
static void *consumer_tagged(void *arg) {
  (void)arg;
  return consumer((void *)(intptr_t)atomic_fetch_add(&tag_counter, 1));
}

TEST(objects_made_on_one_thread_are_released_on_another) {
  queue_init(&handoff);
  atomic_store(&wrapped_released, 0);
  atomic_store(&released_on_creator, 0);
  pthread_t producers[4], consumers[4];
  for (int i = 0; i < 4; i++) {
    REQUIRE(pthread_create(&producers[i], NULL, producer_tagged, NULL) == 0);
    REQUIRE(pthread_create(&consumers[i], NULL, consumer_tagged, NULL) == 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(producers[i], NULL);
  queue_close(&handoff);
  for (int i = 0; i < 4; i++) pthread_join(consumers[i], NULL);
  queue_destroy(&handoff);
  CHECK(atomic_load(&wrapped_released) == 4 * (ROUNDS / 4 / 2));
  CHECK(atomic_load(&released_on_creator) == 0);
}

/* ---- a cleaner thread releases what workers dropped, while workers still
 *      hold references of their own ------------------------------------------ */

static queue dropped;

static void *worker_dropping(void *arg) {
  (void)arg;
  int64_t shape[] = {8};
  for (int i = 0; i < ROUNDS / 4; i++) {
    strand_tensor *t;
    if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t) != STRAND_OK) continue;
    /* Keep a second reference, hand one to the cleaner, then keep using it. */
    if (strand_tensor_retain(t) != STRAND_OK) abort();
    queue_push(&dropped, t);
    void *data;
    if (strand_tensor_data(t, &data) == STRAND_OK)
      for (int k = 0; k < 8; k++) ((float *)data)[k] = (float)k;
    strand_tensor_release(t);
  }
  return NULL;
}

static void *cleaner(void *arg) {
  (void)arg;
  strand_tensor *t;
  while ((t = queue_pop(&dropped)) != NULL) strand_tensor_release(t);
  return NULL;
}

TEST(a_cleaner_thread_releases_what_others_dropped) {
  queue_init(&dropped);
  pthread_t cleaner_thread;
  REQUIRE(pthread_create(&cleaner_thread, NULL, cleaner, NULL) == 0);
  test_run_threads(6, worker_dropping, NULL);
  queue_close(&dropped);
  pthread_join(cleaner_thread, NULL);
  queue_destroy(&dropped);
}

/* ---- reports, settings and stats while objects churn ------------------------- */

static _Atomic int stop_observers;

static int count_site(const strand_leak_site *s, void *ctx) {
  *(uint64_t *)ctx += s->count;
  return 0;
}

static void *observer(void *arg) {
  (void)arg;
  int i = 0;
  while (!atomic_load(&stop_observers)) {
    uint64_t n = 0;
    strand_leak_report(count_site, &n);
    strand_memory_stats st = {.struct_size = sizeof st};
    CHECK_OK(strand_memory_get_stats(&st));
    strand_leak_set_level((strand_leak_level)(i++ % 4), 5);
    strand_log_set_level(STRAND_LOG_WARN);
    strand_memory_set_limit(i % 2 ? 0 : (uint64_t)1 << 30);
    strand_memory_reset_peaks();
  }
  return NULL;
}

static void *churn_private(void *arg) {
  (void)arg;
  int64_t shape[] = {3, 3};
  for (int i = 0; i < ROUNDS / 8; i++) {
    if (i % 64 == 0) strand_leak_set_origin(i % 128 ? "churn origin" : NULL);
    strand_tensor *t[4];
    for (int k = 0; k < 4; k++)
      if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 2, &t[k]) != STRAND_OK) t[k] = NULL;
    for (int k = 0; k < 4; k++) strand_tensor_release(t[k]);
  }
  strand_leak_set_origin(NULL);
  return NULL;
}

TEST(reports_and_settings_while_objects_churn) {
  atomic_store(&stop_observers, 0);
  pthread_t obs[2];
  for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&obs[i], NULL, observer, NULL) == 0);
  test_run_threads(6, churn_private, NULL);
  atomic_store(&stop_observers, 1);
  for (int i = 0; i < 2; i++) pthread_join(obs[i], NULL);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
  strand_memory_set_limit(0);
}

/* ---- the log callback swapped while threads log --------------------------------- */

static _Atomic long messages;
static void count_message(strand_log_level level, const char *message, void *ctx) {
  (void)level;
  (void)message;
  atomic_fetch_add((_Atomic long *)ctx, 1);
}

static void *misuse_logger(void *arg) {
  (void)arg;
  uint64_t not_a_tensor[16] = {0};
  for (int i = 0; i < ROUNDS / 16; i++) strand_tensor_release((strand_tensor *)not_a_tensor);
  return NULL;
}

static void *callback_swapper(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS / 16; i++)
    strand_log_set_callback(i % 2 ? count_message : NULL, (void *)&messages);
  strand_log_set_callback(count_message, (void *)&messages);
  return NULL;
}

TEST(log_callback_changes_while_threads_log) {
  strand_log_set_callback(count_message, (void *)&messages);
  strand_log_set_level(STRAND_LOG_ERROR);
  atomic_store(&messages, 0);
  FILE *saved = stderr;
  stderr = fopen("/dev/null", "w"); /* the default sink gets some of them */
  pthread_t swapper;
  REQUIRE(pthread_create(&swapper, NULL, callback_swapper, NULL) == 0);
  test_run_threads(4, misuse_logger, NULL);
  pthread_join(swapper, NULL);
  fclose(stderr);
  stderr = saved;
  CHECK(atomic_load(&messages) > 0);
  strand_log_set_callback(NULL, NULL);
  strand_log_set_level(STRAND_LOG_WARN);
}
