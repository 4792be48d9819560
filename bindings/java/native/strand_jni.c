/*
 * strand_jni.c — the native half of strand's JVM binding (class dev.strand.Native).
 *
 * Each entry point is a thin translation: Java arrays in, one or a few
 * strand.h calls, Java values or a dev.strand.StrandException out. Handles
 * travel as jlong. Lifetimes are the Java side's business: it never passes a
 * handle whose reference it has dropped (dev.strand.StrandObject counts the
 * calls in flight), so this file only owns the short-lived JNI references it
 * makes. Text crosses as UTF-8 byte arrays ending in NUL, never as modified
 * UTF-8, so that names and paths outside the BMP survive.
 *
 * Threads. Every entry point may run on any number of Java threads at once
 * (strand's contract: any thread, any time). Two kinds of call come from
 * threads the JVM may not know:
 *   - the release callback of a tensor that wraps a direct ByteBuffer runs on
 *     whichever thread drops the tensor's last reference;
 *   - dispatcher tasks run on the dispatcher's own thread.
 * Both attach their thread to the JVM as a daemon when it is not attached
 * yet; such a thread is detached when it exits (a pthread key destructor).
 */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strand.h"

#define EXPORT JNIEXPORT

/* Bumped whenever the Java/native interface changes; the Java side refuses
 * a library with another value. */
#define BINDING_ABI 5

/* Inputs or outputs of one run held on the stack; more use the heap. */
#define STACK_VALUES 16

_Static_assert(STRAND_KIND_COUNT == 5, "dev.strand.ObjectKind and MemoryStats list five object kinds");
_Static_assert(STRAND_MEMORY_CATEGORY_COUNT == 4, "Strand.MemoryStats assumes four categories");

static JavaVM *java_vm;
static jclass strand_exception_class;
static jmethodID strand_exception_init;   /* (int status, String name, String message) */
static jclass value_info_class;
static jmethodID value_info_init;         /* (String, int, boolean, long[], String[]) */
static jclass leak_site_class;
static jmethodID leak_site_init;          /* (int, long, long, boolean, String, String) */
static jmethodID list_add;                /* java.util.List.add(Object) */
static jmethodID task_run;                /* dev.strand.Dispatcher$Task.runOnDispatcher() */
static jclass string_class;
static jmethodID string_from_bytes;       /* String(byte[], String charsetName) */
static jstring utf8_name;                 /* "UTF-8", a global reference */

static pthread_key_t detach_key;
static pthread_once_t detach_key_once = PTHREAD_ONCE_INIT;

/* ---- threads the JVM does not know --------------------------------------------- */

static void detach_at_exit(void *vm) {
  JavaVM *jvm = vm;
  (*jvm)->DetachCurrentThread(jvm);
}

static void make_detach_key(void) { pthread_key_create(&detach_key, detach_at_exit); }

/* The calling thread's JNIEnv, attaching the thread (as a daemon named `name`)
 * when the JVM does not know it. NULL when the JVM is gone or refuses. */
static JNIEnv *attach_current_thread(const char *name) {
  JNIEnv *env = NULL;
  if (!java_vm) return NULL;
  jint rc = (*java_vm)->GetEnv(java_vm, (void **)&env, JNI_VERSION_1_8);
  if (rc == JNI_OK) return env;
  if (rc != JNI_EDETACHED) return NULL;
  JavaVMAttachArgs args = {JNI_VERSION_1_8, (char *)name, NULL};
  if ((*java_vm)->AttachCurrentThreadAsDaemon(java_vm, (void **)&env, &args) != JNI_OK)
    return NULL;
  pthread_once(&detach_key_once, make_detach_key);
  pthread_setspecific(detach_key, java_vm);
  return env;
}

/* ---- load and unload --------------------------------------------------------- */

static jclass global_class(JNIEnv *env, const char *name) {
  jclass local = (*env)->FindClass(env, name);
  if (!local) return NULL;
  jclass global = (*env)->NewGlobalRef(env, local);
  (*env)->DeleteLocalRef(env, local);
  return global;
}

EXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
  (void)reserved;
  JNIEnv *env;
  if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
  java_vm = vm;
  if (!(strand_exception_class = global_class(env, "dev/strand/StrandException")) ||
      !(strand_exception_init = (*env)->GetMethodID(env, strand_exception_class, "<init>",
                                                    "(ILjava/lang/String;Ljava/lang/String;)V")) ||
      !(value_info_class = global_class(env, "dev/strand/ValueInfo")) ||
      !(value_info_init = (*env)->GetMethodID(env, value_info_class, "<init>",
                                              "(Ljava/lang/String;IZ[J[Ljava/lang/String;)V")) ||
      !(leak_site_class = global_class(env, "dev/strand/NativeLeakSite")) ||
      !(leak_site_init = (*env)->GetMethodID(env, leak_site_class, "<init>",
                                             "(IJJZLjava/lang/String;Ljava/lang/String;)V")) ||
      !(string_class = global_class(env, "java/lang/String")) ||
      !(string_from_bytes = (*env)->GetMethodID(env, string_class, "<init>",
                                                "([BLjava/lang/String;)V")))
    return JNI_ERR;
  jclass list = (*env)->FindClass(env, "java/util/List");
  jclass task = (*env)->FindClass(env, "dev/strand/Dispatcher$Task");
  if (!list || !task) return JNI_ERR;
  list_add = (*env)->GetMethodID(env, list, "add", "(Ljava/lang/Object;)Z");
  task_run = (*env)->GetMethodID(env, task, "runOnDispatcher", "()V");
  jstring name = (*env)->NewStringUTF(env, "UTF-8");
  if (!list_add || !task_run || !name) return JNI_ERR;
  utf8_name = (*env)->NewGlobalRef(env, name);
  return utf8_name ? JNI_VERSION_1_8 : JNI_ERR;
}

/* ---- conversions and errors ----------------------------------------------------- */

static void *to_pointer(jlong handle) { return (void *)(intptr_t)handle; }
static jlong to_handle(const void *pointer) { return (jlong)(intptr_t)pointer; }

/* A Java String from UTF-8 text (not modified UTF-8). NULL with an exception
 * pending when the JVM is out of memory. */
static jstring new_string(JNIEnv *env, const char *text) {
  if (!text) text = "";
  size_t length = strlen(text);
  int ascii = 1;
  for (size_t i = 0; i < length && ascii; i++) ascii = (unsigned char)text[i] < 0x80;
  if (ascii) return (*env)->NewStringUTF(env, text);
  if (length > INT32_MAX) length = INT32_MAX;
  jbyteArray bytes = (*env)->NewByteArray(env, (jsize)length);
  if (!bytes) return NULL;
  (*env)->SetByteArrayRegion(env, bytes, 0, (jsize)length, (const jbyte *)text);
  jstring s = (*env)->NewObject(env, string_class, string_from_bytes, bytes, utf8_name);
  (*env)->DeleteLocalRef(env, bytes);
  return s;
}

/* Throws StrandException for `status`, with this thread's strand message. */
static void throw_status(JNIEnv *env, strand_status status) {
  /* Read the message first: the calls below do not touch strand, but keep it
   * that way by copying nothing strand could overwrite. */
  jstring message = new_string(env, strand_errmsg());
  if (!message) return;
  jstring name = (*env)->NewStringUTF(env, strand_status_name(status));
  if (!name) return;
  jobject error = (*env)->NewObject(env, strand_exception_class, strand_exception_init,
                                    (jint)status, name, message);
  if (error) (*env)->Throw(env, error);
}

static void throw_named(JNIEnv *env, const char *class_name, const char *message) {
  jclass c = (*env)->FindClass(env, class_name);
  if (c) (*env)->ThrowNew(env, c, message);
}

static void throw_illegal_argument(JNIEnv *env, const char *message) {
  throw_named(env, "java/lang/IllegalArgumentException", message);
}

/* A NUL-terminated copy of a byte[] that the Java side ended with 0; free
 * with free(). NULL (with an exception pending) on failure. */
static char *c_string(JNIEnv *env, jbyteArray bytes) {
  if (!bytes) {
    throw_named(env, "java/lang/NullPointerException", "text is null");
    return NULL;
  }
  jsize length = (*env)->GetArrayLength(env, bytes);
  if (length < 1) {
    throw_illegal_argument(env, "text is not NUL-terminated");
    return NULL;
  }
  char *text = malloc((size_t)length);
  if (!text) {
    throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: copying a string");
    return NULL;
  }
  (*env)->GetByteArrayRegion(env, bytes, 0, length, (jbyte *)text);
  text[length - 1] = '\0';
  return text;
}

/* Copies a Java long[] shape to `dims`; 0 on success, -1 with an exception. */
static int read_shape(JNIEnv *env, jlongArray shape, int64_t dims[STRAND_MAX_RANK],
                      size_t *rank) {
  jsize n = shape ? (*env)->GetArrayLength(env, shape) : 0;
  if (n > STRAND_MAX_RANK) {
    throw_illegal_argument(env, "the shape has more dimensions than strand allows (16)");
    return -1;
  }
  if (n) (*env)->GetLongArrayRegion(env, shape, 0, n, (jlong *)dims);
  *rank = (size_t)n;
  return 0;
}

/* long[] { dtype, byte size, rank, dims... } describing a tensor. */
static jlongArray tensor_info(JNIEnv *env, const strand_tensor *tensor) {
  strand_dtype dtype;
  const int64_t *dims;
  size_t rank, bytes;
  strand_status st = strand_tensor_dtype(tensor, &dtype);
  if (!st) st = strand_tensor_shape(tensor, &dims, &rank);
  if (!st) st = strand_tensor_byte_size(tensor, &bytes);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jlong head[3] = {(jlong)dtype, (jlong)bytes, (jlong)rank};
  jlongArray info = (*env)->NewLongArray(env, (jsize)(3 + rank));
  if (!info) return NULL;
  (*env)->SetLongArrayRegion(env, info, 0, 3, head);
  if (rank) (*env)->SetLongArrayRegion(env, info, 3, (jsize)rank, (const jlong *)dims);
  return info;
}

/* ---- library-wide ----------------------------------------------------------------- */

EXPORT jint JNICALL Java_dev_strand_Native_abiVersion(JNIEnv *env, jclass cls) {
  return BINDING_ABI;
}

EXPORT jstring JNICALL Java_dev_strand_Native_version(JNIEnv *env, jclass cls) {
  return new_string(env, strand_version());
}

EXPORT jint JNICALL Java_dev_strand_Native_versionNumber(JNIEnv *env, jclass cls) {
  return (jint)strand_version_number();
}

EXPORT jstring JNICALL Java_dev_strand_Native_statusName(JNIEnv *env, jclass cls, jint status) {
  return new_string(env, strand_status_name((strand_status)status));
}

EXPORT jstring JNICALL Java_dev_strand_Native_dtypeName(JNIEnv *env, jclass cls, jint dtype) {
  return new_string(env, strand_dtype_name((strand_dtype)dtype));
}

/* long[19]: live bytes by category (4), peak bytes by category (4), total
 * live, total peak, limit, live objects by kind (STRAND_KIND_COUNT: 5), total
 * live objects, allocations, failed allocations. */
EXPORT jlongArray JNICALL Java_dev_strand_Native_memoryStats(JNIEnv *env, jclass cls) {
  strand_memory_stats s = {.struct_size = sizeof s};
  strand_status st = strand_memory_get_stats(&s);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jlong v[11 + STRAND_KIND_COUNT + 3];
  size_t n = 0;
  for (int i = 0; i < STRAND_MEMORY_CATEGORY_COUNT; i++) v[n++] = (jlong)s.live_bytes[i];
  for (int i = 0; i < STRAND_MEMORY_CATEGORY_COUNT; i++) v[n++] = (jlong)s.peak_bytes[i];
  v[n++] = (jlong)s.total_live_bytes;
  v[n++] = (jlong)s.total_peak_bytes;
  v[n++] = (jlong)s.limit_bytes;
  for (int i = 0; i < STRAND_KIND_COUNT; i++) v[n++] = (jlong)s.live_objects[i];
  v[n++] = (jlong)s.total_live_objects;
  v[n++] = (jlong)s.allocations;
  v[n++] = (jlong)s.failed_allocations;
  jlongArray out = (*env)->NewLongArray(env, (jsize)n);
  if (out) (*env)->SetLongArrayRegion(env, out, 0, (jsize)n, v);
  return out;
}

EXPORT void JNICALL Java_dev_strand_Native_setMemoryLimit(JNIEnv *env, jclass cls, jlong bytes) {
  strand_memory_set_limit((uint64_t)bytes);
}

EXPORT void JNICALL Java_dev_strand_Native_resetMemoryPeaks(JNIEnv *env, jclass cls) {
  strand_memory_reset_peaks();
}

EXPORT jlong JNICALL Java_dev_strand_Native_parseBytes(JNIEnv *env, jclass cls, jbyteArray text) {
  char *s = c_string(env, text);
  if (!s) return 0;
  uint64_t bytes = 0;
  strand_status st = strand_parse_bytes(s, &bytes);
  free(s);
  if (st) throw_status(env, st);
  return (jlong)bytes;
}

EXPORT void JNICALL Java_dev_strand_Native_setLeakLevel(JNIEnv *env, jclass cls, jint level,
                                                        jint interval) {
  strand_status st = strand_leak_set_level((strand_leak_level)level, (uint32_t)interval);
  if (st) throw_status(env, st);
}

EXPORT jint JNICALL Java_dev_strand_Native_leakLevel(JNIEnv *env, jclass cls) {
  return (jint)strand_leak_get_level();
}

/* Sets (bytes ending in NUL) or clears (null) the calling thread's origin. */
EXPORT void JNICALL Java_dev_strand_Native_setOrigin(JNIEnv *env, jclass cls, jbyteArray text) {
  char *s = NULL;
  if (text && !(s = c_string(env, text))) return;
  strand_status st = strand_leak_set_origin(s);
  free(s);
  if (st) throw_status(env, st);
}

typedef struct leak_visit {
  JNIEnv *env;
  jobject list;
} leak_visit;

static int visit_leak_site(const strand_leak_site *site, void *context) {
  leak_visit *v = context;
  JNIEnv *env = v->env;
  jstring trace = new_string(env, site->trace);
  jstring origin = trace ? new_string(env, site->origin) : NULL;
  if (!origin) return 1;
  jobject item = (*env)->NewObject(env, leak_site_class, leak_site_init, (jint)site->kind,
                                   (jlong)site->count, (jlong)site->bytes,
                                   (jboolean)(site->traced != 0), trace, origin);
  if (item) (*env)->CallBooleanMethod(env, v->list, list_add, item);
  (*env)->DeleteLocalRef(env, trace);
  (*env)->DeleteLocalRef(env, origin);
  if (item) (*env)->DeleteLocalRef(env, item);
  return (*env)->ExceptionCheck(env) ? 1 : 0;
}

/* Appends one dev.strand.NativeLeakSite per creation site to `list`. */
EXPORT void JNICALL Java_dev_strand_Native_leakReport(JNIEnv *env, jclass cls, jobject list) {
  leak_visit v = {env, list};
  strand_status st = strand_leak_report(visit_leak_site, &v);
  if (st && !(*env)->ExceptionCheck(env)) throw_status(env, st);
}

EXPORT jlong JNICALL Java_dev_strand_Native_misuseCount(JNIEnv *env, jclass cls) {
  return (jlong)strand_misuse_count();
}

EXPORT void JNICALL Java_dev_strand_Native_setLogLevel(JNIEnv *env, jclass cls, jint level) {
  strand_status st = strand_log_set_level((strand_log_level)level);
  if (st) throw_status(env, st);
}

EXPORT jint JNICALL Java_dev_strand_Native_logLevel(JNIEnv *env, jclass cls) {
  return (jint)strand_log_get_level();
}

EXPORT void JNICALL Java_dev_strand_Native_setThreadBudget(JNIEnv *env, jclass cls,
                                                           jint threads) {
  strand_status st = strand_threads_set_budget((unsigned)threads);
  if (st) throw_status(env, st);
}

EXPORT jint JNICALL Java_dev_strand_Native_threadBudget(JNIEnv *env, jclass cls) {
  return (jint)strand_threads_get_budget();
}

/* ---- releasing (every kind) ------------------------------------------------------- */

static void release_kind(int kind, void *handle) {
  switch (kind) {
  case STRAND_KIND_TENSOR: strand_tensor_release(handle); break;
  case STRAND_KIND_MODEL: strand_model_release(handle); break;
  case STRAND_KIND_SESSION: strand_session_release(handle); break;
  case STRAND_KIND_DISPATCHER: strand_dispatcher_release(handle); break;
  case STRAND_KIND_CANCEL_TOKEN: strand_cancel_token_release(handle); break;
  default: break;
  }
}

/* Adds one reference to a handle of `kind` (a strand_kind value). */
EXPORT void JNICALL Java_dev_strand_Native_retain(JNIEnv *env, jclass cls, jint kind,
                                                  jlong handle) {
  void *h = to_pointer(handle);
  strand_status st = STRAND_E_INVALID_ARGUMENT;
  switch (kind) {
  case STRAND_KIND_TENSOR: st = strand_tensor_retain(h); break;
  case STRAND_KIND_MODEL: st = strand_model_retain(h); break;
  case STRAND_KIND_SESSION: st = strand_session_retain(h); break;
  case STRAND_KIND_DISPATCHER: st = strand_dispatcher_retain(h); break;
  case STRAND_KIND_CANCEL_TOKEN: st = strand_cancel_token_retain(h); break;
  default: break;
  }
  if (st) throw_status(env, st);
}

/* Drops one reference to a handle of `kind` (a strand_kind value). */
EXPORT void JNICALL Java_dev_strand_Native_release(JNIEnv *env, jclass cls, jint kind,
                                                   jlong handle) {
  release_kind(kind, to_pointer(handle));
}

typedef struct foreign_release {
  int kind;
  void *handle;
} foreign_release;

static void *release_in_thread(void *arg) {
  foreign_release *r = arg;
  release_kind(r->kind, r->handle);
  return NULL;
}

/* Testing hook: drops the reference on a new thread that the JVM does not
 * know, and waits for it. Returns false when no thread could be started
 * (the reference is then dropped here). */
EXPORT jboolean JNICALL Java_dev_strand_Native_releaseOnForeignThread(JNIEnv *env, jclass cls,
                                                                      jint kind, jlong handle) {
  foreign_release r = {kind, to_pointer(handle)};
  pthread_t thread;
  if (pthread_create(&thread, NULL, release_in_thread, &r) != 0) {
    release_kind(kind, r.handle);
    return JNI_FALSE;
  }
  pthread_join(thread, NULL);
  return JNI_TRUE;
}

/* ---- tensors ---------------------------------------------------------------------- */

/* The element type of a primitive Java array, as dev.strand.Native.arrayKind
 * names it. */
enum {
  ARRAY_BYTE,
  ARRAY_SHORT,
  ARRAY_INT,
  ARRAY_LONG,
  ARRAY_FLOAT,
  ARRAY_DOUBLE,
  ARRAY_BOOLEAN,
};

/* Copies between a tensor's data and a primitive Java array of `byte_count`
 * bytes whose element type is `kind` (the Java side checked that it suits
 * the tensor's dtype). One JNI region call: no critical section, which
 * would cost a second call and hold up the garbage collector. */
static int copy_array(JNIEnv *env, strand_tensor *tensor, jarray array, jint kind,
                      jlong byte_count, int into_tensor) {
  size_t bytes;
  void *data;
  strand_status st = strand_tensor_byte_size(tensor, &bytes);
  if (!st) st = strand_tensor_data(tensor, &data);
  if (st) {
    throw_status(env, st);
    return -1;
  }
  if ((uint64_t)byte_count != bytes) {
    throw_illegal_argument(env, "the array's size differs from the tensor's");
    return -1;
  }
  if (!bytes) return 0;
#define COPY(Type, type)                                                              \
  do {                                                                                \
    jsize n = (jsize)(bytes / sizeof(type));                                          \
    if (into_tensor) (*env)->Get##Type##ArrayRegion(env, array, 0, n, (type *)data);  \
    else (*env)->Set##Type##ArrayRegion(env, array, 0, n, (const type *)data);        \
  } while (0)
  switch (kind) {
  case ARRAY_BYTE: COPY(Byte, jbyte); break;
  case ARRAY_SHORT: COPY(Short, jshort); break;
  case ARRAY_INT: COPY(Int, jint); break;
  case ARRAY_LONG: COPY(Long, jlong); break;
  case ARRAY_FLOAT: COPY(Float, jfloat); break;
  case ARRAY_DOUBLE: COPY(Double, jdouble); break;
  case ARRAY_BOOLEAN: COPY(Boolean, jboolean); break;
  default: throw_illegal_argument(env, "not a primitive array"); return -1;
  }
#undef COPY
  return (*env)->ExceptionCheck(env) ? -1 : 0;
}

/* A new tensor of `dtype` and `shape`, filled from `array` (byte_count bytes)
 * or zero-filled when `array` is null. */
EXPORT jlong JNICALL Java_dev_strand_Native_tensorCreate(JNIEnv *env, jclass cls, jint dtype,
                                                         jlongArray shape, jarray array,
                                                         jint kind, jlong byte_count) {
  int64_t dims[STRAND_MAX_RANK];
  size_t rank;
  if (read_shape(env, shape, dims, &rank)) return 0;
  strand_tensor *tensor;
  strand_status st = strand_tensor_create((strand_dtype)dtype, dims, rank, &tensor);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  if (array && copy_array(env, tensor, array, kind, byte_count, 1)) {
    strand_tensor_release(tensor);
    return 0;
  }
  return to_handle(tensor);
}

/* Runs when the last reference to a tensor wrapping a direct ByteBuffer is
 * dropped, on that thread (any thread, possibly one the JVM does not know):
 * lets the buffer go. */
static void release_buffer(void *data, void *context) {
  (void)data;
  JNIEnv *env = attach_current_thread("strand-release");
  if (env) (*env)->DeleteGlobalRef(env, (jobject)context);
  /* No JVM (it has shut down): the reference dies with it. */
}

/* A tensor over `length` bytes of a direct ByteBuffer from byte `offset`,
 * without copying; the tensor keeps the buffer alive until its last
 * reference is dropped. */
EXPORT jlong JNICALL Java_dev_strand_Native_tensorWrap(JNIEnv *env, jclass cls, jint dtype,
                                                       jlongArray shape, jobject buffer,
                                                       jlong offset, jlong length) {
  int64_t dims[STRAND_MAX_RANK];
  size_t rank;
  if (read_shape(env, shape, dims, &rank)) return 0;
  char *base = (*env)->GetDirectBufferAddress(env, buffer);
  jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if (!base || capacity < 0) {
    throw_illegal_argument(env, "the buffer is not a direct buffer");
    return 0;
  }
  if (offset < 0 || length < 0 || offset > capacity || length > capacity - offset) {
    throw_illegal_argument(env, "the byte range lies outside the buffer");
    return 0;
  }
  jobject keep = (*env)->NewGlobalRef(env, buffer);
  if (!keep) {
    throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: no global reference left");
    return 0;
  }
  strand_tensor *tensor;
  strand_status st = strand_tensor_wrap((strand_dtype)dtype, dims, rank, base + offset,
                                        (size_t)length, release_buffer, keep, &tensor);
  if (st) {
    (*env)->DeleteGlobalRef(env, keep); /* the callback never runs on failure */
    throw_status(env, st);
    return 0;
  }
  return to_handle(tensor);
}

EXPORT jlongArray JNICALL Java_dev_strand_Native_tensorInfo(JNIEnv *env, jclass cls,
                                                            jlong handle) {
  return tensor_info(env, to_pointer(handle));
}

EXPORT void JNICALL Java_dev_strand_Native_tensorRead(JNIEnv *env, jclass cls, jlong handle,
                                                      jarray array, jint kind, jlong byte_count) {
  copy_array(env, to_pointer(handle), array, kind, byte_count, 0);
}

EXPORT void JNICALL Java_dev_strand_Native_tensorWrite(JNIEnv *env, jclass cls, jlong handle,
                                                       jarray array, jint kind, jlong byte_count) {
  copy_array(env, to_pointer(handle), array, kind, byte_count, 1);
}

/* Copies the tensor's bytes to (or from) a direct buffer at `offset`. */
EXPORT void JNICALL Java_dev_strand_Native_tensorCopyDirect(JNIEnv *env, jclass cls,
                                                            jlong handle, jobject buffer,
                                                            jlong offset, jboolean into_tensor) {
  strand_tensor *tensor = to_pointer(handle);
  size_t bytes;
  void *data;
  strand_status st = strand_tensor_byte_size(tensor, &bytes);
  if (!st) st = strand_tensor_data(tensor, &data);
  if (st) {
    throw_status(env, st);
    return;
  }
  char *base = (*env)->GetDirectBufferAddress(env, buffer);
  jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if (!base || offset < 0 || offset > capacity || bytes > (uint64_t)(capacity - offset)) {
    throw_illegal_argument(env, "the buffer is not direct or has too little room");
    return;
  }
  if (!bytes) return;
  if (into_tensor) memmove(data, base + offset, bytes);
  else memmove(base + offset, data, bytes);
}

EXPORT jlong JNICALL Java_dev_strand_Native_tensorReadNpy(JNIEnv *env, jclass cls,
                                                          jbyteArray path) {
  char *p = c_string(env, path);
  if (!p) return 0;
  strand_tensor *tensor;
  strand_status st = strand_tensor_read_npy(p, &tensor);
  free(p);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(tensor);
}

EXPORT void JNICALL Java_dev_strand_Native_tensorWriteNpy(JNIEnv *env, jclass cls, jlong handle,
                                                          jbyteArray path) {
  char *p = c_string(env, path);
  if (!p) return;
  strand_status st = strand_tensor_write_npy(to_pointer(handle), p);
  free(p);
  if (st) throw_status(env, st);
}

/* ---- models ----------------------------------------------------------------------- */

EXPORT jlong JNICALL Java_dev_strand_Native_modelLoad(JNIEnv *env, jclass cls, jbyteArray path) {
  char *p = c_string(env, path);
  if (!p) return 0;
  strand_model *model;
  strand_status st = strand_model_load(p, &model);
  free(p);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(model);
}

/* Loads from `length` bytes of a byte[] at `offset` (strand copies them). */
EXPORT jlong JNICALL Java_dev_strand_Native_modelLoadBytes(JNIEnv *env, jclass cls,
                                                           jbyteArray data, jint offset,
                                                           jint length) {
  jsize size = (*env)->GetArrayLength(env, data);
  if (offset < 0 || length < 0 || offset > size || length > size - offset) {
    throw_illegal_argument(env, "the byte range lies outside the array");
    return 0;
  }
  /* Not a critical region: parsing may take a while, and the GC must not
   * wait for it. One extra copy of the file is the price. */
  jbyte *copy = malloc(length ? (size_t)length : 1);
  if (!copy) {
    throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: copying the model");
    return 0;
  }
  (*env)->GetByteArrayRegion(env, data, offset, length, copy);
  strand_model *model;
  strand_status st = strand_model_load_buffer(copy, (size_t)length, &model);
  free(copy);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(model);
}

/* Loads from `length` bytes of a direct buffer at `offset`. */
EXPORT jlong JNICALL Java_dev_strand_Native_modelLoadDirect(JNIEnv *env, jclass cls,
                                                            jobject buffer, jlong offset,
                                                            jlong length) {
  char *base = (*env)->GetDirectBufferAddress(env, buffer);
  jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if (!base || offset < 0 || length < 0 || offset > capacity || length > capacity - offset) {
    throw_illegal_argument(env, "the buffer is not direct, or the range lies outside it");
    return 0;
  }
  strand_model *model;
  strand_status st = strand_model_load_buffer(base + offset, (size_t)length, &model);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(model);
}

static jobject value_info(JNIEnv *env, const strand_value_info *info) {
  jstring name = new_string(env, info->name);
  if (!name) return NULL;
  jlongArray dims = (*env)->NewLongArray(env, (jsize)info->rank);
  if (!dims) return NULL;
  if (info->rank)
    (*env)->SetLongArrayRegion(env, dims, 0, (jsize)info->rank, (const jlong *)info->dims);
  jobjectArray names = (*env)->NewObjectArray(env, (jsize)info->rank, string_class, NULL);
  if (!names) return NULL;
  for (size_t i = 0; i < info->rank; i++) {
    if (!info->dim_names || !info->dim_names[i]) continue;
    jstring dim = new_string(env, info->dim_names[i]);
    if (!dim) return NULL;
    (*env)->SetObjectArrayElement(env, names, (jsize)i, dim);
    (*env)->DeleteLocalRef(env, dim);
  }
  jobject result = (*env)->NewObject(env, value_info_class, value_info_init, name,
                                     (jint)info->dtype, (jboolean)(info->rank_known != 0), dims,
                                     names);
  (*env)->DeleteLocalRef(env, name);
  (*env)->DeleteLocalRef(env, dims);
  (*env)->DeleteLocalRef(env, names);
  return result;
}

/* The model's inputs (or outputs) as dev.strand.ValueInfo[]. */
EXPORT jobjectArray JNICALL Java_dev_strand_Native_modelValues(JNIEnv *env, jclass cls,
                                                               jlong handle, jboolean outputs) {
  const strand_model *model = to_pointer(handle);
  size_t count;
  strand_status st = outputs ? strand_model_output_count(model, &count)
                             : strand_model_input_count(model, &count);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jobjectArray result = (*env)->NewObjectArray(env, (jsize)count, value_info_class, NULL);
  if (!result) return NULL;
  for (size_t i = 0; i < count; i++) {
    strand_value_info info;
    st = outputs ? strand_model_output(model, i, &info) : strand_model_input(model, i, &info);
    if (st) {
      throw_status(env, st);
      return NULL;
    }
    jobject item = value_info(env, &info);
    if (!item) return NULL;
    (*env)->SetObjectArrayElement(env, result, (jsize)i, item);
    (*env)->DeleteLocalRef(env, item);
  }
  return result;
}

/* String[] { producer name, producer version, graph name }. */
EXPORT jobjectArray JNICALL Java_dev_strand_Native_modelText(JNIEnv *env, jclass cls,
                                                             jlong handle) {
  const strand_model *model = to_pointer(handle);
  const char *text[3];
  strand_status st = strand_model_producer(model, &text[0], &text[1]);
  if (!st) st = strand_model_graph_name(model, &text[2]);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jobjectArray result = (*env)->NewObjectArray(env, 3, string_class, NULL);
  for (jsize i = 0; result && i < 3; i++) {
    jstring s = new_string(env, text[i]);
    if (!s) return NULL;
    (*env)->SetObjectArrayElement(env, result, i, s);
  }
  return result;
}

/* long[] { ir version, parameters, parameter bytes, opset count }. */
EXPORT jlongArray JNICALL Java_dev_strand_Native_modelNumbers(JNIEnv *env, jclass cls,
                                                              jlong handle) {
  const strand_model *model = to_pointer(handle);
  int64_t ir = 0;
  uint64_t parameters = 0, bytes = 0;
  size_t opsets = 0;
  strand_status st = strand_model_ir_version(model, &ir);
  if (!st) st = strand_model_parameter_count(model, &parameters, &bytes);
  if (!st) st = strand_model_opset_count(model, &opsets);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jlong v[4] = {(jlong)ir, (jlong)parameters, (jlong)bytes, (jlong)opsets};
  jlongArray result = (*env)->NewLongArray(env, 4);
  if (result) (*env)->SetLongArrayRegion(env, result, 0, 4, v);
  return result;
}

/* The domain of opset `index`; its version is returned by modelOpsetVersion. */
EXPORT jstring JNICALL Java_dev_strand_Native_modelOpsetDomain(JNIEnv *env, jclass cls,
                                                               jlong handle, jint index) {
  const char *domain;
  strand_status st = strand_model_opset_at(to_pointer(handle), (size_t)index, &domain, NULL);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  return new_string(env, domain);
}

EXPORT jlong JNICALL Java_dev_strand_Native_modelOpsetVersion(JNIEnv *env, jclass cls,
                                                              jlong handle, jint index) {
  int64_t version = 0;
  strand_status st = strand_model_opset_at(to_pointer(handle), (size_t)index, NULL, &version);
  if (st) throw_status(env, st);
  return (jlong)version;
}

/* Throws StrandException(E_UNSUPPORTED) listing the ops strand cannot run. */
EXPORT void JNICALL Java_dev_strand_Native_modelCheckSupported(JNIEnv *env, jclass cls,
                                                               jlong handle) {
  strand_status st = strand_model_check_supported(to_pointer(handle));
  if (st) throw_status(env, st);
}

/* ---- sessions --------------------------------------------------------------------- */

/* batch_delay_us arrives as the bits of a uint32_t (the Java side checked
 * the range); dispatcher is 0 for none, else a handle the Java side holds in
 * flight for the call (the session takes a reference of its own); slice_rows
 * -1 is STRAND_SLICE_OFF. */
EXPORT jlong JNICALL Java_dev_strand_Native_sessionCreate(JNIEnv *env, jclass cls, jlong model,
                                                          jint intra_op_threads,
                                                          jint batch_max_rows,
                                                          jint batch_delay_us,
                                                          jlong dispatcher, jint slice_rows) {
  strand_session_options options;
  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.intra_op_threads = (unsigned)intra_op_threads;
  options.batch_max_rows = (unsigned)batch_max_rows;
  options.batch_delay_us = (uint32_t)batch_delay_us;
  options.dispatcher = to_pointer(dispatcher);
  options.slice_rows = slice_rows < 0 ? STRAND_SLICE_OFF : (unsigned)slice_rows;
  strand_session *session;
  strand_status st = strand_session_create(to_pointer(model), &options, &session);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(session);
}

/* The session's model, with a new reference for the caller. */
EXPORT jlong JNICALL Java_dev_strand_Native_sessionModel(JNIEnv *env, jclass cls, jlong handle) {
  strand_model *model;
  strand_status st = strand_session_model(to_pointer(handle), &model);
  if (!st) st = strand_model_retain(model);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(model);
}

/* Longs that describe one output in a run's `out` array: { handle, dtype,
 * byte size, rank, dims... }, room for the largest rank. */
#define OUT_INFO (4 + STRAND_MAX_RANK)
_Static_assert(OUT_INFO == 20, "dev.strand.Native.OUT_INFO is 20");

/* The options of a run from the Java side's translation: `token` 0 for
 * none; `nanos_left` the time left before the deadline (negative: how long
 * ago it passed), which is added to this reading of CLOCK_MONOTONIC
 * (strand's clock; the JVM's nanoTime is never assumed to be the same
 * clock); INT64_MAX for no deadline. A deadline that passed before boot
 * becomes 1 ns after it (0 would mean none). */
static void run_options(strand_run_options *o, jlong token, jlong nanos_left) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->cancel = to_pointer(token);
  if (nanos_left == INT64_MAX) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  if (nanos_left >= 0) {
    uint64_t left = (uint64_t)nanos_left;
    o->deadline_ns = left > UINT64_MAX - now ? UINT64_MAX : now + left;
  } else {
    uint64_t ago = 0u - (uint64_t)nanos_left; /* well defined for INT64_MIN too */
    o->deadline_ns = ago < now ? now - ago : 1;
  }
}

/* The run shared by sessionRun and sessionRun1 (and their WithOptions
 * forms, `options` NULL for a plain run): inputs and outputs named by
 * their index in the model's lists (the Java side resolved the names once),
 * `out_idx` NULL for every output. Writes each output's description to `out`
 * (OUT_INFO longs per output, the Java side allocated them) and returns the
 * number of longs written; -1 with an exception pending on failure, when no
 * output reference is left behind. */
static jint run_session(JNIEnv *env, strand_session *session, const strand_run_options *options,
                        size_t n_in, const jint *in_idx, const jlong *in_h, size_t n_out,
                        const jint *out_idx, jlongArray out) {
  strand_model *model;
  strand_status st = strand_session_model(session, &model);
  if (!st && !out_idx) st = strand_model_output_count(model, &n_out);
  if (st) {
    throw_status(env, st);
    return -1;
  }
  if ((size_t)(*env)->GetArrayLength(env, out) < n_out * OUT_INFO) {
    throw_illegal_argument(env, "the run's output description array is too small");
    return -1;
  }
  /* On the stack for small models, else one heap block. */
  const strand_tensor *in_t_s[STACK_VALUES];
  const char *in_names_s[STACK_VALUES], *out_names_s[STACK_VALUES];
  strand_tensor *outs_s[STACK_VALUES];
  jlong info_s[STACK_VALUES * OUT_INFO];
  const strand_tensor **in_t = in_t_s;
  const char **in_names = in_names_s, **out_names = out_names_s;
  strand_tensor **outs = outs_s;
  jlong *info = info_s;
  void *heap = NULL;
  size_t n = n_in > n_out ? n_in : n_out;
  if (n > STACK_VALUES) {
    char *p = heap = malloc(n * (4 * sizeof(void *) + OUT_INFO * sizeof(jlong)));
    if (!heap) {
      throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: run arrays");
      return -1;
    }
    info = (jlong *)p;
    p += n * OUT_INFO * sizeof(jlong);
    in_t = (const strand_tensor **)p;
    p += n * sizeof(void *);
    in_names = (const char **)p;
    p += n * sizeof(void *);
    out_names = (const char **)p;
    p += n * sizeof(void *);
    outs = (strand_tensor **)p;
  }
  jint written = -1;
  for (size_t i = 0; i < n_in; i++) {
    strand_value_info v;
    if ((st = strand_model_input(model, (size_t)in_idx[i], &v))) goto fail;
    in_names[i] = v.name;
    in_t[i] = to_pointer(in_h[i]);
  }
  for (size_t i = 0; out_idx && i < n_out; i++) {
    strand_value_info v;
    if ((st = strand_model_output(model, (size_t)out_idx[i], &v))) goto fail;
    out_names[i] = v.name;
  }
  memset(outs, 0, n_out * sizeof *outs);
  /* Plain runs keep strand_session_run's name in strand's messages. */
  if (options)
    st = strand_session_run_with_options(session, options, in_names, in_t, n_in,
                                         out_idx ? out_names : NULL, outs, n_out);
  else
    st = strand_session_run(session, in_names, in_t, n_in, out_idx ? out_names : NULL, outs,
                            n_out);
  if (st) goto fail;
  size_t at = 0;
  for (size_t i = 0; i < n_out; i++) {
    strand_dtype dtype;
    const int64_t *dims;
    size_t rank, bytes;
    strand_tensor_dtype(outs[i], &dtype);
    strand_tensor_shape(outs[i], &dims, &rank);
    strand_tensor_byte_size(outs[i], &bytes);
    info[at] = to_handle(outs[i]);
    info[at + 1] = (jlong)dtype;
    info[at + 2] = (jlong)bytes;
    info[at + 3] = (jlong)rank;
    for (size_t d = 0; d < rank; d++) info[at + 4 + d] = (jlong)dims[d];
    at += 4 + rank;
  }
  (*env)->SetLongArrayRegion(env, out, 0, (jsize)at, info);
  written = (jint)at;
  goto done;
fail:
  throw_status(env, st);
done:
  free(heap);
  return written;
}

/* sessionRun and sessionRunWithOptions: copies the Java arrays, then runs. */
static jint run_arrays(JNIEnv *env, jlong handle, const strand_run_options *options,
                       jintArray input_indices, jlongArray input_handles, jintArray output_indices,
                       jlongArray out) {
  size_t n_in = (size_t)(*env)->GetArrayLength(env, input_indices);
  size_t n_out = output_indices ? (size_t)(*env)->GetArrayLength(env, output_indices) : 0;
  if ((size_t)(*env)->GetArrayLength(env, input_handles) != n_in) {
    throw_illegal_argument(env, "input indices and tensors differ in number");
    return -1;
  }
  jint in_idx_s[STACK_VALUES], out_idx_s[STACK_VALUES];
  jlong in_h_s[STACK_VALUES];
  jint *in_idx = in_idx_s, *out_idx = out_idx_s;
  jlong *in_h = in_h_s;
  void *heap = NULL;
  size_t n = n_in > n_out ? n_in : n_out;
  if (n > STACK_VALUES) {
    char *p = heap = malloc(n * (sizeof(jlong) + 2 * sizeof(jint)));
    if (!heap) {
      throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: run arrays");
      return -1;
    }
    in_h = (jlong *)p;
    p += n * sizeof(jlong);
    in_idx = (jint *)p;
    p += n * sizeof(jint);
    out_idx = (jint *)p;
  }
  (*env)->GetIntArrayRegion(env, input_indices, 0, (jsize)n_in, in_idx);
  (*env)->GetLongArrayRegion(env, input_handles, 0, (jsize)n_in, in_h);
  if (output_indices) (*env)->GetIntArrayRegion(env, output_indices, 0, (jsize)n_out, out_idx);
  jint written = run_session(env, to_pointer(handle), options, n_in, in_idx, in_h, n_out,
                             output_indices ? out_idx : NULL, out);
  free(heap);
  return written;
}

/* Runs the session: inputs[i] is the value of the model's input
 * input_indices[i]; output_indices null asks for every output. Fills `out`
 * with, per output in order, { handle, dtype, byte size, rank, dims... }
 * (each handle one new reference for the caller) and returns the number of
 * longs written. */
EXPORT jint JNICALL Java_dev_strand_Native_sessionRun(JNIEnv *env, jclass cls, jlong handle,
                                                      jintArray input_indices,
                                                      jlongArray input_handles,
                                                      jintArray output_indices,
                                                      jlongArray out) {
  return run_arrays(env, handle, NULL, input_indices, input_handles, output_indices, out);
}

/* sessionRun for a model with one input: no arrays to read on the way in. */
EXPORT jint JNICALL Java_dev_strand_Native_sessionRun1(JNIEnv *env, jclass cls, jlong handle,
                                                       jint input_index, jlong input,
                                                       jlongArray out) {
  return run_session(env, to_pointer(handle), NULL, 1, &input_index, &input, 0, NULL, out);
}

/* sessionRun under a cancel token (0: none) and a deadline `nanos_left`
 * from now (see run_options). */
EXPORT jint JNICALL Java_dev_strand_Native_sessionRunWithOptions(
    JNIEnv *env, jclass cls, jlong handle, jintArray input_indices, jlongArray input_handles,
    jintArray output_indices, jlongArray out, jlong token, jlong nanos_left) {
  strand_run_options options;
  run_options(&options, token, nanos_left);
  return run_arrays(env, handle, &options, input_indices, input_handles, output_indices, out);
}

/* sessionRun1 with options, as sessionRunWithOptions. */
EXPORT jint JNICALL Java_dev_strand_Native_sessionRun1WithOptions(JNIEnv *env, jclass cls,
                                                                  jlong handle, jint input_index,
                                                                  jlong input, jlongArray out,
                                                                  jlong token, jlong nanos_left) {
  strand_run_options options;
  run_options(&options, token, nanos_left);
  return run_session(env, to_pointer(handle), &options, 1, &input_index, &input, 0, NULL, out);
}

/* long[15]: the fields of strand_session_stats in order. */
EXPORT jlongArray JNICALL Java_dev_strand_Native_sessionStats(JNIEnv *env, jclass cls,
                                                              jlong handle) {
  strand_session_stats s = {.struct_size = sizeof s};
  strand_status st = strand_session_get_stats(to_pointer(handle), &s);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jlong v[15] = {(jlong)s.runs,          (jlong)s.runs_failed,   (jlong)s.planning_runs,
                 (jlong)s.plans_cached,  (jlong)s.plans_evicted, (jlong)s.arenas,
                 (jlong)s.arena_bytes,   (jlong)s.weight_bytes,  (jlong)s.runs_canceled,
                 (jlong)s.batches,       (jlong)s.batched_runs,  (jlong)s.batched_rows,
                 (jlong)s.batch_wait_ns, (jlong)s.sliced_runs,  (jlong)s.slices};
  jlongArray result = (*env)->NewLongArray(env, 15);
  if (result) (*env)->SetLongArrayRegion(env, result, 0, 15, v);
  return result;
}

/* ---- per-node profile ------------------------------------------------------------ */

EXPORT void JNICALL Java_dev_strand_Native_sessionSetProfiling(JNIEnv *env, jclass cls,
                                                              jlong handle, jboolean on) {
  strand_status st = strand_session_set_profiling(to_pointer(handle), on ? 1 : 0);
  if (st) throw_status(env, st);
}

EXPORT void JNICALL Java_dev_strand_Native_sessionResetProfile(JNIEnv *env, jclass cls,
                                                              jlong handle) {
  strand_status st = strand_session_reset_profile(to_pointer(handle));
  if (st) throw_status(env, st);
}

/* The nodes' figures as long[2n] (calls, total ns per node) or, with
 * names, their name, op type and kernel as String[3n]. */
typedef struct profile_copy {
  JNIEnv *env;
  jlong *figures;       /* NULL when taking names */
  jobjectArray names;   /* NULL when taking figures */
  size_t count, room;
  int failed;
} profile_copy;

static void copy_node(const strand_node_profile *node, void *context) {
  profile_copy *c = context;
  if (c->failed) return;
  if (c->figures && c->count < c->room) {
    c->figures[2 * c->count] = (jlong)node->calls;
    c->figures[2 * c->count + 1] = (jlong)node->total_ns;
  }
  if (c->names && c->count < c->room) {
    const char *text[3] = {node->name, node->op_type, node->kernel ? node->kernel : ""};
    for (int i = 0; i < 3 && !c->failed; i++) {
      jstring s = (*c->env)->NewStringUTF(c->env, text[i]);
      if (!s) {
        c->failed = 1; /* OutOfMemoryError pending */
        break;
      }
      (*c->env)->SetObjectArrayElement(c->env, c->names, (jsize)(3 * c->count + i), s);
      (*c->env)->DeleteLocalRef(c->env, s);
    }
  }
  c->count++;
}

static void count_node(const strand_node_profile *node, void *context) {
  (void)node;
  (*(size_t *)context)++;
}

/* Nodes of the session's graph, or -1 with an exception pending. */
static jsize profile_nodes(JNIEnv *env, jlong handle) {
  size_t n = 0;
  strand_status st = strand_session_get_profile(to_pointer(handle), count_node, &n);
  if (st) {
    throw_status(env, st);
    return -1;
  }
  return (jsize)n;
}

EXPORT jlongArray JNICALL Java_dev_strand_Native_sessionProfile(JNIEnv *env, jclass cls,
                                                                jlong handle) {
  jsize n = profile_nodes(env, handle);
  if (n < 0) return NULL;
  jlong *figures = calloc((size_t)n * 2 + 1, sizeof *figures);
  if (!figures) {
    throw_named(env, "java/lang/OutOfMemoryError", "sessionProfile: no memory for the figures");
    return NULL;
  }
  profile_copy c = {env, figures, NULL, 0, (size_t)n, 0};
  strand_status st = strand_session_get_profile(to_pointer(handle), copy_node, &c);
  jlongArray result = NULL;
  if (st) {
    throw_status(env, st);
  } else {
    result = (*env)->NewLongArray(env, 2 * n);
    if (result) (*env)->SetLongArrayRegion(env, result, 0, 2 * n, figures);
  }
  free(figures);
  return result;
}

EXPORT jobjectArray JNICALL Java_dev_strand_Native_sessionProfileNames(JNIEnv *env, jclass cls,
                                                                       jlong handle) {
  jsize n = profile_nodes(env, handle);
  if (n < 0) return NULL;
  jclass string = (*env)->FindClass(env, "java/lang/String");
  if (!string) return NULL;
  jobjectArray names = (*env)->NewObjectArray(env, 3 * n, string, NULL);
  if (!names) return NULL;
  profile_copy c = {env, NULL, names, 0, (size_t)n, 0};
  strand_status st = strand_session_get_profile(to_pointer(handle), copy_node, &c);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  return c.failed ? NULL : names;
}

/* ---- cancel tokens ---------------------------------------------------------------- */

EXPORT jlong JNICALL Java_dev_strand_Native_cancelTokenCreate(JNIEnv *env, jclass cls) {
  strand_cancel_token *token;
  strand_status st = strand_cancel_token_create(&token);
  if (st) {
    throw_status(env, st);
    return 0;
  }
  return to_handle(token);
}

EXPORT void JNICALL Java_dev_strand_Native_cancelTokenCancel(JNIEnv *env, jclass cls,
                                                             jlong handle) {
  strand_status st = strand_cancel_token_cancel(to_pointer(handle));
  if (st) throw_status(env, st);
}

EXPORT void JNICALL Java_dev_strand_Native_cancelTokenReset(JNIEnv *env, jclass cls,
                                                            jlong handle) {
  strand_status st = strand_cancel_token_reset(to_pointer(handle));
  if (st) throw_status(env, st);
}

EXPORT jboolean JNICALL Java_dev_strand_Native_cancelTokenIsCanceled(JNIEnv *env, jclass cls,
                                                                     jlong handle) {
  return strand_cancel_token_is_canceled(to_pointer(handle)) ? JNI_TRUE : JNI_FALSE;
}

/* ---- dispatchers ------------------------------------------------------------------ */

/* Posted first to every dispatcher: attaches its thread under its own name,
 * so that Java stack dumps show it. */
static void attach_dispatcher_thread(void *name) {
  attach_current_thread(name);
  free(name);
}

EXPORT jlong JNICALL Java_dev_strand_Native_dispatcherCreate(JNIEnv *env, jclass cls,
                                                             jbyteArray name, jlong capacity) {
  char *thread_name = c_string(env, name);
  if (!thread_name) return 0;
  strand_dispatcher_options options;
  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.name = thread_name;
  options.queue_capacity = (size_t)capacity;
  strand_dispatcher *dispatcher;
  strand_status st = strand_dispatcher_create(&options, &dispatcher);
  if (st) {
    free(thread_name);
    throw_status(env, st);
    return 0;
  }
  /* A fresh queue has room; if the post is refused anyway, the first task
   * attaches the thread under a generic name. */
  if (strand_dispatcher_post(dispatcher, attach_dispatcher_thread, thread_name))
    free(thread_name);
  return to_handle(dispatcher);
}

/* On the dispatcher's thread: calls task.runOnDispatcher(), which catches
 * everything the Java task throws and keeps it for the caller. */
static strand_status run_task(void *arg) {
  JNIEnv *env = attach_current_thread("strand-dispatcher");
  if (!env) return STRAND_E_INTERNAL;
  (*env)->CallVoidMethod(env, (jobject)arg, task_run);
  if ((*env)->ExceptionCheck(env)) {
    /* Only what runOnDispatcher itself could not catch (a stack overflow
     * in its handler): the Java side reports the task as not completed. */
    (*env)->ExceptionClear(env);
    return STRAND_E_INTERNAL;
  }
  return STRAND_OK;
}

/* Runs task.runOnDispatcher() on the dispatcher's thread and waits for it.
 * Returns the strand status (STRAND_OK when the task ran, whatever it threw);
 * a failure to queue it (E_CANCELED, E_MISUSE) is returned, not thrown, so
 * that the Java side can tell it apart from the task's own failure. */
EXPORT jint JNICALL Java_dev_strand_Native_dispatcherRun(JNIEnv *env, jclass cls, jlong handle,
                                                         jobject task) {
  /* Local references belong to this thread; the dispatcher's needs a global. */
  jobject global = (*env)->NewGlobalRef(env, task);
  if (!global) {
    throw_named(env, "java/lang/OutOfMemoryError", "strand_jni: no global reference left");
    return STRAND_E_OUT_OF_MEMORY;
  }
  strand_status st = strand_dispatcher_run(to_pointer(handle), run_task, global);
  (*env)->DeleteGlobalRef(env, global);
  return (jint)st;
}

EXPORT jstring JNICALL Java_dev_strand_Native_lastMessage(JNIEnv *env, jclass cls) {
  return new_string(env, strand_errmsg());
}

EXPORT jboolean JNICALL Java_dev_strand_Native_dispatcherIsCurrent(JNIEnv *env, jclass cls,
                                                                   jlong handle) {
  return strand_dispatcher_is_current(to_pointer(handle)) ? JNI_TRUE : JNI_FALSE;
}

EXPORT void JNICALL Java_dev_strand_Native_dispatcherStop(JNIEnv *env, jclass cls, jlong handle,
                                                          jboolean cancel) {
  strand_status st = strand_dispatcher_stop(
      to_pointer(handle), cancel ? STRAND_DISPATCHER_CANCEL : STRAND_DISPATCHER_DRAIN);
  if (st) throw_status(env, st);
}

/* double[18]: runs, runs inline, runs canceled, posts, posts run, posts
 * refused, queue depth, peak depth, then for queue wait and run time: count,
 * p50, p90, p99, max (microseconds). */
EXPORT jdoubleArray JNICALL Java_dev_strand_Native_dispatcherStats(JNIEnv *env, jclass cls,
                                                                   jlong handle) {
  strand_dispatcher_stats s;
  strand_status st = strand_dispatcher_get_stats(to_pointer(handle), &s);
  if (st) {
    throw_status(env, st);
    return NULL;
  }
  jdouble v[18] = {(double)s.runs,          (double)s.runs_inline,      (double)s.runs_canceled,
                   (double)s.posts,         (double)s.posts_run,        (double)s.posts_refused,
                   (double)s.queue_depth,   (double)s.queue_depth_peak, (double)s.queue_wait.count,
                   s.queue_wait.p50_us,     s.queue_wait.p90_us,        s.queue_wait.p99_us,
                   s.queue_wait.max_us,     (double)s.run_time.count,   s.run_time.p50_us,
                   s.run_time.p90_us,       s.run_time.p99_us,          s.run_time.max_us};
  jdoubleArray result = (*env)->NewDoubleArray(env, 18);
  if (result) (*env)->SetDoubleArrayRegion(env, result, 0, 18, v);
  return result;
}
