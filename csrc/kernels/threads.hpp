// Thread count of the compiled kernels. One process-wide setting; every parallel region of the GEMM
// and convolution kernels asks for exactly this many OpenMP threads and splits its independent output
// tiles with a static schedule (results never depend on it: integer sums are computed per output by
// the same instruction sequence whichever thread runs the tile). A region also uses no more threads
// than its work pays for (`threads_for_work`): starting and joining a team costs microseconds, and far
// more on a loaded machine, so small layers run on the calling thread alone.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
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

// Multiply-adds (or comparable element operations) each thread of a region must get at least.
constexpr double kMinWorkPerThread = double(1 << 18);

// Threads for a region of `work` multiply-adds split into `tasks` independent pieces: the setting,
// capped by the work (at least kMinWorkPerThread each) and by the number of tasks; at least 1.
inline int threads_for_work(double work, std::ptrdiff_t tasks) {
    const double by_work = std::floor(work / kMinWorkPerThread);
    double n = std::min<double>(num_threads(), std::max(1.0, by_work));
    n = std::min<double>(n, double(std::max<std::ptrdiff_t>(1, tasks)));
    return std::max(1, int(n));
}

}  // namespace fxp
