// Thread count of the compiled kernels. One process-wide setting; every parallel region of the GEMM
// and convolution kernels asks for exactly this many OpenMP threads and splits its independent output
// tiles with a static schedule (results never depend on it: integer sums are computed per output by
// the same instruction sequence whichever thread runs the tile).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

namespace fxp {

inline std::atomic<int>& num_threads_setting() {
    static std::atomic<int> n{[] {
        if (const char* env = std::getenv("FIXEDPOINT_NUM_THREADS")) {
            const int v = std::atoi(env);
            if (v > 0) return v;
        }
        return std::max(1, int(std::thread::hardware_concurrency()));
    }()};
    return n;
}

inline int num_threads() { return num_threads_setting().load(std::memory_order_relaxed); }
inline void set_num_threads(int n) { num_threads_setting().store(std::max(1, n), std::memory_order_relaxed); }

}  // namespace fxp
