/*
 * stress.c — `strand stress MODEL [--threads N] [--count N] [--batch B]
 * [--seed S] [--migrate] [--release-elsewhere] [--dispatcher]
 * [--bind-dispatcher] [--batching MAX:DELAY_US] [--timeout-us T]
 * [--intra-op T] [--slice-rows N|off] [--quiet]`: many threads run one
 * shared session and every output is compared bit for bit with a
 * single-threaded reference.
 *
 * The references come from a plain session (unbatched, unbound, never
 * sliced, on this thread) and the threads run a second session made with
 * the options given (slicing as strand picks unless --slice-rows says).
 * With --timeout-us every run has that timeout: runs stopped by it count as
 * "stopped", not as errors (their outputs must be untouched), and the
 * others are compared as usual.
 *
 * Inputs come from a fixed pool of POOL_SIZE input sets, filled from the
 * seeded generator of inputs.h (symbolic batch dimensions bound to
 * --batch, other unknown dimensions taken as 1). The reference output of
 * each set is computed first, on this thread, with the same session.
 * Request i always uses the same set, chosen from the seed and i. Each
 * request wraps the pool's data in fresh input tensors (no copy) and gets
 * fresh output tensors, so that every request makes and releases strand
 * objects.
 *
 * Nothing is allocated per request by this program: counters are 64-bit
 * atomics, latencies go into a fixed log-linear histogram per worker slot,
 * and the cleaner queue (--release-elsewhere) is a bounded ring.
 *
 * Exit status: 0 when every request succeeded, matched its reference and
 * nothing was left alive after the final release; 1 otherwise; 2 for a
 * usage error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "inputs.h"
#include "latency.h"
#include "strand.h"

#define POOL_SIZE 64
#define MAX_IO INPUTS_MAX    /* inputs or outputs a model may have here */
#define MAX_THREADS 4096
#define CLEANER_CAPACITY 4096 /* tensors waiting for the cleaner */

static void usage(FILE *out) {
  fprintf(out,
          "usage: strand stress MODEL [--threads N] [--count N] [--batch B] [--seed S]\n"
          "                     [--migrate] [--release-elsewhere] [--dispatcher]\n"
          "                     [--bind-dispatcher] [--batching MAX:DELAY_US]\n"
          "                     [--timeout-us T] [--intra-op T] [--slice-rows N|off]\n"
          "                     [--quiet]\n\n"
          "Runs MODEL from many threads on one shared session and compares every\n"
          "output bit for bit with a single-threaded reference.\n\n"
          "  --threads N          caller threads (default 8)\n"
          "  --count N            requests in total (default 10000)\n"
          "  --batch B            the value of symbolic batch dimensions (default 1)\n"
          "  --seed S             the seed of the inputs (default 0)\n"
          "  --migrate            run each request on a fresh thread (N at a time)\n"
          "  --release-elsewhere  release tensors on a separate cleaner thread\n"
          "  --dispatcher         make every run through one strand_dispatcher\n"
          "  --bind-dispatcher    bind the session to a dispatcher (session option)\n"
          "  --batching MAX:DELAY_US  dynamic batching: at most MAX rows a stacked run,\n"
          "                       the first run of a batch waiting at most DELAY_US\n"
          "  --timeout-us T       give every run a timeout of T microseconds\n"
          "  --intra-op T         threads one run may use (default: the CPU budget)\n"
          "  --slice-rows N|off   slices of at most N rows when rows are proven\n"
          "                       independent; off: never; 0: strand picks (default)\n"
          "  --quiet              no progress lines\n\n"
          "Exit status: non-zero on any error, mismatch or leaked object.\n");
}

/* ------------------------------------------------------------------------ */
/* The cleaner: a bounded queue of tensors released on its own thread        */
/* ------------------------------------------------------------------------ */

typedef struct cleaner {
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  strand_tensor *ring[CLEANER_CAPACITY];
  size_t head, length;
  int closing;
  uint64_t released;
  pthread_t thread;
} cleaner;

/* Hands over one reference: the caller must not touch `t` afterwards. */
static void cleaner_push(cleaner *c, strand_tensor *t) {
  pthread_mutex_lock(&c->lock);
  while (c->length == CLEANER_CAPACITY) pthread_cond_wait(&c->not_full, &c->lock);
  c->ring[(c->head + c->length) % CLEANER_CAPACITY] = t;
  c->length++;
  pthread_cond_signal(&c->not_empty);
  pthread_mutex_unlock(&c->lock);
}

static void *cleaner_main(void *arg) {
  cleaner *c = arg;
  strand_tensor *taken[256];
  for (;;) {
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    while (c->length == 0 && !c->closing) pthread_cond_wait(&c->not_empty, &c->lock);
    if (c->length == 0) {
      pthread_mutex_unlock(&c->lock);
      return NULL;
    }
    while (c->length > 0 && n < sizeof taken / sizeof taken[0]) {
      taken[n++] = c->ring[c->head];
      c->head = (c->head + 1) % CLEANER_CAPACITY;
      c->length--;
    }
    pthread_cond_broadcast(&c->not_full);
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++) strand_tensor_release(taken[i]);
    c->released += n; /* only this thread writes it; read after the join */
  }
}

/* ------------------------------------------------------------------------ */
/* Shared state                                                              */
/* ------------------------------------------------------------------------ */

typedef struct input_set {
  strand_tensor *tensors[MAX_IO];    /* owned: the pool's data */
  strand_tensor *reference[MAX_IO];  /* owned: the single-threaded outputs */
} input_set;

typedef struct stress {
  strand_session *session;
  strand_dispatcher *dispatcher; /* NULL without --dispatcher or --bind-dispatcher */
  int funnel;                    /* --dispatcher: runs go through strand_dispatcher_run */
  uint64_t timeout_us;           /* --timeout-us; 0 during the reference runs */
  cleaner *cleaner;              /* NULL without --release-elsewhere */
  model_inputs inputs;           /* the shapes only: the tensors are the pool's */
  size_t n_outputs;
  input_set pool[POOL_SIZE];
  uint64_t seed, count;

  _Atomic uint64_t next;       /* the next request index to take */
  _Atomic uint64_t done;       /* requests finished, matched or not */
  _Atomic uint64_t errors;
  _Atomic uint64_t mismatches;
  _Atomic uint64_t stopped;    /* --timeout-us: runs stopped by their deadline */
  _Atomic int workers_left;
  pthread_mutex_t first_lock;  /* guards the two texts below */
  char first_error[512];
  char first_mismatch[512];
} stress;

/* A worker slot: one long-lived caller, or (--migrate) the driver that
 * starts one fresh thread per request. Its histogram is written by one
 * thread at a time (thread creation and join order the hand-overs). */
typedef struct slot {
  stress *s;
  uint64_t request; /* --migrate: the request the fresh thread runs */
  latency_histogram latency;
  pthread_t thread;
} slot;

/* What strand_dispatcher_run carries to the dispatcher's thread. */
typedef struct run_closure {
  stress *s;
  const strand_tensor *const *inputs;
  strand_tensor **outputs;
} run_closure;

/* Keeps the first text of its kind: "request N: TEXT". */
static void note_first(stress *s, char *into, uint64_t request, const char *text) {
  pthread_mutex_lock(&s->first_lock);
  if (!into[0]) snprintf(into, 512, "request %llu: %s", (unsigned long long)request, text);
  pthread_mutex_unlock(&s->first_lock);
}

static strand_status run_session(stress *s, const strand_tensor *const *inputs,
                                 strand_tensor **outputs) {
  if (s->timeout_us) {
    strand_run_options o = {sizeof o, 0, s->timeout_us, NULL};
    return strand_session_run_with_options(s->session, &o, s->inputs.names, inputs,
                                           s->inputs.count, NULL, outputs, s->n_outputs);
  }
  return strand_session_run(s->session, s->inputs.names, inputs, s->inputs.count, NULL, outputs,
                            s->n_outputs);
}

static strand_status run_on_dispatcher(void *arg) {
  run_closure *c = arg;
  return run_session(c->s, c->inputs, c->outputs);
}

/* 1 when `got` has the reference's dtype, shape and bytes. */
static int same_tensor(const strand_tensor *got, const strand_tensor *want) {
  strand_dtype a, b;
  const int64_t *da, *db;
  size_t ra, rb, na, nb;
  void *pa, *pb;
  if (strand_tensor_dtype(got, &a) || strand_tensor_dtype(want, &b) || a != b) return 0;
  if (strand_tensor_shape(got, &da, &ra) || strand_tensor_shape(want, &db, &rb) || ra != rb)
    return 0;
  if (ra && memcmp(da, db, ra * sizeof *da) != 0) return 0;
  if (strand_tensor_byte_size(got, &na) || strand_tensor_byte_size(want, &nb) || na != nb)
    return 0;
  if (strand_tensor_data(got, &pa) || strand_tensor_data(want, &pb)) return 0;
  return na == 0 || memcmp(pa, pb, na) == 0;
}

static void release_tensor(stress *s, strand_tensor *t) {
  if (!t) return;
  if (s->cleaner)
    cleaner_push(s->cleaner, t);
  else
    strand_tensor_release(t);
}

/* Runs request `request` and records its latency in `h`. */
static void run_request(stress *s, uint64_t request, latency_histogram *h) {
  const input_set *set = &s->pool[inputs_mix(s->seed ^ inputs_mix(request)) % POOL_SIZE];
  strand_tensor *inputs[MAX_IO] = {0};
  strand_tensor *outputs[MAX_IO] = {0};
  strand_status st = STRAND_OK;
  for (size_t i = 0; i < s->inputs.count && !st; i++) {
    void *data;
    size_t bytes;
    strand_tensor_data(set->tensors[i], &data);
    strand_tensor_byte_size(set->tensors[i], &bytes);
    st = strand_tensor_wrap(s->inputs.dtypes[i], s->inputs.dims[i], s->inputs.ranks[i], data,
                            bytes, NULL, NULL, &inputs[i]);
  }
  if (!st) {
    uint64_t start = latency_now_ns();
    if (s->funnel) {
      run_closure c = {s, (const strand_tensor *const *)inputs, outputs};
      st = strand_dispatcher_run(s->dispatcher, run_on_dispatcher, &c);
    } else {
      st = run_session(s, (const strand_tensor *const *)inputs, outputs);
    }
    latency_add(h, latency_now_ns() - start);
  }
  if (st == STRAND_E_DEADLINE && s->timeout_us) {
    atomic_fetch_add_explicit(&s->stopped, 1, memory_order_relaxed);
    for (size_t k = 0; k < s->n_outputs; k++)
      if (outputs[k]) { /* a stopped run must change no output */
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
        note_first(s, s->first_error, request, "a run stopped by its deadline gave outputs");
        break;
      }
  } else if (st) {
    atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    char text[400];
    snprintf(text, sizeof text, "%s: %s", strand_status_name(st), strand_errmsg());
    note_first(s, s->first_error, request, text);
  } else {
    for (size_t k = 0; k < s->n_outputs; k++) {
      if (!same_tensor(outputs[k], set->reference[k])) {
        atomic_fetch_add_explicit(&s->mismatches, 1, memory_order_relaxed);
        char text[64];
        snprintf(text, sizeof text, "output %zu differs from the reference", k);
        note_first(s, s->first_mismatch, request, text);
        break;
      }
    }
  }
  for (size_t i = 0; i < s->inputs.count; i++) release_tensor(s, inputs[i]);
  for (size_t k = 0; k < s->n_outputs; k++) release_tensor(s, outputs[k]);
  atomic_fetch_add_explicit(&s->done, 1, memory_order_relaxed);
}

static int take_request(stress *s, uint64_t *request) {
  uint64_t i = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
  if (i >= s->count) return 0;
  *request = i;
  return 1;
}

static void *fresh_thread_main(void *arg) {
  slot *sl = arg;
  run_request(sl->s, sl->request, &sl->latency);
  return NULL;
}

static void *worker_main(void *arg) {
  slot *sl = arg;
  stress *s = sl->s;
  uint64_t request;
  while (take_request(s, &request)) run_request(s, request, &sl->latency);
  atomic_fetch_sub_explicit(&s->workers_left, 1, memory_order_release);
  return NULL;
}

/* --migrate: one fresh thread per request, started and joined here. */
static void *driver_main(void *arg) {
  slot *sl = arg;
  stress *s = sl->s;
  while (take_request(s, &sl->request)) {
    pthread_t t;
    int err = pthread_create(&t, NULL, fresh_thread_main, sl);
    if (err) {
      atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
      char text[200];
      snprintf(text, sizeof text, "cannot start a thread: %s", strerror(err));
      note_first(s, s->first_error, sl->request, text);
      atomic_fetch_add_explicit(&s->done, 1, memory_order_relaxed);
      continue;
    }
    pthread_join(t, NULL);
  }
  atomic_fetch_sub_explicit(&s->workers_left, 1, memory_order_release);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */
/* ------------------------------------------------------------------------ */

static int parse_count(const char *flag, const char *text, uint64_t min, uint64_t max,
                       uint64_t *out) {
  return flags_parse_count("stress", flag, text, min, max, out);
}

static void print_progress(const stress *s, double elapsed, int terminal, int last) {
  uint64_t done = atomic_load_explicit(&s->done, memory_order_relaxed);
  double rate = elapsed > 0 ? (double)done / elapsed : 0;
  fprintf(stderr, "%s%8.1f s  %llu / %llu done  %.0f requests/s%s", terminal ? "\r" : "",
          elapsed, (unsigned long long)done, (unsigned long long)s->count, rate,
          terminal && !last ? "   " : "\n");
  fflush(stderr);
}

static void print_bytes(const char *label, uint64_t bytes) {
  printf("%s%llu bytes (%.1f KiB)", label, (unsigned long long)bytes, (double)bytes / 1024);
}

int strand_cmd_stress(int argc, char **argv) {
  const char *model_path = NULL;
  uint64_t threads = 8, count = 10000, batch = 1, seed = 0, intra_op = 0, timeout_us = 0;
  uint64_t batch_max = 0, batch_delay = 0, slice_rows = 0;
  int migrate = 0, elsewhere = 0, use_dispatcher = 0, bind_dispatcher = 0, quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--threads") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 1, MAX_THREADS, &threads)) return 2;
    } else if (strcmp(a, "--count") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 1, UINT64_MAX / 2, &count)) return 2;
    } else if (strcmp(a, "--batch") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 1, 1 << 20, &batch)) return 2;
    } else if (strcmp(a, "--seed") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 0, UINT64_MAX, &seed)) return 2;
    } else if (strcmp(a, "--intra-op") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 0, 1024, &intra_op)) return 2;
    } else if (strcmp(a, "--slice-rows") == 0 && has_value) {
      if (strcmp(argv[++i], "off") == 0) slice_rows = STRAND_SLICE_OFF;
      else if (!parse_count(a, argv[i], 0, 1 << 20, &slice_rows)) return 2;
    } else if (strcmp(a, "--migrate") == 0) {
      migrate = 1;
    } else if (strcmp(a, "--release-elsewhere") == 0) {
      elsewhere = 1;
    } else if (strcmp(a, "--dispatcher") == 0) {
      use_dispatcher = 1;
    } else if (strcmp(a, "--bind-dispatcher") == 0) {
      bind_dispatcher = 1;
    } else if (strcmp(a, "--timeout-us") == 0 && has_value) {
      if (!parse_count(a, argv[++i], 1, UINT64_MAX / 4000, &timeout_us)) return 2;
    } else if (strcmp(a, "--batching") == 0 && has_value) {
      char max_text[32];
      const char *text = argv[++i], *colon = strchr(text, ':');
      size_t n = colon ? (size_t)(colon - text) : 0;
      if (!colon || n == 0 || n >= sizeof max_text) {
        fprintf(stderr, "strand stress: --batching wants MAX:DELAY_US, got \"%s\"\n", text);
        return 2;
      }
      memcpy(max_text, text, n);
      max_text[n] = '\0';
      if (!parse_count(a, max_text, 2, 1u << 20, &batch_max) ||
          !parse_count(a, colon + 1, 0, 10000000, &batch_delay))
        return 2;
    } else if (strcmp(a, "--quiet") == 0) {
      quiet = 1;
    } else if (a[0] == '-' || model_path) {
      fprintf(stderr, "strand stress: unexpected argument \"%s\"\n", a);
      usage(stderr);
      return 2;
    } else {
      model_path = a;
    }
  }
  if (!model_path) {
    usage(stderr);
    return 2;
  }

  /* Large (the pool and the ring): on the heap, once. */
  stress *s = calloc(1, sizeof *s);
  slot *slots = calloc(threads, sizeof *slots);
  cleaner *cl = elsewhere ? calloc(1, sizeof *cl) : NULL;
  if (!s || !slots || (elsewhere && !cl)) {
    fprintf(stderr, "strand stress: out of memory\n");
    free(s);
    free(slots);
    free(cl);
    return 1;
  }
  s->seed = seed;
  s->count = count;
  pthread_mutex_init(&s->first_lock, NULL);
  if (cl) {
    pthread_mutex_init(&cl->lock, NULL);
    pthread_cond_init(&cl->not_full, NULL);
    pthread_cond_init(&cl->not_empty, NULL);
  }
  int status = 1, cleaner_started = 0;
  double elapsed = 0;
  strand_model *model = NULL;
  size_t started = 0, n_inputs = 0;
  char error[600];

  strand_session_options options = {.struct_size = sizeof options,
                                    .intra_op_threads = (unsigned)intra_op,
                                    .slice_rows = STRAND_SLICE_OFF};
  if (strand_model_load(model_path, &model)) {
    fprintf(stderr, "strand stress: loading %s: %s\n", model_path, strand_errmsg());
    goto done;
  }
  if (use_dispatcher && bind_dispatcher) {
    fprintf(stderr, "strand stress: --dispatcher and --bind-dispatcher exclude each other\n");
    goto done;
  }
  if (strand_session_create(model, &options, &s->session)) {
    fprintf(stderr, "strand stress: preparing %s: %s\n", model_path, strand_errmsg());
    goto done;
  }
  strand_model_input_count(model, &n_inputs);
  strand_model_output_count(model, &s->n_outputs);
  if (n_inputs > MAX_IO || s->n_outputs > MAX_IO) {
    fprintf(stderr, "strand stress: %s has %zu inputs and %zu outputs; at most %d each\n",
            model_path, n_inputs, s->n_outputs, MAX_IO);
    goto done;
  }
  /* The names are borrowed from the model, which outlives the runs. */
  if (inputs_describe(model, batch, &s->inputs, error, sizeof error)) {
    fprintf(stderr, "strand stress: %s: %s\n", model_path, error);
    goto done;
  }

  /* The pool and its single-threaded references, on this thread. Set p is
   * made from the generator's state inputs_mix(seed * 0x9e3779b97f4a7c15 + p). */
  for (size_t p = 0; p < POOL_SIZE; p++) {
    uint64_t state = inputs_mix(seed * 0x9e3779b97f4a7c15ull + p);
    input_set *set = &s->pool[p];
    for (size_t i = 0; i < s->inputs.count; i++) {
      if (inputs_random_tensor(s->inputs.dtypes[i], s->inputs.dims[i], s->inputs.ranks[i],
                               &state, &set->tensors[i])) {
        fprintf(stderr, "strand stress: making input \"%s\": %s\n", s->inputs.names[i],
                strand_errmsg());
        goto done;
      }
    }
    if (run_session(s, (const strand_tensor *const *)set->tensors, set->reference)) {
      fprintf(stderr, "strand stress: reference run of input set %zu: %s\n", p, strand_errmsg());
      goto done;
    }
  }

  if ((use_dispatcher || bind_dispatcher) && strand_dispatcher_create(NULL, &s->dispatcher)) {
    fprintf(stderr, "strand stress: creating the dispatcher: %s\n", strand_errmsg());
    goto done;
  }
  s->funnel = use_dispatcher;
  {
    /* The references stay the plain session's; the threads get the other. */
    strand_session *plain = s->session;
    options.slice_rows = (unsigned)slice_rows;
    options.batch_max_rows = (unsigned)batch_max;
    options.batch_delay_us = (uint32_t)batch_delay;
    options.dispatcher = bind_dispatcher ? s->dispatcher : NULL;
    strand_status st = strand_session_create(model, &options, &s->session);
    strand_session_release(plain);
    if (st) {
      s->session = NULL;
      fprintf(stderr, "strand stress: preparing %s for the threads: %s\n", model_path,
              strand_errmsg());
      goto done;
    }
  }
  s->timeout_us = timeout_us;
  if (cl) {
    if (pthread_create(&cl->thread, NULL, cleaner_main, cl)) {
      fprintf(stderr, "strand stress: cannot start the cleaner thread\n");
      goto done;
    }
    cleaner_started = 1;
    s->cleaner = cl;
  }

  printf("stress: %s, %llu requests, %llu threads%s, batch %llu, seed %llu%s%s%s%s%s\n",
         model_path, (unsigned long long)count, (unsigned long long)threads,
         migrate ? " (a fresh thread per request)" : "", (unsigned long long)batch,
         (unsigned long long)seed, elsewhere ? ", release elsewhere" : "",
         use_dispatcher ? ", through a dispatcher" : "",
         bind_dispatcher ? ", session bound to a dispatcher" : "",
         batch_max ? ", dynamic batching" : "", intra_op ? ", intra-op limited" : "");
  if (batch_max)
    printf("batching     at most %llu rows, %llu us delay\n", (unsigned long long)batch_max,
           (unsigned long long)batch_delay);
  if (timeout_us) printf("timeout      %llu us a run\n", (unsigned long long)timeout_us);
  fflush(stdout);

  uint64_t start = latency_now_ns();
  atomic_store(&s->workers_left, (int)threads);
  for (; started < threads; started++) {
    slots[started].s = s;
    if (pthread_create(&slots[started].thread, NULL, migrate ? driver_main : worker_main,
                       &slots[started])) {
      fprintf(stderr, "strand stress: cannot start thread %zu\n", started);
      atomic_store(&s->next, count); /* the others stop at once */
      atomic_fetch_sub(&s->workers_left, (int)(threads - started));
      atomic_fetch_add(&s->errors, 1);
      break;
    }
  }
  int terminal = isatty(STDERR_FILENO);
  double report_every = terminal ? 0.25 : 2.0, last_report = 0;
  while (atomic_load_explicit(&s->workers_left, memory_order_acquire) > 0) {
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
    double so_far = (double)(latency_now_ns() - start) / 1e9;
    if (!quiet && so_far - last_report >= report_every) {
      print_progress(s, so_far, terminal, 0);
      last_report = so_far;
    }
  }
  for (size_t t = 0; t < started; t++) pthread_join(slots[t].thread, NULL);
  elapsed = (double)(latency_now_ns() - start) / 1e9;
  if (!quiet && terminal && last_report > 0) print_progress(s, elapsed, terminal, 1);
  status = 0;

done:
  if (cleaner_started) {
    pthread_mutex_lock(&cl->lock);
    cl->closing = 1;
    pthread_cond_broadcast(&cl->not_empty);
    pthread_mutex_unlock(&cl->lock);
    pthread_join(cl->thread, NULL);
  }
  uint64_t done_count = atomic_load(&s->done), errors = atomic_load(&s->errors),
           mismatches = atomic_load(&s->mismatches);
  strand_memory_stats mem = {.struct_size = sizeof mem};
  strand_memory_get_stats(&mem);
  if (status == 0) {
    latency_histogram all;
    memset(&all, 0, sizeof all);
    for (size_t t = 0; t < started; t++) latency_merge(&all, &slots[t].latency);
    if (elapsed <= 0) elapsed = 1e-9;
    printf("requests     %llu done, %llu mismatches, %llu errors\n",
           (unsigned long long)done_count, (unsigned long long)mismatches,
           (unsigned long long)errors);
    if (timeout_us)
      printf("stopped      %llu runs by their timeout (outputs untouched)\n",
             (unsigned long long)atomic_load(&s->stopped));
    if (s->first_error[0]) printf("first error  %s\n", s->first_error);
    if (s->first_mismatch[0]) printf("first mismatch  %s\n", s->first_mismatch);
    printf("time         %.3f s\n", elapsed);
    printf("throughput   %.0f requests/s, %.0f inferences/s (batch %llu)\n",
           (double)done_count / elapsed, (double)done_count * (double)batch / elapsed,
           (unsigned long long)batch);
    printf("latency      p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us (%llu runs)\n",
           latency_quantile_ns(&all, 0.50) / 1e3, latency_quantile_ns(&all, 0.90) / 1e3,
           latency_quantile_ns(&all, 0.99) / 1e3, (double)all.max_ns / 1e3,
           (unsigned long long)all.total);
    print_bytes("peak memory  ", mem.total_peak_bytes);
    printf(" (");
    for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
      printf("%s%s %llu", c ? ", " : "", strand_memory_category_name((strand_memory_category)c),
             (unsigned long long)mem.peak_bytes[c]);
    printf(")\n");
    if (s->session) {
      strand_session_stats ss = {.struct_size = sizeof ss};
      if (strand_session_get_stats(s->session, &ss) == 0)
        printf("session      %llu runs, %llu arenas (%llu bytes), %llu plans\n",
               (unsigned long long)ss.runs, (unsigned long long)ss.arenas,
               (unsigned long long)ss.arena_bytes, (unsigned long long)ss.planning_runs);
      if (strand_session_get_stats(s->session, &ss) == 0 && ss.batches)
        printf("batches      %llu, mean %.2f runs (%.2f rows), mean wait %.1f us\n",
               (unsigned long long)ss.batches, (double)ss.batched_runs / (double)ss.batches,
               (double)ss.batched_rows / (double)ss.batches,
               (double)ss.batch_wait_ns / 1e3 / (double)ss.batched_runs);
      if (strand_session_get_stats(s->session, &ss) == 0 && ss.sliced_runs)
        printf("slicing      %llu runs made as %llu slices\n",
               (unsigned long long)ss.sliced_runs, (unsigned long long)ss.slices);
    }
    if (cl) printf("cleaner      %llu tensors released\n", (unsigned long long)cl->released);
    if (s->dispatcher) {
      strand_dispatcher_stats ds;
      if (strand_dispatcher_get_stats(s->dispatcher, &ds) == 0)
        printf("dispatcher   %llu runs, queue peak %llu, wait p50 %.1f us p99 %.1f us\n",
               (unsigned long long)ds.runs, (unsigned long long)ds.queue_depth_peak,
               ds.queue_wait.p50_us, ds.queue_wait.p99_us);
    }
    if (errors || mismatches || done_count != count) status = 1;
  }

  /* Release everything, then nothing may be left. */
  strand_dispatcher_release(s->dispatcher); /* a bound session holds its own reference */
  for (size_t p = 0; p < POOL_SIZE; p++)
    for (size_t i = 0; i < MAX_IO; i++) {
      strand_tensor_release(s->pool[p].tensors[i]);
      strand_tensor_release(s->pool[p].reference[i]);
    }
  strand_session_release(s->session);
  strand_model_release(model);
  uint64_t live = 0;
  fflush(stdout);
  if (strand_leak_report_print(stderr, &live)) {
    fprintf(stderr, "strand stress: leak report: %s\n", strand_errmsg());
    status = 1;
  }
  strand_memory_get_stats(&mem);
  printf("after release: %llu objects, %llu bytes alive%s\n",
         (unsigned long long)mem.total_live_objects, (unsigned long long)mem.total_live_bytes,
         mem.total_live_objects || mem.total_live_bytes || live ? " (LEAK)" : " (no leaks)");
  if (mem.total_live_objects || mem.total_live_bytes || live) status = 1;
  if (cl) {
    pthread_cond_destroy(&cl->not_full);
    pthread_cond_destroy(&cl->not_empty);
    pthread_mutex_destroy(&cl->lock);
  }
  pthread_mutex_destroy(&s->first_lock);
  free(cl);
  free(slots);
  free(s);
  return status;
}
