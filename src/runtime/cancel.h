/*
 * cancel.h — cancel tokens as runs see them (cancel.c), and the stop
 * condition a run carries: its token and its deadline.
 */
#ifndef STRAND_RUNTIME_CANCEL_H
#define STRAND_RUNTIME_CANCEL_H

#include "runtime/runtime_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Called by strand_cancel_token_cancel, after the flag is set, on the
 * canceling thread with the token's lock held. It may take a lock of its own
 * (the waiter's), which must never be held while the token's is taken. */
typedef struct cancel_watch {
  void (*wake)(void *context);
  void *context;
  struct cancel_watch *prev, *next;
} cancel_watch;

/* strand__object_check for a token (STRAND_E_MISUSE naming `function`). */
strand_status cancel_token_check(const strand_cancel_token *token, const char *function);
strand__object *cancel_token_header(strand_cancel_token *token);
/* The flag; the token must be alive (the caller holds a reference). */
bool cancel_token_canceled(const strand_cancel_token *token);
/* Registers / removes `w` (owned by the caller, alive until unwatched). */
void cancel_token_watch(strand_cancel_token *token, cancel_watch *w);
void cancel_token_unwatch(strand_cancel_token *token, cancel_watch *w);

#endif /* STRAND_RUNTIME_CANCEL_H */
