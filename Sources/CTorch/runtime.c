// runtime.c: process-wide settings that must precede the first tensor operation.
// Kept apart from ctorch.cpp because it needs no libtorch headers (and compiles in a blink).
#define _GNU_SOURCE
#include "ctorch_runtime.h"

#include <dlfcn.h>
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
