// Peak-throughput microbenchmark of the exact int8 inner-loop instruction sequences, operands in
// registers: what a GEMM could reach on this CPU if memory and packing cost nothing.
#include "kernels/gemm_ceiling.hpp"

#include <immintrin.h>
#include <omp.h>

#include <chrono>

#include "kernels/gemm.hpp"

namespace fxp::kern {

namespace {

constexpr int CHAINS = 12;  // independent accumulators, enough to hide the multiply latency

// One round: CHAINS x (multiply-add of 16 int16 pairs + int32 add) = CHAINS * 32 integer operations
// on 8-bit data (a pair sum counts as 2 multiplies and 2 adds, as in 2*M*N*K).
template <bool QUADS>
__attribute__((target("avx2"))) int64_t spin(int64_t rounds) {
    __m256i acc[CHAINS];
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm256_set1_epi32(i);
    __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(5);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = 0; r < rounds; ++r) {
        __asm__ volatile("" : "+x"(a), "+x"(b));  // keep the operands opaque to the optimiser
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; ++i) {
            if (QUADS) acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
            else acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(a, b));
        }
    }
    __m256i s = acc[0];
    for (int i = 1; i < CHAINS; ++i) s = _mm256_add_epi32(s, acc[i]);
    return _mm256_extract_epi32(s, 0);
}

}  // namespace

double ceiling_gops(bool quads, int threads, double seconds) {
    if (!cpu_has_avx2()) return 0.0;
    const int64_t ops_per_round = int64_t(CHAINS) * (quads ? 64 : 32);
    const int64_t rounds = std::max<int64_t>(1, int64_t(seconds * 2e8 / CHAINS));
    double total = 0.0;
    volatile int64_t sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        const auto t0 = std::chrono::steady_clock::now();
        sink = sink + (quads ? spin<true>(rounds) : spin<false>(rounds));
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        total += double(rounds) * double(ops_per_round) / dt * 1e-9;
    }
    return total;
}

}  // namespace fxp::kern
