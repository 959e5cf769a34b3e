// Elementwise layers MindSpore's CPU kernels run at a fraction of the memory's speed, as MindSpore custom "aot"
// kernels (float32): hard swish (MobileNetV3's activation), the squeeze-excitation's channel scale, ResNeSt's
// split attention's weighted sum of two channel halves, GELU's tanh form (ConvNeXt's) and a residual block's
// end, ReLU of a sum (ResNets'), each with its gradient.
// Built by build.py; every function has MindSpore's aot signature.

#include "common.h"

#include <cstdint>
#include <cstring>

namespace {

// Whether the second tensor holds one number per plane of the first, a (N, C, H, W) one: (N, C, 1, 1).
bool is_per_plane(const int *ndims, int64_t *const *shapes) {
  return ndims[0] == 4 && ndims[1] == 4 && shapes[1][0] == shapes[0][0] && shapes[1][1] == shapes[0][1] &&
         shapes[1][2] == 1 && shapes[1][3] == 1;
}

}  // namespace

// Input x; output y = x * min(max(x + 3, 0), 6) / 6.
FGVCTUNE_KERNEL(HSwishForward) {
  if (nparam != 2 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t count = elements(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count))
  for (int64_t i = 0; i < count; ++i) {
    const float gate = x[i] + 3.0f < 0.0f ? 0.0f : (x[i] + 3.0f > 6.0f ? 6.0f : x[i] + 3.0f);
    y[i] = x[i] * gate / 6.0f;
  }
  return 0;
}

// Inputs dy, x; output dx = dy * (0 below -3, 1 above 3, (2x + 3) / 6 between).
FGVCTUNE_KERNEL(HSwishBackward) {
  if (nparam != 3 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t count = elements(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count))
  for (int64_t i = 0; i < count; ++i) {
    const float slope = x[i] <= -3.0f ? 0.0f : (x[i] >= 3.0f ? 1.0f : (2.0f * x[i] + 3.0f) / 6.0f);
    dx[i] = dy[i] * slope;
  }
  return 0;
}

// Inputs x (N, C, H, W), s (N, C, 1, 1); output y = x * s, each plane scaled by its channel's number.
FGVCTUNE_KERNEL(ChannelScaleForward) {
  if (nparam != 3 || !is_per_plane(ndims, shapes) || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const float *s = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t planes = shapes[0][0] * shapes[0][1], area = shapes[0][2] * shapes[0][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(planes * area))
  for (int64_t p = 0; p < planes; ++p) {
    const float scale = s[p];
#pragma omp simd
    for (int64_t i = p * area; i < (p + 1) * area; ++i) y[i] = x[i] * scale;
  }
  return 0;
}

// Inputs dy, x (N, C, H, W), s (N, C, 1, 1); outputs dx = dy * s and ds, each plane's sum of dy * x (one
// thread's sum in order, so the same whatever the number of threads).
FGVCTUNE_KERNEL(ChannelScaleBackward) {
  if (nparam != 5 || !is_per_plane(ndims + 1, shapes + 1) || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *s = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *ds = static_cast<float *>(params[4]);
  const int64_t planes = shapes[0][0] * shapes[0][1], area = shapes[0][2] * shapes[0][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(planes * area))
  for (int64_t p = 0; p < planes; ++p) {
    const float scale = s[p];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = p * area; i < (p + 1) * area; ++i) {
      dx[i] = dy[i] * scale;
      sum += dy[i] * x[i];
    }
    ds[p] = sum;
  }
  return 0;
}

// ResNeSt's radix-2 split attention's weighted sum. Inputs x (N, 2C, H, W), a (N, 2C, 1, 1); output y (N, C, H, W),
// y[n, c] = x[n, c] * a[n, c] + x[n, C + c] * a[n, C + c]: the two channel halves, each plane scaled by its weight.
FGVCTUNE_KERNEL(RadixPairForward) {
  if (nparam != 3 || !is_per_plane(ndims, shapes) || shapes[0][1] % 2 || !is_float32(dtypes[0])) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *a = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t n = shapes[0][0], half = shapes[0][1] / 2, area = shapes[0][2] * shapes[0][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(n * half * area))
  for (int64_t p = 0; p < n * half; ++p) {
    const int64_t first = (p / half) * 2 * half + p % half, second = first + half;  // planes of x and a
    const float *x1 = x + first * area, *x2 = x + second * area;
    const float a1 = a[first], a2 = a[second];
    float *out = y + p * area;
#pragma omp simd
    for (int64_t i = 0; i < area; ++i) out[i] = x1[i] * a1 + x2[i] * a2;
  }
  return 0;
}

// Inputs dy (N, C, H, W), x (N, 2C, H, W), a (N, 2C, 1, 1); outputs dx (N, 2C, H, W), each half dy times its
// weight, and da (N, 2C, 1, 1), each plane's sum of dy * x (one thread's sum in order).
FGVCTUNE_KERNEL(RadixPairBackward) {
  if (nparam != 5 || !is_per_plane(ndims + 1, shapes + 1) || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *a = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *da = static_cast<float *>(params[4]);
  const int64_t n = shapes[1][0], half = shapes[1][1] / 2, area = shapes[1][2] * shapes[1][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(n * half * area * 2))
  for (int64_t p = 0; p < n * half; ++p) {
    const int64_t first = (p / half) * 2 * half + p % half, second = first + half;
    const float *x1 = x + first * area, *x2 = x + second * area, *grad = dy + p * area;
    float *dx1 = dx + first * area, *dx2 = dx + second * area;
    const float a1 = a[first], a2 = a[second];
    float sum1 = 0.0f, sum2 = 0.0f;
#pragma omp simd reduction(+ : sum1, sum2)
    for (int64_t i = 0; i < area; ++i) {
      dx1[i] = grad[i] * a1;
      dx2[i] = grad[i] * a2;
      sum1 += grad[i] * x1[i];
      sum2 += grad[i] * x2[i];
    }
    da[first] = sum1;
    da[second] = sum2;
  }
  return 0;
}

namespace {

// GELU's tanh form, 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), written as x s with
// s = 1 / (1 + e), e = exp(-2u): the same number, one exp and one division, in plain float arithmetic the
// compiler vectorises (a call to expf would leave the loop scalar).
constexpr float kGeluScale = 0.7978845608028654f, kGeluCubic = 0.044715f;
// Beyond |2u| = 80, s is 0 or 1 to float precision (e stays finite and normal up to it).
constexpr float kGeluLimit = 80.0f;
// An element's work against one of hard swish's (what common.h's kParallelWork was measured with): with its exp and
// division, two threads gain from 301,056 elements (147 -> 118 us a call), not yet at 150,528 (74 -> 79).
constexpr int64_t kGeluWork = 2;

// exp(t) for |t| <= 87: t = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r is exact), exp(r) by Cephes'
// polynomial (within about an ulp), times 2^n built in the exponent's bits. n is rounded by adding and taking
// away 1.5 * 2^23 (floorf would keep GCC from vectorising the loop: it may raise the inexact exception).
inline float exp_small(float t) {
  const float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = t - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float power;
  std::memcpy(&power, &bits, sizeof power);
  return er * power;
}

}  // namespace

void tanh_gelu(const float *x, float *y, int64_t count) {
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count * kGeluWork))
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float t = -2.0f * kGeluScale * (v + kGeluCubic * v * v * v);  // -2u
    const float clamped = t > kGeluLimit ? kGeluLimit : (t < -kGeluLimit ? -kGeluLimit : t);
    const float s = 1.0f / (1.0f + exp_small(clamped));
    y[i] = v * (t > kGeluLimit ? 0.0f : s);  // s is 0 beyond the limit
  }
}

// Input x; output y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), nn.GELU's default (tanh) form.
FGVCTUNE_KERNEL(TanhGeluForward) {
  if (nparam != 2 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  tanh_gelu(static_cast<const float *>(params[0]), static_cast<float *>(params[1]), elements(ndims[0], shapes[0]));
  return 0;
}

// Inputs dy, x; output dx = dy * (s + x s (1 - s) d(2u)/dx), s as above, d(2u)/dx = 2 sqrt(2/pi) (1 + 3 0.044715 x^2),
// 1 - s written e s (which keeps its digits where s is near 1); 0 and 1 beyond |2u| = 80.
FGVCTUNE_KERNEL(TanhGeluBackward) {
  if (nparam != 3 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t count = elements(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count * kGeluWork))
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i], square = v * v;
    const float t = -2.0f * kGeluScale * (v + kGeluCubic * square * v);
    const float clamped = t > kGeluLimit ? kGeluLimit : (t < -kGeluLimit ? -kGeluLimit : t);
    const float e = exp_small(clamped);
    const float s = 1.0f / (1.0f + e);
    const float du2 = 2.0f * kGeluScale * (1.0f + 3.0f * kGeluCubic * square);  // d(2u)/dx
    const float slope = s * (1.0f + v * du2 * (e * s));
    dx[i] = dy[i] * (t > kGeluLimit ? 0.0f : (t < -kGeluLimit ? 1.0f : slope));
  }
  return 0;
}

// A residual block's end. Inputs a, b (the same shape); output y = max(a + b, 0).
FGVCTUNE_KERNEL(AddReluForward) {
  if (nparam != 3 || ndims[0] != ndims[1] || !is_float32(dtypes[0]) || !is_float32(dtypes[1])) return 1;
  for (int d = 0; d < ndims[0]; ++d)
    if (shapes[0][d] != shapes[1][d]) return 1;  // MindSpore raises
  const float *a = static_cast<const float *>(params[0]);
  const float *b = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t count = elements(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count))
  for (int64_t i = 0; i < count; ++i) {
    const float sum = a[i] + b[i];
    y[i] = sum > 0.0f ? sum : 0.0f;
  }
  return 0;
}

// Inputs dy, y (the forward's output); output dx = dy where y > 0, else 0: the gradient of a and of b alike.
FGVCTUNE_KERNEL(AddReluBackward) {
  if (nparam != 3 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *y = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t count = elements(ndims[0], shapes[0]);
#pragma omp parallel for simd schedule(static) if (parallel : parallel_worth(count))
  for (int64_t i = 0; i < count; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  return 0;
}
