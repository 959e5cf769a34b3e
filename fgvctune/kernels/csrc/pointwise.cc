// A 1x1 convolution at stride 1 on NCHW float32 tensors, forward, for inference (onednn.cc's folded pointwise
// layers: MobileNetV3's expansions and projections): per image y (O, P) = w (O, C) @ x (C, P) with its bias, the
// residual sum and the activation done while the sums are in registers. oneDNN ran these as a matrix product whose
// "weights" are the image (packed anew at every call) and a second pass over the output for the bias: six of
// mobilenet_v3_small's layers at batch 16 took 3.9 ms that way, 3.4 in this loop (docs/performance.md).

#include "common.h"

#include <algorithm>
#include <cstdint>

namespace {

// Outputs and pixels one block computes: 8 x 32 sums, sixteen AVX-512 registers, each x row read once for 8 of w's.
constexpr int kRows = 8, kPixels = 32;

// Rows [o0, o0 + R) and pixels [p0, p0 + V) of one image's output.
template <int R, int V>
void block(const float *x, const float *w, const float *bias, const float *summand, int64_t post, float *y,
           int64_t channels, int64_t plane, int64_t o0, int64_t p0) {
  float sums[R][V] = {};
  for (int64_t c = 0; c < channels; ++c) {
    const float *row = x + c * plane + p0;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float weight = w[(o0 + r) * channels + c];
#pragma omp simd
      for (int j = 0; j < V; ++j) sums[r][j] += weight * row[j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t at = (o0 + r) * plane + p0;
    if (summand) {
#pragma omp simd
      for (int j = 0; j < V; ++j) sums[r][j] += summand[at + j];
    }
    add_and_activate(sums[r], bias[o0 + r], post, y + at, V);
  }
}

// Rows [o0, o0 + R) of pixels [p0, p1): whole blocks, then 16 pixels at a time, the last 16 ending at p1 (some
// pixels computed twice, to the same values) where the range has 16.
template <int R>
void rows(const float *x, const float *w, const float *bias, const float *summand, int64_t post, float *y,
          int64_t channels, int64_t plane, int64_t o0, int64_t p0, int64_t p1) {
  int64_t p = p0;
  for (; p + kPixels <= p1; p += kPixels) block<R, kPixels>(x, w, bias, summand, post, y, channels, plane, o0, p);
  for (; p + 16 <= p1; p += 16) block<R, 16>(x, w, bias, summand, post, y, channels, plane, o0, p);
  if (p < p1 && p1 - p0 >= 16) {
    block<R, 16>(x, w, bias, summand, post, y, channels, plane, o0, p1 - 16);
    return;
  }
  for (; p < p1; ++p) block<R, 1>(x, w, bias, summand, post, y, channels, plane, o0, p);
}

}  // namespace

void pointwise_forward(const float *x, const float *w, const float *bias, const float *summand, int64_t post,
                       float *y, int64_t images, int64_t channels, int64_t outputs, int64_t plane) {
  // the last pixel block takes what is left over too (up to 2 kPixels - 1): the repeated 16 stay in its range
  const int64_t row_blocks = (outputs + kRows - 1) / kRows, pixel_blocks = std::max<int64_t>(plane / kPixels, 1);
  const int64_t work = images * outputs * plane * channels / 8;  // (as onednn.cc's primitive_work counts it)
#pragma omp parallel for collapse(3) schedule(static) if (parallel : parallel_worth(work))
  for (int64_t n = 0; n < images; ++n)
    for (int64_t rb = 0; rb < row_blocks; ++rb)
      for (int64_t pb = 0; pb < pixel_blocks; ++pb) {
        const float *image = x + n * channels * plane, *sum = summand ? summand + n * outputs * plane : nullptr;
        float *out = y + n * outputs * plane;
        const int64_t o0 = rb * kRows, p0 = pb * kPixels, p1 = pb == pixel_blocks - 1 ? plane : p0 + kPixels;
        if (o0 + kRows <= outputs) {
          rows<kRows>(image, w, bias, sum, post, out, channels, plane, o0, p0, p1);
        } else {
          for (int64_t o = o0; o < outputs; ++o) rows<1>(image, w, bias, sum, post, out, channels, plane, o, p0, p1);
        }
      }
}
