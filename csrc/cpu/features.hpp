// CPU feature detection, once for the whole library: every kernel asks here (function-local statics,
// computed on first use) instead of calling __builtin_cpu_supports itself. GCC's builtin checks the
// OS's register-state support (XCR0) for AVX/AVX-512 as well; AVX-VNNI (CPUID leaf 7 subleaf 1, EAX
// bit 4, the VEX-encoded vpdpbusd) is read with cpuid and requires AVX2.
#pragma once

#include <cpuid.h>

namespace fxp::cpu {

struct Features {
    bool avx2 = false, fma = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512vbmi = false;
    bool avx_vnni = false;
};

inline const Features& features() {
    static const Features f = [] {
        Features r;
        __builtin_cpu_init();
        r.avx2 = __builtin_cpu_supports("avx2");
        r.fma = __builtin_cpu_supports("fma");
        r.avx512f = __builtin_cpu_supports("avx512f");
        r.avx512bw = __builtin_cpu_supports("avx512bw");
        r.avx512vl = __builtin_cpu_supports("avx512vl");
        r.avx512vnni = __builtin_cpu_supports("avx512vnni");
        r.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (r.avx2 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) r.avx_vnni = (a >> 4) & 1u;
        return r;
    }();
    return f;
}

inline bool has_avx2() { return features().avx2; }
inline bool has_avx2_fma() { return features().avx2 && features().fma; }
// AVX-512 with byte/word ops (vpsadbw, masked byte loads on zmm).
inline bool has_avx512bw() { return features().avx512f && features().avx512bw; }
// What the VNNI kernels need: vpdpbusd on zmm and ymm with masked byte/word ops.
inline bool has_avx512_vnni() {
    const Features& f = features();
    return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
}
// vpermb on zmm (the VNNI image kernels' transposes).
inline bool has_avx512_vbmi() { return has_avx512bw() && features().avx512vbmi; }

}  // namespace fxp::cpu
