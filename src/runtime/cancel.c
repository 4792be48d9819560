/*
 * cancel.c — cancel tokens: a sticky flag that one thread sets and runs
 * watch.
 *
 * Runs read the flag at node boundaries (one relaxed-then-acquire load, no
 * lock). A run that sleeps (waiting to be batched) registers a watch: a
 * callback that cancel calls after setting the flag, so the sleeper wakes at
 * once. Lock order: the token's lock, then whatever lock the callback takes;
 * nobody takes the token's lock while holding a lock a callback may take.
 */
#include "runtime/cancel.h"

#include <string.h>

struct strand_cancel_token {
  strand__object header;
  atomic_bool canceled;
  pthread_mutex_t lock; /* guards watches */
  cancel_watch *watches;
};

static void token_destroy(strand__object *self) {
  strand_cancel_token *t = (strand_cancel_token *)self;
  /* Every watch belongs to a run that holds a reference: none is left. */
  pthread_mutex_destroy(&t->lock);
}

STRAND_NOINLINE strand_status strand_cancel_token_create(strand_cancel_token **out) {
  strand__init();
  static const char fn[] = "strand_cancel_token_create";
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  void *p;
  strand_status st = strand__calloc(sizeof(strand_cancel_token), STRAND_MEMORY_OTHER, &p);
  if (st) return strand__fail_context(st, "%s", fn);
  strand_cancel_token *t = p;
  atomic_init(&t->canceled, false);
  pthread_mutex_init(&t->lock, NULL);
  t->watches = NULL;
  strand__object_init(&t->header, STRAND_KIND_CANCEL_TOKEN, sizeof *t, token_destroy,
                      __builtin_return_address(0));
  *out = t;
  return STRAND_OK;
}

strand_status strand_cancel_token_retain(strand_cancel_token *token) {
  static const char fn[] = "strand_cancel_token_retain";
  strand_status st = strand__object_check(token, STRAND_KIND_CANCEL_TOKEN, fn);
  if (st) return st;
  return strand__object_retain(&token->header, fn);
}

void strand_cancel_token_release(strand_cancel_token *token) {
  strand__object_release_checked(token, STRAND_KIND_CANCEL_TOKEN, "strand_cancel_token_release");
}

strand_status strand_cancel_token_cancel(strand_cancel_token *token) {
  strand_status st = strand__object_check(token, STRAND_KIND_CANCEL_TOKEN,
                                          "strand_cancel_token_cancel");
  if (st) return st;
  atomic_store_explicit(&token->canceled, true, memory_order_release);
  pthread_mutex_lock(&token->lock);
  for (cancel_watch *w = token->watches; w; w = w->next) w->wake(w->context);
  pthread_mutex_unlock(&token->lock);
  return STRAND_OK;
}

strand_status strand_cancel_token_reset(strand_cancel_token *token) {
  strand_status st = strand__object_check(token, STRAND_KIND_CANCEL_TOKEN,
                                          "strand_cancel_token_reset");
  if (st) return st;
  atomic_store_explicit(&token->canceled, false, memory_order_release);
  return STRAND_OK;
}

int strand_cancel_token_is_canceled(const strand_cancel_token *token) {
  if (strand__object_check(token, STRAND_KIND_CANCEL_TOKEN, "strand_cancel_token_is_canceled"))
    return 0;
  return cancel_token_canceled(token);
}

/* ---- for runs -------------------------------------------------------------------- */

strand_status cancel_token_check(const strand_cancel_token *token, const char *function) {
  return strand__object_check(token, STRAND_KIND_CANCEL_TOKEN, function);
}

strand__object *cancel_token_header(strand_cancel_token *token) { return &token->header; }

bool cancel_token_canceled(const strand_cancel_token *token) {
  return atomic_load_explicit(&((strand_cancel_token *)(uintptr_t)token)->canceled,
                              memory_order_acquire);
}

void cancel_token_watch(strand_cancel_token *token, cancel_watch *w) {
  pthread_mutex_lock(&token->lock);
  w->next = token->watches;
  w->prev = NULL;
  if (token->watches) token->watches->prev = w;
  token->watches = w;
  pthread_mutex_unlock(&token->lock);
}

void cancel_token_unwatch(strand_cancel_token *token, cancel_watch *w) {
  pthread_mutex_lock(&token->lock);
  if (w->prev) w->prev->next = w->next;
  else token->watches = w->next;
  if (w->next) w->next->prev = w->prev;
  pthread_mutex_unlock(&token->lock);
}
