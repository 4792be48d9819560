/* The process-wide thread pool: the budget (detection, STRAND_THREADS, the
 * API twin), parallel loops that run every task exactly once, nested loops,
 * thirty-two callers on a budget of two without oversubscription, workers
 * that actually help, and idle workers that sleep instead of spinning. */
#include "test.h"

#include "runtime/thread_pool.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the budget ---------------------------------------------------------- */

/* First in the file so that it runs before anything else reads the budget. */
TEST(strand_threads_environment_sets_the_budget) {
  setenv("STRAND_THREADS", "3", 1);
  CHECK(strand_threads_get_budget() == 3);
  unsetenv("STRAND_THREADS");
  CHECK_OK(strand_threads_set_budget(0));
  CHECK(strand_threads_get_budget() == strand__threads_detected());
}

TEST(detected_budget_fits_the_affinity_mask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  unsigned cpus = (unsigned)CPU_COUNT(&set);
  unsigned detected = strand__threads_detected();
  CHECK(detected >= 1);
  CHECK(detected <= cpus);
  CHECK(strand__threads_budget() >= 1);
}

TEST(cgroup_quota_texts_parse) {
  CHECK(strand__cgroup_v2_limit("max 100000\n") == 0);
  CHECK(strand__cgroup_v2_limit("200000 100000\n") == 2);
  CHECK(strand__cgroup_v2_limit("150000 100000") == 2);
  CHECK(strand__cgroup_v2_limit("50000 100000") == 1);
  CHECK(strand__cgroup_v2_limit("1000 100000") == 1);
  CHECK(strand__cgroup_v2_limit("") == 0);
  CHECK(strand__cgroup_v2_limit("garbage") == 0);
  CHECK(strand__cgroup_v2_limit(NULL) == 0);
  CHECK(strand__cgroup_v1_limit(-1, 100000) == 0);
  CHECK(strand__cgroup_v1_limit(300000, 100000) == 3);
  CHECK(strand__cgroup_v1_limit(250000, 100000) == 3);
  CHECK(strand__cgroup_v1_limit(100000, 0) == 0);
}

/* Writes `text` to root/relative, making the directories on the way. */
static int put_file(const char *root, const char *relative, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", root, relative);
  for (char *p = path + strlen(root) + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0700);
      *p = '/';
    }
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

static void remove_tree(const char *root) {
  char command[600];
  snprintf(command, sizeof command, "rm -rf '%s'", root);
  if (system(command) != 0) printf("     could not remove %s\n", root);
}

TEST(cgroup_quotas_are_found_up_the_hierarchy) {
  char root[] = "/tmp/strand-cgroup-XXXXXX";
  REQUIRE(mkdtemp(root) != NULL);
  /* No files at all: no quota. */
  CHECK(strand__cgroup_limit("", root) == 0);
  CHECK(strand__cgroup_limit("0::/a/b\n", root) == 0);
  /* v2: the group itself has none, its parent allows 1.5 CPUs. */
  REQUIRE(put_file(root, "a/b/cpu.max", "max 100000\n"));
  REQUIRE(put_file(root, "a/cpu.max", "150000 100000\n"));
  CHECK(strand__cgroup_limit("0::/a/b\n", root) == 2);
  /* A container that sees its group as the root: the path is not there. */
  REQUIRE(put_file(root, "cpu.max", "300000 100000\n"));
  CHECK(strand__cgroup_limit("0::/docker/0123abcd\n", root) == 3);
  CHECK(strand__cgroup_limit("0::/a/b\n", root) == 2);
  /* v1, and v1 with v2 side by side: the tightest wins. */
  REQUIRE(put_file(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "50000\n"));
  REQUIRE(put_file(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000\n"));
  REQUIRE(put_file(root, "cpu,cpuacct/cpu.cfs_quota_us", "-1\n"));
  REQUIRE(put_file(root, "cpu,cpuacct/cpu.cfs_period_us", "100000\n"));
  CHECK(strand__cgroup_limit("5:memory:/y\n4:cpu,cpuacct:/x\n", root) == 1);
  CHECK(strand__cgroup_limit("4:cpuacct,cpu:/elsewhere\n0::/a/b\n", root) == 2);
  CHECK(strand__cgroup_limit("4:cpuset:/x\n", root) == 3);
  remove_tree(root);
}

TEST(budget_api_sets_restores_and_rejects) {
  CHECK_OK(strand_threads_set_budget(5));
  CHECK(strand_threads_get_budget() == 5);
  CHECK_OK(strand_threads_set_budget(1));
  CHECK(strand_threads_get_budget() == 1);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_threads_set_budget(1025));
  CHECK_MSG("1024");
  CHECK(strand_threads_get_budget() == 1);
  CHECK_OK(strand_threads_set_budget(1024));
  CHECK(strand_threads_get_budget() == 1024);
  CHECK_OK(strand_threads_set_budget(0));
  CHECK(strand_threads_get_budget() == strand__threads_detected());
}

/* ---- every task exactly once ------------------------------------------------ */

typedef struct {
  size_t n;
  _Atomic int *hits;
  int *plain; /* written without atomics: the return must publish it */
} cover_ctx;

static void cover_task(void *ctx, size_t task) {
  cover_ctx *c = ctx;
  atomic_fetch_add_explicit(&c->hits[task], 1, memory_order_relaxed);
  c->plain[task] = (int)task + 1;
}

TEST(parallel_for_runs_every_task_exactly_once) {
  static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 16, 64, 1000, 10007};
  static const unsigned budgets[] = {1, 2, 3, 4, 8};
  static const unsigned limits[] = {0, 1, 2, 3, 100};
  _Atomic int *hits = calloc(10007, sizeof *hits);
  int *plain = calloc(10007, sizeof *plain);
  REQUIRE(hits && plain);
  int bad = 0;
  for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
    CHECK_OK(strand_threads_set_budget(budgets[b]));
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
        size_t n = sizes[s];
        for (size_t i = 0; i < n; i++) {
          atomic_store(&hits[i], 0);
          plain[i] = 0;
        }
        cover_ctx ctx = {n, hits, plain};
        strand__parallel_for(n, cover_task, &ctx, limits[l]);
        for (size_t i = 0; i < n; i++)
          if (atomic_load(&hits[i]) != 1 || plain[i] != (int)i + 1) bad++;
      }
  }
  CHECK(bad == 0);
  CHECK(strand__thread_pool_workers() >= 1);
  CHECK(strand__thread_pool_workers() <= 7);
  CHECK_OK(strand_threads_set_budget(0));
  free(hits);
  free(plain);
}

/* ---- nested loops run inline ------------------------------------------------- */

#define OUTER 8
#define INNER 100
static _Atomic int nested_hits[OUTER][INNER];
static _Atomic int nested_wrong_thread;
static _Thread_local size_t outer_index;

static void inner_task(void *ctx, size_t task) {
  pthread_t *owner = ctx;
  if (!pthread_equal(*owner, pthread_self())) atomic_fetch_add(&nested_wrong_thread, 1);
  atomic_fetch_add(&nested_hits[outer_index][task], 1);
}

static void outer_task(void *ctx, size_t task) {
  (void)ctx;
  pthread_t self = pthread_self();
  outer_index = task;
  strand__parallel_for(INNER, inner_task, &self, 0);
}

TEST(nested_parallel_for_runs_on_the_calling_thread) {
  CHECK_OK(strand_threads_set_budget(4));
  for (int round = 0; round < 20; round++) {
    memset(nested_hits, 0, sizeof nested_hits);
    strand__parallel_for(OUTER, outer_task, NULL, 0);
    for (int i = 0; i < OUTER; i++)
      for (int j = 0; j < INNER; j++) CHECK(atomic_load(&nested_hits[i][j]) == 1);
  }
  CHECK(atomic_load(&nested_wrong_thread) == 0);
  CHECK_OK(strand_threads_set_budget(0));
}

/* ---- no oversubscription ------------------------------------------------------ */

#define CALLERS 32
#ifdef STRAND_SANITIZER
#define CALLS_PER_CALLER 40
#else
#define CALLS_PER_CALLER 200
#endif
#define TASKS_PER_CALL 24

static _Atomic int busy_threads, busy_peak;
static _Atomic int busy_workers, busy_workers_peak;
static _Atomic long tasks_run, tasks_on_workers;
static _Atomic int coverage_errors;

static void raise_to(_Atomic int *peak, int value) {
  int seen = atomic_load(peak);
  while (seen < value && !atomic_compare_exchange_weak(peak, &seen, value)) {
  }
}

static void gauge_task(void *ctx, size_t task) {
  _Atomic int *hits = ctx;
  bool worker = strand__thread_pool_is_worker();
  raise_to(&busy_peak, atomic_fetch_add(&busy_threads, 1) + 1);
  if (worker) {
    raise_to(&busy_workers_peak, atomic_fetch_add(&busy_workers, 1) + 1);
    atomic_fetch_add(&tasks_on_workers, 1);
  }
  volatile unsigned spin = 0;
  for (int i = 0; i < 2000; i++) spin += (unsigned)i;
  atomic_fetch_add(&hits[task], 1);
  atomic_fetch_add(&tasks_run, 1);
  if (worker) atomic_fetch_sub(&busy_workers, 1);
  atomic_fetch_sub(&busy_threads, 1);
}

static void *caller_main(void *arg) {
  (void)arg;
  _Atomic int hits[TASKS_PER_CALL];
  for (int call = 0; call < CALLS_PER_CALLER; call++) {
    for (int i = 0; i < TASKS_PER_CALL; i++) atomic_init(&hits[i], 0);
    strand__parallel_for(TASKS_PER_CALL, gauge_task, hits, 0);
    for (int i = 0; i < TASKS_PER_CALL; i++)
      if (atomic_load(&hits[i]) != 1) atomic_fetch_add(&coverage_errors, 1);
  }
  return NULL;
}

static void run_callers(unsigned budget) {
  CHECK_OK(strand_threads_set_budget(budget));
  atomic_store(&busy_threads, 0);
  atomic_store(&busy_peak, 0);
  atomic_store(&busy_workers, 0);
  atomic_store(&busy_workers_peak, 0);
  atomic_store(&tasks_run, 0);
  atomic_store(&tasks_on_workers, 0);
  atomic_store(&coverage_errors, 0);
  test_run_threads(CALLERS, caller_main, NULL);
  CHECK(atomic_load(&coverage_errors) == 0);
  CHECK(atomic_load(&tasks_run) == (long)CALLERS * CALLS_PER_CALLER * TASKS_PER_CALL);
  CHECK(atomic_load(&busy_workers_peak) <= (int)budget - 1);
  CHECK(atomic_load(&busy_peak) <= (int)budget - 1 + CALLERS);
  printf("     budget %u: %d busy at most (%d workers), %ld of %ld tasks on workers\n", budget,
         atomic_load(&busy_peak), atomic_load(&busy_workers_peak),
         atomic_load(&tasks_on_workers), atomic_load(&tasks_run));
}

TEST(thirty_two_callers_on_a_budget_of_two_use_one_worker_at_most) {
  run_callers(2);
  /* Workers made under a larger budget stay, but only budget - 1 work. */
  run_callers(4);
  run_callers(2);
  CHECK_OK(strand_threads_set_budget(0));
}

/* The budget changes while loops run. */
static _Atomic int stop_toggling;

static void *toggler(void *arg) {
  (void)arg;
  unsigned b = 1;
  while (!atomic_load(&stop_toggling)) {
    strand_threads_set_budget(b);
    b = b % 4 + 1;
    sleep_ms(1);
  }
  return NULL;
}

TEST(budget_changes_while_loops_run) {
  atomic_store(&stop_toggling, 0);
  atomic_store(&coverage_errors, 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, toggler, NULL) == 0);
  test_run_threads(8, caller_main, NULL);
  atomic_store(&stop_toggling, 1);
  pthread_join(t, NULL);
  CHECK(atomic_load(&coverage_errors) == 0);
  CHECK_OK(strand_threads_set_budget(0));
}

/* ---- workers help -------------------------------------------------------------- */

static _Atomic int second_started;
static _Atomic int waited_out;

/* Task 0 waits for task 1 to start: only a worker can start it. */
static void needs_a_helper(void *ctx, size_t task) {
  (void)ctx;
  if (task == 1) {
    atomic_store(&second_started, 1);
    return;
  }
  double deadline = now_s() + 20.0;
  while (!atomic_load(&second_started))
    if (now_s() > deadline) {
      atomic_store(&waited_out, 1);
      return;
    }
}

/* First task claimed by the caller is 0; if the caller ran both, 1 would
 * have to wait for 0, which waits for 1: only a worker breaks the tie. */
TEST(a_worker_helps_a_lone_caller) {
  CHECK_OK(strand_threads_set_budget(2));
  for (int round = 0; round < 20; round++) {
    atomic_store(&second_started, 0);
    atomic_store(&waited_out, 0);
    strand__parallel_for(2, needs_a_helper, NULL, 0);
    CHECK(atomic_load(&waited_out) == 0);
  }
  CHECK_OK(strand_threads_set_budget(0));
}

/* ---- idle workers sleep --------------------------------------------------------- */

/* CPU ticks (user + system) used so far by the pool's worker threads. */
static long worker_ticks(int *workers) {
  DIR *dir = opendir("/proc/self/task");
  if (!dir) return -1;
  long ticks = 0;
  *workers = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], text[1024];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *open = strchr(text, '('), *close = strrchr(text, ')');
    if (!open || !close || strncmp(open + 1, "strand-w", 8) != 0) continue;
    /* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime(14) stime(15). */
    char state;
    unsigned long skip, utime, stime;
    if (sscanf(close + 2, "%c %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &state, &skip,
               &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &utime,
               &stime) == 13) {
      ticks += (long)(utime + stime);
      (*workers)++;
    }
  }
  closedir(dir);
  return ticks;
}

TEST(idle_workers_stop_using_cpu) {
  CHECK_OK(strand_threads_set_budget(4));
  _Atomic int *hits = calloc(4096, sizeof *hits);
  int *plain = calloc(4096, sizeof *plain);
  REQUIRE(hits && plain);
  cover_ctx ctx = {4096, hits, plain};
  for (int i = 0; i < 200; i++) strand__parallel_for(4096, cover_task, &ctx, 0);
  sleep_ms(50);
  int workers = 0;
  long before = worker_ticks(&workers);
  REQUIRE(before >= 0);
  CHECK(workers >= 3);
  sleep_ms(400);
  long after = worker_ticks(&workers);
  long hz = sysconf(_SC_CLK_TCK);
  /* Spinning workers would burn ~0.4 s each; sleeping ones burn nothing. */
  CHECK(after - before <= hz / 20 + 1);
  if (after - before > hz / 20 + 1)
    printf("     idle workers used %ld ticks in 400 ms\n", after - before);
  free(hits);
  free(plain);
  CHECK_OK(strand_threads_set_budget(0));
}

/* Inside a session run, workers spin longer between loops, but never more
 * than a third of a millisecond: a run's long serial stretch, or the end of
 * every run, puts them to sleep. */
TEST(workers_spinning_through_a_run_still_sleep) {
  CHECK_OK(strand_threads_set_budget(2));
  _Atomic int *hits = calloc(4096, sizeof *hits);
  int *plain = calloc(4096, sizeof *plain);
  REQUIRE(hits && plain);
  cover_ctx ctx = {4096, hits, plain};
  strand__pool_run_begin();
  for (int i = 0; i < 500; i++) strand__parallel_for(4096, cover_task, &ctx, 0);
  int workers = 0;
  long hz = sysconf(_SC_CLK_TCK);
  long before = worker_ticks(&workers);
  REQUIRE(before >= 0);
  sleep_ms(400); /* a serial stretch of the run */
  long during = worker_ticks(&workers);
  CHECK(during - before <= hz / 20 + 1);
  strand__pool_run_end();
  sleep_ms(400);
  long after = worker_ticks(&workers);
  CHECK(after - during <= hz / 20 + 1);
  if (during - before > hz / 20 + 1 || after - during > hz / 20 + 1)
    printf("     workers used %ld ticks in a run's idle 400 ms, %ld after it\n",
           during - before, after - during);
  free(hits);
  free(plain);
  CHECK_OK(strand_threads_set_budget(0));
}

static void note_worker(void *ctx, size_t task) {
  cover_ctx *c = ctx;
  atomic_fetch_add_explicit(&c->hits[task], 1, memory_order_relaxed);
  if (strand__thread_pool_is_worker()) atomic_fetch_add_explicit(&c->hits[c->n], 1, memory_order_relaxed);
}

/* With as many session runs in progress as the budget, their loops run on
 * their callers alone (the callers already keep every core busy); with
 * fewer, workers still help. */
TEST(runs_as_many_as_the_budget_take_no_workers) {
  CHECK_OK(strand_threads_set_budget(2));
  enum { N = 4096 };
  _Atomic int *hits = calloc(N + 1, sizeof *hits);
  REQUIRE(hits);
  cover_ctx ctx = {N, hits, NULL};
  strand__pool_run_begin();
  strand__pool_run_begin(); /* two runs on a budget of two */
  for (int i = 0; i < 50; i++) strand__parallel_for(N, note_worker, &ctx, 0);
  CHECK(atomic_load(&hits[N]) == 0);
  strand__pool_run_end();
  int helped = 0;
  for (int i = 0; i < 2000 && !helped; i++) { /* one run: a worker may join */
    strand__parallel_for(N, note_worker, &ctx, 0);
    helped = atomic_load(&hits[N]) > 0;
  }
  strand__pool_run_end();
  CHECK(helped);
  for (int t = 0; t < N; t++) CHECK(atomic_load(&hits[t]) >= 50);
  free(hits);
  CHECK_OK(strand_threads_set_budget(0));
}

/* ---- fork ------------------------------------------------------------------------ */

static void child_task(void *ctx, size_t task) {
  cover_ctx *c = ctx;
  if (strand__thread_pool_is_worker()) c->plain[0] = -1000000;
  atomic_fetch_add_explicit(&c->hits[task], 1, memory_order_relaxed);
}

TEST(a_forked_child_runs_loops_on_the_calling_thread) {
  CHECK_OK(strand_threads_set_budget(2));
  _Atomic int hits[64];
  int plain[1] = {0};
  for (int i = 0; i < 64; i++) atomic_init(&hits[i], 0);
  cover_ctx ctx = {64, hits, plain};
  strand__parallel_for(64, child_task, &ctx, 0); /* workers exist now */
  plain[0] = 0;
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (int i = 0; i < 64; i++) atomic_store(&hits[i], 0);
    strand__parallel_for(64, child_task, &ctx, 0);
    int ok = plain[0] == 0;
    for (int i = 0; i < 64; i++) ok &= atomic_load(&hits[i]) == 1;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_OK(strand_threads_set_budget(0));
}
