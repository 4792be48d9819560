/*
 * onnx_internal.h — what the onnx layer offers the layers above it.
 *
 * A bounded protobuf wire reader (pb.c), an arena that owns everything a
 * loaded model holds (arena.c), file mapping and the confinement of external
 * data paths (file.c), and the parse of ModelProto / GraphProto / NodeProto /
 * TensorProto into plain C structures (onnx_model.c, onnx_tensor.c). Nothing
 * here executes or validates a graph's meaning; the graph layer does that.
 *
 * Every failing function records a message with strand__fail and returns its
 * status; the caller adds context (graph, node, attribute) with
 * strand__fail_context, so a message reads outermost first:
 *   graph "main" node 12 ("Conv_3"): attribute "pads": truncated packed
 *   field at byte 1234
 */
#ifndef STRAND_ONNX_INTERNAL_H
#define STRAND_ONNX_INTERNAL_H

#include "core/core_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ------------------------------------------------------------ */

/* Protobuf's own message limit; larger weights belong in external data. */
#define ONNX_MAX_MODEL_BYTES STRAND_MODEL_MAX_BYTES
/* Nesting of graphs (If/Loop/Scan bodies) and of TypeProto, together. */
#define ONNX_MAX_DEPTH 64

/* ---- arena (arena.c) --------------------------------------------------- */

typedef struct onnx_arena_chunk onnx_arena_chunk;
typedef struct onnx_arena_release onnx_arena_release;

/* Owns everything a loaded model holds: metadata in chunks (category OTHER),
 * weights that had to be copied or converted (WEIGHTS), and file mappings.
 * One free releases all of it, which is what makes failing loads leak-free.
 * Not thread-safe while being filled; read-only (and shareable) afterwards.
 * The struct itself may be moved (copied by value) while no allocation is in
 * progress: nothing points back into it. */
typedef struct onnx_arena {
  onnx_arena_chunk *chunks;
  unsigned char *next, *limit; /* free space in the newest small chunk */
  onnx_arena_release *releases;
  size_t chunk_bytes;  /* OTHER bytes held in chunks */
  size_t weight_bytes; /* WEIGHTS bytes held in copies */
  size_t mapped_bytes; /* bytes of files mapped (not counted as memory) */
} onnx_arena;

void onnx_arena_init(onnx_arena *arena);
/* Zero-filled, aligned to 16 bytes. */
strand_status onnx_arena_alloc(onnx_arena *arena, size_t size, void **out);
/* Zero-filled array; fails cleanly when count * elem_size overflows. */
strand_status onnx_arena_array(onnx_arena *arena, size_t count, size_t elem_size, void **out);
/* A NUL-terminated copy of `size` bytes. */
strand_status onnx_arena_string(onnx_arena *arena, const void *bytes, size_t size, char **out);
/* Weight storage, aligned to 64 bytes, charged to STRAND_MEMORY_WEIGHTS and
 * freed with the arena. Not zero-filled. */
strand_status onnx_arena_weights(onnx_arena *arena, size_t size, void **out);
/* Maps `path` read-only (MAP_PRIVATE); the mapping lives until the arena is
 * freed. `what` names the file's role in messages ("model", "external data").
 * With `no_follow`, a symbolic link as the last component is refused. An
 * empty file gives a non-NULL pointer and size 0. Mapped bytes are file
 * pages, not counted as strand's memory. Fails with STRAND_E_IO (path and
 * strerror) or STRAND_E_UNSUPPORTED when the file is larger than
 * `max_size`. */
strand_status onnx_arena_map_file(onnx_arena *arena, const char *path, size_t max_size,
                                  const char *what, bool no_follow, const uint8_t **data,
                                  size_t *size);
void onnx_arena_free(onnx_arena *arena);

/* ---- protobuf wire reader (pb.c) --------------------------------------- */

typedef enum pb_wire {
  PB_WIRE_VARINT = 0,
  PB_WIRE_I64 = 1,
  PB_WIRE_LEN = 2,
  PB_WIRE_START_GROUP = 3,
  PB_WIRE_END_GROUP = 4,
  PB_WIRE_I32 = 5
} pb_wire;

/* A cursor over one message. `base` is the first byte of the whole buffer so
 * that messages can give absolute byte offsets. */
typedef struct pb_reader {
  const uint8_t *base;
  const uint8_t *pos;
  const uint8_t *end;
} pb_reader;

typedef struct pb_field {
  uint32_t number;     /* >= 1 */
  pb_wire wire;
  size_t offset;       /* of the tag, from the buffer's start */
  uint64_t value;      /* payload of VARINT, I64 and I32 fields */
  const uint8_t *data; /* payload of LEN fields, within the reader's bounds */
  size_t size;
} pb_field;

#define PB_MAX_VARINT_BYTES 10

void pb_reader_init(pb_reader *r, const uint8_t *data, size_t size);
/* A reader over a LEN field's payload (an empty one for other fields);
 * offsets stay absolute. */
pb_reader pb_reader_sub(const pb_reader *parent, const pb_field *field);
/* Offset of the reader's position from the buffer's start. */
size_t pb_offset(const pb_reader *r);

/* Reads the next field. Returns true with `*field` filled; false at the end
 * of the message (`*status` STRAND_OK) or on malformed input (`*status`
 * STRAND_E_MALFORMED_MODEL with the byte offset in the message). Group wire
 * types are rejected as malformed. */
bool pb_next(pb_reader *r, pb_field *field, strand_status *status);

/* Decodes one varint from [*pos, end); advances *pos. false when truncated or
 * longer than 10 bytes or beyond 64 bits. */
bool pb_decode_varint(const uint8_t **pos, const uint8_t *end, uint64_t *out);

/* STRAND_E_MALFORMED_MODEL naming `name` when the field's wire type is not
 * `wire`. */
strand_status pb_expect(const pb_field *field, pb_wire wire, const char *name);

/* Scalar accessors; each checks the wire type (and range) and names `name`. */
strand_status pb_get_int64(const pb_field *field, const char *name, int64_t *out);
strand_status pb_get_int32(const pb_field *field, const char *name, int32_t *out);
strand_status pb_get_float(const pb_field *field, const char *name, float *out);

/* A repeated scalar field appears packed (one LEN field holding elements of
 * wire type `element`) or unpacked (one element per field); both may mix.
 * Adds the number of elements in this occurrence to *count after checking
 * that the payload is whole. `element` is VARINT, I32 or I64. */
strand_status pb_repeated_count(const pb_field *field, pb_wire element, const char *name,
                                size_t *count);
/* Iterates over the elements of one occurrence already checked by
 * pb_repeated_count. For I32 elements the raw 32 bits are given, for I64 the
 * raw 64 bits. Never reads outside the field. */
typedef struct pb_elements {
  const uint8_t *pos, *end;
  pb_wire element;
  bool single;
  uint64_t value;
} pb_elements;
void pb_elements_init(pb_elements *it, const pb_field *field, pb_wire element);
bool pb_elements_next(pb_elements *it, uint64_t *out);

/* ---- element types ----------------------------------------------------- */

/* ONNX TensorProto.DataType numbers strand has no dtype for. */
#define ONNX_DTYPE_STRING 8

/* The strand dtype for an ONNX TensorProto.DataType; false when strand has
 * none (strings, complex, 8/4/2-bit floats and integers). */
bool onnx_dtype_from_onnx(int64_t onnx_type, strand_dtype *out);
/* Static readable name of an ONNX data type ("string", "complex64"). */
const char *onnx_dtype_onnx_name(int64_t onnx_type);

/* ---- the parse tree (onnx_model.c, onnx_tensor.c) ---------------------- */

struct onnx_graph;

/* Where a tensor's bytes live. */
typedef enum onnx_storage {
  ONNX_STORAGE_NONE = 0,   /* no elements */
  ONNX_STORAGE_MAPPED,     /* inside the model bytes or an external file: zero copy */
  ONNX_STORAGE_COPIED,     /* copied for alignment (WEIGHTS) */
  ONNX_STORAGE_CONVERTED,  /* decoded from typed fields (WEIGHTS) */
  ONNX_STORAGE_COMPUTED    /* made at load (constant folding), in the arena */
} onnx_storage;

typedef struct onnx_tensor {
  const char *name; /* "" when absent */
  strand_dtype dtype;
  size_t rank;           /* <= STRAND_MAX_RANK */
  const int64_t *dims;   /* rank entries, each >= 0 */
  size_t count;          /* elements; 1 for rank 0 */
  size_t byte_size;      /* count * dtype size */
  const void *data;      /* aligned to the element size; NULL when byte_size is 0 */
  onnx_storage storage;
  bool external;         /* data came from an external file */
} onnx_tensor;

typedef struct onnx_dim {
  int64_t value;     /* >= 0 when known, -1 otherwise */
  const char *param; /* symbolic name, or NULL */
} onnx_dim;

/* A ValueInfoProto whose type, when present, is a tensor type (other types
 * are refused as unsupported while parsing). */
typedef struct onnx_value_info {
  const char *name;
  strand_dtype dtype; /* UNDEFINED when not given */
  bool has_shape;     /* false: rank unknown */
  size_t rank;
  onnx_dim *dims;
} onnx_value_info;

/* AttributeProto.AttributeType numbers. */
typedef enum onnx_attr_type {
  ONNX_ATTR_UNDEFINED = 0,
  ONNX_ATTR_FLOAT = 1,
  ONNX_ATTR_INT = 2,
  ONNX_ATTR_STRING = 3,
  ONNX_ATTR_TENSOR = 4,
  ONNX_ATTR_GRAPH = 5,
  ONNX_ATTR_FLOATS = 6,
  ONNX_ATTR_INTS = 7,
  ONNX_ATTR_STRINGS = 8,
  ONNX_ATTR_TENSORS = 9,
  ONNX_ATTR_GRAPHS = 10,
  ONNX_ATTR_SPARSE_TENSOR = 11,
  ONNX_ATTR_SPARSE_TENSORS = 12,
  ONNX_ATTR_TYPE_PROTO = 13,
  ONNX_ATTR_TYPE_PROTOS = 14
} onnx_attr_type;

/* Static upper-case name ("INTS"); "UNKNOWN" outside the enum. */
const char *onnx_attr_type_name(int type);

typedef struct onnx_bytes {
  const char *data; /* NUL-terminated copy (may hold NULs inside) */
  size_t size;
} onnx_bytes;

typedef struct onnx_attr {
  const char *name;
  onnx_attr_type type;
  float f;
  int64_t i;
  onnx_bytes s;
  onnx_tensor *t;
  struct onnx_graph *g;
  size_t count; /* elements of the list field `type` names */
  float *floats;
  int64_t *ints;
  onnx_bytes *strings;
  onnx_tensor *tensors;
  struct onnx_graph *graphs;
} onnx_attr;

typedef struct onnx_node {
  const char *name;    /* "" when absent */
  const char *op_type;
  const char *domain;  /* "" for the default domain (also when the file says "ai.onnx") */
  size_t index;        /* position in the graph's node list */
  size_t n_inputs;
  const char **inputs; /* "" marks an absent optional input */
  size_t n_outputs;
  const char **outputs;
  size_t n_attrs;
  onnx_attr *attrs;
} onnx_node;

typedef struct onnx_graph {
  const char *name;
  size_t depth; /* 0 for the main graph */
  size_t n_nodes;
  onnx_node *nodes;
  size_t n_initializers;
  onnx_tensor *initializers;
  size_t n_inputs;
  onnx_value_info *inputs;
  size_t n_outputs;
  onnx_value_info *outputs;
  size_t n_value_info;
  onnx_value_info *value_info;
} onnx_graph;

typedef struct onnx_opset {
  const char *domain; /* "" for the default domain (also for "ai.onnx") */
  int64_t version;
} onnx_opset;

typedef struct onnx_model {
  int64_t ir_version;
  const char *producer_name;
  const char *producer_version;
  const char *domain;
  int64_t model_version;
  size_t n_opsets;
  onnx_opset *opsets;
  size_t n_functions; /* model-local functions: counted, not read */
  onnx_graph *graph;
} onnx_model;

/* ---- parsing ----------------------------------------------------------- */

typedef struct onnx_external onnx_external;

/* The state of one parse. Fill arena, base, size and dir; zero the rest. */
typedef struct onnx_parser {
  onnx_arena *arena;
  const uint8_t *base; /* the bytes being parsed; must outlive the arena's use */
  size_t size;
  const char *dir;     /* real path of the directory external data is confined
                          to; NULL refuses external data */
  onnx_external *externals; /* files mapped so far, by resolved path */
  size_t depth;
} onnx_parser;

/* Parses the whole buffer as a ModelProto. Everything lands in p->arena. */
strand_status onnx_parse_model(onnx_parser *p, onnx_model **out);

/* Parses the TensorProto message `r` reads (within p->base) into `out`.
 * Messages name the tensor when it has a name; the caller adds where it
 * sits ("graph "main" initializer 3"). */
strand_status onnx_parse_tensor(onnx_parser *p, const pb_reader *r, onnx_tensor *out);

/* Parses a ValueInfoProto whose type, if any, must be a tensor type. */
strand_status onnx_parse_value_info(onnx_parser *p, const pb_reader *r, onnx_value_info *out);

/* Resolves an external-data `location` relative to `dir` (a real path) and
 * checks that it stays inside: no absolute path, no ".." component, and no
 * symbolic link leading out. On success *out is an arena copy of the
 * resolved real path. STRAND_E_MALFORMED_MODEL for an escape attempt,
 * STRAND_E_IO when the file cannot be resolved. */
strand_status onnx_resolve_external(onnx_arena *arena, const char *dir, const char *location,
                                    char **out);

/* The real path of the directory holding `path`, as an arena string. */
strand_status onnx_directory_of(onnx_arena *arena, const char *path, char **out);

/* Adds context to the calling thread's message for an error leaving a graph
 * at nesting `depth` (0: the main graph), as strand__fail_context does, but
 * elides levels between the innermost ones and the main graph once the
 * message is long, so that deep nesting cannot push the cause out of it. */
strand_status onnx_context(strand_status status, size_t depth, const char *fmt, ...)
    STRAND_PRINTF(3, 4);

/* Formats errno as text into buf (thread-safe strerror). */
const char *onnx_strerror(int error, char *buf, size_t size);

#endif /* STRAND_ONNX_INTERNAL_H */
