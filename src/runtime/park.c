/*
 * park.c — sleeping on a word (see park.h).
 */
#include "runtime/park.h"

#include <time.h>

#if defined(__linux__)

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void park_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t deadline_ns) {
  struct timespec at, *timeout = NULL;
  if (deadline_ns != UINT64_MAX) {
    at.tv_sec = (time_t)(deadline_ns / 1000000000u);
    at.tv_nsec = (long)(deadline_ns % 1000000000u);
    timeout = &at;
  }
  /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. EAGAIN (the
   * word changed), EINTR and ETIMEDOUT all mean: look again. */
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, timeout,
          NULL, FUTEX_BITSET_MATCH_ANY);
}

void park_wake(_Atomic uint32_t *word) {
  /* The word may belong to a frame that has returned (see park.h): the
   * kernel only hashes the address. */
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT32_MAX, NULL, NULL, 0);
}

#else
#error "park.c needs Linux futexes (strand also relies on sched_getaffinity)"
#endif
