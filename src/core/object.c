/* object.c — the one refcount implementation, handle checks and the
 * quarantine that makes released handles detectable. */
#include "core/core_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Magic values: alive objects carry their kind's value, released shells the
 * dead value. Chosen so that no small integer or ASCII text collides. */
#define MAGIC_BASE 0x5A7D0000u
#define MAGIC_DEAD 0xDEAD5A7Du
#define KIND_MAGIC(kind) (MAGIC_BASE | (0x100u * ((uint32_t)(kind) + 1u)) | 0x3Cu)

/* Released shells wait here before their memory is returned, so that a
 * released handle still reads as dead for a while. Exchanging a slot makes
 * the evicted shell exclusively ours to free. */
#define QUARANTINE_SLOTS 1024
static _Atomic(strand__object *) quarantine[QUARANTINE_SLOTS];
static _Alignas(64) _Atomic uint32_t quarantine_head;
static _Atomic uint64_t misuse_count;

static void quarantine_put(strand__object *shell) {
  uint32_t slot = atomic_fetch_add_explicit(&quarantine_head, 1, memory_order_relaxed);
  strand__object *old =
      atomic_exchange_explicit(&quarantine[slot % QUARANTINE_SLOTS], shell, memory_order_acq_rel);
  free(old); /* its bytes were uncharged when it entered the quarantine */
}

uint64_t strand_misuse_count(void) {
  return atomic_load_explicit(&misuse_count, memory_order_relaxed);
}

strand_status strand__misuse(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  strand__failv(STRAND_E_MISUSE, fmt, ap);
  va_end(ap);
  atomic_fetch_add_explicit(&misuse_count, 1, memory_order_relaxed);
  strand__log(STRAND_LOG_ERROR, "misuse: %s", strand_errmsg());
  return STRAND_E_MISUSE;
}

void strand__object_init(strand__object *obj, strand_kind kind, size_t shell_size,
                         void (*destroy)(strand__object *), const void *site) {
  atomic_init(&obj->magic, KIND_MAGIC(kind));
  obj->kind = (uint16_t)kind;
  obj->shard = 0;
  atomic_init(&obj->refs, 1);
  atomic_init(&obj->bytes, 0);
  obj->site = site;
  obj->shell_size = shell_size;
  obj->trace = NULL;
  obj->prev = obj->next = NULL;
  obj->destroy = destroy;
  strand__leak_register(obj, site);
}

void strand__object_abandon(strand__object *obj) {
  strand__leak_unregister(obj);
  strand__free(obj, obj->shell_size, STRAND_MEMORY_OTHER);
}

strand_status strand__object_check(const void *handle, strand_kind kind, const char *function) {
  if (STRAND_UNLIKELY(!handle))
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: the %s handle is NULL", function,
                        strand_kind_name(kind));
  const strand__object *obj = handle;
  uint32_t magic = atomic_load_explicit(&obj->magic, memory_order_relaxed);
  if (STRAND_LIKELY(magic == KIND_MAGIC(kind))) return STRAND_OK;
  if (magic == MAGIC_DEAD)
    return strand__misuse("%s: %s handle %p was already released", function,
                          strand_kind_name(kind), handle);
  for (int k = 0; k < STRAND_KIND_COUNT; k++)
    if (magic == KIND_MAGIC(k))
      return strand__misuse("%s: handle %p is a %s, not a %s", function, handle,
                            strand_kind_name((strand_kind)k), strand_kind_name(kind));
  return strand__misuse("%s: %p is not a strand %s handle", function, handle,
                        strand_kind_name(kind));
}

strand_status strand__object_retain(strand__object *obj, const char *function) {
  size_t old = atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
  if (STRAND_UNLIKELY(old == 0)) {
    /* Another thread dropped the last reference while this one still used the
     * handle: the caller broke the hand-off rule. */
#ifndef NDEBUG
    fprintf(stderr, "strand: %s: retain of a %s whose last reference is gone\n", function,
            strand_kind_name((strand_kind)obj->kind));
    abort();
#else
    return strand__misuse("%s: retain of a %s whose last reference is gone", function,
                          strand_kind_name((strand_kind)obj->kind));
#endif
  }
  return STRAND_OK;
}

void strand__object_release(strand__object *obj) {
  size_t old = atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_release);
  if (STRAND_LIKELY(old > 1)) return;
  if (STRAND_UNLIKELY(old == 0)) {
#ifndef NDEBUG
    fprintf(stderr, "strand: reference count underflow on a %s\n",
            strand_kind_name((strand_kind)obj->kind));
    abort();
#else
    strand__misuse("reference count underflow on a %s", strand_kind_name((strand_kind)obj->kind));
    return;
#endif
  }
  /* Every other thread's writes made through its references happen before.
   * ThreadSanitizer does not model fences; an acquire load of the counter
   * gives the same ordering through the release sequence, in a form it sees. */
#if defined(__SANITIZE_THREAD__)
  (void)atomic_load_explicit(&obj->refs, memory_order_acquire);
#else
  atomic_thread_fence(memory_order_acquire);
#endif
  atomic_store_explicit(&obj->magic, MAGIC_DEAD, memory_order_relaxed);
  strand__leak_unregister(obj);
  if (obj->destroy) obj->destroy(obj);
  strand__memory_uncharge(obj->shell_size, STRAND_MEMORY_OTHER);
  quarantine_put(obj);
}

void strand__object_release_checked(void *handle, strand_kind kind, const char *function) {
  if (!handle) return;
  if (strand__object_check(handle, kind, function) != STRAND_OK) return;
  strand__object_release(handle);
}
