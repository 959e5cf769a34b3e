// BatchNorm in training mode over NCHW float32 tensors, forward and backward, as MindSpore custom "aot"
// kernels: each channel's statistics in one pass over its planes (sums in double), then one pass that
// normalizes. Built by build.py; every function has MindSpore's aot signature.

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

struct Shape {
  int64_t n, c, plane;
};

Shape shape_of(const int64_t *x) { return {x[0], x[1], x[2] * x[3]}; }

}  // namespace

// Inputs x (N, C, H, W), gamma (C), beta (C), the moving mean and variance (C), settings [eps, momentum]; outputs
// y (N, C, H, W), the batch mean (C), 1/std (C), and the moving statistics moved towards the batch's (mean, and
// unbiased variance) by momentum: in the kernel, as its outputs, where MindSpore's graph took eight small ops.
FGVCTUNE_KERNEL(BatchNormForward) {
  if (nparam != 11 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float *moving_mean = static_cast<const float *>(params[3]);
  const float *moving_variance = static_cast<const float *>(params[4]);
  const float eps = static_cast<const float *>(params[5])[0], momentum = static_cast<const float *>(params[5])[1];
  float *y = static_cast<float *>(params[6]);
  float *mean = static_cast<float *>(params[7]);
  float *invstd = static_cast<float *>(params[8]);
  float *moved_mean = static_cast<float *>(params[9]);
  float *moved_variance = static_cast<float *>(params[10]);
  const Shape s = shape_of(shapes[0]);
  const double count = static_cast<double>(s.n * s.plane);
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(s.n * s.c * s.plane * 2))
  for (int64_t ch = 0; ch < s.c; ++ch) {
    double sum = 0.0, squares = 0.0;
    for (int64_t b = 0; b < s.n; ++b) {
      const float *p = x + (b * s.c + ch) * s.plane;
      float part = 0.0f, part_squares = 0.0f;  // one plane in float, planes added in double
#pragma omp simd reduction(+ : part, part_squares)
      for (int64_t i = 0; i < s.plane; ++i) part += p[i], part_squares += p[i] * p[i];
      sum += part, squares += part_squares;
    }
    const double m = sum / count;
    const double var = std::max(squares / count - m * m, 0.0);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    mean[ch] = static_cast<float>(m), invstd[ch] = inv;
    const float unbiased = static_cast<float>(count > 1 ? var * count / (count - 1) : var);
    moved_mean[ch] = moving_mean[ch] + (mean[ch] - moving_mean[ch]) * momentum;
    moved_variance[ch] = moving_variance[ch] + (unbiased - moving_variance[ch]) * momentum;
    const float scale = gamma[ch] * inv, shift = beta[ch] - static_cast<float>(m) * scale;
    for (int64_t b = 0; b < s.n; ++b) {
      const float *p = x + (b * s.c + ch) * s.plane;
      float *q = y + (b * s.c + ch) * s.plane;
#pragma omp simd
      for (int64_t i = 0; i < s.plane; ++i) q[i] = p[i] * scale + shift;
    }
  }
  return 0;
}

// Inputs dy, x, gamma, mean, invstd; outputs dx, dgamma, dbeta.
FGVCTUNE_KERNEL(BatchNormBackward) {
  if (nparam != 8 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]);
  const float *mean = static_cast<const float *>(params[3]);
  const float *invstd = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dgamma = static_cast<float *>(params[6]);
  float *dbeta = static_cast<float *>(params[7]);
  const Shape s = shape_of(shapes[0]);
  const float count = static_cast<float>(s.n * s.plane);
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(s.n * s.c * s.plane * 2))
  for (int64_t ch = 0; ch < s.c; ++ch) {
    const float m = mean[ch], inv = invstd[ch];
    double sum_dy = 0.0, sum_dy_x = 0.0;
    for (int64_t b = 0; b < s.n; ++b) {
      const float *g = dy + (b * s.c + ch) * s.plane;
      const float *p = x + (b * s.c + ch) * s.plane;
      float part = 0.0f, part_x = 0.0f;
#pragma omp simd reduction(+ : part, part_x)
      for (int64_t i = 0; i < s.plane; ++i) part += g[i], part_x += g[i] * (p[i] - m);
      sum_dy += part, sum_dy_x += part_x;
    }
    dbeta[ch] = static_cast<float>(sum_dy);
    dgamma[ch] = static_cast<float>(sum_dy_x) * inv;
    // dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat))
    const float scale = gamma[ch] * inv;
    const float mean_dy = static_cast<float>(sum_dy) / count;
    const float slope = static_cast<float>(sum_dy_x) * inv * inv / count;
    for (int64_t b = 0; b < s.n; ++b) {
      const float *g = dy + (b * s.c + ch) * s.plane;
      const float *p = x + (b * s.c + ch) * s.plane;
      float *d = dx + (b * s.c + ch) * s.plane;
#pragma omp simd
      for (int64_t i = 0; i < s.plane; ++i) d[i] = scale * (g[i] - mean_dy - (p[i] - m) * slope);
    }
  }
  return 0;
}
