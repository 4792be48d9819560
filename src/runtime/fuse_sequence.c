/*
 * fuse_sequence.c — session-creation rewrites for sequence models
 * (attention, normalization, recurrent layers). See fuse.c for the rules
 * every rewrite follows.
 */
#include "runtime/executor.h"

strand_status session_fuse_sequence(strand_session *s, uint32_t *readers) {
  (void)s;
  (void)readers;
  return STRAND_OK;
}
