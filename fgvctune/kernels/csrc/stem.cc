// A 3x3 convolution at stride 2 over an image's few channels (MobileNetV3's stem: RGB in, 16 out), forward, for
// inference (onednn.cc's folded layers), on NCHW float32 tensors, the bias and activation done while the sums are
// in registers. oneDNN ran it with a reorder to its blocked layout and back, the largest op of mobilenet_v3_small's
// forward: 251 us of 2.6 ms at batch 1, about 200 us this way (docs/performance.md).
//
// Per output row, each input row the window reaches is split into its even and odd columns (zero where the padding
// is), so every tap of the window reads 16 neighbouring outputs' inputs as one contiguous load.

#include "common.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

constexpr int kOutputs = 16, kPixels = 16;  // a block: 16 filters x 16 pixels of one output row, in 16 registers

struct Stem {
  int64_t channels, outputs, out_h, out_w, left;
};

// Outputs [o0, o0 + R) at pixels [p0, p0 + V) of one output row, from `split`: per channel and window row, the
// even and odd columns (null for a window row in the padding), each out_w + 2 long. `taps` holds the weights tap
// by tap, each tap's outputs side by side, so the R weights a tap multiplies are one pointer's neighbours.
template <int R, int V>
void block(const float *const *split, const float *taps, const float *bias, int64_t post, float *y, const Stem &s,
           int64_t o0, int64_t p0) {
  float sums[R][V] = {};
  for (int64_t c = 0; c < s.channels; ++c)
    for (int kh = 0; kh < 3; ++kh) {
      const float *even = split[2 * (c * 3 + kh)], *odd = split[2 * (c * 3 + kh) + 1];
      if (!even) continue;
      for (int kw = 0; kw < 3; ++kw) {
        // input column 2 * ow - left + kw is column 2 * ow + q of the row padded by one zero on the left
        const int q = kw + 1 - static_cast<int>(s.left);
        const float *in = (q & 1 ? odd : even) + q / 2 + p0, *weights = taps + (c * 9 + kh * 3 + kw) * s.outputs + o0;
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const float weight = weights[r];
#pragma omp simd
          for (int j = 0; j < V; ++j) sums[r][j] += weight * in[j];
        }
      }
    }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) add_and_activate(sums[r], bias[o0 + r], post, y + (o0 + r) * s.out_h * s.out_w + p0, V);
}

// Outputs [o0, o0 + R) of one output row: blocks of 16 pixels, the last ending at the row's end (some pixels
// computed twice, to the same values), single pixels where the row is shorter than 16.
template <int R>
void row(const float *const *split, const float *taps, const float *bias, int64_t post, float *y, const Stem &s,
         int64_t o0) {
  if (s.out_w < kPixels) {
    for (int64_t p = 0; p < s.out_w; ++p) block<R, 1>(split, taps, bias, post, y, s, o0, p);
    return;
  }
  for (int64_t p = 0; p < s.out_w; p += kPixels)
    block<R, kPixels>(split, taps, bias, post, y, s, o0, std::min(p, s.out_w - kPixels));
}

}  // namespace

bool stem_geometry(int64_t channels, int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w, int64_t dilated,
                   int64_t groups, int64_t left) {
  return channels <= 4 && kh == 3 && kw == 3 && stride_h == 2 && stride_w == 2 && !dilated && groups == 1 &&
         left >= 0 && left <= 1;
}

void stem_forward(const float *x, const float *w, const float *bias, int64_t post, float *y, int64_t images,
                  int64_t channels, int64_t h, int64_t width, int64_t outputs, int64_t out_h, int64_t out_w,
                  int64_t top, int64_t left) {
  const Stem s{channels, outputs, out_h, out_w, left};
  const int64_t span = out_w + 2, work = images * out_h * out_w * outputs * channels * 9 / 8;  // (onednn.cc's)
  std::vector<float> taps(channels * 9 * outputs);  // w (outputs, channels * 9) as (channels * 9, outputs)
  for (int64_t o = 0; o < outputs; ++o)
    for (int64_t t = 0; t < channels * 9; ++t) taps[t * outputs + o] = w[o * channels * 9 + t];
#pragma omp parallel if (parallel : parallel_worth(work))
  {
    std::vector<float> columns(channels * 3 * 2 * span);
    std::vector<const float *> split(channels * 3 * 2);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < images; ++n)
      for (int64_t oh = 0; oh < out_h; ++oh) {
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t kh = 0; kh < 3; ++kh) {
            const int64_t r = 2 * oh - top + kh, at = c * 3 + kh;
            float *even = columns.data() + 2 * at * span, *odd = even + span;
            split[2 * at] = r >= 0 && r < h ? even : nullptr, split[2 * at + 1] = odd;
            if (!split[2 * at]) continue;
            const float *in = x + ((n * channels + c) * h + r) * width;
            // padded column 2j (even[j]) is input column 2j - 1, 2j + 1 (odd[j]) input column 2j
            const int64_t evens = std::min(span, width / 2 + 1), odds = std::min(span, (width + 1) / 2);
            std::fill(even, even + span, 0.0f), std::fill(odd, odd + span, 0.0f);
            for (int64_t j = 1; j < evens; ++j) even[j] = in[2 * j - 1];
            for (int64_t j = 0; j < odds; ++j) odd[j] = in[2 * j];
          }
        float *out = y + n * outputs * out_h * out_w + oh * out_w;
        int64_t o = 0;
        for (; o + kOutputs <= outputs; o += kOutputs) row<kOutputs>(split.data(), taps.data(), bias, post, out, s, o);
        for (; o < outputs; ++o) row<1>(split.data(), taps.data(), bias, post, out, s, o);
      }
  }
}
