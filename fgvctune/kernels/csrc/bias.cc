// A bias added along the last axis (nn.Dense's), forward and backward, as MindSpore custom "aot" kernels. The
// gradient of the bias is the output gradient summed over the rows, in a fixed number of row blocks so the sum
// does not depend on how many threads ran. Built by build.py; every function has MindSpore's aot signature.

#include "common.h"

#include <cstdint>
#include <cstring>
#include <vector>

// Inputs x (rows, C), bias (C); output y (rows, C).
FGVCTUNE_KERNEL(BiasAddForward) {
  if (nparam != 3 || ndims[0] != 2 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t rows = shapes[0][0], width = shapes[0][1];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(rows * width))
  for (int64_t i = 0; i < rows; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) y[i * width + j] = x[i * width + j] + bias[j];
  }
  return 0;
}

// Input dy (rows, C); output dbias (C).
FGVCTUNE_KERNEL(BiasAddBackward) {
  if (nparam != 2 || ndims[0] != 2 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  float *dbias = static_cast<float *>(params[1]);
  const int64_t rows = shapes[0][0], width = shapes[0][1];
  const int64_t blocks = rows < kBlocks ? rows : kBlocks;
  std::vector<float> partial(blocks * width, 0.0f);
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(rows * width))
  for (int64_t b = 0; b < blocks; ++b) {
    float *sums = partial.data() + b * width;
    for (int64_t i = b * rows / blocks; i < (b + 1) * rows / blocks; ++i) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) sums[j] += dy[i * width + j];
    }
  }
  std::memset(dbias, 0, sizeof(float) * width);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t j = 0; j < width; ++j) dbias[j] += partial[b * width + j];
  }
  return 0;
}
