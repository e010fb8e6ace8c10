// Peak-throughput microbenchmark of the exact int8 inner-loop instruction sequences, operands in
// registers: what a GEMM could reach on this CPU if memory and packing cost nothing.
#include "kernels/gemm_ceiling.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "kernels/gemm.hpp"

namespace fxp::kern {

namespace {

// One round = the arithmetic of one K unit of the 6 x 16 micro-kernel with every operand already in
// a register: 12 x (vpmaddwd + vpaddd) = 12 * 16 multiply-accumulates on int16 pairs (384 operations),
// or 12 x (vpmaddubsw + vpmaddwd(ones) + vpaddd) = 12 * 32 on bytes (768 operations).
#define FXP_CEIL_PAIRS(x)                                                                   \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\tvpaddd %%ymm15, %%ymm" #x ", %%ymm" #x "\n\t"
#define FXP_CEIL_QUADS(x)                                                                   \
    "vpmaddubsw %%ymm12, %%ymm14, %%ymm15\n\tvpmaddwd %[ones], %%ymm15, %%ymm15\n\t"        \
    "vpaddd %%ymm15, %%ymm" #x ", %%ymm" #x "\n\t"
#define FXP_CEIL_LOOP(OP)                                                                   \
    "vpxor %%xmm12, %%xmm12, %%xmm12\n\tvpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"              \
    "1:\n\t" OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)     \
    "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"                                                  \
    : [n] "+r"(n)                                                                           \
    : [ones] "m"(ones)                                                                      \
    : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

struct alignas(32) Ones16 { int16_t v[16]; };
constexpr Ones16 ones = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

int64_t spin(bool quads, int64_t rounds) {
    int64_t n = rounds;
    if (quads) __asm__ volatile(FXP_CEIL_LOOP(FXP_CEIL_QUADS));
    else __asm__ volatile(FXP_CEIL_LOOP(FXP_CEIL_PAIRS));
    return n;
}

}  // namespace

double sum_over_threads(int threads, const std::function<double()>& fn) {
    std::vector<double> gops(size_t(std::max(1, threads)), 0.0);
    std::vector<std::thread> others;
    for (size_t t = 1; t < gops.size(); ++t) others.emplace_back([&gops, &fn, t] { gops[t] = fn(); });
    gops[0] = fn();
    for (std::thread& t : others) t.join();
    double total = 0.0;
    for (double g : gops) total += g;
    return total;
}

double ceiling_gops(bool quads, int threads, double seconds) {
    if (!cpu_has_avx2()) return 0.0;
    const int64_t ops_per_round = quads ? 768 : 384;
    const int64_t rounds = std::max<int64_t>(1, int64_t(seconds * 5e8 / (quads ? 2 : 1)));
    return sum_over_threads(threads, [&] {
        const auto t0 = std::chrono::steady_clock::now();
        volatile int64_t sink = spin(quads, rounds);
        (void)sink;
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return double(rounds) * double(ops_per_round) / dt * 1e-9;
    });
}

}  // namespace fxp::kern
