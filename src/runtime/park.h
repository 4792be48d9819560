/*
 * park.h — sleeping on a 32-bit word until it changes (a Linux futex).
 *
 * The rule that makes it safe: a waker changes the word (an atomic
 * read-modify-write) before it calls park_wake, and a waiter passes the
 * value it last saw; park_wait returns at once when the word no longer
 * holds it. park_wait may also return spuriously: callers loop.
 *
 * park_wake may be given the address of a word whose owner has since gone
 * (the owner saw the change and returned): that wakes nothing or gives
 * another waiter on reused memory a spurious return, never harm. This is
 * what lets a thread publish a result and wake its owner without a lock.
 */
#ifndef STRAND_RUNTIME_PARK_H
#define STRAND_RUNTIME_PARK_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *word == seen, at most until deadline_ns (CLOCK_MONOTONIC;
 * UINT64_MAX: no limit). */
void park_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t deadline_ns);

/* Wakes every thread sleeping on word. */
void park_wake(_Atomic uint32_t *word);

#endif /* STRAND_RUNTIME_PARK_H */
