/* memory.c — the one allocation seam: accounting by category, the optional
 * process-wide limit, and injected failures for tests. */
#include "core/core_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Aligned blocks of at least this size, other than tensor data, bypass
 * malloc: each is mapped and unmapped whole, so its pages go back to the
 * system when it is freed. Through malloc they need not: glibc raises its
 * mmap threshold after a large free (up to 32 MiB), and from then on a
 * planning run's values are carved from its heaps and stay resident after
 * strand frees them (ResNet-18 at batch 32 kept 410 MiB resident for
 * 240 MiB in use). Tensor data stays with malloc: tensors come and go with
 * every run, and mapping fresh pages each time costs page faults (a 1 MiB
 * output cost 13 times as much to make and fill). The choice depends on
 * the size and category alone, which strand__free_aligned is given too.
 * Not under AddressSanitizer, whose malloc guards the edges of every
 * block. */
#if defined(__SANITIZE_ADDRESS__)
#define MAP_MIN_BYTES SIZE_MAX
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAP_MIN_BYTES SIZE_MAX
#endif
#endif
#ifndef MAP_MIN_BYTES
#define MAP_MIN_BYTES ((size_t)1 << 20)
#endif

/* Live and peak bytes per category and in total. A reservation adds to the
 * total first and backs out if that crosses the limit, so concurrent
 * allocators can never push the total past the limit together. */
/* Counters that change on every allocation each have a cache line of their
 * own, so that threads allocating at once share only what they must. */
#define LINE _Alignas(64)
static LINE _Atomic uint64_t live[STRAND_MEMORY_CATEGORY_COUNT];
static LINE _Atomic uint64_t peak[STRAND_MEMORY_CATEGORY_COUNT];
static LINE _Atomic uint64_t total_live;
static LINE _Atomic uint64_t total_peak;
static LINE _Atomic uint64_t allocations;
/* Rarely written. */
static LINE _Atomic uint64_t limit_bytes;
static _Atomic uint64_t failed_allocations;
/* Injected failure: when armed, the allocation that brings the countdown to
 * zero fails. */
static _Atomic uint64_t fail_countdown;

static const char *const category_names[STRAND_MEMORY_CATEGORY_COUNT] = {
    "tensor", "weights", "scratch", "other"};

const char *strand_memory_category_name(strand_memory_category category) {
  if ((unsigned)category >= STRAND_MEMORY_CATEGORY_COUNT) return "unknown";
  return category_names[category];
}

static void raise_peak(_Atomic uint64_t *p, uint64_t value) {
  uint64_t seen = atomic_load_explicit(p, memory_order_relaxed);
  while (seen < value &&
         !atomic_compare_exchange_weak_explicit(p, &seen, value, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static void format_bytes(char *buf, size_t cap, uint64_t n) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, cap, "%llu B", (unsigned long long)n);
  else
    snprintf(buf, cap, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)n);
}

/* Succeeds unless an injected failure is due or the limit would be crossed. */
static strand_status reserve(size_t size, strand_memory_category category) {
  if (STRAND_UNLIKELY(atomic_load_explicit(&fail_countdown, memory_order_relaxed) != 0)) {
    uint64_t before = atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    if (before == 1) {
      atomic_fetch_add_explicit(&failed_allocations, 1, memory_order_relaxed);
      return strand__fail(STRAND_E_OUT_OF_MEMORY,
                          "out of memory: allocation of %zu bytes (%s) refused "
                          "(injected failure)", size, category_names[category]);
    }
    if (before == 0) atomic_store_explicit(&fail_countdown, 0, memory_order_relaxed);
  }
  uint64_t now = atomic_fetch_add_explicit(&total_live, size, memory_order_relaxed) + size;
  uint64_t limit = atomic_load_explicit(&limit_bytes, memory_order_relaxed);
  if (STRAND_UNLIKELY(limit != 0 && now > limit)) {
    atomic_fetch_sub_explicit(&total_live, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&failed_allocations, 1, memory_order_relaxed);
    char asked[64], used[64], lim[64];
    format_bytes(asked, sizeof asked, size);
    format_bytes(used, sizeof used, now - size);
    format_bytes(lim, sizeof lim, limit);
    return strand__fail(STRAND_E_MEMORY_LIMIT,
                        "memory limit reached: asked for %s of %s memory with %s in use; "
                        "the limit is %s",
                        asked, category_names[category], used, lim);
  }
  raise_peak(&total_peak, now);
  uint64_t cat = atomic_fetch_add_explicit(&live[category], size, memory_order_relaxed) + size;
  raise_peak(&peak[category], cat);
  return STRAND_OK;
}

static void unreserve(size_t size, strand_memory_category category) {
  atomic_fetch_sub_explicit(&live[category], size, memory_order_relaxed);
  atomic_fetch_sub_explicit(&total_live, size, memory_order_relaxed);
}

static strand_status system_refused(size_t size, strand_memory_category category) {
  unreserve(size, category);
  atomic_fetch_add_explicit(&failed_allocations, 1, memory_order_relaxed);
  return strand__fail(STRAND_E_OUT_OF_MEMORY,
                      "out of memory: the system refused %zu bytes of %s memory", size,
                      category_names[category]);
}

strand_status strand__memory_charge(size_t size, strand_memory_category category) {
  if ((unsigned)category >= STRAND_MEMORY_CATEGORY_COUNT) category = STRAND_MEMORY_OTHER;
  strand_status st = reserve(size, category);
  if (st == STRAND_OK) atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return st;
}

void strand__memory_uncharge(size_t size, strand_memory_category category) {
  if ((unsigned)category >= STRAND_MEMORY_CATEGORY_COUNT) category = STRAND_MEMORY_OTHER;
  unreserve(size, category);
}

strand_status strand__alloc(size_t size, strand_memory_category category, void **out) {
  strand_status st = strand__memory_charge(size, category);
  if (st != STRAND_OK) return st;
  void *p = malloc(size ? size : 1);
  if (!p) return system_refused(size, category);
  *out = p;
  return STRAND_OK;
}

strand_status strand__calloc(size_t size, strand_memory_category category, void **out) {
  strand_status st = strand__memory_charge(size, category);
  if (st != STRAND_OK) return st;
  void *p = calloc(1, size ? size : 1);
  if (!p) return system_refused(size, category);
  *out = p;
  return STRAND_OK;
}

/* A block of `size` bytes for MAP_MIN_BYTES and up, page-aligned (which
 * serves every alignment strand asks for, <= 4096), or NULL. Blocks of a
 * huge page or more start on a huge-page boundary, so that the kernel can
 * back all of them with huge pages: a planning run maps and fills hundreds
 * of megabytes, and 4 KiB faults made it half as slow again. */
static void *map_block(size_t size, size_t alignment) {
  const size_t huge = (size_t)2 << 20;
  if (alignment > 4096) return NULL;
  size_t extra = size >= huge ? huge : 0, mapped;
  if (__builtin_add_overflow(size, extra, &mapped)) return NULL;
  unsigned char *m = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  if (!extra) return m;
  unsigned char *start = (unsigned char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
  size_t head = (size_t)(start - m);
  size_t used = (size + 4095) & ~(size_t)4095;
  if (head) munmap(m, head);
  if (mapped - head > used) munmap(start + used, mapped - head - used);
#ifdef MADV_HUGEPAGE
  madvise(start, size & ~(huge - 1), MADV_HUGEPAGE);
#endif
  return start;
}

strand_status strand__alloc_aligned(size_t size, size_t alignment,
                                    strand_memory_category category, void **out) {
  strand_status st = strand__memory_charge(size, category);
  if (st != STRAND_OK) return st;
  void *p = NULL;
  if (size >= MAP_MIN_BYTES && category != STRAND_MEMORY_TENSOR) {
    p = map_block(size, alignment);
    if (!p) return system_refused(size, category);
    *out = p;
    return STRAND_OK;
  }
  /* Rounded up to the alignment so that vector loops may read whole lines. */
  size_t rounded = size ? (size + alignment - 1) & ~(alignment - 1) : alignment;
  if (rounded < size || posix_memalign(&p, alignment, rounded) != 0)
    return system_refused(size, category);
  *out = p;
  return STRAND_OK;
}

strand_status strand__realloc(void *old, size_t old_size, size_t new_size,
                              strand_memory_category category, void **out) {
  if (!old) return strand__alloc(new_size, category, out);
  if (new_size > old_size) {
    strand_status st = strand__memory_charge(new_size - old_size, category);
    if (st != STRAND_OK) return st;
  }
  void *p = realloc(old, new_size ? new_size : 1);
  if (!p) {
    if (new_size > old_size) system_refused(new_size - old_size, category);
    else strand__fail(STRAND_E_OUT_OF_MEMORY, "out of memory: the system refused to resize "
                      "%zu bytes of %s memory", old_size, category_names[category]);
    return STRAND_E_OUT_OF_MEMORY;
  }
  if (new_size < old_size) unreserve(old_size - new_size, category);
  *out = p;
  return STRAND_OK;
}

void strand__free(void *ptr, size_t size, strand_memory_category category) {
  if (!ptr) return;
  free(ptr);
  strand__memory_uncharge(size, category);
}

void strand__free_aligned(void *ptr, size_t size, strand_memory_category category) {
  if (ptr && size >= MAP_MIN_BYTES && category != STRAND_MEMORY_TENSOR) {
    munmap(ptr, size);
    strand__memory_uncharge(size, category);
    return;
  }
  strand__free(ptr, size, category);
}

strand_status strand__strdup(const char *text, char **out) {
  size_t n = strlen(text) + 1;
  void *p = NULL;
  strand_status st = strand__alloc(n, STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) return st;
  memcpy(p, text, n);
  *out = p;
  return STRAND_OK;
}

void strand__free_string(char *text) {
  if (text) strand__free(text, strlen(text) + 1, STRAND_MEMORY_OTHER);
}

strand_status strand_memory_get_stats(strand_memory_stats *out) {
  static const char fn[] = "strand_memory_get_stats";
  strand__init();
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  /* Callers built against an older header pass a smaller struct: they get
   * the fields they know. */
  const size_t first_version = offsetof(strand_memory_stats, live_bytes) + sizeof out->live_bytes;
  const size_t room = out->struct_size;
  if (room < first_version)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out->struct_size is %zu; set it to "
                        "sizeof(strand_memory_stats), %zu", fn, room, sizeof *out);
  strand_memory_stats all = {.struct_size = room < sizeof all ? room : sizeof all};
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++) {
    all.live_bytes[c] = atomic_load_explicit(&live[c], memory_order_relaxed);
    all.peak_bytes[c] = atomic_load_explicit(&peak[c], memory_order_relaxed);
  }
  all.total_live_bytes = atomic_load_explicit(&total_live, memory_order_relaxed);
  all.total_peak_bytes = atomic_load_explicit(&total_peak, memory_order_relaxed);
  all.limit_bytes = atomic_load_explicit(&limit_bytes, memory_order_relaxed);
  for (int k = 0; k < STRAND_KIND_COUNT; k++) {
    all.live_objects[k] = strand__live_objects((strand_kind)k);
    all.total_live_objects += all.live_objects[k];
  }
  all.allocations = atomic_load_explicit(&allocations, memory_order_relaxed);
  all.failed_allocations = atomic_load_explicit(&failed_allocations, memory_order_relaxed);
  memcpy(out, &all, all.struct_size);
  return STRAND_OK;
}

void strand_memory_set_limit(uint64_t bytes) {
  strand__init();
  atomic_store_explicit(&limit_bytes, bytes, memory_order_relaxed);
}

void strand_memory_reset_peaks(void) {
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
    atomic_store_explicit(&peak[c], atomic_load_explicit(&live[c], memory_order_relaxed),
                          memory_order_relaxed);
  atomic_store_explicit(&total_peak, atomic_load_explicit(&total_live, memory_order_relaxed),
                        memory_order_relaxed);
}

void strand_memory_fail_nth(uint64_t n) {
  atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}

strand_status strand_parse_bytes(const char *text, uint64_t *out) {
  if (!text || !out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_parse_bytes: NULL argument");
  const char *p = text;
  while (*p == ' ' || *p == '\t') p++;
  if (*p < '0' || *p > '9')
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "\"%s\" is not a byte count", text);
  /* Integer part and an optional fraction, kept exact in integers. */
  uint64_t whole = 0, frac = 0, frac_scale = 1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (__builtin_mul_overflow(whole, 10, &whole) || __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "\"%s\" overflows 64 bits", text);
  }
  if (*p == '.') {
    p++;
    for (; *p >= '0' && *p <= '9'; p++)
      if (frac_scale < 1000000000ULL) {
        frac = frac * 10 + (uint64_t)(*p - '0');
        frac_scale *= 10;
      }
  }
  uint64_t mult = 1;
  switch (*p) {
    case 'k': case 'K': mult = 1ULL << 10; p++; break;
    case 'm': case 'M': mult = 1ULL << 20; p++; break;
    case 'g': case 'G': mult = 1ULL << 30; p++; break;
    case 't': case 'T': mult = 1ULL << 40; p++; break;
    default: break;
  }
  if (mult > 1 && *p == 'i') p++;
  if (*p == 'b' || *p == 'B') p++;
  while (*p == ' ' || *p == '\t') p++;
  if (*p != '\0')
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "\"%s\" is not a byte count "
                        "(expected digits with an optional K, M, G or T suffix)", text);
  uint64_t value;
  if (__builtin_mul_overflow(whole, mult, &value))
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "\"%s\" overflows 64 bits", text);
  /* frac / frac_scale * mult, computed without overflow for mult <= 2^40. */
  uint64_t extra = (uint64_t)((long double)frac * (long double)mult / (long double)frac_scale);
  if (__builtin_add_overflow(value, extra, &value))
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "\"%s\" overflows 64 bits", text);
  *out = value;
  return STRAND_OK;
}

void strand__memory_init_from_env(void) {
  const char *text = getenv("STRAND_MEMORY_LIMIT");
  if (!text || !*text) return;
  uint64_t bytes;
  if (strand_parse_bytes(text, &bytes) == STRAND_OK)
    atomic_store_explicit(&limit_bytes, bytes, memory_order_relaxed);
  else
    strand__log(STRAND_LOG_WARN, "STRAND_MEMORY_LIMIT ignored: %s", strand_errmsg());
}
