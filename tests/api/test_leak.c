/* Leak detection through the public header: levels, aggregation by creation
 * site, symbolized traces, origin texts and the printed report. */
#include "test.h"

typedef struct {
  int sites;
  uint64_t objects;
  const char *want_function; /* a site whose trace names this function */
  uint64_t want_count;
  int found;
  int found_traced;
  char origin[256];
} report_state;

static int collect(const strand_leak_site *s, void *ctx) {
  report_state *r = ctx;
  r->sites++;
  r->objects += s->count;
  if (r->want_function && strstr(s->trace, r->want_function) && s->kind == STRAND_KIND_TENSOR) {
    r->found++;
    r->want_count = s->count;
    r->found_traced = s->traced;
    snprintf(r->origin, sizeof r->origin, "%s", s->origin);
  }
  return 0;
}

/* Not static, and not inlined: the trace must name it. */
__attribute__((noinline)) void leak_a_thousand_tensors(strand_tensor **out);
__attribute__((noinline)) void leak_a_thousand_tensors(strand_tensor **out) {
  int64_t shape[] = {4};
  for (int i = 0; i < 1000; i++)
    if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &out[i]) != STRAND_OK) out[i] = NULL;
}

__attribute__((noinline)) void leak_a_few_elsewhere(strand_tensor **out, int n);
__attribute__((noinline)) void leak_a_few_elsewhere(strand_tensor **out, int n) {
  for (int i = 0; i < n; i++)
    if (strand_tensor_create(STRAND_DTYPE_UINT8, NULL, 0, &out[i]) != STRAND_OK) out[i] = NULL;
}

static strand_tensor *thousand[1000];
static strand_tensor *few[7];

static void release_all(void) {
  for (int i = 0; i < 1000; i++) strand_tensor_release(thousand[i]);
  for (int i = 0; i < 7; i++) strand_tensor_release(few[i]);
}

TEST(a_thousand_leaks_from_one_site_are_one_entry) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  leak_a_thousand_tensors(thousand);
  leak_a_few_elsewhere(few, 7);
  report_state r = {.want_function = "leak_a_thousand_tensors"};
  CHECK_OK(strand_leak_report(collect, &r));
  CHECK(r.found == 1);
  CHECK(r.want_count == 1000);
  CHECK(r.found_traced);
  CHECK(r.sites == 2);
  CHECK(r.objects == 1007);
  report_state e = {.want_function = "leak_a_few_elsewhere"};
  CHECK_OK(strand_leak_report(collect, &e));
  CHECK(e.found == 1 && e.want_count == 7);
  release_all();
  report_state after = {0};
  CHECK_OK(strand_leak_report(collect, &after));
  CHECK(after.sites == 0 && after.objects == 0);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

TEST(count_level_groups_by_the_calling_function_without_traces) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_COUNT, 0));
  leak_a_thousand_tensors(thousand);
  leak_a_few_elsewhere(few, 7);
  report_state r = {.want_function = "leak_a_thousand_tensors"};
  CHECK_OK(strand_leak_report(collect, &r));
  CHECK(r.found == 1 && r.want_count == 1000 && !r.found_traced);
  CHECK(r.sites == 2);
  release_all();
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

static int sum_traced(const strand_leak_site *s, void *ctx) {
  if (s->traced) *(uint64_t *)ctx += s->count;
  return 0;
}

TEST(sample_level_traces_one_in_n) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_SAMPLE, 10));
  leak_a_thousand_tensors(thousand);
  report_state r = {0};
  CHECK_OK(strand_leak_report(collect, &r));
  CHECK(r.objects == 1000);
  CHECK(r.sites == 2); /* the traced site and the untraced call site */
  uint64_t traced = 0;
  CHECK_OK(strand_leak_report(sum_traced, &traced));
  CHECK(traced == 100); /* every tenth object of this thread */
  for (int i = 0; i < 1000; i++) strand_tensor_release(thousand[i]);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

TEST(objects_made_with_detection_off_are_counted_per_kind) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_OFF, 0));
  leak_a_few_elsewhere(few, 7);
  report_state r = {.want_function = "leak_a_few_elsewhere"};
  CHECK_OK(strand_leak_report(collect, &r));
  CHECK(r.sites == 1 && r.objects == 7 && r.found == 0);
  for (int i = 0; i < 7; i++) strand_tensor_release(few[i]);
}

TEST(origin_text_is_kept_with_the_trace) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  REQUIRE_OK(strand_leak_set_origin("at com.example.Scorer.score(Scorer.java:42)"));
  leak_a_few_elsewhere(few, 3);
  CHECK_OK(strand_leak_set_origin(NULL));
  leak_a_few_elsewhere(few + 3, 4);
  report_state r = {.want_function = "leak_a_few_elsewhere"};
  CHECK_OK(strand_leak_report(collect, &r));
  CHECK(r.found == 2); /* same C stack, different origins: two sites */
  for (int i = 0; i < 7; i++) strand_tensor_release(few[i]);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

static int stop_at_first(const strand_leak_site *s, void *ctx) {
  (void)s;
  (*(int *)ctx)++;
  return 1;
}

TEST(visitor_can_stop_the_report) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_COUNT, 0));
  leak_a_thousand_tensors(thousand);
  leak_a_few_elsewhere(few, 7);
  int visits = 0;
  CHECK_OK(strand_leak_report(stop_at_first, &visits));
  CHECK(visits == 1);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_leak_report(NULL, NULL));
  release_all();
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
}

TEST(printed_report_names_count_kind_and_function) {
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  leak_a_thousand_tensors(thousand);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  REQUIRE(mem != NULL);
  uint64_t live = 0;
  CHECK_OK(strand_leak_report_print(mem, &live));
  fclose(mem);
  CHECK(live == 1000);
  CHECK(strstr(text, "1000 live tensor objects holding 16000 bytes") != NULL);
  CHECK(strstr(text, "leak_a_thousand_tensors") != NULL);
  free(text);
  for (int i = 0; i < 1000; i++) strand_tensor_release(thousand[i]);
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_leak_report_print(NULL, NULL));
}

TEST(bad_levels_are_refused) {
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_leak_set_level((strand_leak_level)9, 0));
  CHECK(strand_leak_get_level() == STRAND_LEAK_OFF);
}
