/*
 * core_internal.h — what the core layer offers the layers above it.
 *
 * Status and messages, the allocation seam with its accounting, the object
 * header (refcount, registry, leak traces) and logging. Nothing here depends
 * on any other layer.
 */
#ifndef STRAND_CORE_INTERNAL_H
#define STRAND_CORE_INTERNAL_H

#include "strand.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define STRAND_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define STRAND_NOINLINE __attribute__((noinline))
#define STRAND_LIKELY(x) __builtin_expect(!!(x), 1)
#define STRAND_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define STRAND_PRINTF(fmt, args)
#define STRAND_NOINLINE
#define STRAND_LIKELY(x) (x)
#define STRAND_UNLIKELY(x) (x)
#endif

/* ---- initialisation ---------------------------------------------------- */

/* Reads the environment once. Every public entry point that allocates or
 * depends on a setting calls it first; it is cheap after the first call. */
void strand__init(void);

/* ---- status and messages (status.c) ------------------------------------ */

/* Records `status` with a formatted detail text as the calling thread's last
 * failure and returns `status`, so that callers can write
 *   return strand__fail(STRAND_E_SHAPE, "input \"%s\": ...", name);   */
strand_status strand__fail(strand_status status, const char *fmt, ...) STRAND_PRINTF(2, 3);
strand_status strand__failv(strand_status status, const char *fmt, va_list ap)
    STRAND_PRINTF(2, 0);

/* Prefixes the calling thread's current message with `prefix: ` so that
 * outer layers add context ("node \"conv_3\" (Conv): ") without losing the
 * inner cause. Returns `status` unchanged. */
strand_status strand__fail_context(strand_status status, const char *fmt, ...)
    STRAND_PRINTF(2, 3);

/* ---- allocation seam and accounting (memory.c) ------------------------- */

/* Every byte strand allocates goes through these. On failure they record
 * STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT with a message saying what
 * was asked, what is in use and the limit, return that status and leave
 * `*out` untouched. `size` 0 yields a unique non-NULL pointer. */
strand_status strand__alloc(size_t size, strand_memory_category category, void **out);
strand_status strand__calloc(size_t size, strand_memory_category category, void **out);
/* `alignment` is a power of two >= sizeof(void *). */
strand_status strand__alloc_aligned(size_t size, size_t alignment,
                                    strand_memory_category category, void **out);
/* Resizes an allocation from strand__alloc (not aligned ones) in place of
 * realloc; on failure the old block is untouched. */
strand_status strand__realloc(void *old, size_t old_size, size_t new_size,
                              strand_memory_category category, void **out);
/* `size` and `category` must be those of the allocation. NULL is a no-op. */
void strand__free(void *ptr, size_t size, strand_memory_category category);
void strand__free_aligned(void *ptr, size_t size, strand_memory_category category);

/* Copies a NUL-terminated string through the seam (category OTHER); free with
 * strand__free_string. */
strand_status strand__strdup(const char *text, char **out);
void strand__free_string(char *text);

/* Accounting without allocation, for memory strand holds by other means
 * (a mapping it made, a block handed over by a child allocator). A charge is
 * subject to the limit and to fault injection like an allocation. */
strand_status strand__memory_charge(size_t size, strand_memory_category category);
void strand__memory_uncharge(size_t size, strand_memory_category category);

/* Overflow-checked arithmetic for sizes; false on overflow. */
static inline bool strand__size_mul(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}
static inline bool strand__size_add(size_t a, size_t b, size_t *out) {
  return !__builtin_add_overflow(a, b, out);
}

/* ---- objects (object.c) and leak traces (leak.c) ----------------------- */

struct strand__trace;

/* The header at the start of every public object. The shell (the block that
 * begins with this header) is allocated with strand__alloc(OTHER); whatever
 * else the object owns is freed by `destroy`, after which the shell goes to
 * the quarantine with its magic marked dead. */
typedef struct strand__object {
  _Atomic uint32_t magic; /* kind magic while alive, dead magic after */
  uint16_t kind;          /* strand_kind */
  uint16_t shard;         /* registry shard + 1, 0 when not registered */
  atomic_size_t refs;
  _Atomic uint64_t bytes; /* native bytes attributed to this object */
  const void *site;       /* caller of the creating public function, or NULL */
  size_t shell_size;
  struct strand__trace *trace;          /* NULL unless traced */
  struct strand__object *prev, *next;   /* registry links, under shard lock */
  void (*destroy)(struct strand__object *self);
} strand__object;

/* Initialises the header of a freshly allocated shell: one reference, the
 * kind's magic, counted and (per leak level) registered and traced. `site`
 * is the return address of the public function that creates the object
 * (`__builtin_return_address(0)` there), used to cut strand's own frames off
 * the trace. Cannot fail: a trace that cannot be allocated is skipped. */
void strand__object_init(strand__object *obj, strand_kind kind, size_t shell_size,
                         void (*destroy)(strand__object *), const void *site);

/* Frees a shell whose header was never initialised, or whose init must be
 * undone before any reference escaped (a constructor failing after init):
 * unregisters and frees immediately, without the destroy callback. */
void strand__object_abandon(strand__object *obj);

/* Checks that `handle` is a live object of `kind`. Returns STRAND_OK, or
 * STRAND_E_INVALID_ARGUMENT for NULL, or STRAND_E_MISUSE (counted, with a
 * message naming `function`) for a released handle or one of another kind. */
strand_status strand__object_check(const void *handle, strand_kind kind, const char *function);

/* Reference operations on a handle that passed strand__object_check. */
strand_status strand__object_retain(strand__object *obj, const char *function);
void strand__object_release(strand__object *obj);

/* Public release entry: NULL is a no-op; misuse is logged and counted. */
void strand__object_release_checked(void *handle, strand_kind kind, const char *function);

/* Adjusts the bytes attributed to an object (for leak reports). */
void strand__object_add_bytes(strand__object *obj, int64_t delta);

/* Counts a misuse and logs it; `fmt` describes it. Returns STRAND_E_MISUSE
 * with the description as the thread's message. */
strand_status strand__misuse(const char *fmt, ...) STRAND_PRINTF(1, 2);

/* Registry hooks used by object.c, implemented in leak.c. */
void strand__leak_register(strand__object *obj, const void *site);
void strand__leak_unregister(strand__object *obj);
uint64_t strand__live_objects(strand_kind kind);

/* ---- logging (log.c) --------------------------------------------------- */

bool strand__log_enabled(strand_log_level level);
void strand__log(strand_log_level level, const char *fmt, ...) STRAND_PRINTF(2, 3);

/* ---- environment parsing shared by the init code ----------------------- */

void strand__log_init_from_env(void);
void strand__leak_init_from_env(void);
void strand__memory_init_from_env(void);

#endif /* STRAND_CORE_INTERNAL_H */
