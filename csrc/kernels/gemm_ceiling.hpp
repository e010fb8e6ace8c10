// Peak GOPS of the exact inner-loop sequences on this CPU (bench/ceiling.py reports it).
#pragma once

#include <functional>

namespace fxp::kern {

// The sum of fn() over `threads` threads started for the call and joined before it returns (each fn
// times its own burst and returns its GOPS). An OpenMP team's threads kept spinning for milliseconds
// after the burst and took a core from what was timed next: a 2-thread 256^3 GEMM timed right after a
// 2-thread burst ran up to 15 % slower.
double sum_over_threads(int threads, const std::function<double()>& fn);

// quads = false: vpmaddwd + vpaddd (exact for any int8); true: vpmaddubsw + vpmaddwd + vpaddd (exact
// when the unsigned operand is <= 127). Runs `threads` threads for about `seconds` each; returns the
// summed GOPS (2 operations per multiply-accumulate), 0 without AVX2.
double ceiling_gops(bool quads, int threads, double seconds);

}  // namespace fxp::kern
