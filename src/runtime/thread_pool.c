/* thread_pool.c — the process-wide CPU budget: workers, created lazily and
 * kept for the life of the process, that help callers with parallel loops,
 * never more of them busy than the budget allows.
 *
 * A caller describes its loop in a job on its own stack, puts it in the
 * queue and claims tasks itself. An idle worker takes the first job in the
 * queue that can use another helper, claims tasks from it like the caller
 * does, and goes back to the queue when none are left. A job leaves the
 * queue when it has all the helpers it may have, when a worker finds it has
 * no task left, or when its caller is done; the caller then waits until the
 * workers that joined have let go of it.
 *
 * Fork: a child process has none of the parent's workers; after fork() the
 * pool runs every loop on the calling thread in the child (a pthread_atfork
 * handler notes the fork). The pool's lock is not made fork-safe: a child
 * forked while another thread held it must not count on the pool being
 * usable beyond that fallback. */
#include "runtime/thread_pool.h"

#include "core/core_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The largest budget accepted (the API twin says so too). */
#define THREADS_MAX 1024
/* How long an idle thread spins, watching for work, before it sleeps, when
 * the process has more than one CPU (with one, spinning only delays the
 * thread it waits for). */
#define SPIN_NS 20000u
/* While session runs are in progress and leave a worker a core, idle
 * threads spin this long instead: a worker between a run's loops, and a
 * caller waiting for the workers of its loop to finish. A thread that went
 * to sleep there wakes late: on a virtual machine a halted vCPU can take
 * milliseconds to get its core back (ResNet-18 at batch 1, two threads:
 * about 8 callers' and 6 workers' sleeps per run with 20 µs, under one
 * with this; 61 → 65 inf/s in interleaved medians). The
 * worker's long spin ends early when no run is left; the short one follows
 * it, which is what catches the next of back-to-back runs. */
#define RUN_SPIN_NS 300000u

typedef struct job {
  strand__task_fn fn;
  void *ctx;
  size_t n_tasks;
  _Atomic size_t next;       /* the next task to claim */
  _Atomic unsigned attached; /* workers that hold a pointer to this job */
  /* Under pool.lock: */
  unsigned helpers_max;
  unsigned helpers_joined;
  bool queued;
  bool caller_waiting; /* the caller sleeps on pool.done until attached is 0 */
  struct job *prev, *next_job;
} job;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t work; /* idle workers sleep here */
  pthread_cond_t done; /* callers waiting for their helpers sleep here */
  /* Under lock: */
  job *head, *tail; /* jobs that can take another helper, oldest first */
  unsigned workers; /* created so far */
  unsigned active;  /* attached to a job */
  unsigned spinning;
  unsigned sleeping;
  bool create_failed;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Atomic unsigned queue_length; /* mirrors the queue, for spinning workers */
/* strand__pool_run_begin minus _end. Every run of every thread writes it
 * twice: a cache line of its own, away from `budget`, which every loop reads. */
static _Alignas(64) _Atomic unsigned runs_active;
static _Atomic unsigned budget;
static _Atomic unsigned worker_count;
static _Atomic bool forked_child;
static unsigned detected; /* written once, under `once` */
static uint64_t spin_ns;  /* written once, under `once` */
static char bad_env[64];  /* an unusable STRAND_THREADS, for the warning */
static _Atomic bool warning_due;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local bool in_task; /* inside a loop: nested loops run inline */
static _Thread_local bool is_worker;

/* ---- the budget --------------------------------------------------------- */

static bool read_text(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return len > 0;
}

unsigned strand__cgroup_v1_limit(long long quota_us, long long period_us) {
  if (quota_us <= 0 || period_us <= 0) return 0;
  long long cpus = quota_us / period_us + (quota_us % period_us != 0);
  if (cpus < 1) cpus = 1;
  return cpus > THREADS_MAX ? THREADS_MAX : (unsigned)cpus;
}

unsigned strand__cgroup_v2_limit(const char *cpu_max) {
  long long quota, period;
  if (!cpu_max || sscanf(cpu_max, "%lld %lld", &quota, &period) != 2) return 0;
  return strand__cgroup_v1_limit(quota, period);
}

static unsigned tighter(unsigned a, unsigned b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return a < b ? a : b;
}

/* The tightest quota on `path` (a cgroup path, "/..." or "/") and on each of
 * its ancestors under `root`; quotas of enclosing groups apply too. Paths
 * that do not exist under root (a container that sees its own group as the
 * root) end the walk at the root. */
static unsigned cgroup_walk(const char *root, const char *path, bool v2) {
  char dir[1024], file[1200], text[128];
  unsigned limit = 0;
  snprintf(dir, sizeof dir, "%s", path);
  for (;;) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = '\0';
    const char *sub = strcmp(dir, "/") == 0 ? "" : dir;
    if (v2) {
      snprintf(file, sizeof file, "%s%s/cpu.max", root, sub);
      if (read_text(file, text, sizeof text)) limit = tighter(limit, strand__cgroup_v2_limit(text));
    } else {
      long long quota = 0, period = 0;
      snprintf(file, sizeof file, "%s%s/cpu.cfs_quota_us", root, sub);
      if (read_text(file, text, sizeof text)) quota = atoll(text);
      snprintf(file, sizeof file, "%s%s/cpu.cfs_period_us", root, sub);
      if (read_text(file, text, sizeof text)) period = atoll(text);
      limit = tighter(limit, strand__cgroup_v1_limit(quota, period));
    }
    if (strcmp(dir, "/") == 0 || dir[0] != '/') break;
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
  }
  return limit;
}

static bool has_token(const char *list, size_t len, const char *token) {
  size_t t = strlen(token);
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && list[j] != ',') j++;
    if (j - i == t && memcmp(list + i, token, t) == 0) return true;
    i = j + 1;
  }
  return false;
}

unsigned strand__cgroup_limit(const char *proc_self_cgroup, const char *root) {
  static const char *const v1_dirs[] = {"/cpu,cpuacct", "/cpuacct,cpu", "/cpu"};
  char text[4096], v1_root[512];
  snprintf(text, sizeof text, "%s", proc_self_cgroup ? proc_self_cgroup : "");
  unsigned limit = 0;
  bool v2_seen = false, v1_seen = false;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    /* hierarchy-id:controllers:path */
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2) {
      const char *controllers = c1 + 1;
      size_t clen = (size_t)(c2 - controllers);
      const char *path = c2 + 1;
      if (clen == 0 && strncmp(line, "0:", 2) == 0) {
        v2_seen = true;
        limit = tighter(limit, cgroup_walk(root, path, true));
      } else if (has_token(controllers, clen, "cpu")) {
        v1_seen = true;
        for (size_t i = 0; i < sizeof v1_dirs / sizeof v1_dirs[0]; i++) {
          snprintf(v1_root, sizeof v1_root, "%s%s", root, v1_dirs[i]);
          limit = tighter(limit, cgroup_walk(v1_root, path, false));
        }
      }
    }
    if (!end) break;
    line = end + 1;
  }
  /* Without /proc/self/cgroup, or without a line for a hierarchy, the
   * quota at its root is what a container sees. */
  if (!v2_seen) limit = tighter(limit, cgroup_walk(root, "/", true));
  if (!v1_seen)
    for (size_t i = 0; i < sizeof v1_dirs / sizeof v1_dirs[0]; i++) {
      snprintf(v1_root, sizeof v1_root, "%s%s", root, v1_dirs[i]);
      limit = tighter(limit, cgroup_walk(v1_root, "/", false));
    }
  return limit;
}

/* CPUs the cgroup quotas allow this process, rounded up; 0 for no quota. */
static unsigned cgroup_limit(void) {
  char text[4096];
  if (!read_text("/proc/self/cgroup", text, sizeof text)) text[0] = '\0';
  return strand__cgroup_limit(text, "/sys/fs/cgroup");
}

static unsigned affinity_count(void) {
  cpu_set_t sets[8]; /* 8192 CPUs */
  memset(sets, 0, sizeof sets);
  if (sched_getaffinity(0, sizeof sets, sets) == 0) {
    int n = CPU_COUNT_S(sizeof sets, sets);
    if (n > 0) return (unsigned)n;
  }
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? (unsigned)online : 1;
}

static void note_fork(void) { atomic_store_explicit(&forked_child, true, memory_order_relaxed); }

static void init_once(void) {
  strand__init();
  unsigned cpus = tighter(affinity_count(), cgroup_limit());
  if (cpus < 1) cpus = 1;
  if (cpus > THREADS_MAX) cpus = THREADS_MAX;
  detected = cpus;
  spin_ns = cpus > 1 ? SPIN_NS : 0;
  unsigned chosen = cpus;
  const char *env = getenv("STRAND_THREADS");
  if (env && *env && strcmp(env, "auto") != 0) {
    char *end;
    unsigned long n = strtoul(env, &end, 10);
    if (*end != '\0' || env[0] == '-' || n > THREADS_MAX) {
      snprintf(bad_env, sizeof bad_env, "%s", env);
      atomic_store_explicit(&warning_due, true, memory_order_release);
    } else if (n > 0) {
      chosen = (unsigned)n;
    }
  }
  atomic_store_explicit(&budget, chosen, memory_order_relaxed);
  pthread_atfork(NULL, NULL, note_fork);
}

/* Runs init_once, then logs what it found outside of it: a log callback
 * that asks for the budget must not meet pthread_once half done. */
static void ensure_init(void) {
  pthread_once(&once, init_once);
  if (STRAND_UNLIKELY(atomic_load_explicit(&warning_due, memory_order_relaxed)) &&
      atomic_exchange_explicit(&warning_due, false, memory_order_acquire))
    strand__log(STRAND_LOG_WARN, "STRAND_THREADS=\"%s\" ignored: expected 0 or auto (the "
                "detected %u) or a thread count from 1 to %d", bad_env, detected, THREADS_MAX);
}

static unsigned current_budget(void) {
  ensure_init();
  return atomic_load_explicit(&budget, memory_order_relaxed);
}

strand_status strand_threads_set_budget(unsigned threads) {
  ensure_init();
  if (threads > THREADS_MAX)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_threads_set_budget: %u threads is "
                        "over the maximum of %d", threads, THREADS_MAX);
  atomic_store_explicit(&budget, threads ? threads : detected, memory_order_relaxed);
  pthread_mutex_lock(&pool.lock);
  pool.create_failed = false; /* a new budget may try to create workers again */
  pthread_mutex_unlock(&pool.lock);
  return STRAND_OK;
}

unsigned strand_threads_get_budget(void) { return current_budget(); }

unsigned strand__threads_budget(void) { return current_budget(); }

unsigned strand__threads_detected(void) {
  ensure_init();
  return detected;
}

unsigned strand__thread_pool_workers(void) {
  return atomic_load_explicit(&worker_count, memory_order_relaxed);
}

bool strand__thread_pool_is_worker(void) { return is_worker; }

/* ---- spinning ------------------------------------------------------------------ */


/* Spins for at most `limit` ns until *value != 0 (want_zero false) or == 0
 * (want_zero true); tells whether that happened. Acquire on success. With
 * `while_runs`, it also gives up once no session run is in progress. */
static bool spin_for(_Atomic unsigned *value, bool want_zero, uint64_t limit, bool while_runs) {
  uint64_t deadline = 0;
  for (unsigned i = 0;; i++) {
    if ((atomic_load_explicit(value, memory_order_acquire) == 0) == want_zero) return true;
    if (limit == 0) return false;
    strand__cpu_relax();
    if ((i & 63) == 63) {
      uint64_t t = strand__now_ns();
      if (deadline == 0) deadline = t + limit;
      else if (t > deadline) return false;
      if (while_runs && atomic_load_explicit(&runs_active, memory_order_relaxed) == 0) return false;
    }
  }
}

/* Whether an idle thread may take the long spin: runs are in progress and
 * leave a core over (runs at least as many as the budget keep every core
 * busy with their callers). */
static bool in_run_spin(void) {
  unsigned runs = atomic_load_explicit(&runs_active, memory_order_relaxed);
  return spin_ns && runs > 0 && runs < current_budget();
}

void strand__pool_run_begin(void) {
  atomic_fetch_add_explicit(&runs_active, 1, memory_order_relaxed);
}

void strand__pool_run_end(void) {
  atomic_fetch_sub_explicit(&runs_active, 1, memory_order_relaxed);
}

/* ---- the queue (all under pool.lock) ---------------------------------------- */

static void push(job *j) {
  j->prev = pool.tail;
  j->next_job = NULL;
  if (pool.tail) pool.tail->next_job = j;
  else pool.head = j;
  pool.tail = j;
  j->queued = true;
  atomic_fetch_add_explicit(&queue_length, 1, memory_order_release);
}

static void unlink_job(job *j) {
  if (j->prev) j->prev->next_job = j->next_job;
  else pool.head = j->next_job;
  if (j->next_job) j->next_job->prev = j->prev;
  else pool.tail = j->prev;
  j->queued = false;
  atomic_fetch_sub_explicit(&queue_length, 1, memory_order_relaxed);
}

/* The first job that still has tasks to claim, attached to the calling
 * worker; jobs found exhausted leave the queue on the way. */
static job *take_job(void) {
  while (pool.head) {
    job *j = pool.head;
    if (atomic_load_explicit(&j->next, memory_order_relaxed) >= j->n_tasks) {
      unlink_job(j);
      continue;
    }
    j->helpers_joined++;
    atomic_fetch_add_explicit(&j->attached, 1, memory_order_relaxed);
    if (j->helpers_joined >= j->helpers_max) unlink_job(j);
    return j;
  }
  return NULL;
}

static void run_tasks(job *j) {
  for (;;) {
    size_t task = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (task >= j->n_tasks) return;
    j->fn(j->ctx, task);
  }
}

/* ---- workers ---------------------------------------------------------------- */

static unsigned workers_allowed(void) {
  unsigned b = atomic_load_explicit(&budget, memory_order_relaxed);
  return b > 0 ? b - 1 : 0;
}

static void *worker_main(void *arg) {
  char name[16];
  snprintf(name, sizeof name, "strand-w%u", (unsigned)(uintptr_t)arg);
  pthread_setname_np(pthread_self(), name);
  is_worker = true;
  in_task = true;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    job *j = pool.active < workers_allowed() ? take_job() : NULL;
    if (j) {
      pool.active++;
      pthread_mutex_unlock(&pool.lock);
      run_tasks(j);
      pthread_mutex_lock(&pool.lock);
      pool.active--;
      bool wake = j->caller_waiting;
      /* The caller may return as soon as this lands: j is not touched after. */
      atomic_fetch_sub_explicit(&j->attached, 1, memory_order_release);
      if (wake) pthread_cond_broadcast(&pool.done);
      continue;
    }
    if (pool.active + pool.spinning < workers_allowed()) {
      pool.spinning++;
      pthread_mutex_unlock(&pool.lock);
      bool seen = in_run_spin() && spin_for(&queue_length, false, RUN_SPIN_NS, true);
      /* Then the short spin: also what catches the next of back-to-back runs. */
      if (!seen) seen = spin_for(&queue_length, false, spin_ns, false);
      pthread_mutex_lock(&pool.lock);
      pool.spinning--;
      if (seen || pool.head) continue;
    }
    pool.sleeping++;
    pthread_cond_wait(&pool.work, &pool.lock);
    pool.sleeping--;
  }
  return NULL;
}

/* Creates workers until `target` exist; returns 0, or the error of the
 * first creation that failed (no more are tried after one fails). Runs
 * under pool.lock. Workers start with every signal blocked, so that signals
 * reach the host's threads. */
static int add_workers(unsigned target) {
  if (pool.workers >= target || pool.create_failed) return 0;
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err != 0) return err;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (pool.workers < target) {
    pthread_t thread;
    err = pthread_create(&thread, &attr, worker_main, (void *)(uintptr_t)pool.workers);
    if (err != 0) {
      pool.create_failed = true;
      break;
    }
    pool.workers++;
    atomic_store_explicit(&worker_count, pool.workers, memory_order_relaxed);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return err;
}

/* ---- parallel loops --------------------------------------------------------- */

static void run_inline(size_t n_tasks, strand__task_fn fn, void *ctx) {
  bool outer = in_task;
  in_task = true;
  for (size_t i = 0; i < n_tasks; i++) fn(ctx, i);
  in_task = outer;
}

void strand__parallel_for(size_t n_tasks, strand__task_fn fn, void *ctx, unsigned max_threads) {
  if (n_tasks == 0) return;
  if (n_tasks == 1 || max_threads == 1 || in_task) {
    run_inline(n_tasks, fn, ctx);
    return;
  }
  unsigned budget_now = current_budget(), helpers = budget_now - 1;
  /* Every run in progress keeps its caller's thread busy: the runs share
   * what the budget has left, so that callers do not wait for a worker the
   * system had to take a core from. */
  unsigned runs = atomic_load_explicit(&runs_active, memory_order_relaxed);
  if (runs > 1) helpers = runs < budget_now ? (budget_now - runs) / runs : 0;
  if (max_threads != 0 && max_threads - 1 < helpers) helpers = max_threads - 1;
  if (n_tasks - 1 < helpers) helpers = (unsigned)(n_tasks - 1);
  if (helpers == 0 || atomic_load_explicit(&forked_child, memory_order_relaxed)) {
    run_inline(n_tasks, fn, ctx);
    return;
  }

  job j;
  j.fn = fn;
  j.ctx = ctx;
  j.n_tasks = n_tasks;
  atomic_init(&j.next, 0);
  atomic_init(&j.attached, 0);
  j.helpers_max = helpers;
  j.helpers_joined = 0;
  j.caller_waiting = false;

  pthread_mutex_lock(&pool.lock);
  int create_error = add_workers(workers_allowed());
  unsigned workers = pool.workers;
  push(&j);
  /* Spinning workers will see the job; wake sleepers for the rest. */
  unsigned wake = helpers > pool.spinning ? helpers - pool.spinning : 0;
  if (wake > pool.sleeping) wake = pool.sleeping;
  for (unsigned i = 0; i < wake; i++) pthread_cond_signal(&pool.work);
  pthread_mutex_unlock(&pool.lock);
  if (STRAND_UNLIKELY(create_error != 0))
    strand__log(STRAND_LOG_WARN, "thread pool: cannot create more workers (%s); going on with "
                "%u", strerror(create_error), workers);

  in_task = true;
  run_tasks(&j);
  in_task = false;

  /* Every task is claimed. No worker may join from here on; wait for those
   * that did to finish their last task and let go. */
  pthread_mutex_lock(&pool.lock);
  if (j.queued) unlink_job(&j);
  pthread_mutex_unlock(&pool.lock);
  if (spin_for(&j.attached, true, in_run_spin() ? RUN_SPIN_NS : spin_ns, false)) return;
  pthread_mutex_lock(&pool.lock);
  j.caller_waiting = true;
  while (atomic_load_explicit(&j.attached, memory_order_acquire) != 0)
    pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
}
