/* leak.c — the object registry: live counts by kind, registration of objects
 * by creation site, C backtraces, and reports aggregated by site. */
#include "core/core_internal.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 48
#define SHARD_COUNT 16
#define DEFAULT_SAMPLE_INTERVAL 64

struct strand__trace {
  size_t size; /* of this block, for the seam */
  uint64_t hash;
  uint32_t frame_count;
  char *origin; /* inside this block, or NULL */
  void *frames[];
};

typedef struct {
  pthread_mutex_t lock;
  strand__object *head; /* registered objects of this shard */
} shard;

static _Atomic int level = STRAND_LEAK_OFF;
static _Atomic uint32_t sample_interval = DEFAULT_SAMPLE_INTERVAL;
static _Atomic int report_at_exit;
static _Alignas(64) _Atomic uint64_t kind_live[STRAND_KIND_COUNT];
static _Alignas(64) _Atomic uint64_t kind_bytes[STRAND_KIND_COUNT];
static _Atomic uint32_t next_shard;
static shard shards[SHARD_COUNT];
static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

/* Each thread registers into its own shard (assigned round-robin) so that
 * creating threads rarely contend; 0 means not yet assigned. */
static _Thread_local uint32_t thread_shard;
static _Thread_local uint32_t thread_sample_counter;
/* The calling thread's origin text (owned, through the seam), freed at
 * thread exit by the key's destructor. */
static _Thread_local char *thread_origin;
static pthread_key_t origin_key;
static pthread_once_t origin_key_once = PTHREAD_ONCE_INIT;

static void init_shards(void) {
  for (int i = 0; i < SHARD_COUNT; i++) pthread_mutex_init(&shards[i].lock, NULL);
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h * 0xBF58476D1CE4E5B9ULL;
}

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Captures the stack above the public function whose caller returns to
 * `site`. Failure to allocate leaves the object untraced. */
static struct strand__trace *capture(const void *site) {
  void *frames[MAX_FRAMES];
  int n = backtrace(frames, MAX_FRAMES);
  int first = n > 1 ? 1 : 0;
  for (int i = 0; i < n; i++)
    if (frames[i] == site) {
      first = i;
      break;
    }
  uint32_t count = (uint32_t)(n - first);
  const char *origin = thread_origin;
  size_t origin_len = origin ? strlen(origin) + 1 : 0;
  size_t size = sizeof(struct strand__trace) + count * sizeof(void *) + origin_len;
  void *block;
  if (strand__alloc(size, STRAND_MEMORY_OTHER, &block) != STRAND_OK) return NULL;
  struct strand__trace *t = block;
  t->size = size;
  t->frame_count = count;
  memcpy(t->frames, frames + first, count * sizeof(void *));
  uint64_t h = count;
  for (uint32_t i = 0; i < count; i++) h = mix(h, (uint64_t)(uintptr_t)t->frames[i]);
  t->origin = NULL;
  if (origin) {
    t->origin = (char *)(t->frames + count);
    memcpy(t->origin, origin, origin_len);
    h = mix(h, hash_text(origin));
  }
  t->hash = h;
  return t;
}

void strand__leak_register(strand__object *obj, const void *site) {
  atomic_fetch_add_explicit(&kind_live[obj->kind], 1, memory_order_relaxed);
  int lvl = atomic_load_explicit(&level, memory_order_relaxed);
  if (STRAND_LIKELY(lvl == STRAND_LEAK_OFF)) return;
  if (lvl == STRAND_LEAK_ALL ||
      (lvl == STRAND_LEAK_SAMPLE &&
       ++thread_sample_counter % atomic_load_explicit(&sample_interval, memory_order_relaxed) == 0))
    obj->trace = capture(site);
  pthread_once(&shards_once, init_shards);
  if (thread_shard == 0)
    thread_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARD_COUNT + 1;
  shard *s = &shards[thread_shard - 1];
  pthread_mutex_lock(&s->lock);
  obj->prev = NULL;
  obj->next = s->head;
  if (s->head) s->head->prev = obj;
  s->head = obj;
  obj->shard = (uint16_t)thread_shard;
  pthread_mutex_unlock(&s->lock);
}

void strand__leak_unregister(strand__object *obj) {
  atomic_fetch_sub_explicit(&kind_live[obj->kind], 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&kind_bytes[obj->kind],
                            atomic_load_explicit(&obj->bytes, memory_order_relaxed),
                            memory_order_relaxed);
  if (obj->shard) {
    shard *s = &shards[obj->shard - 1];
    pthread_mutex_lock(&s->lock);
    if (obj->prev) obj->prev->next = obj->next;
    else s->head = obj->next;
    if (obj->next) obj->next->prev = obj->prev;
    pthread_mutex_unlock(&s->lock);
    obj->shard = 0;
  }
  if (obj->trace) {
    strand__free(obj->trace, obj->trace->size, STRAND_MEMORY_OTHER);
    obj->trace = NULL;
  }
}

void strand__object_add_bytes(strand__object *obj, int64_t delta) {
  atomic_fetch_add_explicit(&obj->bytes, (uint64_t)delta, memory_order_relaxed);
  atomic_fetch_add_explicit(&kind_bytes[obj->kind], (uint64_t)delta, memory_order_relaxed);
}

uint64_t strand__live_objects(strand_kind kind) {
  if ((unsigned)kind >= STRAND_KIND_COUNT) return 0;
  return atomic_load_explicit(&kind_live[kind], memory_order_relaxed);
}

/* ---- settings -------------------------------------------------------------- */

strand_status strand_leak_set_level(strand_leak_level new_level, uint32_t interval) {
  strand__init();
  if ((unsigned)new_level > STRAND_LEAK_ALL)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_leak_set_level: %d is not a leak level",
                        (int)new_level);
  if (new_level == STRAND_LEAK_SAMPLE)
    atomic_store_explicit(&sample_interval, interval ? interval : DEFAULT_SAMPLE_INTERVAL,
                          memory_order_relaxed);
  atomic_store_explicit(&level, (int)new_level, memory_order_relaxed);
  return STRAND_OK;
}

strand_leak_level strand_leak_get_level(void) {
  strand__init();
  return (strand_leak_level)atomic_load_explicit(&level, memory_order_relaxed);
}

static void free_thread_origin(void *text) {
  strand__free_string(text);
}

static void make_origin_key(void) { pthread_key_create(&origin_key, free_thread_origin); }

strand_status strand_leak_set_origin(const char *text) {
  strand__init();
  char *copy = NULL;
  if (text && *text) {
    strand_status st = strand__strdup(text, &copy);
    if (st != STRAND_OK) return st;
  }
  pthread_once(&origin_key_once, make_origin_key);
  strand__free_string(thread_origin);
  thread_origin = copy;
  pthread_setspecific(origin_key, copy);
  return STRAND_OK;
}

void strand_leak_set_report_at_exit(int enabled) {
  strand__init();
  atomic_store_explicit(&report_at_exit, enabled != 0, memory_order_relaxed);
}

static void report_at_exit_hook(void) {
  if (!atomic_load_explicit(&report_at_exit, memory_order_relaxed)) return;
  uint64_t live = 0;
  if (strand_leak_report_print(stderr, &live) != STRAND_OK)
    fprintf(stderr, "strand: leak report at exit failed: %s\n", strand_errmsg());
}

void strand__leak_init_from_env(void) {
  atexit(report_at_exit_hook);
  const char *text = getenv("STRAND_LEAK_DETECTION");
  if (text && *text) {
    if (strcmp(text, "off") == 0) atomic_store(&level, STRAND_LEAK_OFF);
    else if (strcmp(text, "count") == 0) atomic_store(&level, STRAND_LEAK_COUNT);
    else if (strcmp(text, "all") == 0) atomic_store(&level, STRAND_LEAK_ALL);
    else if (strncmp(text, "sample", 6) == 0 && (text[6] == '\0' || text[6] == ':')) {
      unsigned long n = DEFAULT_SAMPLE_INTERVAL;
      char *end = NULL;
      if (text[6] == ':') n = strtoul(text + 7, &end, 10);
      if (text[6] == ':' && (end == text + 7 || *end || n == 0 || n > UINT32_MAX))
        strand__log(STRAND_LOG_WARN, "STRAND_LEAK_DETECTION=%s ignored: sample:N needs N "
                    "from 1 to 4294967295", text);
      else {
        atomic_store(&sample_interval, (uint32_t)n);
        atomic_store(&level, STRAND_LEAK_SAMPLE);
      }
    } else
      strand__log(STRAND_LOG_WARN, "STRAND_LEAK_DETECTION=%s ignored: expected off, count, "
                  "sample, sample:N or all", text);
  }
  const char *report = getenv("STRAND_LEAK_REPORT");
  if (report && *report) {
    if (strcmp(report, "exit") == 0) atomic_store(&report_at_exit, 1);
    else strand__log(STRAND_LOG_WARN, "STRAND_LEAK_REPORT=%s ignored: expected exit", report);
  }
}

/* ---- reports ----------------------------------------------------------------- */

typedef struct {
  strand_kind kind;
  int traced;
  const void *site;
  uint64_t hash;
  uint64_t count, bytes;
  uint32_t frame_count;
  void **frames; /* owned copy */
  char *origin;  /* owned copy */
} site_entry;

typedef struct {
  site_entry *entries;
  size_t count, capacity;
  size_t *slots; /* open addressing: index + 1, 0 empty */
  size_t slot_count;
  uint64_t tracked[STRAND_KIND_COUNT], tracked_bytes[STRAND_KIND_COUNT];
} site_table;

static void table_free(site_table *t) {
  for (size_t i = 0; i < t->count; i++) {
    site_entry *e = &t->entries[i];
    strand__free(e->frames, e->frame_count * sizeof(void *), STRAND_MEMORY_OTHER);
    strand__free_string(e->origin);
  }
  strand__free(t->entries, t->capacity * sizeof(site_entry), STRAND_MEMORY_OTHER);
  strand__free(t->slots, t->slot_count * sizeof(size_t), STRAND_MEMORY_OTHER);
}

static int same_site(const site_entry *e, const strand__object *obj) {
  const struct strand__trace *tr = obj->trace;
  if (e->kind != (strand_kind)obj->kind || e->traced != (tr != NULL)) return 0;
  if (!tr) return e->site == obj->site;
  if (e->frame_count != tr->frame_count) return 0;
  if (memcmp(e->frames, tr->frames, tr->frame_count * sizeof(void *)) != 0) return 0;
  return strcmp(e->origin ? e->origin : "", tr->origin ? tr->origin : "") == 0;
}

static strand_status table_grow_slots(site_table *t) {
  size_t n = t->slot_count ? t->slot_count * 2 : 64;
  void *p;
  strand_status st = strand__calloc(n * sizeof(size_t), STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) return st;
  size_t *slots = p;
  for (size_t i = 0; i < t->count; i++) {
    size_t j = t->entries[i].hash & (n - 1);
    while (slots[j]) j = (j + 1) & (n - 1);
    slots[j] = i + 1;
  }
  strand__free(t->slots, t->slot_count * sizeof(size_t), STRAND_MEMORY_OTHER);
  t->slots = slots;
  t->slot_count = n;
  return STRAND_OK;
}

/* Adds one live object to its site. Runs under the object's shard lock. */
static strand_status table_add(site_table *t, const strand__object *obj) {
  const struct strand__trace *tr = obj->trace;
  uint64_t bytes = atomic_load_explicit(&obj->bytes, memory_order_relaxed);
  uint64_t h = tr ? mix(tr->hash, obj->kind) : mix((uint64_t)(uintptr_t)obj->site, obj->kind + 7);
  t->tracked[obj->kind]++;
  t->tracked_bytes[obj->kind] += bytes;
  if (t->slot_count) {
    for (size_t j = h & (t->slot_count - 1); t->slots[j]; j = (j + 1) & (t->slot_count - 1)) {
      site_entry *e = &t->entries[t->slots[j] - 1];
      if (e->hash == h && same_site(e, obj)) {
        e->count++;
        e->bytes += bytes;
        return STRAND_OK;
      }
    }
  }
  strand_status st;
  if ((t->count + 1) * 2 > t->slot_count && (st = table_grow_slots(t)) != STRAND_OK) return st;
  if (t->count == t->capacity) {
    size_t cap = t->capacity ? t->capacity * 2 : 16;
    void *p;
    st = strand__realloc(t->entries, t->capacity * sizeof(site_entry), cap * sizeof(site_entry),
                         STRAND_MEMORY_OTHER, &p);
    if (st != STRAND_OK) return st;
    t->entries = p;
    t->capacity = cap;
  }
  site_entry e = {.kind = (strand_kind)obj->kind, .traced = tr != NULL, .site = obj->site,
                  .hash = h, .count = 1, .bytes = bytes};
  if (tr) {
    void *frames;
    if ((st = strand__alloc(tr->frame_count * sizeof(void *), STRAND_MEMORY_OTHER, &frames)))
      return st;
    memcpy(frames, tr->frames, tr->frame_count * sizeof(void *));
    if (tr->origin && (st = strand__strdup(tr->origin, &e.origin)) != STRAND_OK) {
      strand__free(frames, tr->frame_count * sizeof(void *), STRAND_MEMORY_OTHER);
      return st;
    }
    e.frames = frames;
    e.frame_count = tr->frame_count;
  }
  t->entries[t->count] = e;
  size_t j = h & (t->slot_count - 1);
  while (t->slots[j]) j = (j + 1) & (t->slot_count - 1);
  t->slots[j] = ++t->count;
  return STRAND_OK;
}

/* Untraced objects of the registry and unregistered ones (created while
 * detection was off) of each kind become one site per kind. */
static strand_status add_unregistered(site_table *t) {
  for (int k = 0; k < STRAND_KIND_COUNT; k++) {
    uint64_t live = atomic_load_explicit(&kind_live[k], memory_order_relaxed);
    uint64_t bytes = atomic_load_explicit(&kind_bytes[k], memory_order_relaxed);
    if (live <= t->tracked[k]) continue;
    strand__object fake = {.kind = (uint16_t)k, .site = NULL};
    atomic_init(&fake.bytes, bytes > t->tracked_bytes[k] ? bytes - t->tracked_bytes[k] : 0);
    uint64_t extra = live - t->tracked[k];
    strand_status st = table_add(t, &fake);
    if (st != STRAND_OK) return st;
    /* table_add counted one object; the site stands for `extra`. */
    for (size_t i = 0; i < t->count; i++)
      if (t->entries[i].kind == (strand_kind)k && !t->entries[i].traced && !t->entries[i].site)
        t->entries[i].count += extra - 1;
  }
  return STRAND_OK;
}

static int by_count_desc(const void *a, const void *b) {
  const site_entry *x = a, *y = b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return (int)x->kind - (int)y->kind;
}

/* A growing text buffer through the seam. */
typedef struct {
  char *data;
  size_t len, cap;
  strand_status status;
} text_buf;

static void text_add(text_buf *b, const char *fmt, ...) STRAND_PRINTF(2, 3);
static void text_add(text_buf *b, const char *fmt, ...) {
  if (b->status != STRAND_OK) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->data && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + (size_t)n) cap *= 2;
    void *p;
    b->status = strand__realloc(b->data, b->cap, cap, STRAND_MEMORY_OTHER, &p);
    if (b->status != STRAND_OK) return;
    b->data = p;
    b->cap = cap;
  }
}

/* One line per frame: "function+0xOFF (module)", or the address relative to
 * its module when no symbol covers it. */
static void symbolize(text_buf *b, int index, const void *pc) {
  Dl_info info;
  /* A return address points after the call; look up the call itself. */
  const void *at = (const char *)pc - 1;
  const char *module = "?";
  if (dladdr(at, &info) && info.dli_fname) {
    module = strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
    if (info.dli_sname && info.dli_saddr) {
      text_add(b, "#%d %s+0x%zx (%s)\n", index, info.dli_sname,
               (size_t)((const char *)pc - (const char *)info.dli_saddr), module);
      return;
    }
    text_add(b, "#%d %p (%s+0x%zx)\n", index, pc, module,
             (size_t)((const char *)pc - (const char *)info.dli_fbase));
    return;
  }
  text_add(b, "#%d %p (%s)\n", index, pc, module);
}

strand_status strand_leak_report(strand_leak_visitor visit, void *context) {
  strand__init();
  if (!visit)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_leak_report: the visitor is NULL");
  pthread_once(&shards_once, init_shards);
  site_table t = {0};
  strand_status st = STRAND_OK;
  for (int i = 0; i < SHARD_COUNT && st == STRAND_OK; i++) {
    pthread_mutex_lock(&shards[i].lock);
    for (strand__object *o = shards[i].head; o && st == STRAND_OK; o = o->next)
      st = table_add(&t, o);
    pthread_mutex_unlock(&shards[i].lock);
  }
  if (st == STRAND_OK) st = add_unregistered(&t);
  if (st != STRAND_OK) {
    table_free(&t);
    return st;
  }
  if (t.count) qsort(t.entries, t.count, sizeof(site_entry), by_count_desc);
  /* Frames are symbolized before any visit so that a failure leaves the
   * visitor unrun. */
  text_buf *texts = NULL;
  if (t.count) {
    void *p = NULL;
    st = strand__calloc(t.count * sizeof(text_buf), STRAND_MEMORY_OTHER, &p);
    texts = p;
  }
  for (size_t i = 0; i < t.count && st == STRAND_OK; i++) {
    site_entry *e = &t.entries[i];
    text_add(&texts[i], "%s", "");
    if (e->traced)
      for (uint32_t f = 0; f < e->frame_count; f++) symbolize(&texts[i], (int)f, e->frames[f]);
    else if (e->site)
      symbolize(&texts[i], 0, e->site);
    st = texts[i].status;
  }
  for (size_t i = 0; i < t.count && st == STRAND_OK; i++) {
    site_entry *e = &t.entries[i];
    strand_leak_site site = {.kind = e->kind, .count = e->count, .bytes = e->bytes,
                             .traced = e->traced, .trace = texts[i].data,
                             .origin = e->origin ? e->origin : ""};
    if (visit(&site, context) != 0) break;
  }
  for (size_t i = 0; texts && i < t.count; i++)
    strand__free(texts[i].data, texts[i].cap, STRAND_MEMORY_OTHER);
  if (texts) strand__free(texts, t.count * sizeof(text_buf), STRAND_MEMORY_OTHER);
  table_free(&t);
  return st;
}

typedef struct {
  FILE *out;
  uint64_t objects;
  int io_error;
} print_state;

static int print_site(const strand_leak_site *s, void *context) {
  print_state *ps = context;
  ps->objects += s->count;
  const char *how = s->traced ? "created at" : s->trace[0] ? "created by the call at"
                                                          : "(no creation site recorded)";
  if (fprintf(ps->out, "strand: %llu live %s object%s holding %llu bytes, %s\n",
              (unsigned long long)s->count, strand_kind_name(s->kind), s->count == 1 ? "" : "s",
              (unsigned long long)s->bytes, how) < 0)
    ps->io_error = 1;
  for (const char *line = s->trace; *line;) {
    const char *end = strchr(line, '\n');
    int n = end ? (int)(end - line) : (int)strlen(line);
    fprintf(ps->out, "    %.*s\n", n, line);
    line += n + (end ? 1 : 0);
  }
  if (s->origin[0]) fprintf(ps->out, "    origin:\n      %s\n", s->origin);
  return 0;
}

strand_status strand_leak_report_print(FILE *out, uint64_t *live_objects) {
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_leak_report_print: out is NULL");
  print_state ps = {out, 0, 0};
  strand_status st = strand_leak_report(print_site, &ps);
  if (st != STRAND_OK) return st;
  if (ps.io_error || fflush(out) != 0)
    return strand__fail(STRAND_E_IO, "strand_leak_report_print: writing the report failed");
  if (live_objects) *live_objects = ps.objects;
  return STRAND_OK;
}
