// What every kernel here shares: MindSpore's custom "aot" signature, the float32 check, and the fixed number of
// blocks a sum over rows is split into. Included by each .cc file; a change here rebuilds them all (build.py
// keys the library by this header too).

#pragma once

#include <cstdint>
#include <cstring>

// An exported kernel with MindSpore's aot signature: params holds the inputs, then the outputs; returning
// nonzero makes MindSpore raise.
#define FGVCTUNE_KERNEL(name)                                                                                 \
  extern "C" int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, \
                      void *extra)

inline bool is_float32(const char *dtype) { return std::strcmp(dtype, "float32") == 0; }

inline int64_t elements(int ndim, const int64_t *shape) {
  int64_t count = 1;
  for (int d = 0; d < ndim; ++d) count *= shape[d];
  return count;
}

// Row blocks a gradient summed over rows is split into: a fixed number, so the sum does not depend on how many
// threads ran.
constexpr int64_t kBlocks = 64;
