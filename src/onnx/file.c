/*
 * file.c — where a model's files may be: the model's own directory and the
 * confinement of external-data paths to it.
 *
 * An external-data location comes from the file, so it is hostile input: it
 * must name a file inside the model's directory. Refused are absolute paths,
 * any ".." component, and paths whose real location (symbolic links
 * resolved) is outside the directory. The resolved path has no symbolic
 * links left, and it is opened with O_NOFOLLOW, so a link swapped in for the
 * last component after the check is refused too.
 */
#include "onnx/onnx_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

strand_status onnx_directory_of(onnx_arena *arena, const char *path, char **out) {
  char resolved[PATH_MAX];
  char why[128];
  if (!realpath(path, resolved))
    return strand__fail(STRAND_E_IO, "model \"%s\": %s", path,
                        onnx_strerror(errno, why, sizeof why));
  char *slash = strrchr(resolved, '/');
  /* realpath gives an absolute path, so there is at least the root slash. */
  size_t length = slash && slash != resolved ? (size_t)(slash - resolved) : 1;
  return onnx_arena_string(arena, resolved, length, out);
}

/* True when some '/'-separated component of `path` is exactly "..". */
static bool has_parent_component(const char *path) {
  const char *p = path;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

strand_status onnx_resolve_external(onnx_arena *arena, const char *dir, const char *location,
                                    char **out) {
  if (!location[0])
    return strand__fail(STRAND_E_MALFORMED_MODEL, "external data location is empty");
  if (location[0] == '/')
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data location \"%s\" is an absolute path; it must be relative "
                        "to the model's directory",
                        location);
  if (has_parent_component(location))
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data location \"%s\" contains \"..\"; it must stay inside the "
                        "model's directory",
                        location);
  char joined[PATH_MAX];
  int n = snprintf(joined, sizeof joined, "%s/%s", dir, location);
  if (n < 0 || (size_t)n >= sizeof joined)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "external data location \"%s\" is too long",
                        location);
  char resolved[PATH_MAX];
  char why[128];
  if (!realpath(joined, resolved))
    return strand__fail(STRAND_E_IO, "external data \"%s\": %s", joined,
                        onnx_strerror(errno, why, sizeof why));
  size_t dir_length = strlen(dir);
  bool root = dir_length == 1 && dir[0] == '/';
  if (!root && (strncmp(resolved, dir, dir_length) != 0 || resolved[dir_length] != '/'))
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data location \"%s\" resolves to \"%s\", outside the model's "
                        "directory \"%s\"",
                        location, resolved, dir);
  return onnx_arena_string(arena, resolved, strlen(resolved), out);
}
