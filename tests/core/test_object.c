/* The object header: refcount rules, destruction exactly once, kind checks,
 * abandoning a half-made object, and the debug traps for broken hand-offs. */
#include "test.h"

#include "core/core_internal.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  strand__object header;
  int *destroyed;
  void *payload;
  size_t payload_size;
} thing;

static void thing_destroy(strand__object *self) {
  thing *t = (thing *)self;
  (*t->destroyed)++;
  strand__free(t->payload, t->payload_size, STRAND_MEMORY_WEIGHTS);
}

static thing *thing_new(int *destroyed) {
  void *p;
  if (strand__alloc(sizeof(thing), STRAND_MEMORY_OTHER, &p) != STRAND_OK) return NULL;
  thing *t = p;
  t->destroyed = destroyed;
  t->payload_size = 100;
  if (strand__alloc(t->payload_size, STRAND_MEMORY_WEIGHTS, &t->payload) != STRAND_OK) abort();
  strand__object_init(&t->header, STRAND_KIND_MODEL, sizeof(thing), thing_destroy,
                      __builtin_return_address(0));
  strand__object_add_bytes(&t->header, 100);
  return t;
}

TEST(last_release_destroys_exactly_once) {
  int destroyed = 0;
  thing *t = thing_new(&destroyed);
  REQUIRE(t != NULL);
  CHECK(strand__live_objects(STRAND_KIND_MODEL) == 1);
  CHECK_OK(strand__object_retain(&t->header, "test"));
  CHECK_OK(strand__object_retain(&t->header, "test"));
  strand__object_release(&t->header);
  strand__object_release(&t->header);
  CHECK(destroyed == 0);
  strand__object_release(&t->header);
  CHECK(destroyed == 1);
  CHECK(strand__live_objects(STRAND_KIND_MODEL) == 0);
}

TEST(kind_checks_name_both_kinds) {
  int destroyed = 0;
  thing *t = thing_new(&destroyed);
  REQUIRE(t != NULL);
  strand_log_set_level(STRAND_LOG_OFF);
  CHECK_OK(strand__object_check(t, STRAND_KIND_MODEL, "f"));
  CHECK_STATUS(STRAND_E_MISUSE, strand__object_check(t, STRAND_KIND_TENSOR, "strand_tensor_data"));
  CHECK_MSG("strand_tensor_data: handle");
  CHECK_MSG("is a model, not a tensor");
  /* a model handle given to a tensor function is refused, not obeyed */
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_retain((strand_tensor *)t));
  strand_tensor_release((strand_tensor *)t);
  CHECK(destroyed == 0);
  strand__object_release_checked(t, STRAND_KIND_MODEL, "strand_model_release");
  CHECK(destroyed == 1);
  strand_log_set_level(STRAND_LOG_WARN);
}

TEST(abandon_undoes_init_without_destroy) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  void *p;
  REQUIRE_OK(strand__alloc(sizeof(thing), STRAND_MEMORY_OTHER, &p));
  thing *t = p;
  int destroyed = 0;
  t->destroyed = &destroyed;
  strand__object_init(&t->header, STRAND_KIND_SESSION, sizeof(thing), thing_destroy, NULL);
  CHECK(strand__live_objects(STRAND_KIND_SESSION) == 1);
  strand__object_abandon(&t->header);
  CHECK(strand__live_objects(STRAND_KIND_SESSION) == 0);
  CHECK(destroyed == 0);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

static int bytes_of_models(const strand_leak_site *s, void *ctx) {
  if (s->kind == STRAND_KIND_MODEL) *(uint64_t *)ctx += s->bytes;
  return 0;
}

TEST(attributed_bytes_appear_in_reports) {
  int destroyed = 0;
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_COUNT, 0));
  thing *a = thing_new(&destroyed);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
  thing *b = thing_new(&destroyed); /* unregistered: counted per kind */
  uint64_t bytes = 0;
  CHECK_OK(strand_leak_report(bytes_of_models, &bytes));
  CHECK(bytes == 200);
  strand__object_release(&a->header);
  strand__object_release(&b->header);
  CHECK(destroyed == 2);
}

TEST(failing_string_copies_leave_nothing) {
  char *copy = (char *)0x1;
  strand_memory_fail_nth(1);
  CHECK_STATUS(STRAND_E_OUT_OF_MEMORY, strand__strdup("abc", &copy));
  CHECK(copy == (char *)0x1);
  CHECK_OK(strand__strdup("abc", &copy));
  CHECK(strcmp(copy, "abc") == 0);
  strand__free_string(copy);
}

TEST(realloc_accounts_growth_and_shrink) {
  void *p, *q;
  REQUIRE_OK(strand__alloc(10, STRAND_MEMORY_SCRATCH, &p));
  REQUIRE_OK(strand__realloc(p, 10, 1000, STRAND_MEMORY_SCRATCH, &q));
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.live_bytes[STRAND_MEMORY_SCRATCH] == 1000);
  strand_memory_set_limit(st.total_live_bytes + 10);
  void *r = NULL;
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand__realloc(q, 1000, 5000, STRAND_MEMORY_SCRATCH, &r));
  CHECK(r == NULL);
  strand_memory_set_limit(0);
  REQUIRE_OK(strand__realloc(q, 1000, 4, STRAND_MEMORY_SCRATCH, &r));
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.live_bytes[STRAND_MEMORY_SCRATCH] == 4);
  strand__free(r, 4, STRAND_MEMORY_SCRATCH);
}

TEST(context_prefixes_keep_the_cause) {
  strand__fail(STRAND_E_SHAPE, "dimension \"batch\" is 3 here but 4 there");
  CHECK_STATUS(STRAND_E_SHAPE, strand__fail_context(STRAND_E_SHAPE, "node \"%s\" (Add)", "add_1"));
  CHECK(strcmp(strand_errmsg(), "node \"add_1\" (Add): dimension \"batch\" is 3 here but 4 there") == 0);
}

#ifndef NDEBUG
/* Debug builds trap a retain after the last release (increment from zero)
 * and a release below zero: the hand-off rule was broken somewhere. */
static int dies_with_abort(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void increment_from_zero(void) {
  strand__object o = {0};
  strand__object_retain(&o, "test");
}

static void underflow(void) {
  strand__object o = {0};
  strand__object_release(&o);
}

TEST(debug_builds_trap_increment_from_zero_and_underflow) {
  CHECK(dies_with_abort(increment_from_zero));
  CHECK(dies_with_abort(underflow));
}
#endif

TEST(messages_stay_on_one_line) {
  strand__fail(STRAND_E_MALFORMED_MODEL, "tensor \"%s\": bad", "a\nb\tc\x7f");
  CHECK(strcmp(strand_errmsg(), "tensor \"a?b?c?\": bad") == 0);
  strand__fail_context(STRAND_E_MALFORMED_MODEL, "graph \"%s\"", "g\r");
  CHECK(strcmp(strand_errmsg(), "graph \"g?\": tensor \"a?b?c?\": bad") == 0);
}
