/* Sleeping on a word (src/runtime/park.h): no lost wake-up when the word
 * changes before the sleep, deadlines honoured, a waker that changes the
 * word and wakes ends the sleep, and a wake on a word nobody waits on (or
 * whose owner has gone) does nothing. */
#include "test.h"

#include "runtime/park.h"
#include "runtime/thread_pool.h"

#include <pthread.h>
#include <time.h>

TEST(park_returns_at_once_when_the_word_moved) {
  _Atomic uint32_t word = 5;
  uint64_t t0 = strand__now_ns();
  park_wait(&word, 4, strand__now_ns() + 2000000000u); /* saw 4, holds 5 */
  CHECK(strand__now_ns() - t0 < 500000000u);
}

TEST(park_honours_its_deadline) {
  _Atomic uint32_t word = 0;
  uint64_t t0 = strand__now_ns();
  park_wait(&word, 0, t0 + 20000000u); /* 20 ms */
  uint64_t slept = strand__now_ns() - t0;
  /* Spurious returns are allowed; a loop that looks again keeps the deadline. */
  while (strand__now_ns() < t0 + 20000000u) park_wait(&word, 0, t0 + 20000000u);
  CHECK(strand__now_ns() - t0 >= 20000000u);
  CHECK(slept < 2000000000u);
  park_wait(&word, 0, t0); /* a deadline already past */
}

typedef struct sleeper {
  _Atomic uint32_t word;
  _Atomic int woke;
} sleeper;

static void *sleep_until_changed(void *arg) {
  sleeper *s = arg;
  uint32_t seen;
  while ((seen = atomic_load_explicit(&s->word, memory_order_acquire)) == 0)
    park_wait(&s->word, seen, UINT64_MAX);
  atomic_store(&s->woke, 1);
  return NULL;
}

TEST(park_wakes_every_sleeper_when_the_word_changes) {
  enum { N = 4 };
  sleeper s = {0, 0};
  pthread_t t[N];
  for (int i = 0; i < N; i++) CHECK(pthread_create(&t[i], NULL, sleep_until_changed, &s) == 0);
  struct timespec pause = {0, 20000000};
  nanosleep(&pause, NULL);
  CHECK(atomic_load(&s.woke) == 0);
  atomic_fetch_add_explicit(&s.word, 1, memory_order_release);
  park_wake(&s.word);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  CHECK(atomic_load(&s.woke) == 1);
}

/* The address of a word whose frame has returned, as a leader holds when
 * the follower it woke has already gone. */
static uintptr_t gone_word(void) {
  _Atomic uint32_t word = 1;
  volatile uintptr_t address = (uintptr_t)&word;
  return address;
}

TEST(park_wake_without_sleepers_is_harmless) {
  _Atomic uint32_t word = 0;
  park_wake(&word);
  park_wake((_Atomic uint32_t *)gone_word()); /* only the address is used */
  CHECK(atomic_load(&word) == 0);
}
