// MobileNetV3's squeeze-excitation in one pass, for inference (fuse.py), as a MindSpore custom "aot" kernel: each
// image's channel means, the two 1x1 convolutions on them with ReLU and hard sigmoid between and after, and the
// image scaled by the result. MindSpore runs it as seven ops (pooling, two convolutions, two bias adds, ReLU, hard
// sigmoid, then the scale), on (N, C, 1, 1) tensors but for the first and last.
// Built by build.py; the function has MindSpore's aot signature.

#include "common.h"

#include <cstdint>
#include <vector>

void squeeze_excite(const float *x, const float *w1, const float *b1, const float *w2, const float *b2, float *y,
                    int64_t n, int64_t c, int64_t area, int64_t r) {
  const int64_t work = n * c * area * 2 + n * c * r / 4;  // x read twice and y written; two products of C x R
#pragma omp parallel if (parallel : parallel_worth(work))
  {
    std::vector<float> squeezed(c), hidden(r);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float *image = x + i * c * area;
      for (int64_t ch = 0; ch < c; ++ch) {
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < area; ++p) sum += image[ch * area + p];
        squeezed[ch] = sum / static_cast<float>(area);
      }
      for (int64_t j = 0; j < r; ++j) {
        float sum = b1[j];
#pragma omp simd reduction(+ : sum)
        for (int64_t ch = 0; ch < c; ++ch) sum += w1[j * c + ch] * squeezed[ch];
        hidden[j] = sum > 0.0f ? sum : 0.0f;
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        float sum = b2[ch];
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < r; ++j) sum += w2[ch * r + j] * hidden[j];
        const float gate = (sum + 3.0f < 0.0f ? 0.0f : (sum + 3.0f > 6.0f ? 6.0f : sum + 3.0f)) / 6.0f;
        const float *plane = image + ch * area;
        float *out = y + (i * c + ch) * area;
#pragma omp simd
        for (int64_t p = 0; p < area; ++p) out[p] = plane[p] * gate;
      }
    }
  }
}

// Inputs x (N, C, H, W), w1 (R, C, 1, 1), b1 (R), w2 (C, R, 1, 1), b2 (C); output y = x * gate (common.h's
// squeeze_excite).
FGVCTUNE_KERNEL(SqueezeExciteForward) {
  if (nparam != 6 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t n = shapes[0][0], c = shapes[0][1], area = shapes[0][2] * shapes[0][3], r = shapes[1][0];
  if (shapes[1][1] != c || shapes[3][0] != c || shapes[3][1] != r || shapes[2][0] != r || shapes[4][0] != c)
    return 1;
  squeeze_excite(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                 static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                 static_cast<const float *>(params[4]), static_cast<float *>(params[5]), n, c, area, r);
  return 0;
}
