// Max pooling over NCHW float32 planes (ResNet's stem: 3x3 at stride 2, "same" padding), forward and backward,
// and over oneDNN's blocked layout for inference, as MindSpore custom "aot" kernels. The forward records which input
// each output took (its index in the plane, as int32): the first largest in the window read row by row, padding
// left out, as MindSpore's MaxPoolGrad picks it. The backward adds each output's gradient there, the outputs in
// order: the same sums as MindSpore's. Built by build.py; every function has MindSpore's aot signature.

#include "common.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

typedef float Vec16 __attribute__((vector_size(64)));  // one pixel's sixteen channels in the blocked layout

struct Geometry {
  int64_t h, w, out_h, out_w, kh, kw, sh, sw, top, left;
};

// Output row `oh`'s columns [from, to) whose windows may cross the plane's edges: rows and columns inside it only.
void pool_edge(const float *x, float *y, int32_t *arg, const Geometry &g, int64_t oh, int64_t from, int64_t to) {
  const int64_t r0 = oh * g.sh - g.top, i0 = std::max<int64_t>(0, -r0), i1 = std::min(g.kh, g.h - r0);
  for (int64_t ow = from; ow < to; ++ow) {
    const int64_t c0 = ow * g.sw - g.left, j0 = std::max<int64_t>(0, -c0), j1 = std::min(g.kw, g.w - c0);
    int64_t best_at = (r0 + i0) * g.w + c0 + j0;
    float best = x[best_at];
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t at = (r0 + i) * g.w + c0 + j;
        if (x[at] > best) best = x[at], best_at = at;
      }
    y[oh * g.out_w + ow] = best, arg[oh * g.out_w + ow] = static_cast<int32_t>(best_at);
  }
}

// A 3x3 window at stride 2 (the stem's), a plane at a time: each input row's largest of every three columns
// first (the first of equals), then each output's largest of its three rows' (the first of equals): the first
// largest read row by row. Rows of even and odd columns make every access contiguous, so the loops vectorise.
// `scratch` holds 2 * h * out_w + 4 * (out_w + 1) floats.
void pool_stem(const float *x, float *y, int32_t *arg, const Geometry &g, float *scratch) {
  const int64_t h = g.h, w = g.w, out_w = g.out_w, pairs = out_w + 1;
  float *best = scratch;                                            // h rows of out_w: each row's largest of three
  int32_t *column = reinterpret_cast<int32_t *>(best + h * out_w);  // and its column
  float *padded = reinterpret_cast<float *>(column + h * out_w);    // a row, `left` columns to the right: 2 * pairs
  float *even = padded + 2 * pairs, *odd = even + pairs;
  const float lowest = -std::numeric_limits<float>::infinity();  // outside the plane (edge columns are redone)
  for (int64_t r = 0; r < h; ++r) {
    const float *row = x + r * w;
    for (int64_t i = 0; i < 2 * pairs; ++i) {
      const int64_t c = i - g.left;
      padded[i] = c >= 0 && c < w ? row[c] : lowest;
    }
#pragma omp simd
    for (int64_t k = 0; k < pairs; ++k) even[k] = padded[2 * k], odd[k] = padded[2 * k + 1];
    float *m = best + r * out_w;
    int32_t *at = column + r * out_w;
#pragma omp simd
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int32_t c0 = static_cast<int32_t>(2 * ow - g.left);  // the window's first column
      float v = even[ow];
      int32_t c = c0;
      c = odd[ow] > v ? c0 + 1 : c, v = odd[ow] > v ? odd[ow] : v;
      c = even[ow + 1] > v ? c0 + 2 : c, v = even[ow + 1] > v ? even[ow + 1] : v;
      m[ow] = v, at[ow] = c;
    }
  }
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const int64_t r0 = std::max<int64_t>(oh * 2 - g.top, 0), r1 = std::min(oh * 2 - g.top + 3, h);
    float *out = y + oh * out_w;
    int32_t *took = arg + oh * out_w;
    const float *m0 = best + r0 * out_w;
    const int32_t *at0 = column + r0 * out_w;
#pragma omp simd
    for (int64_t ow = 0; ow < out_w; ++ow) out[ow] = m0[ow], took[ow] = static_cast<int32_t>(r0 * w) + at0[ow];
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const float *m = best + r * out_w;
      const int32_t *at = column + r * out_w;
#pragma omp simd
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const bool larger = m[ow] > out[ow];
        took[ow] = larger ? static_cast<int32_t>(r * w) + at[ow] : took[ow];
        out[ow] = larger ? m[ow] : out[ow];
      }
    }
  }
}

void pool_plane(const float *x, float *y, int32_t *arg, const Geometry &g, float *scratch) {
  if (!(g.kh == 3 && g.kw == 3 && g.sh == 2 && g.sw == 2)) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) pool_edge(x, y, arg, g, oh, 0, g.out_w);
    return;
  }
  pool_stem(x, y, arg, g, scratch);
  // the columns whose windows cross the plane's left or right edge, again without the padding
  const int64_t inside_from = std::min(g.out_w, (g.left + 1) / 2);
  const int64_t last = g.w - 3 + g.left;  // a window inside ends by the last column: 2 * ow <= last
  const int64_t inside_to = last < 0 ? inside_from : std::clamp(last / 2 + 1, inside_from, g.out_w);
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    pool_edge(x, y, arg, g, oh, 0, inside_from);
    pool_edge(x, y, arg, g, oh, inside_to, g.out_w);
  }
}

}  // namespace

// Inputs x (N, C, H, W), spec (kernel h, kernel w, stride h, stride w, whether "same" padding: int64); outputs
// y (N, C, OH, OW), each window's largest value, and where it was (int32, its index in x's plane). "same" pads
// the less on the top and left where the padding is uneven, as MindSpore does.
FGVCTUNE_KERNEL(MaxPoolForward) {
  if (nparam != 4 || ndims[0] != 4 || ndims[2] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const int64_t *spec = static_cast<const int64_t *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  int32_t *arg = static_cast<int32_t *>(params[3]);
  const int64_t h = shapes[0][2], w = shapes[0][3], out_h = shapes[2][2], out_w = shapes[2][3];
  const int64_t top = spec[4] ? std::max<int64_t>((out_h - 1) * spec[2] + spec[0] - h, 0) / 2 : 0;
  const int64_t left = spec[4] ? std::max<int64_t>((out_w - 1) * spec[3] + spec[1] - w, 0) / 2 : 0;
  const Geometry g{h, w, out_h, out_w, spec[0], spec[1], spec[2], spec[3], top, left};
  if (g.h * g.w > INT32_MAX) return 1;
  const int64_t planes = shapes[0][0] * shapes[0][1], in_plane = g.h * g.w, out_plane = g.out_h * g.out_w;
#pragma omp parallel if (parallel : parallel_worth(planes * out_plane * 9))
  {
    std::vector<float> scratch(2 * g.h * g.out_w + 4 * (g.out_w + 1));  // pool_stem's
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p)
      pool_plane(x + p * in_plane, y + p * out_plane, arg + p * out_plane, g, scratch.data());
  }
  return 0;
}

// Inputs x (N, C, H, W) in oneDNN's nChw16c (onednn.cc's fused chain; C a multiple of 16), spec as
// MaxPoolForward's; output y (N, C, OH, OW) in nChw16c, each window's largest value (inference: where it was is not
// kept). A ResNet's stem pooled between its convolution and its first block, in their layout: sixteen channels a
// vector.
FGVCTUNE_KERNEL(MaxPoolBlockedForward) {
  if (nparam != 3 || ndims[0] != 4 || shapes[0][1] % 16 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const int64_t *spec = static_cast<const int64_t *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t h = shapes[0][2], w = shapes[0][3], out_h = shapes[2][2], out_w = shapes[2][3];
  const int64_t top = spec[4] ? std::max<int64_t>((out_h - 1) * spec[2] + spec[0] - h, 0) / 2 : 0;
  const int64_t left = spec[4] ? std::max<int64_t>((out_w - 1) * spec[3] + spec[1] - w, 0) / 2 : 0;
  const int64_t blocks = shapes[0][0] * shapes[0][1] / 16;
#pragma omp parallel for collapse(2) schedule(static) \
    if (parallel : parallel_worth(blocks * out_h * out_w * 16 * spec[0] * spec[1]))
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const float *plane = x + b * h * w * 16;
      const int64_t r0 = oh * spec[2] - top, i0 = std::max<int64_t>(0, -r0), i1 = std::min(spec[0], h - r0);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t c0 = ow * spec[3] - left, j0 = std::max<int64_t>(0, -c0), j1 = std::min(spec[1], w - c0);
        Vec16 best, at;
        std::memcpy(&best, plane + ((r0 + i0) * w + c0 + j0) * 16, sizeof best);
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) {
            std::memcpy(&at, plane + ((r0 + i) * w + c0 + j) * 16, sizeof at);
            best = at > best ? at : best;  // the first of equals
          }
        std::memcpy(y + ((b * out_h + oh) * out_w + ow) * 16, &best, sizeof best);
      }
    }
  return 0;
}

// Inputs dy (N, C, OH, OW), where each output took its value (int32, as MaxPoolForward gives it), x (N, C, H, W)
// (its shape alone); output dx (N, C, H, W): each output's gradient added where it took its value, the outputs in
// order.
FGVCTUNE_KERNEL(MaxPoolBackward) {
  if (nparam != 4 || ndims[0] != 4 || ndims[3] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const int32_t *arg = static_cast<const int32_t *>(params[1]);
  float *dx = static_cast<float *>(params[3]);
  const int64_t planes = shapes[3][0] * shapes[3][1], in_plane = shapes[3][2] * shapes[3][3];
  const int64_t out_plane = shapes[0][2] * shapes[0][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(planes * in_plane))
  for (int64_t p = 0; p < planes; ++p) {
    float *plane = dx + p * in_plane;
    const float *grad = dy + p * out_plane;
    const int32_t *took = arg + p * out_plane;
    std::memset(plane, 0, sizeof(float) * in_plane);
    for (int64_t o = 0; o < out_plane; ++o) plane[took[o]] += grad[o];
  }
  return 0;
}

// Global average pooling (kernels/pooling.py's FusedGlobalAvgPool, whose gradient is its own bprop): input x (N,
// C, H, W); output y (N, C, 1, 1) or (N, C), each plane's mean. MindSpore's MatMul with a column of 1 / (H * W),
// the swap it stands in for, took 80 to 120 us of mobilenet_v3_small's forward at batch 1 for 28,224 values.
FGVCTUNE_KERNEL(GlobalMeanForward) {
  if (nparam != 2 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t planes = shapes[0][0] * shapes[0][1], area = shapes[0][2] * shapes[0][3];
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(planes * area))
  for (int64_t p = 0; p < planes; ++p) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < area; ++i) sum += x[p * area + i];
    y[p] = sum / static_cast<float>(area);
  }
  return 0;
}
