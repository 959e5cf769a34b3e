// LayerNorm over the last axis (ConvNeXt's, on channels-last tensors), forward and backward, as MindSpore custom
// "aot" kernels: each row normalized on its own, the gradients of gamma and beta summed over the rows in a
// fixed number of blocks, so the sums do not depend on how many threads ran. Built by build.py; every function
// has MindSpore's aot signature.

#include "common.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

struct Rows {
  int64_t count, width;
};

Rows rows_of(int ndim, const int64_t *shape) {
  Rows r{1, shape[ndim - 1]};
  for (int i = 0; i < ndim - 1; ++i) r.count *= shape[i];
  return r;
}

}  // namespace

// Inputs x (..., C), gamma (C), beta (C), eps (1); outputs y (..., C), mean (rows), 1/std (rows).
FGVCTUNE_KERNEL(LayerNormForward) {
  if (nparam != 7 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  float *mean = static_cast<float *>(params[5]);
  float *rstd = static_cast<float *>(params[6]);
  const Rows r = rows_of(ndims[0], shapes[0]);
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(r.count * r.width * 2))
  for (int64_t i = 0; i < r.count; ++i) {
    const float *p = x + i * r.width;
    float *q = y + i * r.width;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < r.width; ++j) sum += p[j];
    const float m = sum / r.width;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < r.width; ++j) squares += (p[j] - m) * (p[j] - m);
    const float inv = 1.0f / std::sqrt(squares / r.width + eps);
    mean[i] = m, rstd[i] = inv;
#pragma omp simd
    for (int64_t j = 0; j < r.width; ++j) q[j] = (p[j] - m) * inv * gamma[j] + beta[j];
  }
  return 0;
}

// Inputs dy, x, gamma, mean, 1/std; outputs dx, dgamma, dbeta.
FGVCTUNE_KERNEL(LayerNormBackward) {
  if (nparam != 8 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]);
  const float *mean = static_cast<const float *>(params[3]);
  const float *rstd = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dgamma = static_cast<float *>(params[6]);
  float *dbeta = static_cast<float *>(params[7]);
  const Rows r = rows_of(ndims[0], shapes[0]);
  const int64_t blocks = r.count < kBlocks ? r.count : kBlocks;
  std::vector<float> partial(2 * blocks * r.width, 0.0f);  // per block: dgamma, then dbeta
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(r.count * r.width * 2))
  for (int64_t b = 0; b < blocks; ++b) {
    float *pg = partial.data() + 2 * b * r.width;
    float *pb = pg + r.width;
    for (int64_t i = b * r.count / blocks; i < (b + 1) * r.count / blocks; ++i) {
      const float *g = dy + i * r.width;
      const float *p = x + i * r.width;
      float *d = dx + i * r.width;
      const float m = mean[i], inv = rstd[i];
      float sum_g = 0.0f, sum_gx = 0.0f;  // of dy * gamma, and of that times x-hat
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < r.width; ++j) {
        const float xhat = (p[j] - m) * inv;
        const float gg = g[j] * gamma[j];
        sum_g += gg, sum_gx += gg * xhat;
        pg[j] += g[j] * xhat, pb[j] += g[j];
      }
      const float mean_g = sum_g / r.width, mean_gx = sum_gx / r.width;
#pragma omp simd
      for (int64_t j = 0; j < r.width; ++j) d[j] = inv * (g[j] * gamma[j] - mean_g - (p[j] - m) * inv * mean_gx);
    }
  }
  std::memset(dgamma, 0, sizeof(float) * r.width);
  std::memset(dbeta, 0, sizeof(float) * r.width);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t j = 0; j < r.width; ++j) {
      dgamma[j] += partial[2 * b * r.width + j];
      dbeta[j] += partial[(2 * b + 1) * r.width + j];
    }
  }
  return 0;
}
