// Threads of the compiled kernels: one process-wide setting, and `parallel_tasks`, which runs the
// independent output tiles of a kernel on the calling thread and the pool's workers. Results never
// depend on which thread runs a tile (each output is summed by the same instruction sequence), so they
// are identical for every thread count. A region uses no more threads than its work pays for
// (`threads_for_work`), so small layers run on the calling thread alone.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

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

// A pool that never makes the caller wait for a thread that has not started. Tasks are claimed one at
// a time from a shared counter tagged with the job's generation; the caller claims tasks too and then
// waits only for tasks already claimed by others. A worker that wakes late (its core busy with another
// process, or with a BLAS library's spinning threads) finds nothing left and goes back to sleep, where
// an OpenMP team would hold the caller at its closing barrier until that worker was scheduled. One job
// runs at a time; a second caller (another Python thread, the GIL being released) runs its tasks on its
// own thread. After fork() the child has no workers and runs every job on the calling thread.
class TaskPool {
  public:
    using Task = std::function<void(std::ptrdiff_t task, int slot)>;

    static TaskPool& instance() {
        static TaskPool* pool = [] {
            auto* p = new TaskPool();  // never destroyed: detached workers may outlive static destructors
            pthread_atfork(nullptr, nullptr, [] { forked_flag().store(true); });
            return p;
        }();
        return *pool;
    }

    // fn(task, slot) for every task in [0, count) on at most `threads` threads; slot in [0, threads)
    // names the running thread (0 = the caller) for per-thread scratch.
    void run(std::ptrdiff_t count, int threads, const Task& fn) {
        threads = int(std::min<std::ptrdiff_t>(threads, count));
        std::unique_lock<std::mutex> job(job_mutex_, std::defer_lock);
        if (threads <= 1 || in_job() || forked_flag().load() || count >= (std::ptrdiff_t(1) << 31) || !job.try_lock()) {
            for (std::ptrdiff_t t = 0; t < count; ++t) fn(t, 0);  // also a job started from inside a task
            return;
        }
        in_job() = true;
        struct Leave {
            ~Leave() { in_job() = false; }
        } leave;
        uint32_t gen;
        int caller_cpu;
        {
            std::lock_guard<std::mutex> lock(state_mutex_);
            start_workers(threads - 1);
            gen = ++generation_;
            published_.store(gen, std::memory_order_release);
            task_ = &fn;
            count_ = count;
            wanted_ = threads - 1;
            joined_ = 0;
            caller_cpu_ = caller_cpu = sched_getcpu();
            shared_cpu_.store(false, std::memory_order_relaxed);
            done_.store(0, std::memory_order_relaxed);
            claim_.store(uint64_t(gen) << 32, std::memory_order_release);
        }
        wake_.notify_all();
        claim_tasks(gen, fn, count, 0);
        // The last tiles of other threads usually end within microseconds: spin on them first, and
        // yield the core only after a while (a yield is a system call).
        for (int spins = 0; done_.load(std::memory_order_acquire) < count; ++spins) {
            if (spins < 4096) cpu_relax();
            else std::this_thread::yield();
        }
        std::lock_guard<std::mutex> lock(state_mutex_);
        if (joined_ == 0 || shared_cpu_.load(std::memory_order_relaxed)) move_workers_off(caller_cpu);
    }

  private:
    // True on the pool's workers and on a caller while its job runs.
    static bool& in_job() {
        static thread_local bool inside = false;
        return inside;
    }

    static std::atomic<bool>& forked_flag() {
        static std::atomic<bool> forked{false};
        return forked;
    }

    // Claims and runs tasks of generation `gen` until none is left (or a newer job has started).
    void claim_tasks(uint32_t gen, const Task& fn, std::ptrdiff_t count, int slot) {
        uint64_t c = claim_.load(std::memory_order_acquire);
        while (uint32_t(c >> 32) == gen && std::ptrdiff_t(uint32_t(c)) < count) {
            if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
            fn(std::ptrdiff_t(uint32_t(c)), slot);
            done_.fetch_add(1, std::memory_order_release);
            c = claim_.load(std::memory_order_acquire);
        }
    }

    // A job no worker joined, or one a worker joined on the caller's CPU, ran at one thread's speed. On
    // a 2-vCPU virtual machine the scheduler was seen to queue the pool's worker behind the caller on
    // the caller's CPU while the other CPU idled, for hundreds of consecutive calls (256^3 on 2 threads
    // at 430 GOPS instead of 800): a caller that never sleeps leaves such a worker no time to run.
    // Restricting the worker's affinity to the CPUs it started with less the caller's moves it at once.
    // The worker's current affinity is read each time (not remembered), so an affinity someone else
    // set since is corrected too; a system call or two after such a job, none while jobs run on
    // separate CPUs. Where the caller runs next is still the scheduler's business.
    void move_workers_off(int caller_cpu) {  // under state_mutex_
        if (caller_cpu < 0 || caller_cpu >= CPU_SETSIZE) return;
        for (Worker& w : workers_) {
            cpu_set_t now;
            CPU_ZERO(&now);
            if (pthread_getaffinity_np(w.handle, sizeof(now), &now) != 0 || !CPU_ISSET(caller_cpu, &now)) continue;
            cpu_set_t others = w.allowed;
            CPU_CLR(caller_cpu, &others);
            if (CPU_COUNT(&others) > 0) pthread_setaffinity_np(w.handle, sizeof(others), &others);
        }
    }

    void start_workers(int n) {  // under state_mutex_
        while (int(started_) < n) {
            std::thread thread([this] { worker(); });
            Worker w{thread.native_handle(), {}};
            CPU_ZERO(&w.allowed);  // a worker inherits the affinity of the thread that starts it
            if (pthread_getaffinity_np(pthread_self(), sizeof(w.allowed), &w.allowed) != 0) CPU_ZERO(&w.allowed);
            workers_.push_back(w);
            thread.detach();  // (the pool is never destroyed, so the handle stays valid)
            ++started_;
        }
    }

    void worker() {
        in_job() = true;
        uint32_t seen = 0;
        for (;;) {
            // Spin a little for the next job before sleeping: back-to-back calls (a network's layers, a
            // benchmark loop) then start on this thread at once instead of after a futex wake-up, which
            // cost a 2-thread call of ~40 us a sizeable share. Capped, so an idle pool sleeps.
            // (The job counter is read after every pause, the clock every 64.)
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicroseconds);
            for (int i = 1; published_.load(std::memory_order_acquire) == seen; ++i) {
                cpu_relax();
                if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) break;
            }
            std::unique_lock<std::mutex> lock(state_mutex_);
            wake_.wait(lock, [&] { return generation_ != seen; });
            seen = generation_;
            if (joined_ >= wanted_) continue;  // this job asked for fewer threads
            const int slot = ++joined_;
            const Task* fn = task_;
            const std::ptrdiff_t count = count_;
            if (sched_getcpu() == caller_cpu_) shared_cpu_.store(true, std::memory_order_relaxed);
            lock.unlock();
            claim_tasks(seen, *fn, count, slot);  // claims nothing once the caller has returned
        }
    }

    static constexpr int kSpinMicroseconds = 100;
    static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    std::mutex job_mutex_, state_mutex_;
    std::atomic<uint32_t> published_{0};  // generation_, readable without the mutex (spinning workers)
    std::condition_variable wake_;
    std::atomic<uint64_t> claim_{0};  // (generation << 32) | next task
    std::atomic<std::ptrdiff_t> done_{0};
    uint32_t generation_ = 0;         // the fields below: under state_mutex_
    const Task* task_ = nullptr;
    std::ptrdiff_t count_ = 0;
    int wanted_ = 0, joined_ = 0, started_ = 0;
    struct Worker {
        pthread_t handle;
        cpu_set_t allowed;  // the CPUs it started with
    };
    std::vector<Worker> workers_;
    int caller_cpu_ = -1;                   // sched_getcpu() of the caller when the job started
    std::atomic<bool> shared_cpu_{false};  // a worker joined the job on the caller's CPU
};

// fn(task, slot) for task in [0, count) on up to `threads` threads (see TaskPool).
template <class Fn>
inline void parallel_tasks(std::ptrdiff_t count, int threads, Fn&& fn) {
    if (threads <= 1 || count <= 1) {
        for (std::ptrdiff_t t = 0; t < count; ++t) fn(t, 0);
        return;
    }
    const TaskPool::Task task = [&fn](std::ptrdiff_t t, int slot) { fn(t, slot); };
    TaskPool::instance().run(count, threads, task);
}

}  // namespace fxp
