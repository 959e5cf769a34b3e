// MobileNetV3's block (its inverted residual) as one op, for inference and frozen blocks (fuse.py's
// WholeBottleneck), as a MindSpore custom "aot" kernel: per image, the expansion (a folded 1x1 convolution and its
// activation), the depthwise convolution and its activation, the squeeze-excitation, and the projection with the
// residual sum, each by the loop its own op runs (pointwise.cc, depthwise.cc, squeeze_excite.cc). One thread takes
// an image through the whole block, so what a layer writes is still in that core's cache when the next reads it;
// as separate ops over a batch, each layer's output goes out to memory and back (at batch 32, mobilenet_v3_small's
// first expansion writes 29 MB).
// Built by build.py; the function has MindSpore's aot signature.

#include "common.h"

#include <cstdint>
#include <vector>

// Inputs x (N, C, H, W); the expansion's folded weight (M, C, 1, 1) and bias (M); the depthwise convolution's
// (M, 1, K, K) and (M); the squeeze-excitation's w1 (R, M, 1, 1), b1 (R), w2 (M, R, 1, 1), b2 (M); the projection's
// (O, M, 1, 1) and (O); spec [expands, expand_post, stride_h, stride_w, pad_top, pad_left, same, depthwise_post,
// excites, adds] (the posts common.h's Post; the depthwise geometry as DepthwiseForward's spec). Output y (N, O, OH,
// OW). Where the block does not expand (M = C) or excite, those inputs are not read; `adds`: y += x.
FGVCTUNE_KERNEL(BottleneckForward) {
  if (nparam != 13 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t *spec = static_cast<const int64_t *>(params[11]);
  const bool expands = spec[0], excites = spec[8], adds = spec[9];
  const int64_t n = shapes[0][0], c = shapes[0][1], h = shapes[0][2], w = shapes[0][3];
  const int64_t mid = shapes[3][0], reduced = shapes[5][0], out = shapes[12][1], oh = shapes[12][2],
                ow = shapes[12][3];
  if (expands ? shapes[1][0] != mid || shapes[1][1] != c : mid != c) return 1;
  if (excites && (shapes[5][1] != mid || shapes[7][0] != mid || shapes[7][1] != reduced)) return 1;
  if (shapes[9][0] != out || shapes[9][1] != mid || (adds && (out != c || oh != h || ow != w))) return 1;
  const float *x = static_cast<const float *>(params[0]);
  auto weights = [&](int i) { return static_cast<const float *>(params[i]); };
  float *y = static_cast<float *>(params[12]);
  const int64_t in_shape[4] = {1, mid, h, w}, out_shape[4] = {1, mid, oh, ow};
  const int64_t depthwise_spec[5] = {spec[2], spec[3], spec[4], spec[5], spec[6]};

  // Image i through the block, with one thread's scratch
  auto image = [&](int64_t i, float *expanded, float *middle) {
    const float *xi = x + i * c * h * w;
    if (expands) pointwise_forward(xi, weights(1), weights(2), nullptr, spec[1], expanded, 1, c, mid, h * w);
    depthwise_forward(expands ? expanded : xi, weights(3), weights(4), spec[7], middle, in_shape, shapes[3],
                      out_shape, depthwise_spec);
    if (excites)
      squeeze_excite(middle, weights(5), weights(6), weights(7), weights(8), middle, 1, mid, oh * ow, reduced);
    pointwise_forward(middle, weights(9), weights(10), adds ? xi : nullptr, kNone, y + i * out * oh * ow, 1, mid, out,
                      oh * ow);
  };
  // Over images where there are two or more: each layer's own loop then runs on its image's thread alone (OpenMP
  // does not nest); one image leaves each layer to split its work as its op does.
  const int64_t taps = shapes[3][2] * shapes[3][3];  // multiply-adds, counted as pointwise.cc counts them
  const int64_t work = n * mid * ((expands ? c * h * w : 0) + (taps + out) * oh * ow) / 8;
#pragma omp parallel if (parallel : n > 1 && parallel_worth(work))
  {
    std::vector<float> expanded(expands ? mid * h * w : 0), middle(mid * oh * ow);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) image(i, expanded.data(), middle.data());
  }
  return 0;
}
