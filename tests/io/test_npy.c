/* test_npy.c — .npy reading and writing (src/io/npy.c), through strand.h only.
 *
 * Round trips for every dtype and ranks 0..5, files written by NumPy
 * (tests/data/npy, made by tests/data/make_npy.py, with the values NumPy
 * meant in expected.txt), every malformed header we could think of,
 * truncation at every length, pipes, allocation failures at every step, and
 * concurrent use. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

/* A file under the source tree. (test_source_path in the harness cannot see
 * STRAND_SOURCE_DIR, which only test programs are compiled with.) */
static const char *source_path(const char *relative) {
  static __thread char buf[4][4096];
  static __thread int slot;
  char *b = buf[slot++ & 3];
#ifdef STRAND_SOURCE_DIR
  snprintf(b, 4096, "%s/%s", STRAND_SOURCE_DIR, relative);
#else
  snprintf(b, 4096, "%s", relative);
#endif
  return b;
}

static const strand_dtype all_dtypes[] = {
    STRAND_DTYPE_FLOAT32, STRAND_DTYPE_UINT8,   STRAND_DTYPE_INT8,    STRAND_DTYPE_UINT16,
    STRAND_DTYPE_INT16,   STRAND_DTYPE_INT32,   STRAND_DTYPE_INT64,   STRAND_DTYPE_BOOL,
    STRAND_DTYPE_FLOAT16, STRAND_DTYPE_FLOAT64, STRAND_DTYPE_UINT32,  STRAND_DTYPE_UINT64,
    STRAND_DTYPE_BFLOAT16,
};
#define DTYPE_COUNT (sizeof all_dtypes / sizeof all_dtypes[0])

static char scratch[256];

static void remove_scratch_dir(void) { rmdir(scratch); }

/* A scratch directory for this process; tests remove their files, and the
 * directory goes at exit. */
static const char *scratch_dir(void) {
  char *dir = scratch;
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof scratch, "%s/strand_npy_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      abort();
    }
    atexit(remove_scratch_dir);
  }
  return dir;
}

static const char *scratch_path(const char *name) {
  static __thread char path[4][512];
  static __thread int slot;
  char *p = path[slot++ & 3];
  snprintf(p, 512, "%s/%s", scratch_dir(), name);
  return p;
}

/* Reads a whole file with libc; NULL on failure. Free with free(). */
static unsigned char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      unsigned char *grown = realloc(buf, cap);
      if (!grown) abort();
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  fclose(f);
  *size = n;
  return buf;
}

static int spit(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t put = size ? fwrite(data, 1, size, f) : 0;
  return (fclose(f) == 0 && put == size) ? 0 : -1;
}

/* A hand-made .npy image: magic, version major.0, the dict text and '\n',
 * then `data`. */
typedef struct npy_image {
  unsigned char bytes[2048];
  size_t size;
} npy_image;

static void make_image(npy_image *im, unsigned major, const char *dict, const void *data,
                       size_t data_size) {
  size_t len = strlen(dict);
  size_t pre = major == 1 ? 10 : 12;
  memcpy(im->bytes, "\x93NUMPY", 6);
  im->bytes[6] = (unsigned char)major;
  im->bytes[7] = 0;
  size_t header = len + 1;
  im->bytes[8] = (unsigned char)(header & 0xff);
  im->bytes[9] = (unsigned char)(header >> 8);
  if (major != 1) {
    im->bytes[10] = (unsigned char)(header >> 16);
    im->bytes[11] = (unsigned char)(header >> 24);
  }
  memcpy(im->bytes + pre, dict, len);
  im->bytes[pre + len] = '\n';
  if (pre + header + data_size > sizeof im->bytes) abort();
  if (data_size) memcpy(im->bytes + pre + header, data, data_size);
  im->size = pre + header + data_size;
}

static double half_to_double(uint16_t h) {
  int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double v;
  if (exponent == 0) v = ldexp(mantissa, -24);
  else if (exponent == 31) v = mantissa ? NAN : INFINITY;
  else v = ldexp(mantissa | 0x400, exponent - 25);
  return sign ? -v : v;
}

static double bfloat16_to_double(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Element `i` as a double (floats) — or exact integers through the other. */
static double element_double(strand_dtype dtype, const void *data, size_t i) {
  switch (dtype) {
    case STRAND_DTYPE_FLOAT32: return ((const float *)data)[i];
    case STRAND_DTYPE_FLOAT64: return ((const double *)data)[i];
    case STRAND_DTYPE_FLOAT16: return half_to_double(((const uint16_t *)data)[i]);
    case STRAND_DTYPE_BFLOAT16: return bfloat16_to_double(((const uint16_t *)data)[i]);
    default: return 0;
  }
}

static int64_t element_signed(strand_dtype dtype, const void *data, size_t i) {
  switch (dtype) {
    case STRAND_DTYPE_INT8: return ((const int8_t *)data)[i];
    case STRAND_DTYPE_INT16: return ((const int16_t *)data)[i];
    case STRAND_DTYPE_INT32: return ((const int32_t *)data)[i];
    case STRAND_DTYPE_INT64: return ((const int64_t *)data)[i];
    default: return 0;
  }
}

static uint64_t element_unsigned(strand_dtype dtype, const void *data, size_t i) {
  switch (dtype) {
    case STRAND_DTYPE_UINT8: return ((const uint8_t *)data)[i];
    case STRAND_DTYPE_BOOL: return ((const uint8_t *)data)[i];
    case STRAND_DTYPE_UINT16: return ((const uint16_t *)data)[i];
    case STRAND_DTYPE_UINT32: return ((const uint32_t *)data)[i];
    case STRAND_DTYPE_UINT64: return ((const uint64_t *)data)[i];
    default: return 0;
  }
}

static strand_dtype dtype_named(const char *name) {
  for (size_t i = 0; i < DTYPE_COUNT; i++)
    if (strcmp(strand_dtype_name(all_dtypes[i]), name) == 0) return all_dtypes[i];
  return STRAND_DTYPE_UNDEFINED;
}

/* Fills a tensor with a pattern that differs per byte (bools: 0/1). */
static void fill_pattern(strand_tensor *t, unsigned seed) {
  void *data;
  size_t bytes;
  strand_dtype dtype;
  if (strand_tensor_data(t, &data) || strand_tensor_byte_size(t, &bytes) ||
      strand_tensor_dtype(t, &dtype))
    return;
  unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++)
    p[i] = dtype == STRAND_DTYPE_BOOL ? (unsigned char)((i * 7 + seed) & 1)
                                      : (unsigned char)(i * 131 + seed * 17 + 1);
}

/* Same dtype, shape and bytes. */
static int same_tensor(const strand_tensor *a, const strand_tensor *b) {
  strand_dtype da, db;
  const int64_t *sa, *sb;
  size_t ra, rb, ba, bb;
  void *pa, *pb;
  if (strand_tensor_dtype(a, &da) || strand_tensor_dtype(b, &db) || da != db) return 0;
  if (strand_tensor_shape(a, &sa, &ra) || strand_tensor_shape(b, &sb, &rb) || ra != rb) return 0;
  for (size_t i = 0; i < ra; i++)
    if (sa[i] != sb[i]) return 0;
  if (strand_tensor_byte_size(a, &ba) || strand_tensor_byte_size(b, &bb) || ba != bb) return 0;
  if (strand_tensor_data(a, &pa) || strand_tensor_data(b, &pb)) return 0;
  return ba == 0 || memcmp(pa, pb, ba) == 0;
}

/* Writes `t` to a malloc'd .npy image through the buffer API. */
static unsigned char *to_image(const strand_tensor *t, size_t *size) {
  size_t need;
  if (strand_tensor_write_npy_buffer(t, NULL, 0, &need) != STRAND_OK) return NULL;
  unsigned char *buf = malloc(need);
  if (!buf) abort();
  size_t got = 0;
  if (strand_tensor_write_npy_buffer(t, buf, need, &got) != STRAND_OK || got != need) {
    free(buf);
    return NULL;
  }
  *size = got;
  return buf;
}

/* ---- round trips ------------------------------------------------------ */

TEST(round_trip_every_dtype_and_rank) {
  static const int64_t shapes[][5] = {
      {0}, {3}, {2, 3}, {2, 1, 4}, {1, 2, 3, 2}, {2, 1, 2, 1, 3},
  };
  static const size_t ranks[] = {0, 1, 2, 3, 4, 5};
  static const int64_t empty_shapes[][5] = {{0}, {2, 0}, {0, 3, 4}, {1, 2, 0, 1}, {1, 1, 1, 1, 0}};
  static const size_t empty_ranks[] = {1, 2, 3, 4, 5};
  for (size_t d = 0; d < DTYPE_COUNT; d++) {
    for (size_t s = 0; s < 6 + 5; s++) {
      const int64_t *shape = s < 6 ? shapes[s] : empty_shapes[s - 6];
      size_t rank = s < 6 ? ranks[s] : empty_ranks[s - 6];
      strand_tensor *t = NULL, *back = NULL, *from_file = NULL;
      REQUIRE_OK(strand_tensor_create(all_dtypes[d], shape, rank, &t));
      fill_pattern(t, (unsigned)(d * 16 + s));

      size_t size = 0;
      unsigned char *im = to_image(t, &size);
      CHECK(im != NULL);
      if (im) {
        CHECK_OK(strand_tensor_read_npy_buffer(im, size, &back));
        CHECK(back && same_tensor(t, back));
      }

      const char *path = scratch_path("round_trip.npy");
      CHECK_OK(strand_tensor_write_npy(t, path));
      CHECK_OK(strand_tensor_read_npy(path, &from_file));
      CHECK(from_file && same_tensor(t, from_file));
      size_t file_size = 0;
      unsigned char *file = slurp(path, &file_size);
      CHECK(file && im && file_size == size && memcmp(file, im, size) == 0);
      if (test_failed_now())
        fprintf(stderr, "    (dtype %s, shape case %zu)\n", strand_dtype_name(all_dtypes[d]), s);
      free(file);
      free(im);
      unlink(path);
      strand_tensor_release(from_file);
      strand_tensor_release(back);
      strand_tensor_release(t);
      if (test_failed_now()) return;
    }
  }
}

TEST(data_is_64_byte_aligned_like_numpy) {
  int64_t shape[2] = {123456789, 0};
  strand_tensor *t;
  for (size_t rank = 0; rank <= 16; rank++) {
    int64_t dims[16];
    for (size_t i = 0; i < rank; i++) dims[i] = i == rank - 1 ? 0 : 1000000000000 + (int64_t)i;
    REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT8, rank ? dims : NULL, rank, &t));
    size_t size, data;
    CHECK_OK(strand_tensor_write_npy_buffer(t, NULL, 0, &size));
    CHECK_OK(strand_tensor_byte_size(t, &data));
    if ((size - data) % 64 != 0) test_fail(__FILE__, __LINE__, "rank %zu: %zu bytes", rank, size);
    strand_tensor_release(t);
  }
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT8, shape, 2, &t));
  size_t size;
  CHECK_OK(strand_tensor_write_npy_buffer(t, NULL, 0, &size));
  CHECK(size == 128);
  strand_tensor_release(t);
}

/* ---- files written by NumPy ------------------------------------------ */

/* Checks one line of expected.txt against strand's reading of the file. */
static void check_fixture_line(char *line) {
  char *save = NULL;
  char *name = strtok_r(line, " \n", &save);
  char *dtype_name = strtok_r(NULL, " \n", &save);
  char *rank_text = strtok_r(NULL, " \n", &save);
  if (!name || !dtype_name || !rank_text) {
    test_fail(__FILE__, __LINE__, "bad expected.txt line");
    return;
  }
  char rel[256];
  snprintf(rel, sizeof rel, "tests/data/npy/%s", name);
  const char *path = source_path(rel);
  strand_tensor *t = NULL;
  CHECK_OK(strand_tensor_read_npy(path, &t));
  if (!t) {
    fprintf(stderr, "    (fixture %s)\n", name);
    return;
  }
  int failures = test_failed_now();
  strand_dtype dtype;
  CHECK_OK(strand_tensor_dtype(t, &dtype));
  CHECK(dtype == dtype_named(dtype_name));
  const int64_t *dims;
  size_t rank;
  CHECK_OK(strand_tensor_shape(t, &dims, &rank));
  CHECK(rank == (size_t)strtoul(rank_text, NULL, 10));
  for (size_t i = 0; i < rank; i++) {
    char *dim = strtok_r(NULL, " \n", &save);
    CHECK(dim && dims[i] == strtoll(dim, NULL, 10));
  }
  char *colon = strtok_r(NULL, " \n", &save);
  CHECK(colon && strcmp(colon, ":") == 0);
  size_t count;
  void *data;
  CHECK_OK(strand_tensor_element_count(t, &count));
  CHECK_OK(strand_tensor_data(t, &data));
  size_t i = 0;
  for (char *v; (v = strtok_r(NULL, " \n", &save)) != NULL; i++) {
    if (i >= count) break;
    switch (dtype) {
      case STRAND_DTYPE_FLOAT16:
      case STRAND_DTYPE_FLOAT32:
      case STRAND_DTYPE_FLOAT64:
      case STRAND_DTYPE_BFLOAT16: {
        double want = strtod(v, NULL), got = element_double(dtype, data, i);
        if (isnan(want)) CHECK(isnan(got));
        else CHECK(got == want && signbit(got) == signbit(want));
        break;
      }
      case STRAND_DTYPE_INT8:
      case STRAND_DTYPE_INT16:
      case STRAND_DTYPE_INT32:
      case STRAND_DTYPE_INT64:
        CHECK(element_signed(dtype, data, i) == strtoll(v, NULL, 10));
        break;
      default:
        CHECK(element_unsigned(dtype, data, i) == strtoull(v, NULL, 10));
        break;
    }
  }
  CHECK(i == count);

  /* Strand writes what NumPy wrote (format 1.0 files; strand writes 1.0). */
  size_t size = 0, written = 0;
  unsigned char *original = slurp(path, &size);
  unsigned char *mine = to_image(t, &written);
  CHECK(original && mine);
  if (original && mine && original[6] == 1)
    CHECK(written == size && memcmp(original, mine, size) == 0);
  /* And the buffer reader agrees with the file reader. */
  strand_tensor *again = NULL;
  if (original) CHECK_OK(strand_tensor_read_npy_buffer(original, size, &again));
  CHECK(again && same_tensor(t, again));
  strand_tensor_release(again);
  free(original);
  free(mine);
  if (test_failed_now() != failures) fprintf(stderr, "    (fixture %s)\n", name);
  strand_tensor_release(t);
}

TEST(reads_files_written_by_numpy) {
  size_t size;
  char *text = (char *)slurp(source_path("tests/data/npy/expected.txt"), &size);
  REQUIRE(text != NULL);
  char *grown = realloc(text, size + 1);
  REQUIRE(grown != NULL);
  text = grown;
  text[size] = '\0';
  int lines = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#' || line[0] == '\0') continue;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    check_fixture_line(copy);
    lines++;
  }
  free(text);
  CHECK(lines >= 20);
}

TEST(refuses_numpy_files_it_cannot_represent) {
  static const struct {
    const char *file;
    strand_status status;
    const char *message;
  } cases[] = {
      {"unsupported_fortran_2x3.npy", STRAND_E_UNSUPPORTED, "fortran_order is True"},
      {"unsupported_fortran_2x3.npy", STRAND_E_UNSUPPORTED, "np.ascontiguousarray"},
      {"unsupported_big_endian_int32.npy", STRAND_E_UNSUPPORTED, "'>i4' is big-endian"},
      {"unsupported_object.npy", STRAND_E_UNSUPPORTED, "'|O': object arrays cannot be read"},
      {"unsupported_complex64.npy", STRAND_E_UNSUPPORTED, "complex"},
      {"unsupported_unicode.npy", STRAND_E_UNSUPPORTED, "strings"},
      {"unsupported_structured.npy", STRAND_E_UNSUPPORTED, "structured"},
      {"unsupported_datetime.npy", STRAND_E_UNSUPPORTED, "dates and times"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/npy/%s", cases[i].file);
    strand_tensor *t = (strand_tensor *)&cases[i]; /* must stay untouched */
    CHECK_STATUS(cases[i].status, strand_tensor_read_npy(source_path(rel), &t));
    CHECK_MSG(cases[i].message);
    CHECK_MSG(cases[i].file); /* the message names the file */
    CHECK(t == (strand_tensor *)&cases[i]);
  }
}

/* ---- malformed headers ------------------------------------------------ */

typedef struct header_case {
  const char *dict;
  strand_status status;
  const char *message; /* a substring of the message; NULL for success */
  size_t data_size;    /* bytes of zeros after the header */
} header_case;

static const header_case header_cases[] = {
    /* accepted forms */
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", STRAND_OK, NULL, 8},
    {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}", STRAND_OK, NULL, 8},
    {"{'shape': (2, 3,), 'fortran_order': False, 'descr': '<i2'}", STRAND_OK, NULL, 12},
    {"{'descr':'<f4','fortran_order':False,'shape':(2L, 1L)}", STRAND_OK, NULL, 8},
    {" \t{ 'descr' : '|u1' ,\n'fortran_order' : False , 'shape' : ( ) , } \r\n ", STRAND_OK,
     NULL, 1},
    {"{'descr': '<u1', 'fortran_order': False, 'shape': (3,)}", STRAND_OK, NULL, 3},
    {"{'descr': '>u1', 'fortran_order': False, 'shape': (3,)}", STRAND_OK, NULL, 3},
    {"{'descr': '=i1', 'fortran_order': False, 'shape': (3,)}", STRAND_OK, NULL, 3},
    {"{'descr': '|V2', 'fortran_order': False, 'shape': (3,)}", STRAND_OK, NULL, 6},
    {"{'descr': '<V2', 'fortran_order': False, 'shape': (3,)}", STRAND_OK, NULL, 6},
    {"{'descr': '<f8', 'fortran_order': True, 'shape': (3,)}", STRAND_OK, NULL, 24},
    {"{'descr': '<f8', 'fortran_order': True, 'shape': ()}", STRAND_OK, NULL, 8},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904)}", STRAND_OK,
     NULL, 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,)}", STRAND_OK, NULL, 0},
    /* syntax */
    {"", STRAND_E_IO, "expected '{' opening the header at offset 1, found the end", 0},
    {"'descr': '<f4'", STRAND_E_IO, "expected '{'", 0},
    {"{}", STRAND_E_IO, "missing key 'descr'", 0},
    {"{'descr': '<f4'}", STRAND_E_IO, "missing key 'fortran_order'", 0},
    {"{'descr': '<f4', 'fortran_order': False}", STRAND_E_IO, "missing key 'shape'", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", STRAND_E_IO,
     "unknown key 'extra'", 4},
    {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "'descr' appears twice", 4},
    {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "expected ':' after a key at offset 9", 4},
    {"{'descr': '<f4',, 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "expected a quoted key", 4},
    {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "expected ',' or '}' after a value", 4},
    {"{'descr': <f4, 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "expected a quoted dtype", 4},
    {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "expected ',' or '}' after a value", 4},
    {"{'descr': '<f4", STRAND_E_IO, "unexpected byte 0x0a in a string at offset 14", 0},
    {"{'descr': '<f\\4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_IO,
     "unexpected byte 0x5c", 4},
    {"{'a_key_that_is_far_too_long': 1}", STRAND_E_IO, "longer than 15 bytes", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", STRAND_E_IO,
     "only spaces after the header's '}'", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }}", STRAND_E_IO,
     "only spaces after", 4},
    {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", STRAND_E_IO, "True or False", 4},
    {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", STRAND_E_IO, "True or False", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", STRAND_E_IO, "is a list", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", STRAND_E_IO,
     "'shape' (1) is not a tuple", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': 1}", STRAND_E_IO, "'(' opening", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", STRAND_E_IO,
     "',' or ')' in 'shape'", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (,)}", STRAND_E_IO,
     "expected a dimension", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}", STRAND_E_IO,
     "expected a dimension", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': ((((((((1,),),),),),),),)}", STRAND_E_IO,
     "expected a dimension", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}", STRAND_E_IO, "leading zero",
     4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}", STRAND_E_IO,
     "',' or ')' in 'shape'", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (0x10,)}", STRAND_E_IO,
     "',' or ')' in 'shape'", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (+1,)}", STRAND_E_IO,
     "expected a dimension", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)\x01}", STRAND_E_IO, "byte 0x01", 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\xff", STRAND_E_IO, "byte 0xff", 4},
    /* shapes */
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (-5,)}", STRAND_E_SHAPE,
     "dimension 0 is -5", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", STRAND_E_SHAPE,
     "dimension 1 is -1", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (-0,)}", STRAND_OK, NULL, 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,)}", STRAND_E_SHAPE,
     "more bytes than memory can address", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
     STRAND_E_SHAPE, "more bytes than memory can address", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807,)}", STRAND_E_SHAPE,
     "more bytes", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}", STRAND_E_SHAPE,
     "dimension 0 is 9223372036854775808, more than 2^63 - 1", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 99999999999999999999999999999,)}",
     STRAND_E_SHAPE, "dimension 1 is 99999999999999999999999999999, more than", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}", STRAND_E_IO,
     "data is 0 bytes, but shape (1099511627776) of float32 needs 4398046511104", 0},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", STRAND_E_IO,
     "data is 20 bytes, but shape (2, 3) of float32 needs 24", 20},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", STRAND_E_IO,
     "1 bytes follow the data that shape (2) of float32 needs (8)", 9},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
     "1, 1, 1)}",
     STRAND_OK, NULL, 4},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
     "1, 1, 1, 1)}",
     STRAND_E_UNSUPPORTED, "more than 16 dimensions", 4},
    /* element types */
    {"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3)}", STRAND_E_UNSUPPORTED,
     "fortran_order is True: strand reads C-order arrays only; use np.ascontiguousarray", 48},
    {"{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dtype '|O': object arrays cannot be read", 8},
    {"{'descr': '>i4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "big-endian", 4},
    {"{'descr': '>V2', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "big-endian", 2},
    {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED, "complex",
     8},
    {"{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED, "strings",
     12},
    {"{'descr': '|S3', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED, "strings",
     3},
    {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dates and times", 8},
    {"{'descr': '<m8', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dates and times", 8},
    {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "structured arrays cannot be read", 4},
    {"{'descr': 'float32', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dtype 'float32' is not a simple NumPy type", 4},
    {"{'descr': 'bfloat16', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "not a simple NumPy type", 2},
    {"{'descr': '', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "not a simple NumPy type", 4},
    {"{'descr': '<', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "not a simple NumPy type", 4},
    {"{'descr': '<f', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dtype '<f' is not supported", 4},
    {"{'descr': '<f3', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "dtype '<f3' is not supported", 4},
    {"{'descr': '<f16', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "not supported", 16},
    {"{'descr': '<f4 ', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "not supported", 4},
    {"{'descr': '<f99999999999999999999', 'fortran_order': False, 'shape': (1,)}",
     STRAND_E_UNSUPPORTED, "not supported", 4},
    {"{'descr': '<V4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "only '<V2', bfloat16", 4},
    {"{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "no byte order", 4},
    {"{'descr': '<x4', 'fortran_order': False, 'shape': (1,)}", STRAND_E_UNSUPPORTED,
     "strand reads float16/32/64", 4},
    {"{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", STRAND_OK, NULL, 2},
};

static void check_header_case(const header_case *c, unsigned major) {
  unsigned char zeros[64] = {0};
  npy_image im;
  make_image(&im, major, c->dict, zeros, c->data_size);
  strand_tensor *t = NULL;
  strand_status st = strand_tensor_read_npy_buffer(im.bytes, im.size, &t);
  if (st != c->status || (c->message && !strstr(strand_errmsg(), c->message)))
    test_fail(__FILE__, __LINE__, "header %s (v%u): %s \"%s\", expected %s \"%s\"", c->dict,
              major, strand_status_name(st), strand_errmsg(), strand_status_name(c->status),
              c->message ? c->message : "");
  if (st != STRAND_OK && t != NULL) test_fail(__FILE__, __LINE__, "out written on failure");
  strand_tensor_release(t);
}

TEST(malformed_headers_give_clear_errors) {
  for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
    check_header_case(&header_cases[i], 1);
    check_header_case(&header_cases[i], 2);
    check_header_case(&header_cases[i], 3);
  }
}

TEST(file_errors_name_the_file) {
  const char *path = scratch_path("hostile.npy");
  npy_image im;
  make_image(&im, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", NULL, 0);
  REQUIRE(spit(path, im.bytes, im.size) == 0);
  strand_tensor *t = NULL;
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_read_npy(path, &t));
  CHECK_MSG("dimension 0 is -3");
  CHECK_MSG("strand_tensor_read_npy: \"");
  CHECK_MSG("hostile.npy\": ");
  CHECK(t == NULL);
  unlink(path);
}

TEST(hostile_shape_allocates_nothing) {
  /* A header claiming 4 TiB over a file of 128 bytes: refused before any
   * data-sized allocation, and with a limit in force too. */
  npy_image im;
  make_image(&im, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}",
             NULL, 0);
  const char *path = scratch_path("claims_4tib.npy");
  REQUIRE(spit(path, im.bytes, im.size) == 0);
  strand_memory_reset_peaks();
  strand_tensor *t = NULL;
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy(path, &t));
  CHECK_MSG("needs 4398046511104");
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(im.bytes, im.size, &t));
  strand_memory_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_memory_get_stats(&stats));
  CHECK(stats.peak_bytes[STRAND_MEMORY_TENSOR] == 0);
  CHECK(stats.total_peak_bytes < 100000);
  unlink(path);
}

TEST(preamble_errors) {
  npy_image im;
  make_image(&im, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "abcd", 4);
  strand_tensor *t = NULL;

  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(NULL, 0, &t));
  CHECK_MSG("empty");
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer("PK\3\4", 4, &t));
  CHECK_MSG("not a .npy file");
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer("\x93NUMPZ\1\0\0\0", 10, &t));
  CHECK_MSG("not a .npy file");

  npy_image bad = im;
  bad.bytes[6] = 4;
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("format version 4.0");
  bad = im;
  bad.bytes[7] = 1;
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("format version 1.1");
  bad = im;
  bad.bytes[6] = 0;
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));

  /* Header length past the end. */
  bad = im;
  bad.bytes[8] = 0xe8;
  bad.bytes[9] = 0x03; /* 1000 */
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("header of 1000 bytes runs past the end");
  bad.bytes[8] = bad.bytes[9] = 0xff;
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("header of 65535 bytes runs past the end");

  /* Version 2: a 4-byte length over the cap, and one of 4 GiB - 1. */
  npy_image v2;
  make_image(&v2, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "abcd", 4);
  bad = v2;
  bad.bytes[10] = 0x01; /* 65536 + ... */
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("exceeds the 65536 bytes");
  bad.bytes[8] = bad.bytes[9] = bad.bytes[10] = bad.bytes[11] = 0xff;
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_tensor_read_npy_buffer(bad.bytes, bad.size, &t));
  CHECK_MSG("header length 4294967295");

  /* A bool byte other than 0 or 1. */
  npy_image bools;
  make_image(&bools, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}", "\1\0\2", 3);
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(bools.bytes, bools.size, &t));
  CHECK_MSG("bool element 2 has byte value 2");
  const char *path = scratch_path("bad_bool.npy");
  REQUIRE(spit(path, bools.bytes, bools.size) == 0);
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy(path, &t));
  CHECK_MSG("bool element 2");
  unlink(path);
  CHECK(t == NULL);
}

/* ---- truncation --------------------------------------------------------- */

static void check_every_truncation(const char *fixture, int through_files) {
  size_t size;
  unsigned char *whole = slurp(source_path(fixture), &size);
  REQUIRE(whole != NULL);
  const char *path = scratch_path("truncated.npy");
  for (size_t len = 0; len < size; len++) {
    strand_tensor *t = NULL;
    strand_status st = strand_tensor_read_npy_buffer(whole, len, &t);
    if (st != STRAND_E_IO || t != NULL)
      test_fail(__FILE__, __LINE__, "%s cut to %zu bytes: %s (%s)", fixture, len,
                strand_status_name(st), strand_errmsg());
    if (through_files) {
      REQUIRE(spit(path, whole, len) == 0);
      st = strand_tensor_read_npy(path, &t);
      if (st != STRAND_E_IO || t != NULL)
        test_fail(__FILE__, __LINE__, "file %s cut to %zu bytes: %s (%s)", fixture, len,
                  strand_status_name(st), strand_errmsg());
    }
  }
  /* The whole file reads; one extra byte is refused. */
  strand_tensor *t = NULL;
  CHECK_OK(strand_tensor_read_npy_buffer(whole, size, &t));
  strand_tensor_release(t);
  t = NULL;
  unsigned char *longer = malloc(size + 1);
  REQUIRE(longer != NULL);
  memcpy(longer, whole, size);
  longer[size] = 0;
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy_buffer(longer, size + 1, &t));
  CHECK_MSG("1 bytes follow the data");
  if (through_files) {
    REQUIRE(spit(path, longer, size + 1) == 0);
    CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy(path, &t));
    unlink(path);
  }
  free(longer);
  free(whole);
}

TEST(truncated_at_every_length) {
  check_every_truncation("tests/data/npy/float32_2x3.npy", 1);
  check_every_truncation("tests/data/npy/version2_float32.npy", 1);
  check_every_truncation("tests/data/npy/version3_int32.npy", 0);
  check_every_truncation("tests/data/npy/rank5_int16.npy", 0);
  check_every_truncation("tests/data/npy/scalar_bool.npy", 0);
  check_every_truncation("tests/data/npy/uint64_3.npy", 0);
}

/* ---- pipes (no size known in advance) --------------------------------- */

typedef struct pipe_job {
  int fd;
  const unsigned char *bytes;
  size_t size;
} pipe_job;

static void *pipe_writer(void *arg) {
  pipe_job *job = arg;
  size_t done = 0;
  while (done < job->size) {
    ssize_t n = write(job->fd, job->bytes + done, job->size - done);
    if (n <= 0) break;
    done += (size_t)n;
  }
  close(job->fd);
  return NULL;
}

/* Reads `bytes` through a pipe, as /dev/fd/N. */
static strand_status read_through_pipe(const unsigned char *bytes, size_t size,
                                       strand_tensor **out) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  pipe_job job = {fds[1], bytes, size};
  pthread_t writer;
  if (pthread_create(&writer, NULL, pipe_writer, &job) != 0) abort();
  char path[64];
  snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
  strand_status st = strand_tensor_read_npy(path, out);
  close(fds[0]); /* a writer still blocked gets EPIPE */
  pthread_join(writer, NULL);
  return st;
}

TEST(reads_from_a_pipe) {
  if (access("/dev/fd/0", F_OK) != 0) return; /* no /dev/fd here */
  signal(SIGPIPE, SIG_IGN);
  size_t size;
  unsigned char *whole = slurp(source_path("tests/data/npy/float64_4.npy"), &size);
  REQUIRE(whole != NULL);
  strand_tensor *t = NULL, *expected = NULL;
  CHECK_OK(read_through_pipe(whole, size, &t));
  CHECK_OK(strand_tensor_read_npy_buffer(whole, size, &expected));
  CHECK(t && expected && same_tensor(t, expected));
  strand_tensor_release(t);
  strand_tensor_release(expected);
  t = NULL;
  CHECK_STATUS(STRAND_E_IO, read_through_pipe(whole, size - 1, &t));
  CHECK_MSG("data is 31 bytes, but shape (4) of float64 needs 32");
  CHECK_STATUS(STRAND_E_IO, read_through_pipe(whole, 50, &t));
  CHECK_MSG("into a header");
  CHECK_STATUS(STRAND_E_IO, read_through_pipe(whole, 7, &t));
  CHECK_MSG("ends after 7 bytes");
  unsigned char *longer = malloc(size + 5000);
  REQUIRE(longer != NULL);
  memcpy(longer, whole, size);
  memset(longer + size, 0, 5000);
  CHECK_STATUS(STRAND_E_IO, read_through_pipe(longer, size + 3, &t));
  CHECK_MSG("3 bytes follow the data");
  CHECK_STATUS(STRAND_E_IO, read_through_pipe(longer, size + 5000, &t));
  CHECK_MSG("at least 4096 bytes follow the data");
  CHECK(t == NULL);
  free(longer);
  free(whole);
}

/* ---- arguments and system errors -------------------------------------- */

TEST(argument_and_system_errors) {
  strand_tensor *t = NULL;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_read_npy(NULL, &t));
  CHECK_MSG("path is NULL");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_read_npy("x.npy", NULL));
  CHECK_MSG("out is NULL");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_read_npy_buffer(NULL, 3, &t));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_read_npy_buffer("x", 1, NULL));
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy(scratch_path("does_not_exist.npy"), &t));
  CHECK_MSG("does_not_exist.npy\": cannot open: ");
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_npy(scratch_dir(), &t));
  CHECK_MSG("is a directory");
  CHECK(t == NULL);

  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 0, &t));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_npy(t, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_npy(NULL, "x.npy"));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_npy_buffer(t, NULL, 0, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_npy_buffer(t, NULL, 5, &(size_t){0}));
  CHECK_STATUS(STRAND_E_IO, strand_tensor_write_npy(t, scratch_path("no/such/dir/x.npy")));
  CHECK_MSG("cannot create: ");
  if (access("/dev/full", W_OK) == 0) {
    CHECK_STATUS(STRAND_E_IO, strand_tensor_write_npy(t, "/dev/full"));
    CHECK_MSG("write failed");
  }
  size_t need = 0, got = 12345;
  CHECK_OK(strand_tensor_write_npy_buffer(t, NULL, 0, &need));
  CHECK(need == 132);
  unsigned char small[131];
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT,
               strand_tensor_write_npy_buffer(t, small, sizeof small, &got));
  CHECK_MSG("buffer of 131 bytes is too small: the .npy form takes 132");
  CHECK(got == 12345);

  strand_tensor *stale = t;
  strand_tensor_release(t);
  strand_log_level level = strand_log_get_level();
  strand_log_set_level(STRAND_LOG_OFF); /* misuse is logged; expected here */
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_write_npy(stale, scratch_path("stale.npy")));
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_write_npy_buffer(stale, NULL, 0, &need));
  strand_log_set_level(level);
}

TEST(memory_limit_is_reported) {
  strand_tensor *t = NULL;
  int64_t shape[1] = {1 << 20};
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_UINT8, shape, 1, &t));
  const char *path = scratch_path("one_mib.npy");
  CHECK_OK(strand_tensor_write_npy(t, path));
  strand_tensor_release(t);
  t = NULL;
  strand_memory_set_limit(64 * 1024);
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_read_npy(path, &t));
  strand_memory_set_limit(0);
  CHECK(t == NULL);
  unlink(path);
}

/* ---- allocation failures ----------------------------------------------- */

typedef strand_status (*npy_call)(void *ctx, strand_tensor **out);

static strand_status call_read_file(void *ctx, strand_tensor **out) {
  return strand_tensor_read_npy((const char *)ctx, out);
}

typedef struct blob {
  const unsigned char *bytes;
  size_t size;
} blob;

static strand_status call_read_buffer(void *ctx, strand_tensor **out) {
  const blob *b = ctx;
  return strand_tensor_read_npy_buffer(b->bytes, b->size, out);
}

/* Runs `call` with the n-th allocation failing, n = 1, 2, ... until it
 * succeeds; each failure must be clean. */
static void sweep(npy_call call, void *ctx, const char *what) {
  for (uint64_t n = 1; n < 100; n++) {
    strand_tensor *t = NULL;
    strand_memory_fail_nth(n);
    strand_status st = call(ctx, &t);
    strand_memory_fail_nth(0);
    if (st == STRAND_OK) {
      CHECK(t != NULL);
      strand_tensor_release(t);
      CHECK(n > 1); /* at least one allocation was exercised */
      return;
    }
    if (st != STRAND_E_OUT_OF_MEMORY || t != NULL)
      test_fail(__FILE__, __LINE__, "%s, allocation %llu failing: %s (%s)", what,
                (unsigned long long)n, strand_status_name(st), strand_errmsg());
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    if (stats.total_live_bytes != 0 || stats.total_live_objects != 0)
      test_fail(__FILE__, __LINE__, "%s, allocation %llu failing: %llu bytes left", what,
                (unsigned long long)n, (unsigned long long)stats.total_live_bytes);
  }
  test_fail(__FILE__, __LINE__, "%s never succeeded", what);
}

TEST(allocation_failure_sweep) {
  const char *fixtures[] = {"tests/data/npy/float32_2x3.npy", "tests/data/npy/scalar_bool.npy",
                            "tests/data/npy/empty_float32_0x3.npy",
                            "tests/data/npy/version3_int32.npy"};
  for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
    const char *path = source_path(fixtures[i]);
    sweep(call_read_file, (void *)path, path);
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    REQUIRE(bytes != NULL);
    blob b = {bytes, size};
    sweep(call_read_buffer, &b, path);
    free(bytes);
  }
  /* Writing allocates nothing: it succeeds with the first allocation armed
   * to fail, and leaves the trap armed for whoever allocates next. */
  strand_tensor *t;
  int64_t shape[2] = {2, 3};
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT16, shape, 2, &t));
  strand_memory_fail_nth(1);
  CHECK_OK(strand_tensor_write_npy(t, scratch_path("no_alloc.npy")));
  size_t size;
  CHECK_OK(strand_tensor_write_npy_buffer(t, NULL, 0, &size));
  strand_memory_fail_nth(0);
  strand_tensor_release(t);
  unlink(scratch_path("no_alloc.npy"));
}

/* ---- threads ----------------------------------------------------------- */

typedef struct thread_job {
  const strand_tensor *shared; /* read by every thread at once */
  const unsigned char *image;
  size_t image_size;
  int failures;
} thread_job;

static void *hammer(void *arg) {
  thread_job *job = arg;
  char name[64];
  snprintf(name, sizeof name, "thread_%lx.npy", (unsigned long)pthread_self());
  const char *path = scratch_path(name);
  for (int i = 0; i < 50; i++) {
    strand_tensor *a = NULL, *b = NULL;
    size_t size;
    unsigned char buf[256];
    if (strand_tensor_read_npy_buffer(job->image, job->image_size, &a) != STRAND_OK ||
        strand_tensor_write_npy(job->shared, path) != STRAND_OK ||
        strand_tensor_read_npy(path, &b) != STRAND_OK || !same_tensor(a, b) ||
        strand_tensor_write_npy_buffer(job->shared, buf, sizeof buf, &size) != STRAND_OK ||
        size != job->image_size || memcmp(buf, job->image, size) != 0)
      __atomic_add_fetch(&job->failures, 1, __ATOMIC_RELAXED);
    strand_tensor *bad = NULL;
    if (strand_tensor_read_npy_buffer(job->image, job->image_size - 1, &bad) != STRAND_E_IO)
      __atomic_add_fetch(&job->failures, 1, __ATOMIC_RELAXED);
    strand_tensor_release(a);
    strand_tensor_release(b); /* released here, created on this thread */
  }
  unlink(path);
  return NULL;
}

TEST(concurrent_reads_and_writes) {
  size_t size;
  unsigned char *image = slurp(source_path("tests/data/npy/float32_2x3.npy"), &size);
  REQUIRE(image != NULL);
  strand_tensor *shared = NULL;
  REQUIRE_OK(strand_tensor_read_npy_buffer(image, size, &shared));
  thread_job job = {shared, image, size, 0};
  test_run_threads(4, hammer, &job);
  CHECK(job.failures == 0);
  strand_tensor_release(shared);
  free(image);
}

TEST(reads_the_shipped_model_references) {
  /* The reference arrays next to the tiny models (scripts/make_models.py). */
  static const struct {
    const char *file;
    int64_t dims[4];
    size_t rank;
  } cases[] = {
      {"models/mlp_tiny.input.npy", {2, 16}, 2},
      {"models/mlp_tiny.expected.npy", {2, 4}, 2},
      {"models/cnn_tiny.input.npy", {2, 1, 28, 28}, 4},
      {"models/cnn_tiny.expected.npy", {2, 10}, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    strand_tensor *t = NULL;
    CHECK_OK(strand_tensor_read_npy(source_path(cases[i].file), &t));
    if (!t) continue;
    strand_dtype dtype;
    const int64_t *dims;
    size_t rank;
    CHECK_OK(strand_tensor_dtype(t, &dtype));
    CHECK_OK(strand_tensor_shape(t, &dims, &rank));
    CHECK(dtype == STRAND_DTYPE_FLOAT32);
    CHECK(rank == cases[i].rank && memcmp(dims, cases[i].dims, rank * sizeof *dims) == 0);
    strand_tensor_release(t);
  }
}
