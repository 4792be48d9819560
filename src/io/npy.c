/*
 * npy.c — reading and writing NumPy's .npy format (versions 1.0, 2.0, 3.0).
 *
 * A .npy file is: the magic "\x93NUMPY", a major and a minor version byte, the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), the
 * header (a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n'), then the raw elements.
 *
 * The header is hostile input: it is parsed in one bounded pass by a small
 * grammar that accepts what NumPy writes (and the 'L' suffix of files written
 * under Python 2), with every number range-checked. The data length is
 * checked against the file length before anything of the data's size is
 * allocated, so a header that claims terabytes costs nothing.
 *
 * Element types. Each strand dtype has one descr: '<f2', '<f4', '<f8',
 * '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1', and
 * '<V2' for bfloat16 (NumPy has no bfloat16: ml_dtypes' bfloat16 saves as a
 * 2-byte void, '<V2', and np.load gives it back as void; .view(bfloat16)
 * restores it). Reading also accepts any byte-order mark on 1-byte types and
 * '|V2' for bfloat16. The files are written exactly as np.save writes them.
 */
#include "core/tensor_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_SIZE 6
/* Longest header accepted. NumPy itself refuses headers over 10000 bytes
 * unless told otherwise; strand's largest (16 dimensions) is under 512. */
#define MAX_HEADER 65536
/* np.save aligns the data to 64 bytes and leaves room for the first
 * dimension to grow to 21 digits. */
#define ALIGNMENT 64
#define GROWTH_DIGITS 21
/* A written preamble: 10 + dict (<= 70 + 16 * 21 + 16 * 2) + growth + pad. */
#define WRITE_HEADER_CAPACITY 640

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

/* What a parsed header says. */
typedef struct npy_header {
  strand_dtype dtype;
  size_t rank;
  int64_t dims[STRAND_MAX_RANK];
  size_t elements;   /* product of dims */
  size_t data_bytes; /* elements * dtype size */
} npy_header;

/* Who is failing, for messages: the public function and, for files, the
 * path: `strand_tensor_read_npy: "x.npy"`. */
typedef struct origin {
  char who[512];
} origin;

static void origin_init(origin *o, const char *function, const char *path) {
  if (path) snprintf(o->who, sizeof o->who, "%s: \"%s\"", function, path);
  else snprintf(o->who, sizeof o->who, "%s", function);
}

static strand_status fail(const origin *o, strand_status status, const char *fmt, ...)
    STRAND_PRINTF(3, 4);

/* Records a failure as "who: detail". */
static strand_status fail(const origin *o, strand_status status, const char *fmt, ...) {
  char detail[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return strand__fail(status, "%s: %s", o->who, detail);
}

/* The system's text for `err`, thread-safely. */
static const char *system_error(int err, char *buf, size_t size) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(err, buf, size);
#else
  if (strerror_r(err, buf, size) != 0) snprintf(buf, size, "error %d", err);
  return buf;
#endif
}

/* ---- element types --------------------------------------------------- */

static const struct {
  strand_dtype dtype;
  char kind; /* NumPy's type character */
} type_chars[] = {
    {STRAND_DTYPE_FLOAT16, 'f'}, {STRAND_DTYPE_FLOAT32, 'f'}, {STRAND_DTYPE_FLOAT64, 'f'},
    {STRAND_DTYPE_INT8, 'i'},    {STRAND_DTYPE_INT16, 'i'},   {STRAND_DTYPE_INT32, 'i'},
    {STRAND_DTYPE_INT64, 'i'},   {STRAND_DTYPE_UINT8, 'u'},   {STRAND_DTYPE_UINT16, 'u'},
    {STRAND_DTYPE_UINT32, 'u'},  {STRAND_DTYPE_UINT64, 'u'},  {STRAND_DTYPE_BOOL, 'b'},
    {STRAND_DTYPE_BFLOAT16, 'V'},
};
#define COUNT_DTYPE_(name, value, size, text) +1
_Static_assert(sizeof type_chars / sizeof type_chars[0] == 0 STRAND_DTYPE_LIST(COUNT_DTYPE_),
               "every strand dtype needs a NumPy type character");
#undef COUNT_DTYPE_

/* The descr np.save writes for `dtype`: '<f4', '|u1', '<V2' (bfloat16). */
static void descr_of(strand_dtype dtype, char out[8]) {
  size_t size = strand_dtype_size(dtype);
  for (size_t i = 0; i < sizeof type_chars / sizeof type_chars[0]; i++)
    if (type_chars[i].dtype == dtype) {
      snprintf(out, 8, "%c%c%zu", size == 1 ? '|' : '<', type_chars[i].kind, size);
      return;
    }
  snprintf(out, 8, "?");
}

/* Maps a descr string to a strand dtype, or explains why it cannot. */
static strand_status dtype_of(const origin *o, const char *descr, strand_dtype *out) {
  size_t len = strlen(descr);
  if (len < 2 || strchr("<>|=", descr[0]) == NULL)
    return fail(o, STRAND_E_UNSUPPORTED, "dtype '%s' is not a simple NumPy type", descr);
  char order = descr[0];
  char kind = descr[1];
  if (kind == 'O')
    return fail(o, STRAND_E_UNSUPPORTED, "dtype '%s': object arrays cannot be read", descr);
  /* The size: decimal digits and nothing after them (no '[ns]', no fields). */
  size_t size = 0;
  size_t i = 2;
  for (; i < len && descr[i] >= '0' && descr[i] <= '9' && size < 1000; i++)
    size = size * 10 + (size_t)(descr[i] - '0');
  bool plain = i == len && len > 2;
  strand_dtype found = STRAND_DTYPE_UNDEFINED;
  for (size_t t = 0; plain && t < sizeof type_chars / sizeof type_chars[0]; t++)
    if (type_chars[t].kind == kind && strand_dtype_size(type_chars[t].dtype) == size)
      found = type_chars[t].dtype;
  if (found == STRAND_DTYPE_UNDEFINED) {
    const char *hint = "";
    if (kind == 'c') hint = " (complex numbers are not supported)";
    else if (kind == 'U' || kind == 'S' || kind == 'a') hint = " (strings are not supported)";
    else if (kind == 'M' || kind == 'm') hint = " (dates and times are not supported)";
    else if (kind == 'V') hint = " (of void types only '<V2', bfloat16, is read)";
    return fail(o, STRAND_E_UNSUPPORTED,
                "dtype '%s' is not supported%s; strand reads float16/32/64, bfloat16, "
                "int8/16/32/64, uint8/16/32/64 and bool",
                descr, hint);
  }
  if (size > 1 && order == '>')
    return fail(o, STRAND_E_UNSUPPORTED,
                "dtype '%s' is big-endian: strand reads little-endian arrays only; use "
                "a.astype(a.dtype.newbyteorder('<'))",
                descr);
  if (size > 1 && order == '|' && kind != 'V')
    return fail(o, STRAND_E_UNSUPPORTED, "dtype '%s' has no byte order; expected '<%c%zu'",
                descr, kind, size);
  if (size > 1 && order == '=' && HOST_BIG_ENDIAN)
    return fail(o, STRAND_E_UNSUPPORTED, "dtype '%s' is native (big-endian) order", descr);
  *out = found;
  return STRAND_OK;
}

/* ---- the header dict ------------------------------------------------- */

typedef struct cursor {
  const char *start, *at, *end;
} cursor;

static void skip_space(cursor *c) {
  while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r'))
    c->at++;
}

/* Skips spaces, then consumes `ch` if it is next. */
static bool accept(cursor *c, char ch) {
  skip_space(c);
  if (c->at < c->end && *c->at == ch) {
    c->at++;
    return true;
  }
  return false;
}

static size_t offset(const cursor *c) { return (size_t)(c->at - c->start); }

static strand_status syntax(const origin *o, const cursor *c, const char *expected) {
  char seen[16];
  if (c->at >= c->end) snprintf(seen, sizeof seen, "the end");
  else if (*c->at >= 0x20 && *c->at < 0x7f) snprintf(seen, sizeof seen, "'%c'", *c->at);
  else snprintf(seen, sizeof seen, "byte 0x%02x", (unsigned)(unsigned char)*c->at);
  return fail(o, STRAND_E_IO, "header: expected %s at offset %zu, found %s", expected,
              offset(c), seen);
}

/* A quoted string without escapes, at most `capacity - 1` bytes. */
static strand_status parse_string(const origin *o, cursor *c, char *out, size_t capacity,
                                  const char *what) {
  skip_space(c);
  if (c->at >= c->end || (*c->at != '\'' && *c->at != '"')) return syntax(o, c, what);
  char quote = *c->at++;
  size_t n = 0;
  while (c->at < c->end && *c->at != quote) {
    unsigned char ch = (unsigned char)*c->at;
    if (ch == '\\' || ch < 0x20 || ch >= 0x7f)
      return fail(o, STRAND_E_IO, "header: unexpected byte 0x%02x in a string at offset %zu",
                  ch, offset(c));
    if (n + 1 >= capacity)
      return fail(o, STRAND_E_IO, "header: string at offset %zu is longer than %zu bytes",
                  offset(c) - n - 1, capacity - 1);
    out[n++] = (char)ch;
    c->at++;
  }
  if (c->at >= c->end) return syntax(o, c, "a closing quote");
  c->at++;
  out[n] = '\0';
  return STRAND_OK;
}

/* True or False. */
static strand_status parse_bool(const origin *o, cursor *c, bool *out) {
  skip_space(c);
  size_t left = (size_t)(c->end - c->at);
  if (left >= 4 && memcmp(c->at, "True", 4) == 0) {
    c->at += 4;
    *out = true;
  } else if (left >= 5 && memcmp(c->at, "False", 5) == 0) {
    c->at += 5;
    *out = false;
  } else {
    return syntax(o, c, "True or False for 'fortran_order'");
  }
  return STRAND_OK;
}

/* One dimension: decimal digits (no leading zeros), an optional Python 2 'L'.
 * A minus sign is read so that the message can say what the dimension was. */
static strand_status parse_dim(const origin *o, cursor *c, size_t index, int64_t *out) {
  skip_space(c);
  bool negative = c->at < c->end && *c->at == '-';
  if (negative) c->at++;
  const char *digits = c->at;
  uint64_t value = 0;
  bool too_big = false;
  while (c->at < c->end && *c->at >= '0' && *c->at <= '9') {
    unsigned d = (unsigned)(*c->at - '0');
    if (value > (UINT64_MAX - d) / 10) too_big = true;
    else value = value * 10 + d;
    c->at++;
  }
  size_t n = (size_t)(c->at - digits);
  if (n == 0) return syntax(o, c, "a dimension");
  if (n > 1 && digits[0] == '0')
    return fail(o, STRAND_E_IO, "header: dimension %zu has a leading zero at offset %zu", index,
                (size_t)(digits - c->start));
  if (c->at < c->end && (*c->at == 'L' || *c->at == 'l')) c->at++;
  if (negative && value != 0)
    return fail(o, STRAND_E_SHAPE, "dimension %zu is -%.*s; dimensions must be >= 0", index,
                (int)(n > 40 ? 40 : n), digits);
  if (too_big || value > (uint64_t)INT64_MAX)
    return fail(o, STRAND_E_SHAPE, "dimension %zu is %.*s%s, more than 2^63 - 1", index,
                (int)(n > 40 ? 40 : n), digits, n > 40 ? "..." : "");
  *out = (int64_t)value;
  return STRAND_OK;
}

/* A tuple of dimensions: (), (n,), (n, m), (n, m,). */
static strand_status parse_shape(const origin *o, cursor *c, npy_header *h) {
  if (!accept(c, '(')) {
    if (c->at < c->end && *c->at == '[')
      return fail(o, STRAND_E_IO, "header: 'shape' at offset %zu is a list; NumPy writes a tuple",
                  offset(c));
    return syntax(o, c, "'(' opening 'shape'");
  }
  h->rank = 0;
  if (accept(c, ')')) return STRAND_OK;
  for (;;) {
    if (h->rank == STRAND_MAX_RANK)
      return fail(o, STRAND_E_UNSUPPORTED, "shape has more than %d dimensions (the most strand "
                  "accepts)", STRAND_MAX_RANK);
    strand_status st = parse_dim(o, c, h->rank, &h->dims[h->rank]);
    if (st != STRAND_OK) return st;
    h->rank++;
    if (accept(c, ',')) {
      if (accept(c, ')')) return STRAND_OK;
      continue;
    }
    if (accept(c, ')')) {
      if (h->rank == 1)
        return fail(o, STRAND_E_IO, "header: 'shape' (%lld) is not a tuple; a one-dimensional "
                    "shape is written (%lld,)", (long long)h->dims[0], (long long)h->dims[0]);
      return STRAND_OK;
    }
    return syntax(o, c, "',' or ')' in 'shape'");
  }
}

/* Parses the dict text and fills `h`; every key exactly once, nothing else. */
static strand_status parse_dict(const origin *o, const char *text, size_t len, npy_header *h) {
  cursor c = {text, text, text + len};
  memset(h, 0, sizeof *h);
  char descr[32] = "";
  bool fortran = false;
  bool seen_descr = false, seen_fortran = false, seen_shape = false;
  strand_status st;
  if (!accept(&c, '{')) return syntax(o, &c, "'{' opening the header");
  while (!accept(&c, '}')) {
    char key[16];
    skip_space(&c);
    size_t key_at = offset(&c);
    st = parse_string(o, &c, key, sizeof key, "a quoted key or '}'");
    if (st != STRAND_OK) return st;
    if (!accept(&c, ':')) return syntax(o, &c, "':' after a key");
    bool *seen;
    if (strcmp(key, "descr") == 0) {
      seen = &seen_descr;
      skip_space(&c);
      if (c.at < c.end && *c.at == '[')
        return fail(o, STRAND_E_UNSUPPORTED, "dtype is a list of fields: structured arrays "
                    "cannot be read");
      st = parse_string(o, &c, descr, sizeof descr, "a quoted dtype for 'descr'");
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &seen_fortran;
      st = parse_bool(o, &c, &fortran);
    } else if (strcmp(key, "shape") == 0) {
      seen = &seen_shape;
      st = parse_shape(o, &c, h);
    } else {
      return fail(o, STRAND_E_IO, "header: unknown key '%s' at offset %zu", key, key_at);
    }
    if (st != STRAND_OK) return st;
    if (*seen) return fail(o, STRAND_E_IO, "header: key '%s' appears twice", key);
    *seen = true;
    if (!accept(&c, ',')) {
      if (!accept(&c, '}')) return syntax(o, &c, "',' or '}' after a value");
      break;
    }
  }
  skip_space(&c);
  if (c.at != c.end) return syntax(o, &c, "only spaces after the header's '}'");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return fail(o, STRAND_E_IO, "header: missing key '%s'",
                !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
  st = dtype_of(o, descr, &h->dtype);
  if (st != STRAND_OK) return st;
  /* Rank 0 and 1 are the same in either order, as NumPy itself treats them. */
  if (fortran && h->rank > 1)
    return fail(o, STRAND_E_UNSUPPORTED, "fortran_order is True: strand reads C-order arrays "
                "only; use np.ascontiguousarray");
  return strand__shape_check(h->dtype, h->dims, h->rank, o->who, &h->elements,
                             &h->data_bytes);
}

/* The fixed part before the dict: magic, version, header length. `bytes`
 * holds the first `available` bytes of the input (12 suffice); `total` is
 * the input's whole length, SIZE_MAX when unknown (a pipe). Sets the
 * preamble's size and the dict's length. */
static strand_status parse_preamble(const origin *o, const unsigned char *bytes,
                                    size_t available, size_t total, size_t *preamble,
                                    size_t *dict_len) {
  if (available == 0) return fail(o, STRAND_E_IO, "empty: not a .npy file");
  size_t have = available < MAGIC_SIZE ? available : MAGIC_SIZE;
  if (memcmp(bytes, MAGIC, have) != 0)
    return fail(o, STRAND_E_IO, "not a .npy file: it does not start with \"\\x93NUMPY\"");
  if (available < 8)
    return fail(o, STRAND_E_IO, "ends after %zu bytes, inside the .npy preamble", available);
  unsigned major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return fail(o, STRAND_E_UNSUPPORTED, ".npy format version %u.%u; strand reads 1.0, 2.0 "
                "and 3.0", major, minor);
  size_t need = major == 1 ? 10 : 12;
  if (available < need)
    return fail(o, STRAND_E_IO, "ends after %zu bytes, inside the %zu-byte preamble of format "
                "version %u.0", available, need, major);
  size_t len = (size_t)bytes[8] | (size_t)bytes[9] << 8;
  if (major != 1) len |= (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
  if (len > MAX_HEADER)
    return fail(o, STRAND_E_UNSUPPORTED, "header length %zu exceeds the %d bytes strand reads",
                len, MAX_HEADER);
  if (total - need < len)
    return fail(o, STRAND_E_IO, "header of %zu bytes runs past the end (%zu bytes follow the "
                "preamble)", len, total - need);
  *preamble = need;
  *dict_len = len;
  return STRAND_OK;
}

/* Checks that `available` bytes after the header are exactly the data. */
static strand_status check_data_size(const origin *o, const npy_header *h, size_t available) {
  if (available == h->data_bytes) return STRAND_OK;
  char dims[STRAND_MAX_RANK * 22 + 4];
  size_t n = 0;
  for (size_t i = 0; i < h->rank; i++)
    n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%lld", i ? ", " : "",
                          (long long)h->dims[i]);
  dims[n] = '\0';
  if (available < h->data_bytes)
    return fail(o, STRAND_E_IO, "data is %zu bytes, but shape (%s) of %s needs %zu", available,
                dims, strand_dtype_name(h->dtype), h->data_bytes);
  return fail(o, STRAND_E_IO, "%zu bytes follow the data that shape (%s) of %s needs (%zu)",
              available - h->data_bytes, dims, strand_dtype_name(h->dtype), h->data_bytes);
}

/* Converts between file order (little-endian) and the host's, in place. */
static void to_host_order(void *data, size_t elements, size_t size) {
#if HOST_BIG_ENDIAN
  unsigned char *p = data;
  for (size_t e = 0; e < elements && size > 1; e++, p += size)
    for (size_t i = 0; i < size / 2; i++) {
      unsigned char t = p[i];
      p[i] = p[size - 1 - i];
      p[size - 1 - i] = t;
    }
#else
  (void)data, (void)elements, (void)size;
#endif
}

/* Bool elements must be 0 or 1: kernels rely on it. */
static strand_status check_bools(const origin *o, const npy_header *h, const void *data) {
  if (h->dtype != STRAND_DTYPE_BOOL) return STRAND_OK;
  const unsigned char *b = data;
  for (size_t i = 0; i < h->elements; i++)
    if (b[i] > 1)
      return fail(o, STRAND_E_IO, "bool element %zu has byte value %u; expected 0 or 1", i,
                  (unsigned)b[i]);
  return STRAND_OK;
}

/* ---- reading --------------------------------------------------------- */

/* Reads a whole .npy from `size` bytes at `bytes` (NULL when size is 0). */
static strand_status read_buffer(const origin *o, const unsigned char *bytes, size_t size,
                                 const void *site, strand_tensor **out) {
  size_t preamble, dict_len;
  strand_status st =
      parse_preamble(o, bytes, size < 12 ? size : 12, size, &preamble, &dict_len);
  if (st != STRAND_OK) return st;
  npy_header h;
  st = parse_dict(o, (const char *)bytes + preamble, dict_len, &h);
  if (st != STRAND_OK) return st;
  const unsigned char *data = bytes + preamble + dict_len;
  st = check_data_size(o, &h, size - preamble - dict_len);
  if (st == STRAND_OK) st = check_bools(o, &h, data);
  strand_tensor *t;
  if (st == STRAND_OK)
    st = strand__tensor_create_at(h.dtype, h.dims, h.rank, site, o->who, true, &t);
  if (st != STRAND_OK) return st;
  if (h.data_bytes) memcpy(t->data, data, h.data_bytes);
  to_host_order(t->data, h.elements, strand_dtype_size(h.dtype));
  *out = t;
  return STRAND_OK;
}

/* Reads exactly `size` bytes, or says how many there were. */
static strand_status read_exactly(const origin *o, FILE *f, void *into, size_t size,
                                  size_t *got) {
  *got = fread(into, 1, size, f);
  if (*got == size) return STRAND_OK;
  if (ferror(f)) {
    char buf[128];
    return fail(o, STRAND_E_IO, "read failed: %s", system_error(errno, buf, sizeof buf));
  }
  return STRAND_OK; /* short: the caller reports what was missing */
}

/* Reads a whole .npy from `f`, whose position is its start. */
static strand_status read_file(const origin *o, FILE *f, const void *site, strand_tensor **out) {
  /* The size, when the file has one (a pipe does not). */
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode))
    return fail(o, STRAND_E_IO, "is a directory");
  bool sized = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
  if (sized && (uint64_t)sb.st_size > SIZE_MAX)
    return fail(o, STRAND_E_IO, "%lld bytes are more than memory can address",
                (long long)sb.st_size);
  size_t total = sized ? (size_t)sb.st_size : SIZE_MAX;

  /* The preamble: 8 bytes, then 2 or 4 of length by version. */
  unsigned char pre[12];
  size_t got, more = 0;
  strand_status st = read_exactly(o, f, pre, 8, &got);
  if (st == STRAND_OK && got == 8)
    st = read_exactly(o, f, pre + 8, pre[6] == 2 || pre[6] == 3 ? 4 : 2, &more);
  if (st != STRAND_OK) return st;
  size_t preamble, dict_len;
  st = parse_preamble(o, pre, got + more, total, &preamble, &dict_len);
  if (st != STRAND_OK) return st;

  unsigned char *text;
  st = strand__alloc(dict_len, STRAND_MEMORY_OTHER, (void **)&text);
  if (st != STRAND_OK) return strand__fail_context(st, "%s: header", o->who);
  st = read_exactly(o, f, text, dict_len, &got);
  if (st == STRAND_OK && got < dict_len)
    st = fail(o, STRAND_E_IO, "ends %zu bytes into a header of %zu bytes", got, dict_len);
  npy_header h;
  if (st == STRAND_OK) st = parse_dict(o, (const char *)text, dict_len, &h);
  strand__free(text, dict_len, STRAND_MEMORY_OTHER);
  if (st != STRAND_OK) return st;

  /* Checked before the allocation, so a false shape costs nothing. */
  if (sized) {
    st = check_data_size(o, &h, total - preamble - dict_len);
    if (st != STRAND_OK) return st;
  }
  strand_tensor *t;
  st = strand__tensor_create_at(h.dtype, h.dims, h.rank, site, o->who, true, &t);
  if (st != STRAND_OK) return st;
  st = read_exactly(o, f, t->data, h.data_bytes, &got);
  if (st == STRAND_OK && got < h.data_bytes) st = check_data_size(o, &h, got);
  if (st == STRAND_OK && fgetc(f) != EOF) {
    /* Grew since fstat, or a pipe: count what is left, boundedly. */
    size_t extra = 1;
    while (extra < 4096 && fgetc(f) != EOF) extra++;
    st = fail(o, STRAND_E_IO, "%s%zu bytes follow the data (%zu bytes)",
              extra == 4096 ? "at least " : "", extra, h.data_bytes);
  }
  if (st == STRAND_OK) st = check_bools(o, &h, t->data);
  if (st != STRAND_OK) {
    strand_tensor_release(t);
    return st;
  }
  to_host_order(t->data, h.elements, strand_dtype_size(h.dtype));
  *out = t;
  return STRAND_OK;
}

STRAND_NOINLINE strand_status strand_tensor_read_npy(const char *path, strand_tensor **out) {
  strand__init();
  origin o;
  origin_init(&o, "strand_tensor_read_npy", path);
  if (!path) return fail(&o, STRAND_E_INVALID_ARGUMENT, "path is NULL");
  if (!out) return fail(&o, STRAND_E_INVALID_ARGUMENT, "out is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) {
    char buf[128];
    return fail(&o, STRAND_E_IO, "cannot open: %s", system_error(errno, buf, sizeof buf));
  }
  strand_status st = read_file(&o, f, __builtin_return_address(0), out);
  fclose(f);
  return st;
}

STRAND_NOINLINE strand_status strand_tensor_read_npy_buffer(const void *data, size_t size,
                                                            strand_tensor **out) {
  strand__init();
  origin o;
  origin_init(&o, "strand_tensor_read_npy_buffer", NULL);
  if (!data && size)
    return fail(&o, STRAND_E_INVALID_ARGUMENT, "data is NULL for %zu bytes", size);
  if (!out) return fail(&o, STRAND_E_INVALID_ARGUMENT, "out is NULL");
  return read_buffer(&o, data, size, __builtin_return_address(0), out);
}

/* ---- writing --------------------------------------------------------- */

/* What a tensor needs for writing. */
typedef struct source {
  strand_dtype dtype;
  const int64_t *dims;
  size_t rank;
  size_t elements;
  size_t bytes;
  const void *data;
} source;

static strand_status describe(const origin *o, const strand_tensor *t, source *s) {
  strand_status st = strand__object_check(t, STRAND_KIND_TENSOR, o->who);
  if (st != STRAND_OK) return st;
  s->dtype = t->dtype;
  s->dims = t->dims;
  s->rank = t->rank;
  s->elements = t->element_count;
  s->bytes = t->byte_size;
  s->data = t->data;
  return STRAND_OK;
}

/* Writes the preamble and header np.save would write; returns its length. */
static size_t build_header(const source *s, char out[WRITE_HEADER_CAPACITY]) {
  char descr[8];
  descr_of(s->dtype, descr);
  char *text = out + 10;
  size_t room = WRITE_HEADER_CAPACITY - 10;
  size_t n = (size_t)snprintf(text, room, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                              descr);
  for (size_t i = 0; i < s->rank; i++)
    n += (size_t)snprintf(text + n, room - n, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
  n += (size_t)snprintf(text + n, room - n, "%s), }", s->rank == 1 ? "," : "");
  if (s->rank > 0) {
    char first[24];
    size_t digits = (size_t)snprintf(first, sizeof first, "%lld", (long long)s->dims[0]);
    memset(text + n, ' ', GROWTH_DIGITS - digits);
    n += GROWTH_DIGITS - digits;
  }
  size_t pad = ALIGNMENT - (10 + n + 1) % ALIGNMENT; /* 1..64, as NumPy pads */
  memset(text + n, ' ', pad);
  n += pad;
  text[n++] = '\n';
  memcpy(out, MAGIC, MAGIC_SIZE);
  out[6] = 1;
  out[7] = 0;
  out[8] = (char)(n & 0xff);
  out[9] = (char)(n >> 8);
  return 10 + n;
}

/* Copies `bytes` of elements to `into` in file order. */
static void copy_to_file_order(void *into, const void *from, const source *s) {
  if (s->bytes) memcpy(into, from, s->bytes);
  to_host_order(into, s->elements, strand_dtype_size(s->dtype));
}

STRAND_NOINLINE strand_status strand_tensor_write_npy_buffer(const strand_tensor *tensor,
                                                             void *buffer, size_t capacity,
                                                             size_t *size) {
  strand__init();
  origin o;
  origin_init(&o, "strand_tensor_write_npy_buffer", NULL);
  if (!size) return fail(&o, STRAND_E_INVALID_ARGUMENT, "size is NULL");
  source s;
  strand_status st = describe(&o, tensor, &s);
  if (st != STRAND_OK) return st;
  char header[WRITE_HEADER_CAPACITY];
  size_t header_len = build_header(&s, header);
  size_t total;
  if (!strand__size_add(header_len, s.bytes, &total))
    return fail(&o, STRAND_E_SHAPE, "the .npy bytes overflow size_t");
  if (!buffer) {
    if (capacity)
      return fail(&o, STRAND_E_INVALID_ARGUMENT, "buffer is NULL with capacity %zu", capacity);
    *size = total;
    return STRAND_OK;
  }
  if (capacity < total)
    return fail(&o, STRAND_E_INVALID_ARGUMENT, "buffer of %zu bytes is too small: the .npy "
                "form takes %zu", capacity, total);
  memcpy(buffer, header, header_len);
  copy_to_file_order((char *)buffer + header_len, s.data, &s);
  *size = total;
  return STRAND_OK;
}

/* Writes the elements in file order. */
static bool write_data(FILE *f, const source *s) {
#if HOST_BIG_ENDIAN
  size_t item = strand_dtype_size(s->dtype);
  unsigned char chunk[4096];
  size_t per = sizeof chunk / item;
  const unsigned char *p = s->data;
  for (size_t done = 0; done < s->elements;) {
    size_t n = s->elements - done < per ? s->elements - done : per;
    memcpy(chunk, p + done * item, n * item);
    to_host_order(chunk, n, item);
    if (fwrite(chunk, item, n, f) != n) return false;
    done += n;
  }
  return true;
#else
  return s->bytes == 0 || fwrite(s->data, 1, s->bytes, f) == s->bytes;
#endif
}

STRAND_NOINLINE strand_status strand_tensor_write_npy(const strand_tensor *tensor,
                                                      const char *path) {
  strand__init();
  origin o;
  origin_init(&o, "strand_tensor_write_npy", path);
  if (!path) return fail(&o, STRAND_E_INVALID_ARGUMENT, "path is NULL");
  source s;
  strand_status st = describe(&o, tensor, &s);
  if (st != STRAND_OK) return st;
  char header[WRITE_HEADER_CAPACITY];
  size_t header_len = build_header(&s, header);
  char buf[128];
  FILE *f = fopen(path, "wb");
  if (!f) return fail(&o, STRAND_E_IO, "cannot create: %s", system_error(errno, buf, sizeof buf));
  bool ok = fwrite(header, 1, header_len, f) == header_len && write_data(f, &s);
  int err = ok ? 0 : errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok && err == 0) err = EIO;
  if (!ok) {
    remove(path);
    return fail(&o, STRAND_E_IO, "write failed (the partial file was removed): %s",
                system_error(err, buf, sizeof buf));
  }
  return STRAND_OK;
}
