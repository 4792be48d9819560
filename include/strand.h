/*
 * strand.h — the public interface of strand, and its reference manual.
 *
 * strand is a prediction-only neural-network runtime. It loads models trained
 * elsewhere and runs them on the CPU, from hosts that call in from many
 * threads and release native objects from threads of their own.
 *
 * THE CONTRACT
 *
 *  1. Any thread, any time. Every function in this header may be called from
 *     any thread for the life of the process. No object has thread affinity:
 *     an object made on one thread may be used and released on another.
 *
 *  2. Objects are reference-counted. A constructor hands back one reference
 *     through its out-parameter; `strand_X_retain` adds one, `strand_X_release`
 *     drops one. The last release may happen on any thread (a garbage
 *     collector's cleaner thread included) and while other threads still use
 *     the object through references of their own. Releasing NULL is a no-op.
 *     Rule for hand-offs: take the reference *before* the pointer crosses to
 *     another thread.
 *
 *  3. Misuse is answered, not obeyed. A released handle, or a handle of the
 *     wrong kind, passed to a function is detected and answered with
 *     STRAND_E_MISUSE (release functions, which return void, log it and count
 *     it in strand_misuse_count()). Detection is reliable while the released
 *     handle's memory has not been reused: strand keeps the shells of the most
 *     recently released objects unreclaimed (a quarantine) to make that window
 *     long. A pointer that never came from strand may still crash.
 *
 *  4. Errors. Every fallible call returns a strand_status; STRAND_OK is 0.
 *     A failing call leaves its out-parameters untouched and leaks nothing.
 *     strand_errmsg() gives the calling thread's detail text for its last
 *     failure. A call that takes a callback and fails never runs the callback.
 *
 *  5. Native memory is visible and bounded. Every byte strand allocates is
 *     counted by category (tensor data, weights, scratch, other) with live and
 *     peak figures, readable at any time; an optional process-wide limit turns
 *     runaway growth into STRAND_E_MEMORY_LIMIT with a message that says what
 *     was asked, what is in use and what the limit is.
 *
 *  6. Leaks are visible. Every live object is counted by kind. With leak
 *     detection on, objects remember where they were created (a C backtrace,
 *     plus an origin text a language binding attaches); reports aggregate live
 *     objects by creation site, so a million leaks from one line are one entry.
 *
 * THREAD SAFETY LABELS
 *
 * Each function's documentation ends with one of:
 *   any               concurrent calls, also on the same object, are safe;
 *   distinct objects  safe unless the same object is used at the same moment
 *                     by another call that writes it (named in the text).
 * Every label is exercised by a stress test under ThreadSanitizer.
 *
 * ENVIRONMENT
 *
 * Read once, at the first call into strand; each has an API twin that wins
 * when called later.
 *   STRAND_LOG             off | error | warn | info | debug | trace
 *   STRAND_LEAK_DETECTION  off | count | sample | sample:N | all
 *   STRAND_LEAK_REPORT     exit  (print the leak report at process exit)
 *   STRAND_MEMORY_LIMIT    bytes, with an optional K, M or G suffix (1024-based)
 *   STRAND_THREADS         the CPU budget: threads strand may keep busy at once,
 *                          callers included (default: CPUs this process may use)
 *   STRAND_CPU             avx512 | avx2 | scalar: lowers the instruction set
 *                          kernels use (never raises it past what the CPU has)
 * A value that cannot be parsed is ignored with a warning in the log.
 */
#ifndef STRAND_H
#define STRAND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Export and version                                                        */
/* ------------------------------------------------------------------------ */

#if defined(STRAND_STATIC)
#define STRAND_API
#elif defined(_WIN32)
#ifdef STRAND_BUILDING
#define STRAND_API __declspec(dllexport)
#else
#define STRAND_API __declspec(dllimport)
#endif
#else
#define STRAND_API __attribute__((visibility("default")))
#endif

#define STRAND_VERSION_MAJOR 0
#define STRAND_VERSION_MINOR 1
#define STRAND_VERSION_PATCH 0
#define STRAND_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH */
#define STRAND_VERSION_NUMBER \
  (STRAND_VERSION_MAJOR * 10000 + STRAND_VERSION_MINOR * 100 + STRAND_VERSION_PATCH)

/* The version of the library actually linked, as text ("0.1.0") and as a
 * number comparable with STRAND_VERSION_NUMBER. The string is static.
 * Thread safety: any. */
STRAND_API const char *strand_version(void);
STRAND_API uint32_t strand_version_number(void);

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/* One list: X(NAME, value, description). Values never change meaning; a
 * changed behaviour gets a new code. */
#define STRAND_STATUS_LIST(X)                                                 \
  X(OK, 0, "success")                                                         \
  X(E_INVALID_ARGUMENT, 1, "invalid argument")                                \
  X(E_MALFORMED_MODEL, 2, "malformed model")                                  \
  X(E_UNSUPPORTED, 3, "unsupported feature")                                  \
  X(E_OUT_OF_MEMORY, 4, "out of memory")                                      \
  X(E_MEMORY_LIMIT, 5, "memory limit reached")                                \
  X(E_IO, 6, "input/output error")                                            \
  X(E_MISUSE, 7, "library misuse")                                            \
  X(E_SHAPE, 8, "shape mismatch")                                             \
  X(E_DTYPE, 9, "element type mismatch")                                      \
  X(E_NOT_FOUND, 10, "no such name")                                          \
  X(E_CANCELED, 11, "canceled")                                               \
  X(E_DEADLINE, 12, "deadline exceeded")                                      \
  X(E_BUSY, 13, "busy")                                                       \
  X(E_INTERNAL, 14, "internal error")

typedef enum strand_status {
#define STRAND_STATUS_ENUM_(name, value, text) STRAND_##name = value,
  STRAND_STATUS_LIST(STRAND_STATUS_ENUM_)
#undef STRAND_STATUS_ENUM_
  STRAND_STATUS_COUNT
} strand_status;

/* Static description of a status ("shape mismatch"); "unknown status" for a
 * value outside the list. Never NULL. Thread safety: any. */
STRAND_API const char *strand_strerror(strand_status status);

/* Static symbolic name of a status ("STRAND_E_SHAPE"); "STRAND_E_UNKNOWN"
 * outside the list. Never NULL. Thread safety: any. */
STRAND_API const char *strand_status_name(strand_status status);

/* The calling thread's detail text for its most recent failing call, naming
 * the culprit (argument, node, tensor, dimension). Borrowed: valid until the
 * same thread's next call into strand. "" when no call has failed on this
 * thread. Successful calls do not clear it. Never NULL.
 * Thread safety: any (each thread has its own text). */
STRAND_API const char *strand_errmsg(void);

/* ------------------------------------------------------------------------ */
/* Element types                                                             */
/* ------------------------------------------------------------------------ */

/* X(NAME, value, bytes per element, name). Values equal ONNX's
 * TensorProto.DataType numbers. */
#define STRAND_DTYPE_LIST(X)                                                  \
  X(FLOAT32, 1, 4, "float32")                                                 \
  X(UINT8, 2, 1, "uint8")                                                     \
  X(INT8, 3, 1, "int8")                                                       \
  X(UINT16, 4, 2, "uint16")                                                   \
  X(INT16, 5, 2, "int16")                                                     \
  X(INT32, 6, 4, "int32")                                                     \
  X(INT64, 7, 8, "int64")                                                     \
  X(BOOL, 9, 1, "bool")                                                       \
  X(FLOAT16, 10, 2, "float16")                                                \
  X(FLOAT64, 11, 8, "float64")                                                \
  X(UINT32, 12, 4, "uint32")                                                  \
  X(UINT64, 13, 8, "uint64")                                                  \
  X(BFLOAT16, 16, 2, "bfloat16")

typedef enum strand_dtype {
  STRAND_DTYPE_UNDEFINED = 0,
#define STRAND_DTYPE_ENUM_(name, value, size, text) STRAND_DTYPE_##name = value,
  STRAND_DTYPE_LIST(STRAND_DTYPE_ENUM_)
#undef STRAND_DTYPE_ENUM_
} strand_dtype;

/* Bytes per element of `dtype` (bool is one byte); 0 for a value outside
 * the list. Thread safety: any. */
STRAND_API size_t strand_dtype_size(strand_dtype dtype);

/* Static lower-case name of `dtype` ("float32"); "undefined" outside the
 * list. Never NULL. Thread safety: any. */
STRAND_API const char *strand_dtype_name(strand_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Object kinds                                                              */
/* ------------------------------------------------------------------------ */

/* X(NAME, value, name). Every public object is of one kind. */
#define STRAND_KIND_LIST(X)                                                   \
  X(TENSOR, 0, "tensor")                                                      \
  X(MODEL, 1, "model")                                                        \
  X(SESSION, 2, "session")                                                    \
  X(DISPATCHER, 3, "dispatcher")                                              \
  X(CANCEL_TOKEN, 4, "cancel token")

typedef enum strand_kind {
#define STRAND_KIND_ENUM_(name, value, text) STRAND_KIND_##name = value,
  STRAND_KIND_LIST(STRAND_KIND_ENUM_)
#undef STRAND_KIND_ENUM_
  STRAND_KIND_COUNT
} strand_kind;

/* Static name of an object kind ("tensor"); "unknown" outside the list.
 * Thread safety: any. */
STRAND_API const char *strand_kind_name(strand_kind kind);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

/* An n-dimensional array of one element type, dense and in C (row-major)
 * order. A tensor either owns its data (strand_tensor_create) or borrows a
 * host buffer (strand_tensor_wrap). Metadata never changes after creation;
 * the data may be written by whoever holds a reference. */
typedef struct strand_tensor strand_tensor;

/* The highest rank strand accepts. */
#define STRAND_MAX_RANK 16

/* Called once when the last reference to a wrapped tensor is dropped, on the
 * thread that drops it (any thread, possibly a garbage collector's). `data`
 * and `context` are the values given to strand_tensor_wrap. It must not call
 * strand_tensor_release on the same tensor. */
typedef void (*strand_release_fn)(void *data, void *context);

/* Creates a tensor that owns zero-filled data of `dtype` and `shape`.
 *   dtype   in: any value of STRAND_DTYPE_LIST.
 *   shape   in: `rank` dimensions, each >= 0; may be NULL when rank is 0
 *           (a scalar). Copied.
 *   rank    in: 0 .. STRAND_MAX_RANK.
 *   out     out: one new reference; release with strand_tensor_release.
 * Data is aligned to 64 bytes. A tensor with a zero dimension has no data
 * (strand_tensor_data gives NULL) and byte size 0.
 * Returns STRAND_E_INVALID_ARGUMENT for a bad dtype, rank, negative
 * dimension or NULL pointer; STRAND_E_SHAPE when the element count or byte
 * size overflows; STRAND_E_MEMORY_LIMIT or STRAND_E_OUT_OF_MEMORY.
 * Counted under STRAND_MEMORY_TENSOR. Thread safety: any. */
STRAND_API strand_status strand_tensor_create(strand_dtype dtype, const int64_t *shape,
                                              size_t rank, strand_tensor **out);

/* Creates a tensor over a caller's buffer without copying it.
 *   data       in, borrowed: at least the tensor's byte size, which must
 *              equal `byte_size`; may be NULL only when byte_size is 0. It
 *              must stay valid until `release` runs (or, with no `release`,
 *              until the last reference is dropped). Any alignment is
 *              accepted; 64-byte alignment is fastest.
 *   release    in: called once, on whatever thread drops the last reference;
 *              NULL for none. Never called when this function fails.
 *   context    in: passed to `release`.
 *   out        out: one new reference; release with strand_tensor_release.
 * Other parameters as for strand_tensor_create. Returns, besides those
 * statuses, STRAND_E_SHAPE when `byte_size` differs from what dtype and
 * shape require. The buffer's bytes are not counted as strand's memory.
 * Thread safety: any. */
STRAND_API strand_status strand_tensor_wrap(strand_dtype dtype, const int64_t *shape, size_t rank,
                                            void *data, size_t byte_size,
                                            strand_release_fn release, void *context,
                                            strand_tensor **out);

/* Adds a reference. Returns STRAND_E_INVALID_ARGUMENT for NULL and
 * STRAND_E_MISUSE for a released or foreign handle.
 * Thread safety: any. */
STRAND_API strand_status strand_tensor_retain(strand_tensor *tensor);

/* Drops a reference; the last one frees the tensor (and runs a wrapped
 * tensor's release callback) on the calling thread. NULL is a no-op. A
 * released or foreign handle is logged and counted as misuse, not obeyed.
 * Thread safety: any. */
STRAND_API void strand_tensor_release(strand_tensor *tensor);

/* The element type.  out: written on success.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments, STRAND_E_MISUSE for
 * a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_tensor_dtype(const strand_tensor *tensor, strand_dtype *out);

/* The shape.
 *   dims   out, borrowed: `*rank` dimensions, valid while the caller holds a
 *          reference to the tensor; NULL for a scalar.
 *   rank   out.
 * Statuses as strand_tensor_dtype. Thread safety: any. */
STRAND_API strand_status strand_tensor_shape(const strand_tensor *tensor, const int64_t **dims,
                                             size_t *rank);

/* The number of elements (1 for a scalar).  Statuses as strand_tensor_dtype.
 * Thread safety: any. */
STRAND_API strand_status strand_tensor_element_count(const strand_tensor *tensor, size_t *out);

/* The data size in bytes.  Statuses as strand_tensor_dtype.
 * Thread safety: any. */
STRAND_API strand_status strand_tensor_byte_size(const strand_tensor *tensor, size_t *out);

/* The data, for reading and writing.
 *   out  out, borrowed: valid while the caller holds a reference; NULL when
 *        the byte size is 0.
 * Statuses as strand_tensor_dtype. Thread safety: any for the call itself;
 * reading and writing the data follow the usual rules of shared memory
 * (writers need exclusive access). */
STRAND_API strand_status strand_tensor_data(const strand_tensor *tensor, void **out);

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

/* A loaded ONNX model: its graph checked, sorted topologically, typed (static
 * shapes inferred where inputs allow) and constant parts folded. A model is
 * immutable once loaded, so every query below may run on any number of
 * threads at once, and one model is shared by everything made from it.
 *
 * Weights are used in place wherever their alignment allows: a model loaded
 * from a path keeps the file (and its external data files) mapped, read-only
 * and private, until its last reference is dropped. Replacing the file
 * (rename) is safe; truncating or rewriting it in place while the model is
 * alive is not (the system may fault on the vanished pages). Weights that
 * must be aligned or converted are copied and counted under
 * STRAND_MEMORY_WEIGHTS; the model's other bookkeeping is counted under
 * STRAND_MEMORY_OTHER; mapped file pages are not counted.
 *
 * Graph inputs that have an initializer (a default value, as older exporters
 * write every weight) are treated as constants: they are not listed as
 * inputs. Strings returned by queries are borrowed: UTF-8, valid while the
 * caller holds a reference to the model. */
typedef struct strand_model strand_model;

/* The largest model file strand reads (protobuf's own limit of 2 GiB);
 * larger weights belong in external data files. */
#define STRAND_MODEL_MAX_BYTES ((size_t)1 << 31)

/* Loads an ONNX model (a serialized ModelProto) from a file.
 *   path  in: the .onnx file. External data (tensors whose data_location is
 *         EXTERNAL) is read from files in the same directory; a location that
 *         is absolute, contains "..", or resolves (through symbolic links)
 *         outside that directory is refused as malformed.
 *   out   out: one new reference; release with strand_model_release.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments; STRAND_E_IO naming
 * the file and the system's reason; STRAND_E_MALFORMED_MODEL with a message
 * naming the graph, node, attribute or tensor and, for encoding errors, the
 * byte offset (`graph "main" node 12 ("Conv_3"): attribute "pads": ...`);
 * STRAND_E_UNSUPPORTED naming the feature (sparse tensors, sequence, map or
 * optional types, string tensors, ranks above STRAND_MAX_RANK, files above
 * STRAND_MODEL_MAX_BYTES); STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT.
 * Ops without a kernel do not fail the load: see
 * strand_model_check_supported. Thread safety: any. */
STRAND_API strand_status strand_model_load(const char *path, strand_model **out);

/* Loads a model from bytes in memory.
 *   data  in, borrowed for the call only: the model is copied (the copy is
 *         counted under STRAND_MEMORY_WEIGHTS), so the caller may free or
 *         reuse `data` as soon as this returns. NULL only when size is 0.
 *   size  in: bytes in `data`, at most STRAND_MODEL_MAX_BYTES.
 *   out   out: one new reference; release with strand_model_release.
 * Statuses as strand_model_load; a model with external data is refused with
 * STRAND_E_UNSUPPORTED (there is no directory to read it from).
 * Thread safety: any. */
STRAND_API strand_status strand_model_load_buffer(const void *data, size_t size,
                                                  strand_model **out);

/* Adds a reference. Returns STRAND_E_INVALID_ARGUMENT for NULL and
 * STRAND_E_MISUSE for a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_model_retain(strand_model *model);

/* Drops a reference; the last one frees the model and unmaps its files, on
 * the calling thread. NULL is a no-op; a released or foreign handle is
 * logged and counted as misuse. Thread safety: any. */
STRAND_API void strand_model_release(strand_model *model);

/* A graph input or output as the model declares it (or as strand inferred
 * it). Every pointer is borrowed, valid while the caller holds a reference
 * to the model. */
typedef struct strand_value_info {
  const char *name;
  strand_dtype dtype;           /* STRAND_DTYPE_UNDEFINED when not known */
  int rank_known;               /* 0: even the rank is unknown (rank 0, dims NULL) */
  size_t rank;
  const int64_t *dims;          /* rank sizes; -1 for a symbolic or unknown one */
  const char *const *dim_names; /* rank entries: the symbolic name ("batch") of a
                                   dimension, or NULL; NULL when rank is 0 */
} strand_value_info;

/* The number of graph inputs the caller supplies (initializer-backed inputs
 * excluded) and of graph outputs.
 *   out  out: the count.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments, STRAND_E_MISUSE for a
 * released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_model_input_count(const strand_model *model, size_t *out);
STRAND_API strand_status strand_model_output_count(const strand_model *model, size_t *out);

/* Describes input (or output) `index`, in the model's order.
 *   out  out: filled on success; its pointers are borrowed (see above).
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments or an index out of
 * range, STRAND_E_MISUSE for a released or foreign handle.
 * Thread safety: any. */
STRAND_API strand_status strand_model_input(const strand_model *model, size_t index,
                                            strand_value_info *out);
STRAND_API strand_status strand_model_output(const strand_model *model, size_t index,
                                             strand_value_info *out);

/* The index of the input (or output) named `name`.
 * Returns STRAND_E_NOT_FOUND naming it when there is none; otherwise
 * statuses as strand_model_input. Thread safety: any. */
STRAND_API strand_status strand_model_find_input(const strand_model *model, const char *name,
                                                 size_t *index);
STRAND_API strand_status strand_model_find_output(const strand_model *model, const char *name,
                                                  size_t *index);

/* The model's ONNX IR version (ModelProto.ir_version).
 * Statuses as strand_model_input_count. Thread safety: any. */
STRAND_API strand_status strand_model_ir_version(const strand_model *model, int64_t *out);

/* The producer's name and version ("pytorch", "2.1.0"); "" when absent.
 *   name, version  out, borrowed; either may be NULL when not wanted.
 * Statuses as strand_model_input_count. Thread safety: any. */
STRAND_API strand_status strand_model_producer(const strand_model *model, const char **name,
                                               const char **version);

/* The main graph's name; "" when absent. out: borrowed.
 * Statuses as strand_model_input_count. Thread safety: any. */
STRAND_API strand_status strand_model_graph_name(const strand_model *model, const char **out);

/* The operator sets the model imports: their number, and each one's domain
 * ("" for the default ONNX domain, whether the file says "" or "ai.onnx")
 * and version, in the file's order.
 *   domain   out, borrowed; may be NULL when not wanted.
 *   version  out; may be NULL when not wanted.
 * Statuses as strand_model_input (index out of range included).
 * Thread safety: any. */
STRAND_API strand_status strand_model_opset_count(const strand_model *model, size_t *out);
STRAND_API strand_status strand_model_opset_at(const strand_model *model, size_t index,
                                               const char **domain, int64_t *version);

/* The version the model imports for `domain` ("" or "ai.onnx" for the
 * default domain). Returns STRAND_E_NOT_FOUND when it imports none;
 * otherwise statuses as strand_model_input_count. Thread safety: any. */
STRAND_API strand_status strand_model_opset(const strand_model *model, const char *domain,
                                            int64_t *version);

/* One op type used by the model, with the number of nodes using it. */
typedef struct strand_op_info {
  const char *op_type; /* borrowed: valid while the model lives */
  const char *domain;  /* "" for the default ONNX domain; borrowed */
  int64_t opset;       /* the model's opset for the domain; -1 when none */
  uint64_t count;      /* nodes of this type, subgraphs included */
  int supported;       /* 1 when strand can run every such node (it has a
                          kernel, or all of them were computed at load) */
} strand_op_info;

/* The distinct op types, most used first (ties by domain, then name).
 *   out  out: the number of op types / the description of op `index`.
 * Statuses as strand_model_input (index out of range included).
 * Thread safety: any. */
STRAND_API strand_status strand_model_op_count(const strand_model *model, size_t *out);
STRAND_API strand_status strand_model_op(const strand_model *model, size_t index,
                                         strand_op_info *out);

/* Returns STRAND_OK when strand can run every node of the model, and
 * otherwise STRAND_E_UNSUPPORTED with a message listing the op types it has
 * no kernel for ("no kernel for 2 op types: LSTM (x3), com.example.Foo (x1)").
 * STRAND_E_INVALID_ARGUMENT or STRAND_E_MISUSE as strand_model_input_count.
 * Thread safety: any. */
STRAND_API strand_status strand_model_check_supported(const strand_model *model);

/* The weights: the number of elements and of bytes in all initializers
 * (subgraphs included).
 *   parameters, bytes  out; either may be NULL when not wanted.
 * Statuses as strand_model_input_count. Thread safety: any. */
STRAND_API strand_status strand_model_parameter_count(const strand_model *model,
                                                      uint64_t *parameters, uint64_t *bytes);

/* Tensor files ----------------------------------------------------------- */

/* Reads a serialized ONNX TensorProto (the `input_0.pb` files of ONNX test
 * data) into a new tensor.
 *   path       in: the file. Its data must be in the file itself (raw_data or
 *              the typed *_data fields), not external.
 *   out        out: one new reference; release with strand_tensor_release.
 *   name       out, optional: receives the TensorProto's name, NUL-terminated
 *              ("" when it has none); may be NULL.
 *   name_size  in: bytes available at `name`.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL path or out, or when the name
 * does not fit in name_size bytes; STRAND_E_IO; STRAND_E_MALFORMED_MODEL for
 * a file that is not a valid TensorProto (the message names the field);
 * STRAND_E_UNSUPPORTED for element types strand lacks (strings, complex) or
 * external data; STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT. On failure
 * nothing is written to `name`. Thread safety: any. */
STRAND_API strand_status strand_tensor_read_pb(const char *path, strand_tensor **out, char *name,
                                               size_t name_size);

/* Writes `tensor` to `path` as a TensorProto (dims, data_type, name,
 * raw_data in little-endian order), replacing any file there.
 *   name  in: the TensorProto's name; NULL or "" for none.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL path or tensor, STRAND_E_MISUSE
 * for a released or foreign handle, STRAND_E_IO naming the path (a partly
 * written file is removed). Thread safety: any (writers of the same tensor's
 * data must not run at the same time). */
STRAND_API strand_status strand_tensor_write_pb(const strand_tensor *tensor, const char *path,
                                                const char *name);

/* (.npy reading and writing: see npy.c) */

/* .npy files (NumPy's np.save format, versions 1.0, 2.0 and 3.0).
 *
 * Element types map one to one: float16 '<f2', float32 '<f4', float64
 * '<f8', int8 '|i1', int16 '<i2', int32 '<i4', int64 '<i8', uint8 '|u1',
 * uint16 '<u2', uint32 '<u4', uint64 '<u8', bool '|b1'. NumPy has no
 * bfloat16; ml_dtypes' bfloat16 saves as the 2-byte void '<V2', so strand
 * reads '<V2' and '|V2' as bfloat16 and writes bfloat16 as '<V2' (in
 * Python: np.load(path).view(ml_dtypes.bfloat16)). Files are little-endian
 * and in C order; strand writes exactly what np.save writes for the same
 * array.
 *
 * Statuses of the readers:
 *   STRAND_E_IO           the file cannot be opened or read, or its bytes are
 *                         not a well-formed .npy: bad magic, a header that does
 *                         not parse, a header or data running past the end,
 *                         bytes after the data, a bool byte other than 0 or 1;
 *   STRAND_E_UNSUPPORTED  a well-formed file strand does not read: an element
 *                         type outside the list above (object, complex, string,
 *                         structured), big-endian data, fortran_order True
 *                         (use np.ascontiguousarray), more than
 *                         STRAND_MAX_RANK dimensions, a format version other
 *                         than 1.0, 2.0, 3.0, a header over 64 KiB;
 *   STRAND_E_SHAPE        a negative dimension, one over 2^63 - 1, or a shape
 *                         whose byte size overflows;
 *   STRAND_E_INVALID_ARGUMENT for NULL pointers; STRAND_E_OUT_OF_MEMORY or
 *   STRAND_E_MEMORY_LIMIT. The message names the file and what is wrong
 *   (the offset in the header, or the sizes that differ). */

/* Reads a .npy file into a new tensor.
 *   path  in: file name (UTF-8 on every platform strand supports).
 *   out   out: one new reference; release with strand_tensor_release.
 * The data length is checked against the file's length before the tensor is
 * allocated. Statuses: see above. Thread safety: any. */
STRAND_API strand_status strand_tensor_read_npy(const char *path, strand_tensor **out);

/* Reads a .npy image held in memory into a new tensor (the data is copied).
 *   data  in, borrowed for the call: `size` bytes; may be NULL when size is 0.
 *   size  in: the exact length of the image; trailing bytes are an error.
 *   out   out: one new reference; release with strand_tensor_release.
 * Statuses: see above. Thread safety: any. */
STRAND_API strand_status strand_tensor_read_npy_buffer(const void *data, size_t size,
                                                       strand_tensor **out);

/* Writes `tensor` to a .npy file (format 1.0), replacing any file there.
 *   tensor  in: any tensor; its data is read, not retained.
 *   path    in: file name.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL, STRAND_E_MISUSE for a released
 * or foreign handle, STRAND_E_IO when the file cannot be created or written
 * (a partly written file is then removed).
 * Thread safety: any, as long as no thread writes the tensor's data during
 * the call. */
STRAND_API strand_status strand_tensor_write_npy(const strand_tensor *tensor, const char *path);

/* Writes `tensor` as a .npy image into a caller's buffer.
 *   tensor    in: any tensor; its data is read, not retained.
 *   buffer    out: receives the image; NULL (with capacity 0) only asks for
 *             the size.
 *   capacity  in: bytes available at `buffer`.
 *   size      out: the image's length in bytes (also when only asking).
 * Returns STRAND_E_INVALID_ARGUMENT for a NULL tensor or size, or when
 * `capacity` is below the image's length (nothing is then written);
 * STRAND_E_MISUSE for a released or foreign handle.
 * Thread safety: any, as long as no thread writes the tensor's data during
 * the call. */
STRAND_API strand_status strand_tensor_write_npy_buffer(const strand_tensor *tensor, void *buffer,
                                                        size_t capacity, size_t *size);

/* ------------------------------------------------------------------------ */
/* Sessions                                                                  */
/* ------------------------------------------------------------------------ */

/* A session runs a model: it holds a kernel for every node, the weights
 * repacked for those kernels, and execution plans. A session retains its
 * model, so the model may be released as soon as the session exists.
 *
 * Plans. The first run with a given set of input shapes (and of requested
 * outputs) is a planning run: it works out every intermediate shape,
 * allocates as it goes and records how much memory each value needs and
 * for how long. From that record strand lays out one arena per run in which
 * values whose lifetimes do not overlap share memory, and caches the plan
 * (the 16 most recently used per session). Later runs with the same shapes
 * take an arena from the session's pool and allocate nothing on the heap
 * except the output tensors they return. Models whose shapes depend on
 * input data (a Reshape whose target comes from an input's values, say)
 * are planned at every run. Arenas and plans are counted under
 * STRAND_MEMORY_SCRATCH and STRAND_MEMORY_OTHER and live until the session
 * is freed.
 *
 * Threads. Any number of threads may run one session at once; each run has
 * its own arena. A run splits big operations over the process's CPU budget
 * (see "Threads: the CPU budget" below), the calling thread included; a run
 * of many rows may instead be made as slices of rows, each on one thread
 * (strand_session_options.slice_rows). */
typedef struct strand_session strand_session;
typedef struct strand_dispatcher strand_dispatcher; /* see "The dispatcher" */

typedef struct strand_session_options {
  /* sizeof(strand_session_options): lets later versions add fields. */
  size_t struct_size;
  /* The most threads one run may keep busy, the calling thread included;
   * 0 (the default) means the process's CPU budget. A value above the
   * budget is lowered to it at each run. 1 runs everything on the caller. */
  unsigned intra_op_threads;
  /* Dynamic batching: the most rows one stacked run may hold; 0 or 1 (the
   * default) turns batching off. With batching on, runs that arrive while
   * others wait and whose inputs differ only in their first dimension (the
   * batch: a symbolic dimension shared by every input and output) are
   * stacked along it, run once, and split back; each caller receives
   * exactly the outputs its own run would have given. The first run of a
   * batch waits at most batch_delay_us for company; a run that cannot be
   * stacked (other shapes, caller-supplied outputs, more rows than
   * batch_max_rows) runs on its own, at once. Batching pays when many
   * threads send small requests; see strand_session_stats for its figures.
   * Keep batch_max_rows well below the number of concurrent callers, so that
   * several stacked runs are in flight while the next ones gather (with 32
   * callers on 2 cores, 8 rows did best; 32 left a core idle). A stacked
   * run uses the session's intra-op threads like any run.
   * Details: the model qualifies when every input and output has a symbolic
   * first dimension of one name that appears nowhere else in its shape
   * (otherwise every run runs on its own); rows are assumed independent, as
   * in models exported with a dynamic batch axis (a stacked output whose
   * first dimension is not the stacked row count turns batching off for the
   * session and its runs are made one by one). A run waiting for company
   * stops waiting when its token is canceled or its deadline passes; once
   * stacked, it is no longer stopped by them (the stacked run serves
   * others). When no other run came within the delay, a run is a batch of
   * one and runs unstacked. When a stacked run cannot serve a caller (an
   * allocation fails, say), that caller's run is made on its own, so it
   * gets the status and message an unbatched run gives. A run made on the
   * session's dispatcher thread is never batched. */
  unsigned batch_max_rows;
  /* The longest the first run of a batch waits for others, in microseconds;
   * 0 with batching on means 100. Under steady load batches fill before
   * the delay ends, and the run that completes a batch runs it; the first
   * run, still asleep with the delay as its timeout, then wakes once for
   * nothing if the delay ends while the batch runs. A delay longer than a
   * batch takes to fill and run avoids that (32 callers of a 1.3 MFLOP MLP
   * on 2 cores: 1000 made about 15% more than 100, at the same p99), at
   * the cost of that much latency for a run that finds no company. */
  uint32_t batch_delay_us;
  /* Binds the session to a dispatcher: every run then executes on that
   * dispatcher's thread (the caller blocks; a caller on the dispatcher's
   * thread runs inline), for hosts that need all work on one thread. The
   * session holds a reference to the dispatcher. NULL (the default): runs
   * execute on the calling thread. Runs on a stopped dispatcher fail with
   * STRAND_E_CANCELED. */
  strand_dispatcher *dispatcher;
  /* Slicing: a run of many rows may be made as several runs of fewer rows
   * ("slices"), spread over the run's intra-op threads, each slice on one
   * thread from start to end, and, with one thread, to keep each slice's
   * working memory in cache. 0 (the default): strand picks the slice rows
   * from the threads, the plan's memory per row and the kind of work (at
   * least 8 rows for recurrent and MLP-like models, no slicing for runs
   * of a few million multiply-adds or less); STRAND_SLICE_OFF: never
   * slice; N >= 1: slices of N rows (the largest divisor of the run's rows
   * that is at most N). A run is sliced only when strand has proven, from
   * the plans of the whole run and of a slice, that each output row depends
   * only on the same row of the inputs: the model qualifies as for batching
   * (every input and output has one symbolic first dimension), and every
   * node must be one whose rule strand knows (convolutions, pooling,
   * element-wise ops, MatMul and Gemm, normalizations over other axes,
   * Reshape and Transpose that keep rows apart, recurrent ops, the shape
   * computations exporters emit). The proof is made once per plan, by the
   * first run that would slice: that run makes its first slice alone,
   * then the rest. Sliced outputs are bit-identical to the whole run's
   * (every kernel gives a row the same bytes whatever the batch). Runs
   * whose rows were not proven independent run whole, as before. */
  unsigned slice_rows;
} strand_session_options;

/* strand_session_options.slice_rows: never slice. */
#define STRAND_SLICE_OFF 0xffffffffu

/* Creates a session for `model`.
 *   model    in: the model; the session takes a reference of its own.
 *   options  in, borrowed for the call: NULL for the defaults; otherwise
 *            struct_size must be set (fields past it take their defaults).
 *   out      out: one new reference; release with strand_session_release.
 * Every node is given its kernel here, its attributes are checked and
 * constant weights are repacked (counted under STRAND_MEMORY_WEIGHTS), so
 * that a model strand cannot run fails now, never in the middle of a run.
 * Nodes are also merged where nothing else reads what lies between them:
 * a BatchNormalization with constant statistics after a Conv with constant
 * weights is folded into the Conv's weights and bias (results differ from
 * the unfolded graph's by rounding only; the folded weights are packed like
 * any others, and kept as a copy under STRAND_MEMORY_WEIGHTS only for Convs
 * that read them at run time); a Relu or Clip with constant bounds after a
 * Conv, Gemm or MatMul (or after such a folded BatchNormalization) is
 * applied by the producer as it writes; a MatMul with constant B also adds
 * a constant bias row that follows it. The model itself is not changed.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL model or out, or a struct_size
 * too small; STRAND_E_MISUSE for a released or foreign model handle;
 * STRAND_E_UNSUPPORTED naming the node and op without a kernel (for its
 * opset, or for its input types), or an attribute value strand does not
 * handle; STRAND_E_MALFORMED_MODEL naming the node and attribute whose
 * value is invalid; STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT.
 * Thread safety: any. */
STRAND_API strand_status strand_session_create(strand_model *model,
                                               const strand_session_options *options,
                                               strand_session **out);

/* Adds a reference. Returns STRAND_E_INVALID_ARGUMENT for NULL and
 * STRAND_E_MISUSE for a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_session_retain(strand_session *session);

/* Drops a reference; the last one frees the session, its plans and arenas,
 * and drops its reference to the model, on the calling thread. Each run in
 * progress holds a reference of its own, so a release (even the caller's
 * last) while other threads run the session is safe: the session goes when
 * the last run returns. NULL is a no-op; a released or foreign handle is
 * logged and counted as misuse. Thread safety: any. */
STRAND_API void strand_session_release(strand_session *session);

/* The model the session runs.
 *   out  out, borrowed: valid while the caller holds a reference to the
 *        session (take one with strand_model_retain to keep it longer).
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments, STRAND_E_MISUSE for
 * a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_session_model(const strand_session *session, strand_model **out);

/* Runs the model once.
 *   input_names   in: n_inputs names of graph inputs (strand_model_input),
 *                 each once, in any order.
 *   inputs        in, borrowed for the call: n_inputs tensors, inputs[i] the
 *                 value of input_names[i]. Every graph input must be given,
 *                 with the dtype the model declares and a shape that fits
 *                 its declared one: known dimensions equal, and symbolic
 *                 ones ("batch") of one size in every input that names them.
 *   n_inputs      in: the number of graph inputs.
 *   output_names  in: the outputs wanted, each once, in the order wanted; or
 *                 NULL for all of them in the model's order. Outputs not
 *                 asked for, and nodes only they need, are not computed.
 *   outputs       in/out: n_outputs entries. An entry that is NULL on entry
 *                 receives a new tensor (one reference for the caller;
 *                 release with strand_tensor_release). An entry that is not
 *                 NULL is a tensor of the caller's to be filled in place: its
 *                 dtype and shape must be exactly the output's, and it stays
 *                 the caller's (the entry is not changed).
 *   n_outputs     in: the number of entries in output_names (with NULL
 *                 output_names: the model's output count).
 * On failure no entry of `outputs` is changed and nothing leaks; the data
 * of caller-supplied output tensors may have been partly written.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL pointers where arrays are
 * needed, a name given twice, a wrong count, or a caller-supplied output
 * that shares memory with an input; STRAND_E_MISUSE for a released or
 * foreign session or tensor handle; STRAND_E_NOT_FOUND naming an input or
 * output the model does not have; STRAND_E_DTYPE naming the input (or
 * caller-supplied output), the dtype expected and the dtype given;
 * STRAND_E_SHAPE naming the input and dimension that do not fit
 * (`dimension "batch" is 3 in input "x" but 4 in input "y"`), or a
 * caller-supplied output of the wrong shape, or shapes that a node cannot
 * take (naming the node); STRAND_E_INVALID_ARGUMENT naming the node for
 * input data a node cannot take (an index out of range);
 * STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT.
 * Thread safety: any: many threads may run one session at once.
 * (Writers of the input tensors' data must not run at the same time, and a
 * caller-supplied output must not be used by another run at once.) */
STRAND_API strand_status strand_session_run(strand_session *session,
                                            const char *const *input_names,
                                            const strand_tensor *const *inputs, size_t n_inputs,
                                            const char *const *output_names,
                                            strand_tensor **outputs, size_t n_outputs);

/* Cancel tokens. A token is a flag that one thread sets and runs watch: a run
 * given a token (strand_run_options) stops at the next node boundary once
 * the token is canceled, returns STRAND_E_CANCELED and leaks nothing. One
 * token may watch many runs; canceling is sticky until reset. */
typedef struct strand_cancel_token strand_cancel_token;

/* Creates a token, not canceled.
 *   out  out: one new reference; release with strand_cancel_token_release.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL out, STRAND_E_OUT_OF_MEMORY or
 * STRAND_E_MEMORY_LIMIT. Thread safety: any. */
STRAND_API strand_status strand_cancel_token_create(strand_cancel_token **out);

/* Adds a reference. Returns STRAND_E_INVALID_ARGUMENT for NULL and
 * STRAND_E_MISUSE for a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_cancel_token_retain(strand_cancel_token *token);

/* Drops a reference; a run watching the token holds one of its own. NULL is
 * a no-op; a released or foreign handle is logged and counted as misuse.
 * Thread safety: any. */
STRAND_API void strand_cancel_token_release(strand_cancel_token *token);

/* Cancels: every run watching the token, now or later, stops at its next
 * node boundary (a run waiting to be batched stops waiting at once).
 * Returns STRAND_E_INVALID_ARGUMENT for NULL, STRAND_E_MISUSE for a released
 * or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_cancel_token_cancel(strand_cancel_token *token);

/* Clears the flag, so the token may watch new runs. Runs already stopped
 * stay stopped. Returns as strand_cancel_token_cancel. Thread safety: any. */
STRAND_API strand_status strand_cancel_token_reset(strand_cancel_token *token);

/* 1 when canceled, 0 when not (or for an invalid handle, which is logged as
 * misuse). Thread safety: any. */
STRAND_API int strand_cancel_token_is_canceled(const strand_cancel_token *token);

/* Options of one run. */
typedef struct strand_run_options {
  /* sizeof(strand_run_options): lets later versions add fields. */
  size_t struct_size;
  /* When the run must be over, in nanoseconds of CLOCK_MONOTONIC (as
   * clock_gettime gives it); 0: no deadline. A run past its deadline stops
   * at the next node boundary (or stops waiting to be batched) and returns
   * STRAND_E_DEADLINE. */
  uint64_t deadline_ns;
  /* The same, relative to the call's start, in microseconds; 0: none. With
   * both set, the earlier one counts. */
  uint64_t timeout_us;
  /* A token to watch, or NULL; borrowed for the call. */
  strand_cancel_token *cancel;
} strand_run_options;

/* strand_session_run with options: a deadline, a timeout, a cancel token.
 * `options` NULL is strand_session_run. A run stopped by its token returns
 * STRAND_E_CANCELED, by its deadline STRAND_E_DEADLINE; either way no entry
 * of `outputs` is changed and nothing leaks, and the message names the node
 * that was about to run (`node "fc2" (Gemm): canceled by the run's token
 * before this node ran`; inside an If: `node "if_1" (If): then_branch: node
 * "t3" (Neg): ...`). A run may finish in full even after its token was
 * canceled if no node boundary came in between, and a run already stacked by
 * dynamic batching finishes (see strand_session_options.batch_max_rows).
 * Without a token or deadline, node boundaries cost one test of a flag; with
 * a deadline, each reads CLOCK_MONOTONIC. Besides
 * strand_session_run's statuses, returns STRAND_E_INVALID_ARGUMENT for a
 * struct_size too small and STRAND_E_MISUSE for a released or foreign token.
 * Thread safety: any (one token may be canceled from any thread while runs
 * watch it). */
STRAND_API strand_status strand_session_run_with_options(
    strand_session *session, const strand_run_options *options, const char *const *input_names,
    const strand_tensor *const *inputs, size_t n_inputs, const char *const *output_names,
    strand_tensor **outputs, size_t n_outputs);

/* A session's counters since creation, each read atomically. */
typedef struct strand_session_stats {
  /* sizeof(strand_session_stats), set by the caller: a later version fills
   * only the fields a caller built against an older header has room for. */
  size_t struct_size;
  uint64_t runs;            /* runs that succeeded */
  uint64_t runs_failed;     /* runs that returned an error after starting (except
                               those counted in runs_canceled) */
  uint64_t planning_runs;   /* runs that planned (the rest used a cached plan) */
  uint64_t plans_cached;    /* plans in the cache now (at most 16) */
  uint64_t plans_evicted;   /* plans dropped from the cache to make room */
  uint64_t arenas;          /* arenas in the pool: the most runs at once so far */
  uint64_t arena_bytes;     /* bytes of all arenas together */
  uint64_t weight_bytes;    /* bytes of repacked weights and kernel parameters */
  uint64_t runs_canceled;   /* runs stopped by a cancel token or a deadline */
  uint64_t batches;         /* batches dynamic batching ran (a batch of one included) */
  uint64_t batched_runs;    /* callers' runs served by them: mean batch = batched_runs / batches */
  uint64_t batched_rows;    /* rows in them */
  uint64_t batch_wait_ns;   /* time callers' runs waited to be stacked, summed:
                               mean queue delay = batch_wait_ns / batched_runs */
  uint64_t sliced_runs;     /* runs made as slices (strand_session_options.slice_rows) */
  uint64_t slices;          /* slices made by them */
} strand_session_stats;

/* Fills `out` with the session's counters, as far as out->struct_size
 * reaches (set it first: `strand_session_stats st = {.struct_size = sizeof
 * st};`), and sets struct_size to the bytes filled (the smaller of the
 * caller's and this version's). Returns STRAND_E_INVALID_ARGUMENT for NULL
 * arguments or a struct_size too small to hold `runs`, STRAND_E_MISUSE for
 * a released or foreign handle.
 * Thread safety: any. */
STRAND_API strand_status strand_session_get_stats(const strand_session *session,
                                                  strand_session_stats *out);

/* ---- Where a session's runs spend their time --------------------------- */

/* Per-node timing, off until turned on. While it is on, every call a run
 * makes to a node's kernel adds one call and the wall time the kernel took
 * (CLOCK_MONOTONIC, two clock reads per node: well under a microsecond) to
 * that node's figures; off, a run pays one relaxed load per node. What a
 * node's time includes is the kernel's work on all the threads it used,
 * measured on the run's own thread from the kernel's start to its end, so
 * figures for two threads are elapsed time, not CPU time.
 * Nodes whose work another node took over when the session was made (an
 * activation fused into the Conv, Gemm or MatMul before it, a
 * BatchNormalization folded into a Conv) show no calls, their time being
 * in that node's; so do, once a run has a plan, the nodes the plan makes
 * views of their input's bytes under other dimensions (Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity and Dropout, a Transpose that moves only
 * dims of 1 out of order, and a Gather of one contiguous block at a
 * constant index, where their input's bytes can be shared; the others are
 * timed). A run made in slices calls each node
 * once per slice; batched runs call each node once per batch; a node
 * running a subgraph (If, Loop, Scan) counts the subgraph's time as its
 * own.
 * Figures accumulate over all the session's runs, from every thread, until
 * reset. Turning profiling on or off while runs are in progress is allowed:
 * nodes those runs reach afterwards follow the new setting.
 *   on  in: nonzero turns timing on, 0 off.
 * Returns STRAND_E_INVALID_ARGUMENT for a NULL session, STRAND_E_MISUSE for
 * a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_session_set_profiling(strand_session *session, int on);

/* One node's figures, as strand_session_get_profile hands them over. */
typedef struct strand_node_profile {
  size_t index;        /* the node's position in the graph's node list */
  const char *name;    /* the node's name ("" when it has none); the session's */
  const char *op_type; /* "Conv", "MatMul", ...; the session's */
  uint64_t calls;      /* kernel calls counted */
  uint64_t total_ns;   /* their wall time, summed */
  /* How the node runs, chosen at session creation, for ops that have
   * several ways; "" for the others, and for a node that never runs or
   * whose way each run's shapes decide. Conv: "1x1 direct" (packed W,
   * AVX-512), "few-channel direct" (the stems: at most 4 input channels,
   * kernels up to 3x3, AVX-512), "winograd 2x2" and "winograd 4x4"
   * (constant 3x3 W at unit strides, 16+ channels each way, AVX-512),
   * "depthwise", "im2col" (patches times W packed once), "1x1 gemm" (X
   * times W, where "1x1 direct" is not taken). A static string. */
  const char *kernel;
} strand_node_profile;

/* Called once per node; `node` and its strings are valid during the call
 * only. */
typedef void (*strand_node_profile_visitor)(const strand_node_profile *node, void *context);

/* Calls `visit` for every node of the session's graph, in the graph's
 * order, with its figures so far (zero for every node until profiling is
 * turned on). Each figure is read atomically; while runs go on, a node's
 * calls and time may be one call apart. Returns STRAND_E_INVALID_ARGUMENT
 * for a NULL session or visitor, STRAND_E_MISUSE for a released or foreign
 * handle. Thread safety: any; `visit` runs on the calling thread and must
 * not release the session. */
STRAND_API strand_status strand_session_get_profile(const strand_session *session,
                                                    strand_node_profile_visitor visit,
                                                    void *context);

/* Sets every node's calls and time to zero (profiling stays as it was).
 * Runs in progress may add to the figures afterwards. Returns
 * STRAND_E_INVALID_ARGUMENT for a NULL session, STRAND_E_MISUSE for a
 * released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_session_reset_profile(strand_session *session);

/* ------------------------------------------------------------------------ */
/* Threads: the CPU budget and the dispatcher                                */
/* ------------------------------------------------------------------------ */

/* The CPU budget. strand keeps one pool of worker threads for the whole
 * process and shares it among all sessions and calls. The budget B is the
 * number of threads allowed to work on one call at once, the calling thread
 * included: a call that runs in parallel uses its own thread plus at most
 * B - 1 pool workers, and all calls together never keep more than B - 1
 * workers busy. Callers always work on their own calls, so N threads calling
 * at once mean at most N + B - 1 busy threads, whatever N is. Session runs
 * in progress share what their callers leave of the budget: with R runs at
 * once, each run's parallel loops take at most (B - R) / R workers, none
 * once R reaches B, so that N >= B callers mean N busy threads and no
 * caller waits for a worker the system must time-slice with it.
 *
 * The budget starts as the number of CPUs this process may use: the CPUs in
 * its affinity mask (sched_setaffinity, taskset, cpusets), lowered to the
 * cgroup CPU quota rounded up (cgroup v2 cpu.max, v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us, as container limits set them), at least 1. The
 * environment variable STRAND_THREADS (a count from 1 to 1024, or 0 or
 * "auto" for the detected value), read at the first call that needs the
 * budget, and strand_threads_set_budget override it.
 *
 * Pool workers are created when first needed and live for the process. When
 * idle they spin for at most about 20 microseconds (not at all when the
 * process has a single CPU), then sleep; while session runs are in progress
 * and leave a worker a core, it spins instead for up to twice the usual gap
 * between the parallel loops it joined, at most 250 microseconds, and stops
 * once no run is left. In a child process made by fork(),
 * the pool runs all work on the calling thread. */

/* Sets the process-wide budget.
 *   threads  in: 1 .. 1024 threads per call, the caller included (1: work
 *            runs on the calling thread only); 0 restores the detected
 *            value.
 * Takes effect for parallel work that starts after the call; lowering it
 * leaves surplus workers asleep. Returns STRAND_E_INVALID_ARGUMENT above
 * 1024. Thread safety: any. */
STRAND_API strand_status strand_threads_set_budget(unsigned threads);

/* The current budget, >= 1. Thread safety: any. */
STRAND_API unsigned strand_threads_get_budget(void);

/* The dispatcher: a thread of its own that runs what it is given, one task
 * at a time, in the order given. For hosts whose code must stay on one
 * thread, or that want every call into a model funnelled through one: code
 * that calls strand_dispatcher_run from the dispatcher's own thread runs
 * inline, so funnelled code may call into funnelled code without deadlock.
 *
 * Two ways in:
 *   run   blocks the caller until `fn` has run on the dispatcher's thread and
 *         returns its status;
 *   post  queues `fn` and returns at once (fire and forget). Once a post is
 *         accepted its function runs exactly once, whatever happens later
 *         (stop in either mode, the last release), because posts carry
 *         clean-ups such as a garbage collector's deferred releases.
 * Tasks run one after another in the order they were accepted (first in,
 * first out), runs and posts alike.
 *
 * Stopping. After strand_dispatcher_stop (or the last release), new runs and
 * posts are refused with STRAND_E_CANCELED and their functions never run,
 * except runs made on the dispatcher's own thread, which still run inline.
 * What was queued before the stop is
 *   STRAND_DISPATCHER_DRAIN   run, all of it;
 *   STRAND_DISPATCHER_CANCEL  runs: not run; their blocked callers return
 *                             STRAND_E_CANCELED at once. Posts: run.
 * A task already running when the stop comes always finishes.
 *
 * The last release stops the dispatcher in DRAIN mode, waits for the queue
 * to drain and for the thread to end. A run in progress holds a reference of
 * its own, so the last release may come while other threads are blocked in
 * strand_dispatcher_run: they get their results and the dispatcher ends after
 * the last of them. When the last release happens on the dispatcher's own
 * thread (in a posted function, say), it cannot wait for itself: the thread
 * is detached instead, drains the queue after the current task, frees what
 * it holds and ends on its own.
 *
 * Errors: when a run's `fn` returns a failing status, strand_errmsg() on the
 * calling thread gives the message `fn` left on the dispatcher's thread.
 *
 * Fork: a child process made by fork() has no dispatcher threads; a
 * dispatcher created before the fork must not be used in the child. */

/* A task for strand_dispatcher_run. Runs on the dispatcher's thread, with no
 * strand lock held; it may call any strand function, including
 * strand_dispatcher_run on the same dispatcher (which runs inline). Its
 * return value is the run's return value. */
typedef strand_status (*strand_dispatcher_run_fn)(void *arg);

/* A task for strand_dispatcher_post. Runs on the dispatcher's thread, with
 * no strand lock held; it may call any strand function, including releasing
 * the dispatcher's last reference. */
typedef void (*strand_dispatcher_post_fn)(void *arg);

typedef struct strand_dispatcher_options {
  /* sizeof(strand_dispatcher_options): lets later versions add fields. */
  size_t struct_size;
  /* The thread's name, as debuggers and `top -H` show it (the system keeps
   * the first 15 bytes) and as messages quote it; copied. NULL: "strand-disp". */
  const char *name;
  /* The most tasks waiting at once (runs and posts, not counting the one
   * running); 0 selects 1024, at most 1048576. When the queue is full, run
   * blocks until there is room and post returns STRAND_E_BUSY. Room for
   * posts is allocated up front (about 40 bytes a task), so that a post
   * never allocates and never fails for lack of memory. */
  size_t queue_capacity;
} strand_dispatcher_options;

typedef enum strand_dispatcher_stop_mode {
  STRAND_DISPATCHER_DRAIN = 0, /* queued runs and posts run */
  STRAND_DISPATCHER_CANCEL = 1 /* queued runs are canceled; queued posts run */
} strand_dispatcher_stop_mode;

/* Latencies of one kind, from a histogram with about 12% resolution. */
typedef struct strand_latency_summary {
  uint64_t count; /* samples */
  double p50_us;  /* percentiles in microseconds: p50 <= p90 <= p99 <= max */
  double p90_us;
  double p99_us;
  double max_us; /* exact */
} strand_latency_summary;

/* A dispatcher's counters since creation. Each is read atomically, one after
 * another: under load they need not add up exactly. */
typedef struct strand_dispatcher_stats {
  uint64_t runs;               /* runs whose fn ran, queued or inline */
  uint64_t runs_inline;        /* of those, made on the dispatcher's thread */
  uint64_t runs_canceled;      /* runs that returned STRAND_E_CANCELED unrun */
  uint64_t posts;              /* posts accepted */
  uint64_t posts_run;          /* posted functions that have run */
  uint64_t posts_refused;      /* posts refused: STRAND_E_BUSY, E_CANCELED */
  uint64_t queue_depth;        /* tasks waiting now */
  uint64_t queue_depth_peak;   /* most tasks waiting at once */
  strand_latency_summary queue_wait; /* accepted to started, queued tasks */
  strand_latency_summary run_time;   /* started to finished, every fn run */
} strand_dispatcher_stats;

/* Creates a dispatcher and starts its thread.
 *   options  in, borrowed for the call: NULL for the defaults; otherwise
 *            struct_size must be set.
 *   out      out: one new reference; release with strand_dispatcher_release.
 * The thread starts with every signal blocked. Returns
 * STRAND_E_INVALID_ARGUMENT for a NULL out, a struct_size too small, or a
 * queue_capacity over 1048576; STRAND_E_OUT_OF_MEMORY or
 * STRAND_E_MEMORY_LIMIT (counted under STRAND_MEMORY_OTHER), also when the
 * system refuses to start a thread. Thread safety: any. */
STRAND_API strand_status strand_dispatcher_create(const strand_dispatcher_options *options,
                                                  strand_dispatcher **out);

/* Adds a reference. Returns STRAND_E_INVALID_ARGUMENT for NULL and
 * STRAND_E_MISUSE for a released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_dispatcher_retain(strand_dispatcher *dispatcher);

/* Drops a reference. The last one stops the dispatcher (DRAIN), runs what
 * is queued and ends the thread: from any other thread it waits for that;
 * on the dispatcher's own thread it does not wait (see above). NULL is a
 * no-op; a released or foreign handle is logged and counted as misuse.
 * Thread safety: any. */
STRAND_API void strand_dispatcher_release(strand_dispatcher *dispatcher);

/* Runs fn(arg) on the dispatcher's thread and returns its status: at once
 * and inline when called on that thread, otherwise after queueing it behind
 * the tasks already accepted, blocking the caller until fn has returned
 * (and, while the queue is full, until there is room).
 *   fn   in: the task; runs on the dispatcher's thread.
 *   arg  in: passed to fn; strand does not touch it.
 * If the call fails, fn never runs: STRAND_E_INVALID_ARGUMENT for a NULL
 * dispatcher or fn, STRAND_E_MISUSE for a released or foreign handle,
 * STRAND_E_CANCELED when the dispatcher is stopped, or is stopped in CANCEL
 * mode before fn starts. Otherwise returns what fn returned.
 * Thread safety: any. */
STRAND_API strand_status strand_dispatcher_run(strand_dispatcher *dispatcher,
                                               strand_dispatcher_run_fn fn, void *arg);

/* Queues fn(arg) to run on the dispatcher's thread and returns at once, also
 * when called on that thread. Once accepted, fn runs exactly once.
 *   fn   in: the task; runs on the dispatcher's thread.
 *   arg  in: passed to fn; strand does not touch it.
 * Never allocates. If the call fails, fn never runs: STRAND_E_INVALID_ARGUMENT
 * for a NULL dispatcher or fn, STRAND_E_MISUSE for a released or foreign
 * handle, STRAND_E_BUSY when the queue is full, STRAND_E_CANCELED when the
 * dispatcher is stopped. Thread safety: any. */
STRAND_API strand_status strand_dispatcher_post(strand_dispatcher *dispatcher,
                                                strand_dispatcher_post_fn fn, void *arg);

/* Stops the dispatcher: from now on runs and posts are refused (see above),
 * and what is queued is run or canceled according to `mode`. Called from
 * another thread, it returns when the queue is empty, the task running (if
 * any) has returned and the thread has ended. Called on the dispatcher's own
 * thread, it cancels at once (CANCEL) but does not wait: the queue drains
 * after the current task returns. Stopping again is allowed; a CANCEL after
 * a DRAIN cancels the runs still queued. The handle stays valid (stats may
 * still be read) until released.
 * Returns STRAND_E_INVALID_ARGUMENT for a NULL dispatcher or a mode outside
 * the enum, STRAND_E_MISUSE for a released or foreign handle.
 * Thread safety: any. */
STRAND_API strand_status strand_dispatcher_stop(strand_dispatcher *dispatcher,
                                                strand_dispatcher_stop_mode mode);

/* 1 when the calling thread is the dispatcher's thread, else 0 (also for
 * NULL, and for a released or foreign handle, which is counted as misuse).
 * Thread safety: any. */
STRAND_API int strand_dispatcher_is_current(const strand_dispatcher *dispatcher);

/* Fills `out` with the dispatcher's counters and latency percentiles.
 * Returns STRAND_E_INVALID_ARGUMENT for NULL arguments, STRAND_E_MISUSE for a
 * released or foreign handle. Thread safety: any. */
STRAND_API strand_status strand_dispatcher_get_stats(const strand_dispatcher *dispatcher,
                                                     strand_dispatcher_stats *out);

/* ------------------------------------------------------------------------ */
/* Native memory                                                             */
/* ------------------------------------------------------------------------ */

typedef enum strand_memory_category {
  STRAND_MEMORY_TENSOR = 0,  /* tensor data owned by strand */
  STRAND_MEMORY_WEIGHTS = 1, /* model weights copied or converted at load */
  STRAND_MEMORY_SCRATCH = 2, /* per-run working memory */
  STRAND_MEMORY_OTHER = 3,   /* objects, graphs, plans, traces */
  STRAND_MEMORY_CATEGORY_COUNT
} strand_memory_category;

/* Static name of a category ("tensor"); "unknown" outside the list.
 * Thread safety: any. */
STRAND_API const char *strand_memory_category_name(strand_memory_category category);

/* A snapshot of the process's native memory and objects. Each field is read
 * atomically, but fields are read one after another, so under concurrent
 * activity they need not add up exactly.
 * What is counted is what strand holds; what the process holds follows it:
 * working memory and weights in blocks of 1 MiB and more (run arenas, a
 * planning run's values, converted weights) are mapped from the system on
 * their own and unmapped when freed, so their pages leave the resident set
 * at once instead of staying in the C library's heaps (blocks of 2 MiB and
 * more start on a huge-page boundary, so the kernel may back them with huge
 * pages). Tensor data and smaller blocks come from malloc, which reuses
 * them from run to run without new page faults. */
typedef struct strand_memory_stats {
  /* sizeof(strand_memory_stats), set by the caller: a later version fills
   * only the fields a caller built against an older header has room for. */
  size_t struct_size;
  uint64_t live_bytes[STRAND_MEMORY_CATEGORY_COUNT];
  uint64_t peak_bytes[STRAND_MEMORY_CATEGORY_COUNT];
  uint64_t total_live_bytes;
  uint64_t total_peak_bytes;
  uint64_t limit_bytes;                     /* 0: no limit */
  uint64_t live_objects[STRAND_KIND_COUNT]; /* indexed by strand_kind */
  uint64_t total_live_objects;
  uint64_t allocations;        /* successful allocations since start */
  uint64_t failed_allocations; /* refused by the limit or by the system */
} strand_memory_stats;

/* Fills `out` with the current figures, as far as out->struct_size reaches
 * (set it first: `strand_memory_stats st = {.struct_size = sizeof st};`),
 * and sets struct_size to the bytes filled (the smaller of the caller's and
 * this version's).
 *   out  in/out: the caller's struct; struct_size in, the figures out.
 * Returns STRAND_E_INVALID_ARGUMENT for a NULL out or a struct_size too small
 * to hold `live_bytes`; `out` is then untouched.
 * Thread safety: any. */
STRAND_API strand_status strand_memory_get_stats(strand_memory_stats *out);

/* Sets the process-wide limit on strand's live native bytes (all categories
 * together); 0 removes it. A limit below current use is allowed: existing
 * memory stays, and allocations fail until use drops below it.
 * Thread safety: any. */
STRAND_API void strand_memory_set_limit(uint64_t bytes);

/* Resets every peak figure to the current live figure. Thread safety: any. */
STRAND_API void strand_memory_reset_peaks(void);

/* Parses a byte count such as "512", "64K", "1.5G" (K, M, G, T are
 * 1024-based; a trailing "B" or "iB" is accepted).
 *   out  out: the byte count.
 * Returns STRAND_E_INVALID_ARGUMENT naming the text when it is not a size or
 * overflows 64 bits. Thread safety: any. */
STRAND_API strand_status strand_parse_bytes(const char *text, uint64_t *out);

/* Testing hook: makes the `n`-th allocation from now fail with
 * STRAND_E_OUT_OF_MEMORY, as if the system had refused it; n = 0 disarms.
 * Process-wide: meant for single-threaded tests that check every failure
 * path (SQLite-style), not for production. Thread safety: any. */
STRAND_API void strand_memory_fail_nth(uint64_t n);

/* ------------------------------------------------------------------------ */
/* Leak detection                                                            */
/* ------------------------------------------------------------------------ */

typedef enum strand_leak_level {
  STRAND_LEAK_OFF = 0,    /* live objects are counted by kind only */
  STRAND_LEAK_COUNT = 1,  /* every object is registered; no traces */
  STRAND_LEAK_SAMPLE = 2, /* one object in N (per thread) keeps its trace */
  STRAND_LEAK_ALL = 3     /* every object keeps its trace */
} strand_leak_level;

/* Sets the leak-detection level for objects created from now on; objects
 * already alive keep what they had.
 *   sample_interval  in: N for STRAND_LEAK_SAMPLE (0 selects 64); ignored
 *                    otherwise.
 * Returns STRAND_E_INVALID_ARGUMENT for a level outside the enum.
 * Thread safety: any. */
STRAND_API strand_status strand_leak_set_level(strand_leak_level level, uint32_t sample_interval);

/* The current level. Thread safety: any. */
STRAND_API strand_leak_level strand_leak_get_level(void);

/* Sets the calling thread's origin text: traced objects that this thread
 * creates from now on record a copy of it beside their C backtrace. A
 * language binding puts its own stack trace here. NULL or "" clears it.
 * Returns STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT when the copy
 * cannot be made (the previous text is then kept).
 * Thread safety: any (each thread has its own origin). */
STRAND_API strand_status strand_leak_set_origin(const char *text);

/* One creation site with live objects. All pointers are borrowed, valid only
 * during the visitor call. */
typedef struct strand_leak_site {
  strand_kind kind;
  uint64_t count;     /* live objects created here */
  uint64_t bytes;     /* native bytes they hold */
  int traced;         /* 0: objects without a trace (level off or count,
                         or not sampled), grouped by kind only */
  const char *trace;  /* symbolized C backtrace, one frame per line,
                         innermost (the creating call's caller) first;
                         "" when not traced */
  const char *origin; /* the binding's origin text; "" when none */
} strand_leak_site;

/* Called once per site, on the thread that asked for the report, with no
 * strand lock held (it may call into strand). Return 0 to go on, non-zero to
 * stop the report. */
typedef int (*strand_leak_visitor)(const strand_leak_site *site, void *context);

/* Visits the live objects aggregated by creation site, largest count first.
 *   visit    in: the visitor; must not be NULL.
 *   context  in: passed to the visitor.
 * Objects created while detection was off are reported per kind as
 * untraced sites. Returns STRAND_E_INVALID_ARGUMENT for a NULL visitor,
 * STRAND_E_OUT_OF_MEMORY or STRAND_E_MEMORY_LIMIT when the report cannot be
 * built (the visitor then never runs). Thread safety: any. */
STRAND_API strand_status strand_leak_report(strand_leak_visitor visit, void *context);

/* Writes the report in readable form to `out` (one block per site) and, if
 * `live_objects` is not NULL, stores the number of live objects found.
 * Writes nothing when there are none. Statuses as strand_leak_report, plus
 * STRAND_E_IO when writing fails. Thread safety: any. */
STRAND_API strand_status strand_leak_report_print(FILE *out, uint64_t *live_objects);

/* When enabled, the report is written to stderr at process exit if any
 * object is still alive (also STRAND_LEAK_REPORT=exit).
 * Thread safety: any. */
STRAND_API void strand_leak_set_report_at_exit(int enabled);

/* The number of misuses detected since the process started: released or
 * foreign handles passed to strand. Thread safety: any. */
STRAND_API uint64_t strand_misuse_count(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum strand_log_level {
  STRAND_LOG_OFF = 0,
  STRAND_LOG_ERROR = 1,
  STRAND_LOG_WARN = 2,
  STRAND_LOG_INFO = 3,
  STRAND_LOG_DEBUG = 4,
  STRAND_LOG_TRACE = 5
} strand_log_level;

/* Receives one message (no trailing newline; borrowed for the call). Runs on
 * the thread that logs, which may be any thread strand runs on, possibly
 * several at once: it must be thread-safe. It is called with no strand lock
 * held; it must not call strand_log_set_callback. */
typedef void (*strand_log_fn)(strand_log_level level, const char *message, void *context);

/* Messages at `level` and more severe are emitted (default STRAND_LOG_WARN,
 * or STRAND_LOG). Returns STRAND_E_INVALID_ARGUMENT outside the enum.
 * Thread safety: any. */
STRAND_API strand_status strand_log_set_level(strand_log_level level);
STRAND_API strand_log_level strand_log_get_level(void);

/* Routes messages to `fn` (NULL restores the default: one line per message
 * on stderr). A message being emitted on another thread at the moment of the
 * change may still reach the previous callback.
 * Thread safety: any. */
STRAND_API void strand_log_set_callback(strand_log_fn fn, void *context);

/* Static name of a level ("warn"). Thread safety: any. */
STRAND_API const char *strand_log_level_name(strand_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* STRAND_H */
