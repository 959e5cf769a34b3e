// MobileNetV3's block (its inverted residual) as one op, for inference and frozen blocks (fuse.py's
// WholeBottleneck), as a MindSpore custom "aot" kernel: per image, the expansion (a folded 1x1 convolution and its
// activation), the depthwise convolution and its activation, the squeeze-excitation, and the projection with the
// residual sum, each by the loop its own op runs (pointwise.cc, depthwise.cc, squeeze_excite.cc). One thread takes
// an image through the whole block, so what a layer writes is still in that core's cache when the next reads it;
// as separate ops over a batch, each layer's output goes out to memory and back (at batch 32, mobilenet_v3_small's
// first expansion writes 29 MB). The first block may run the stem's convolution before it, so (StemBottleneckForward).
// Built by build.py; the functions have MindSpore's aot signature.

#include "common.h"

#include <omp.h>

#include <cstdint>
#include <vector>

namespace {

// The block's inputs and geometry: the output y (N, O, OH, OW) from x (N, C, H, W), the weights as
// BottleneckForward's inputs 1 to 10, its spec.
struct Block {
  const float *const *weights;  // params, whose 1 to 10 are the weights
  const int64_t *const *shapes, *spec;
  int64_t c, h, w, mid, reduced, out, oh, ow;
};

// One image's block: x (C, H, W) -> y (O, OH, OW), with one thread's scratch (expanded, middle).
void image(const Block &b, const float *x, float *y, float *expanded, float *middle) {
  const int64_t *spec = b.spec;
  const int64_t in_shape[4] = {1, b.mid, b.h, b.w}, out_shape[4] = {1, b.mid, b.oh, b.ow};
  const int64_t depthwise_spec[5] = {spec[2], spec[3], spec[4], spec[5], spec[6]};
  auto weights = [&](int i) { return b.weights[i]; };
  if (spec[0]) pointwise_forward(x, weights(1), weights(2), nullptr, spec[1], expanded, 1, b.c, b.mid, b.h * b.w);
  depthwise_forward(spec[0] ? expanded : x, weights(3), weights(4), spec[7], middle, in_shape, b.shapes[3], out_shape,
                    depthwise_spec);
  if (spec[8])
    squeeze_excite(middle, weights(5), weights(6), weights(7), weights(8), middle, 1, b.mid, b.oh * b.ow, b.reduced);
  pointwise_forward(middle, weights(9), weights(10), spec[9] ? x : nullptr, kNone, y, 1, b.mid, b.out, b.oh * b.ow);
}

// Whether the weights' shapes (shapes[1] to [10], as BottleneckForward's inputs) fit the block's geometry and spec.
bool fits(const Block &b) {
  const int64_t *const *shapes = b.shapes;
  const bool expands = b.spec[0], excites = b.spec[8], adds = b.spec[9];
  if (expands ? shapes[1][0] != b.mid || shapes[1][1] != b.c : b.mid != b.c) return false;
  if (excites && (shapes[5][1] != b.mid || shapes[7][0] != b.mid || shapes[7][1] != b.reduced)) return false;
  return shapes[9][0] == b.out && shapes[9][1] == b.mid && !(adds && (b.out != b.c || b.oh != b.h || b.ow != b.w));
}

// A thread's scratch buffer `slot` of at least `count` floats, kept for its next call: allocated anew at every call,
// a buffer this size (up to a megabyte, the stem's output) is mapped and its pages faulted in again each time.
float *scratch(int slot, int64_t count) {
  thread_local std::vector<float> buffers[3];
  std::vector<float> &buffer = buffers[slot];
  if (static_cast<int64_t>(buffer.size()) < count) buffer.resize(count);
  return buffer.data();
}

// The images through the block, over the cores where there are two or more: each layer's own loop then runs on its
// image's thread alone (OpenMP does not nest); one image leaves each layer to split its work as its op does.
// `before` (image i, a thread's scratch of own_size floats) -> the block's input for image i: x's own, or the stem's
// output.
template <typename Before>
void images(const Block &b, int64_t n, float *y, int64_t own_size, int64_t extra_work, Before before) {
  const int64_t taps = b.shapes[3][2] * b.shapes[3][3];  // multiply-adds, counted as pointwise.cc counts them
  const int64_t work = n * b.mid * ((b.spec[0] ? b.c * b.h * b.w : 0) + (taps + b.out) * b.oh * b.ow) / 8;
  auto some = [&](int64_t from, int64_t to) {  // images [from, to) on this thread
    float *expanded = scratch(0, b.spec[0] ? b.mid * b.h * b.w : 0), *middle = scratch(1, b.mid * b.oh * b.ow),
          *own = scratch(2, own_size);
    for (int64_t i = from; i < to; ++i) image(b, before(i, own), y + i * b.out * b.oh * b.ow, expanded, middle);
  };
  if (n < 2 || !parallel_worth(work + n * extra_work)) {
    // outside any parallel region, so each layer's own may use the cores: inside one that runs on one thread, a
    // layer's region made its team anew at every call (the stem and first block at batch 1, the
    // profiler: 0.46 to 0.58 against 0.34 ms)
    some(0, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    some(n * t / threads, n * (t + 1) / threads);
  }
}

}  // namespace

// Inputs x (N, C, H, W); the expansion's folded weight (M, C, 1, 1) and bias (M); the depthwise convolution's
// (M, 1, K, K) and (M); the squeeze-excitation's w1 (R, M, 1, 1), b1 (R), w2 (M, R, 1, 1), b2 (M); the projection's
// (O, M, 1, 1) and (O); spec [expands, expand_post, stride_h, stride_w, pad_top, pad_left, same, depthwise_post,
// excites, adds] (the posts common.h's Post; the depthwise geometry as DepthwiseForward's spec). Output y (N, O, OH,
// OW). Where the block does not expand (M = C) or excite, those inputs are not read; `adds`: y += x.
FGVCTUNE_KERNEL(BottleneckForward) {
  if (nparam != 13 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t *x_shape = shapes[0], *y_shape = shapes[12];
  const Block b{reinterpret_cast<const float *const *>(params), shapes, static_cast<const int64_t *>(params[11]),
                x_shape[1], x_shape[2], x_shape[3], shapes[3][0], shapes[5][0], y_shape[1], y_shape[2], y_shape[3]};
  if (!fits(b)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const int64_t size = b.c * b.h * b.w;
  images(b, x_shape[0], static_cast<float *>(params[12]), 0, 0, [&](int64_t i, float *) { return x + i * size; });
  return 0;
}

// The stem (stem.cc's 3x3 convolution at stride 2 with its activation) and then the first block, per image, so the
// stem's output stays in the core's cache for the block (at batch 32 it is 26 MB, written out and read back as two
// ops). Inputs: the image x (N, S, H, W), the stem's folded weight (C, S, 3, 3) and bias (C), then the block's
// inputs as BottleneckForward's (its x is the stem's output), its spec followed by the stem's post (common.h's
// Post), top and left padding. Output as BottleneckForward's.
FGVCTUNE_KERNEL(StemBottleneckForward) {
  if (nparam != 15 || ndims[0] != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t *x_shape = shapes[0], *stem = shapes[1], *y_shape = shapes[14];
  const int64_t *spec = static_cast<const int64_t *>(params[13]);
  const int64_t post = spec[10], top = spec[11], left = spec[12];
  if (!stem_geometry(stem[1], stem[2], stem[3], 2, 2, false, 1, left) || stem[1] != x_shape[1]) return 1;
  const int64_t h = (x_shape[2] + 2 * top - 3) / 2 + 1, w = (x_shape[3] + 2 * left - 3) / 2 + 1;  // (symmetric)
  const Block b{reinterpret_cast<const float *const *>(params + 2), shapes + 2, spec, stem[0], h, w, shapes[5][0],
                shapes[7][0], y_shape[1], y_shape[2], y_shape[3]};
  if (!fits(b)) return 1;
  const float *x = static_cast<const float *>(params[0]), *sw = static_cast<const float *>(params[1]),
              *sb = static_cast<const float *>(params[2]);
  const int64_t size = x_shape[1] * x_shape[2] * x_shape[3], stem_out = b.c * h * w;
  images(b, x_shape[0], static_cast<float *>(params[14]), stem_out, stem_out * x_shape[1] * 9 / 8,
         [&](int64_t i, float *own) {
           stem_forward(x + i * size, sw, sb, post, own, 1, x_shape[1], x_shape[2], x_shape[3], b.c, h, w, top, left);
           return static_cast<const float *>(own);
         });
  return 0;
}
