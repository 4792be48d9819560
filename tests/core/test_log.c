/* Logging: levels filter, the callback receives whole messages, NULL restores
 * the default sink. */
#include "test.h"

#include "core/core_internal.h"

static char got[8][256];
static strand_log_level got_level[8];
static int got_count;
static void keep(strand_log_level level, const char *message, void *ctx) {
  (void)ctx;
  if (got_count < 8) {
    got_level[got_count] = level;
    snprintf(got[got_count++], 256, "%s", message);
  }
}

TEST(levels_filter_and_callback_receives_messages) {
  got_count = 0;
  strand_log_set_callback(keep, NULL);
  CHECK_OK(strand_log_set_level(STRAND_LOG_INFO));
  CHECK(strand_log_get_level() == STRAND_LOG_INFO);
  strand__log(STRAND_LOG_DEBUG, "hidden %d", 1);
  strand__log(STRAND_LOG_INFO, "shown %d", 2);
  strand__log(STRAND_LOG_ERROR, "shown %s", "three");
  CHECK(got_count == 2);
  CHECK(strcmp(got[0], "shown 2") == 0 && got_level[0] == STRAND_LOG_INFO);
  CHECK(strcmp(got[1], "shown three") == 0 && got_level[1] == STRAND_LOG_ERROR);
  CHECK(strand__log_enabled(STRAND_LOG_WARN));
  CHECK(!strand__log_enabled(STRAND_LOG_TRACE));
  CHECK(!strand__log_enabled(STRAND_LOG_OFF));
  CHECK_OK(strand_log_set_level(STRAND_LOG_OFF));
  strand__log(STRAND_LOG_ERROR, "nothing");
  CHECK(got_count == 2);
  strand_log_set_callback(NULL, NULL);
  CHECK_OK(strand_log_set_level(STRAND_LOG_WARN));
}

TEST(long_messages_are_cut_not_overrun) {
  got_count = 0;
  strand_log_set_callback(keep, NULL);
  char big[4000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  strand__log(STRAND_LOG_ERROR, "%s", big);
  CHECK(got_count == 1 && strlen(got[0]) == 255);
  strand_log_set_callback(NULL, NULL);
}
