// What every kernel here shares: MindSpore's custom "aot" signature, the float32 check, and the fixed number of
// blocks a sum over rows is split into. Included by each .cc file; a change here rebuilds them all (build.py
// keys the library by this header too).

#pragma once

#include <cstdint>
#include <cstring>

// An exported kernel with MindSpore's aot signature: params holds the inputs, then the outputs; returning
// nonzero makes MindSpore raise.
#define FGVCTUNE_KERNEL(name)                                                                                 \
  extern "C" int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, \
                      void *extra)

inline bool is_float32(const char *dtype) { return std::strcmp(dtype, "float32") == 0; }

inline int64_t elements(int ndim, const int64_t *shape) {
  int64_t count = 1;
  for (int d = 0; d < ndim; ++d) count *= shape[d];
  return count;
}

// Row blocks a gradient summed over rows is split into: a fixed number, so the sum does not depend on how many
// threads ran.
constexpr int64_t kBlocks = 64;

// Work (elements, or elements times the operations each takes) from which a kernel splits across OpenMP's
// threads. They sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE, runtime.py), and waking them took 40-70 us
// on a 2-core EPYC: hard swish on 1,024 floats cost 53 us an op on two threads, 4 on one; on one thread it takes
// 35 us for a quarter of a million (benchmarks/op_cost.py). Below this, a kernel runs on the thread that calls it.
constexpr int64_t kParallelWork = int64_t{1} << 19;

inline bool parallel_worth(int64_t work) { return work >= kParallelWork; }

// What a fused kernel does to its output after the bias (fuse.py's NONE, RELU, SUM_RELU, HARD_SWISH, SUM): SUM_RELU
// and SUM add a residual (onednn.cc's alone); kTanhGelu is a ConvNeXt expansion's (onednn.cc's DenseBiasGeluForward).
enum Post { kNone = 0, kRelu = 1, kSumRelu = 2, kHardSwish = 3, kSum = 4, kTanhGelu = 5 };

// y = GELU's tanh form of x, count values (activation.cc's TanhGeluForward; x and y may be the same)
void tanh_gelu(const float *x, float *y, int64_t count);

// A 1x1 convolution at stride 1 on NCHW tensors (pointwise.cc): y = post(w @ x + bias (+ summand, where not null))
// per image, x (images, channels, plane), w (outputs, channels), y and summand (images, outputs, plane).
void pointwise_forward(const float *x, const float *w, const float *bias, const float *summand, int64_t post,
                       float *y, int64_t images, int64_t channels, int64_t outputs, int64_t plane);

// A depthwise convolution on NCHW tensors (depthwise.cc): y = post(conv(x, w) + bias), the shapes and spec as its
// DepthwiseForward kernel's inputs and output.
void depthwise_forward(const float *x, const float *w, const float *bias, int64_t post, float *y,
                       const int64_t *x_shape, const int64_t *w_shape, const int64_t *y_shape, const int64_t *spec);

// MobileNetV3's squeeze-excitation (squeeze_excite.cc): per image y = x * hard_sigmoid(w2 relu(w1 mean_hw(x) + b1) +
// b2), hard_sigmoid(v) = min(max(v + 3, 0), 6) / 6 (MindSpore's HSigmoid); x and y (n, c, area), w1 (r, c), w2 (c, r),
// y may be x. Each image's sums in order, on one thread: the same whatever the number of threads.
void squeeze_excite(const float *x, const float *w1, const float *b1, const float *w2, const float *b2, float *y,
                    int64_t n, int64_t c, int64_t area, int64_t r);

// A 3x3 convolution at stride 2 over at most 4 channels, left padding 0 or 1 (stem.cc; stem_geometry says which):
// y = post(conv(x, w) + bias), x (images, channels, h, width), w (outputs, channels, 3, 3), y (images, outputs,
// out_h, out_w), `top` and `left` the padding before the first row and column.
bool stem_geometry(int64_t channels, int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w, int64_t dilated,
                   int64_t groups, int64_t left);
void stem_forward(const float *x, const float *w, const float *bias, int64_t post, float *y, int64_t images,
                  int64_t channels, int64_t h, int64_t width, int64_t outputs, int64_t out_h, int64_t out_w,
                  int64_t top, int64_t left);

// out[i] = post(in[i] + bias) for n values, post kNone, kRelu or kHardSwish (hard swish: v * min(max(v + 3, 0), 6) / 6,
// MindSpore's HSwish); in and out may be the same. One loop per activation, so each is vectorised.
inline void add_and_activate(const float *in, float bias, int64_t post, float *out, int64_t n) {
  if (post == kRelu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] + bias > 0.0f ? in[i] + bias : 0.0f;
  } else if (post == kHardSwish) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float v = in[i] + bias, gate = v + 3.0f < 0.0f ? 0.0f : (v + 3.0f > 6.0f ? 6.0f : v + 3.0f);
      out[i] = v * gate / 6.0f;
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] + bias;
  }
}
