// BatchNorm in training mode over float32 tensors, forward and backward, as MindSpore custom "aot" kernels: each
// channel's statistics in one pass over its planes (sums in double), then one pass that normalizes. Plain NCHW
// tensors, or nChw16c ones ((N, C / 16, H, W, 16): onednn.cc's blocked layout, a training chain's,
// blocked_training.py), where each block of 16 channels is one vector. Built by build.py; every function has
// MindSpore's aot signature.

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

// A tensor as (images, groups, plane, kLanes): plain NCHW with kLanes 1 (a group a channel), nChw16c with 16.
struct Shape {
  int64_t n, groups, plane;
};

template <int kLanes>
bool shape_of(const int64_t *x, Shape *s) {
  *s = {x[0], x[1] / kLanes, x[2] * x[3]};
  return x[1] % kLanes == 0;
}

// Sums over one image's plane of a group, lane by lane, added to `sum` and `sum_b`: a, and a * (b - shift). In
// float over a plane (plain) or over runs of kRun pixels (blocked: a lane's values one after another, where a
// plane's vector sum keeps several partial sums), in double across them.
constexpr int64_t kRun = 64;

template <int kLanes>
void plane_sums(const float *a, const float *b, const float *shift, int64_t plane, double *sum, double *sum_b) {
  if constexpr (kLanes == 1) {
    float part = 0.0f, part_b = 0.0f;
    const float m = shift[0];
#pragma omp simd reduction(+ : part, part_b)
    for (int64_t i = 0; i < plane; ++i) part += a[i], part_b += a[i] * (b[i] - m);
    sum[0] += part, sum_b[0] += part_b;
  } else {
    for (int64_t start = 0; start < plane; start += kRun) {
      float part[kLanes] = {}, part_b[kLanes] = {};
      for (int64_t i = start; i < std::min(start + kRun, plane); ++i) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const int64_t at = i * kLanes + l;
          part[l] += a[at], part_b[l] += a[at] * (b[at] - shift[l]);
        }
      }
      for (int l = 0; l < kLanes; ++l) sum[l] += part[l], sum_b[l] += part_b[l];
    }
  }
}

// out = a * scale + shift, lane by lane, over one image's plane of a group.
template <int kLanes>
void scaled(const float *a, const float *scale, const float *shift, int64_t plane, float *out) {
  if constexpr (kLanes == 1) {
    const float k = scale[0], c = shift[0];
#pragma omp simd
    for (int64_t i = 0; i < plane; ++i) out[i] = a[i] * k + c;
  } else {
    for (int64_t i = 0; i < plane; ++i) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) out[i * kLanes + l] = a[i * kLanes + l] * scale[l] + shift[l];
    }
  }
}

// d = scale * (g - mean_g - (x - mean) * slope), lane by lane, over one image's plane of a group.
template <int kLanes>
void gradient(const float *g, const float *x, const float *scale, const float *mean_g, const float *mean,
              const float *slope, int64_t plane, float *d) {
  if constexpr (kLanes == 1) {
    const float k = scale[0], mg = mean_g[0], m = mean[0], sl = slope[0];
#pragma omp simd
    for (int64_t i = 0; i < plane; ++i) d[i] = k * (g[i] - mg - (x[i] - m) * sl);
  } else {
    for (int64_t i = 0; i < plane; ++i) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const int64_t at = i * kLanes + l;
        d[at] = scale[l] * (g[at] - mean_g[l] - (x[at] - mean[l]) * slope[l]);
      }
    }
  }
}

template <int kLanes>
int forward(int nparam, void **params, int64_t **shapes, const char **dtypes) {
  Shape s;
  if (nparam != 11 || !is_float32(dtypes[0]) || !shape_of<kLanes>(shapes[0], &s)) return 1;  // MindSpore raises
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
  const double count = static_cast<double>(s.n * s.plane);
  const int64_t group = s.plane * kLanes;  // one image's values of a group
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(s.n * s.groups * group * 2))
  for (int64_t g = 0; g < s.groups; ++g) {
    double sum[kLanes] = {}, squares[kLanes] = {};
    const float zero[kLanes] = {};
    for (int64_t b = 0; b < s.n; ++b) {
      const float *p = x + (b * s.groups + g) * group;
      plane_sums<kLanes>(p, p, zero, s.plane, sum, squares);
    }
    float scale[kLanes], shift[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int64_t ch = g * kLanes + l;
      const double m = sum[l] / count;
      const double var = std::max(squares[l] / count - m * m, 0.0);
      const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      mean[ch] = static_cast<float>(m), invstd[ch] = inv;
      const float unbiased = static_cast<float>(count > 1 ? var * count / (count - 1) : var);
      moved_mean[ch] = moving_mean[ch] + (mean[ch] - moving_mean[ch]) * momentum;
      moved_variance[ch] = moving_variance[ch] + (unbiased - moving_variance[ch]) * momentum;
      scale[l] = gamma[ch] * inv, shift[l] = beta[ch] - static_cast<float>(m) * scale[l];
    }
    for (int64_t b = 0; b < s.n; ++b) scaled<kLanes>(x + (b * s.groups + g) * group, scale, shift, s.plane,
                                                     y + (b * s.groups + g) * group);
  }
  return 0;
}

template <int kLanes>
int backward(int nparam, void **params, int64_t **shapes, const char **dtypes) {
  Shape s;
  if (nparam != 8 || !is_float32(dtypes[0]) || !shape_of<kLanes>(shapes[0], &s)) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]);
  const float *mean = static_cast<const float *>(params[3]);
  const float *invstd = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dgamma = static_cast<float *>(params[6]);
  float *dbeta = static_cast<float *>(params[7]);
  const float count = static_cast<float>(s.n * s.plane);
  const int64_t group = s.plane * kLanes;
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(s.n * s.groups * group * 2))
  for (int64_t g = 0; g < s.groups; ++g) {
    const float *m = mean + g * kLanes;
    double sum_dy[kLanes] = {}, sum_dy_x[kLanes] = {};
    for (int64_t b = 0; b < s.n; ++b) {
      const int64_t at = (b * s.groups + g) * group;
      plane_sums<kLanes>(dy + at, x + at, m, s.plane, sum_dy, sum_dy_x);
    }
    // dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat))
    float scale[kLanes], mean_dy[kLanes], slope[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int64_t ch = g * kLanes + l;
      const float inv = invstd[ch];
      dbeta[ch] = static_cast<float>(sum_dy[l]);
      dgamma[ch] = static_cast<float>(sum_dy_x[l]) * inv;
      scale[l] = gamma[ch] * inv;
      mean_dy[l] = static_cast<float>(sum_dy[l]) / count;
      slope[l] = static_cast<float>(sum_dy_x[l]) * inv * inv / count;
    }
    for (int64_t b = 0; b < s.n; ++b) {
      const int64_t at = (b * s.groups + g) * group;
      gradient<kLanes>(dy + at, x + at, scale, mean_dy, m, slope, s.plane, dx + at);
    }
  }
  return 0;
}

}  // namespace

// Inputs x (N, C, H, W), gamma (C), beta (C), the moving mean and variance (C), settings [eps, momentum]; outputs
// y (N, C, H, W), the batch mean (C), 1/std (C), and the moving statistics moved towards the batch's (mean, and
// unbiased variance) by momentum: in the kernel, as its outputs, where MindSpore's graph took eight small ops.
FGVCTUNE_KERNEL(BatchNormForward) { return forward<1>(nparam, params, shapes, dtypes); }

// Inputs dy, x, gamma, mean, invstd; outputs dx, dgamma, dbeta.
FGVCTUNE_KERNEL(BatchNormBackward) { return backward<1>(nparam, params, shapes, dtypes); }

// BatchNormForward's and BatchNormBackward's over nChw16c tensors, C a multiple of 16
FGVCTUNE_KERNEL(BatchNormBlockedForward) { return forward<16>(nparam, params, shapes, dtypes); }
FGVCTUNE_KERNEL(BatchNormBlockedBackward) { return backward<16>(nparam, params, shapes, dtypes); }
