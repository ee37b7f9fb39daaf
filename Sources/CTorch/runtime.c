// runtime.c: process-wide settings that must precede the first tensor operation.
// Kept apart from ctorch.cpp because it needs no libtorch headers (and compiles in a blink).
#define _GNU_SOURCE
#include "ctorch_runtime.h"

#include <dlfcn.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <malloc.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ct_tune_allocator(void) {
  // glibc returns large blocks to the kernel after every step and maps them again on the next:
  // raising both thresholds keeps activation buffers in the heap (measured ~25% of a step).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int ct_limit_blas_threads(void) {
  // OpenBLAS's thread pool competes with libtorch's OpenMP pool for the same cores.
  void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (set_threads == NULL) return 0;
  set_threads(1);
  return 1;
}

char *ct_loaded_blas(void) {
  // The BLAS that the dynamic loader actually mapped, read from /proc/self/maps.
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return NULL;
  char line[4096];
  char *found = NULL;
  while (fgets(line, sizeof line, maps) != NULL) {
    char *path = strchr(line, '/');
    if (path == NULL) continue;
    path[strcspn(path, "\n")] = 0;
    const char *base = strrchr(path, '/') + 1;
    if (strstr(base, "blas") != NULL || strstr(base, "mkl_rt") != NULL) {
      found = strdup(path);
      break;
    }
  }
  fclose(maps);
  return found;
}

int ct_signal_on_parent_death(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

int ct_cpu_instruction_sets(void) {
#if defined(__x86_64__)
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
  __builtin_cpu_init();
  int sets = 0;
  if (__builtin_cpu_supports("sse4.1")) sets |= 1;
  if (__builtin_cpu_supports("avx")) sets |= 2;
  if (__builtin_cpu_supports("avx2")) sets |= 4;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    sets |= 8;
  unsigned eax, ebx, ecx, edx;
  // Leaf 7, sub-leaf 0, EDX: bit 22 AMX-BF16, bit 24 AMX-TILE, bit 25 AMX-INT8.
  if ((sets & 8) && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    unsigned amx = (1u << 22) | (1u << 24) | (1u << 25);
    if ((edx & amx) == amx) sets |= 16;
  }
  return sets;
#else
  return 0;
#endif
}
