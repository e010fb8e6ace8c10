// Peak GOPS of the exact inner-loop sequences on this CPU (bench/ceiling.py reports it).
#pragma once

namespace fxp::kern {

// quads = false: vpmaddwd + vpaddd (exact for any int8); true: vpmaddubsw + vpmaddwd + vpaddd (exact
// when the unsigned operand is <= 127). Runs `threads` threads for about `seconds` each; returns the
// summed GOPS (2 operations per multiply-accumulate), 0 without AVX2.
double ceiling_gops(bool quads, int threads, double seconds);

}  // namespace fxp::kern
