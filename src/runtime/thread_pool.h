/*
 * thread_pool.h — the process-wide CPU budget, as kernels see it.
 *
 * One pool serves the whole process. Its budget B (strand_threads_get_budget)
 * counts the calling thread: at most B - 1 pool workers are ever busy at
 * once, whatever the number of callers, and every caller works on its own
 * call. Thirty-two callers on a budget of two therefore mean at most
 * thirty-three busy threads, never sixty-four; and with session runs
 * bracketed (strand__pool_run_begin), workers join a loop only while fewer
 * runs than the budget are in progress, so that such callers mean
 * thirty-two busy threads.
 */
#ifndef STRAND_THREAD_POOL_H
#define STRAND_THREAD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One task of a parallel loop: `task` is in [0, n_tasks). */
typedef void (*strand__task_fn)(void *ctx, size_t task);

/* Runs fn(ctx, i) once for every i in [0, n_tasks), in no particular order,
 * on the calling thread and on up to max_threads - 1 pool workers (0: as
 * many as the budget allows), and returns when every task has returned.
 * Writes made by the tasks happen before the return.
 * The caller claims tasks like the workers do, so the call makes progress
 * even when every worker is busy elsewhere. A call made from inside a task
 * (nested) runs its tasks on the calling thread. Never allocates and cannot
 * fail; `fn` must not unwind (longjmp) out of a task, and tasks must not
 * wait for one another (all of them may run on one thread, one by one).
 * Before it runs: fn is not NULL (unless n_tasks is 0). */
void strand__parallel_for(size_t n_tasks, strand__task_fn fn, void *ctx, unsigned max_threads);

/* Bracket a session run on the calling thread. While R > 1 runs are in
 * progress, a parallel loop takes at most (budget - R) / R workers (none
 * once R reaches the budget): the callers already keep R cores busy. Any
 * thread; every begin needs its end. */
void strand__pool_run_begin(void);
void strand__pool_run_end(void);

/* The current budget (>= 1), for choosing how finely to split work. */
unsigned strand__threads_budget(void);

/* ---- for tests ------------------------------------------------------------ */

/* The budget found on this machine (affinity mask, cgroup quota), ignoring
 * STRAND_THREADS and strand_threads_set_budget. */
unsigned strand__threads_detected(void);

/* The CPU limit a cgroup v2 cpu.max text ("max 100000", "150000 100000")
 * or a cgroup v1 quota and period pair expresses, rounded up; 0 for no
 * limit or text that does not parse. */
unsigned strand__cgroup_v2_limit(const char *cpu_max);
unsigned strand__cgroup_v1_limit(long long quota_us, long long period_us);

/* The tightest CPU quota for a process whose /proc/self/cgroup reads
 * `proc_self_cgroup`, with the cgroup file systems mounted under `root`
 * (v2 at root, v1 at root/cpu,cpuacct or root/cpu): the quotas of the
 * process's group and of every enclosing group apply. 0 for no quota. */
unsigned strand__cgroup_limit(const char *proc_self_cgroup, const char *root);

/* Workers created so far (they live for the process), and whether the
 * calling thread is one of them. */
unsigned strand__thread_pool_workers(void);
bool strand__thread_pool_is_worker(void);

/* Monotonic time in nanoseconds, for spin deadlines and latency figures. */
static inline uint64_t strand__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Tells the CPU this thread is spinning (a pause), letting its sibling run. */
static inline void strand__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif /* STRAND_THREAD_POOL_H */
