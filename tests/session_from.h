/*
 * session_from.h — for tests that build models in memory: a session from
 * model bytes, with failures recorded through the harness.
 */
#ifndef STRAND_TEST_SESSION_FROM_H
#define STRAND_TEST_SESSION_FROM_H

#include "model_builder.h"
#include "test.h"

#include <strand.h>

/* Loads model bytes `m` (freed here) and creates a session with `options`
 * (NULL: defaults). Returns the session (the caller releases it), or NULL
 * after recording the failure. The session holds the only model reference. */
static inline strand_session *session_from_options(mb *m, const strand_session_options *options) {
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m->data, m->size, &model);
  mb_free(m);
  if (st) {
    test_fail(__FILE__, __LINE__, "load: %s", strand_errmsg());
    return NULL;
  }
  strand_session *s = NULL;
  st = strand_session_create(model, options, &s);
  strand_model_release(model);
  if (st) test_fail(__FILE__, __LINE__, "create: %s", strand_errmsg());
  return s;
}

static inline strand_session *session_from(mb *m) { return session_from_options(m, NULL); }

#endif /* STRAND_TEST_SESSION_FROM_H */
