/* cpu.c — what this CPU (and its OS) can run, detected once. */
#include "kernels/gemm.h"

#include "core/core_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define STRAND_X86 1
#endif

static strand__cpu_info info;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static const char *const level_names[STRAND__CPU_LEVEL_COUNT] = {"scalar", "avx2", "avx512"};

const char *strand__cpu_level_name(strand__cpu_level level) {
  if ((unsigned)level >= STRAND__CPU_LEVEL_COUNT) return "unknown";
  return level_names[level];
}

bool strand__cpu_parse_level(const char *text, strand__cpu_level *out) {
  if (!text) return false;
  for (int i = 0; i < STRAND__CPU_LEVEL_COUNT; i++)
    if (strcmp(text, level_names[i]) == 0) {
      *out = (strand__cpu_level)i;
      return true;
    }
  return false;
}

#ifdef STRAND_X86
/* XCR0: which register state the OS saves on a context switch. Only valid
 * to execute when CPUID.1:ECX.OSXSAVE is set. */
static uint64_t read_xcr0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

static void detect_isa(strand__cpu_info *out) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
  bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), fma = ecx & (1u << 12);
  if (!osxsave || !avx) return;
  uint64_t xcr0 = read_xcr0();
  bool ymm_state = (xcr0 & 0x6) == 0x6;           /* SSE and AVX state */
  bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
  if (!ymm_state) return;
  out->fma = fma;
  if (__get_cpuid_max(0, NULL) < 7) return;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  out->avx2 = ebx & (1u << 5);
  if (zmm_state) {
    out->avx512f = ebx & (1u << 16);
    out->avx512dq = ebx & (1u << 17);
    out->avx512bw = ebx & (1u << 30);
    out->avx512vl = ebx & (1u << 31);
  }
}
#else
static void detect_isa(strand__cpu_info *out) { (void)out; }
#endif

/* Size in bytes of the data (or unified) cache at `level` of cpu0, from
 * sysfs; 0 when unknown. */
static size_t sysfs_cache_size(int level) {
  for (int index = 0; index < 8; index++) {
    char path[128], text[64];
    int found_level = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
    FILE *f = fopen(path, "r");
    if (!f) break;
    if (fscanf(f, "%d", &found_level) != 1) found_level = 0;
    fclose(f);
    if (found_level != level) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", index);
    f = fopen(path, "r");
    if (!f) continue;
    if (!fgets(text, sizeof text, f)) text[0] = 0;
    fclose(f);
    if (strncmp(text, "Instruction", 11) == 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    f = fopen(path, "r");
    if (!f) continue;
    unsigned long value = 0;
    char unit = 0;
    int n = fscanf(f, "%lu%c", &value, &unit);
    fclose(f);
    if (n < 1) continue;
    if (n == 2 && (unit == 'K' || unit == 'k')) value *= 1024;
    if (n == 2 && (unit == 'M' || unit == 'm')) value *= 1024 * 1024;
    return value;
  }
  return 0;
}

static size_t cache_size(int level, int sysconf_name, size_t fallback) {
  long value = sysconf_name >= 0 ? sysconf(sysconf_name) : -1;
  if (value > 0) return (size_t)value;
  size_t from_sysfs = sysfs_cache_size(level);
  return from_sysfs ? from_sysfs : fallback;
}

static void detect(void) {
  detect_isa(&info);
  if (info.avx512f && info.avx512bw && info.avx512dq && info.avx512vl && info.fma && info.avx2)
    info.hardware = STRAND__CPU_AVX512;
  else if (info.avx2 && info.fma)
    info.hardware = STRAND__CPU_AVX2;
  else
    info.hardware = STRAND__CPU_SCALAR;
  info.selected = info.hardware;

#ifdef _SC_LEVEL1_DCACHE_SIZE
  info.l1d_bytes = cache_size(1, _SC_LEVEL1_DCACHE_SIZE, 32 * 1024);
  info.l2_bytes = cache_size(2, _SC_LEVEL2_CACHE_SIZE, 512 * 1024);
  info.l3_bytes = cache_size(3, _SC_LEVEL3_CACHE_SIZE, 8 * 1024 * 1024);
#else
  info.l1d_bytes = cache_size(1, -1, 32 * 1024);
  info.l2_bytes = cache_size(2, -1, 512 * 1024);
  info.l3_bytes = cache_size(3, -1, 8 * 1024 * 1024);
#endif

  const char *text = getenv("STRAND_CPU");
  if (text && *text) {
    strand__cpu_level wanted;
    if (!strand__cpu_parse_level(text, &wanted))
      strand__log(STRAND_LOG_WARN, "STRAND_CPU=%s ignored: expected avx512, avx2 or scalar", text);
    else if (wanted > info.hardware)
      strand__log(STRAND_LOG_WARN, "STRAND_CPU=%s ignored: this CPU supports up to %s", text,
                  level_names[info.hardware]);
    else
      info.selected = wanted;
  }
}

const strand__cpu_info *strand__cpu(void) {
  pthread_once(&info_once, detect);
  return &info;
}
