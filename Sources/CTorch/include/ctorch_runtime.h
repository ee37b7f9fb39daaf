// ctorch_runtime.h: process settings that are not libtorch calls (allocator, BLAS threads).
#ifndef CTORCH_RUNTIME_H
#define CTORCH_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/// Raises glibc's mmap and trim thresholds so training steps reuse heap memory.
void ct_tune_allocator(void);
/// Forces OpenBLAS (when loaded) to one thread; returns 1 when OpenBLAS was found.
int ct_limit_blas_threads(void);
/// Path of the BLAS library mapped into this process (malloc'd), or NULL.
char *ct_loaded_blas(void);
/// Asks the kernel to send `signal` to this process when its parent dies (Linux's
/// PR_SET_PDEATHSIG); returns 0 on success.
int ct_signal_on_parent_death(int signal);

/// The x86 instruction-set tiers this CPU and its operating system support, as bits: 1 SSE4.1,
/// 2 AVX, 4 AVX2, 8 AVX-512 (F, BW, VL and DQ: oneDNN's "avx512_core"), 16 AMX (tile, int8 and
/// bf16). 0 on other architectures.
int ct_cpu_instruction_sets(void);

#ifdef __cplusplus
}
#endif

#endif
