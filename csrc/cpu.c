/* cpu.c: what this CPU and its operating system offer, read once at start-up from CPUID and XGETBV (immutable
 * afterwards). simd.c picks the vector level from the same facts; quant_simd.c picks the quantized kernels;
 * llmc.simd_info() reports them.
 *
 * AMX is only detected and reported. Its tile registers need the kernel's permission
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) before the first tile instruction, or the process dies of
 * SIGILL (as llama.cpp's AMX path did on a hypervisor that did not grant it). llmc has no AMX kernel, so it never
 * requests the permission or executes a tile instruction; it only asks the kernel, read-only
 * (ARCH_GET_XCOMP_SUPP), whether tile data is supported at all, and reports that. */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

static llmc_cpu_features features;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

__attribute__((constructor)) static void llmc_cpu_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    /* the OS saves the registers: XMM+YMM state (XCR0 bits 1, 2); opmask+ZMM state (bits 5, 6, 7) */
    const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    const int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    unsigned int max_leaf = __get_cpuid_max(0, NULL);
    unsigned int b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d7);
        unsigned int x1, x2, x3;
        __cpuid_count(7, 1, a71, x1, x2, x3);
        (void)x1, (void)x2, (void)x3;
    }
    features.fma = os_avx && avx && fma;
    features.f16c = os_avx && avx && f16c;
    features.avx2 = os_avx && ((b7 >> 5) & 1);
    features.avx512f = os_avx512 && ((b7 >> 16) & 1);
    features.avx512bw = features.avx512f && ((b7 >> 30) & 1);
    features.avx512vl = features.avx512f && ((b7 >> 31) & 1);
    features.avx512_vnni = features.avx512f && ((c7 >> 11) & 1);
    features.avx512_bf16 = features.avx512f && ((a71 >> 5) & 1);
    features.amx_bf16 = (d7 >> 22) & 1;
    features.amx_tile = (d7 >> 24) & 1;
    features.amx_int8 = (d7 >> 25) & 1;
#if defined(__linux__) && defined(SYS_arch_prctl)
    if (features.amx_tile) {
        /* ARCH_GET_XCOMP_SUPP (0x1022): the xfeatures the kernel supports; bit 18 = XTILEDATA. Read-only. */
        unsigned long long supp = 0;
        if (syscall(SYS_arch_prctl, 0x1022, &supp) == 0) features.amx_os = (supp >> 18) & 1 ? 1 : 0;
        else features.amx_os = -1; /* kernel too old to say: treat as unavailable */
    }
#endif
#endif
}

const llmc_cpu_features *llmc_cpu_get_features(void) { return &features; }
