// Depthwise 2-D convolution (one filter per channel, NCHW, float32) and its two gradients, as MindSpore
// custom "aot" kernels. MindSpore's CPU Conv2D hands oneDNN plain NCHW tensors, for which oneDNN runs a
// grouped convolution as im2col and a GEMM per channel; these loops work on each channel's plane directly.
// Built by depthwise.py; every function has MindSpore's aot signature.
//
// Inputs are x (N, C, H, W), w (C, 1, K, K) and spec, int64 [stride_h, stride_w, pad_top, pad_left, same]:
// with same = 1 the padding is MindSpore's pad_mode "same" (the total a dimension needs, the smaller half at
// the top or left) and pad_top, pad_left are not read; the padding at the bottom and right is whatever the
// output's shape leaves over.
//
// At stride 1 an output plane is computed as if it were as wide as the padded input: each of the K*K taps is
// then one long multiply-add over contiguous memory (the extra columns are computed and dropped). Other
// strides run the plain loops.

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Eight floats as one vector (GCC and Clang's vector extension: AVX, SSE or NEON as the target has).
typedef float Vec __attribute__((vector_size(32)));
constexpr int kLanes = 8, kVecs = 4;
constexpr int64_t kBlock = kLanes * kVecs;

inline Vec load(const float *p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

struct Geometry {
  int64_t n, c, h, w, k, oh, ow, sh, sw, pt, pl;
  int64_t ph, pw;  // the padded input plane
  bool flat;       // stride 1: the wide-plane loops
};

Geometry geometry(const int64_t *x, const int64_t *w, const int64_t *y, const int64_t *spec) {
  Geometry g{};
  g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3], g.k = w[2];
  g.oh = y[2], g.ow = y[3];
  g.sh = spec[0], g.sw = spec[1], g.pt = spec[2], g.pl = spec[3];
  g.ph = (g.oh - 1) * g.sh + g.k;
  g.pw = (g.ow - 1) * g.sw + g.k;
  if (spec[4]) {
    g.pt = g.ph > g.h ? (g.ph - g.h) / 2 : 0;
    g.pl = g.pw > g.w ? (g.pw - g.w) / 2 : 0;
  }
  if (g.ph < g.pt + g.h) g.ph = g.pt + g.h;
  if (g.pw < g.pl + g.w) g.pw = g.pl + g.w;
  g.flat = g.sh == 1 && g.sw == 1;
  return g;
}

// A padded plane and the wide output rows, one pair per thread. Both have room to spare: the wide loops read
// up to k - 1 floats past the padded plane, and the forward's last block runs up to kBlock past both.
struct Scratch {
  std::vector<float> padded, wide;
  explicit Scratch(const Geometry &g) : padded(g.ph * g.pw + g.k + kBlock), wide(g.oh * g.pw + kBlock) {}
};

void pad_plane(const Geometry &g, const float *src, float *dst) {
  std::memset(dst, 0, sizeof(float) * (g.ph * g.pw + g.k + kBlock));
  for (int64_t i = 0; i < g.h; ++i) std::memcpy(dst + (i + g.pt) * g.pw + g.pl, src + i * g.w, sizeof(float) * g.w);
}

void crop_plane(const Geometry &g, const float *padded, float *dst) {
  for (int64_t i = 0; i < g.h; ++i) std::memcpy(dst + i * g.w, padded + (i + g.pt) * g.pw + g.pl, sizeof(float) * g.w);
}

void forward_plane(const Geometry &g, const float *padded, const float *wk, float *wide, float *out) {
  if (g.flat) {
    // In blocks of kBlock outputs, so the sums stay in registers through all K*K taps.
    const int64_t length = g.oh * g.pw;
    for (int64_t q0 = 0; q0 < length; q0 += kBlock) {
      Vec sums[kVecs] = {};
      for (int64_t t = 0; t < g.k * g.k; ++t) {
        const float *src = padded + (t / g.k) * g.pw + t % g.k + q0;
        for (int v = 0; v < kVecs; ++v) sums[v] += wk[t] * load(src + v * kLanes);
      }
      std::memcpy(wide + q0, sums, sizeof(sums));  // wide has kBlock floats to spare
    }
    for (int64_t i = 0; i < g.oh; ++i) std::memcpy(out + i * g.ow, wide + i * g.pw, sizeof(float) * g.ow);
    return;
  }
  std::memset(out, 0, sizeof(float) * g.oh * g.ow);
  for (int64_t i = 0; i < g.oh; ++i) {
    float *row = out + i * g.ow;
    for (int64_t t = 0; t < g.k * g.k; ++t) {
      const float v = wk[t];
      const float *src = padded + (i * g.sh + t / g.k) * g.pw + t % g.k;
      for (int64_t j = 0; j < g.ow; ++j) row[j] += v * src[j * g.sw];
    }
  }
}

// The output gradient spread back over the padded input plane (then cropped by the caller).
void grad_input_plane(const Geometry &g, const float *grad, const float *wk, float *wide, float *padded) {
  std::memset(padded, 0, sizeof(float) * (g.ph * g.pw + g.k));
  if (g.flat) {
    const int64_t length = g.oh * g.pw;
    std::memset(wide, 0, sizeof(float) * length);
    for (int64_t i = 0; i < g.oh; ++i) std::memcpy(wide + i * g.pw, grad + i * g.ow, sizeof(float) * g.ow);
    for (int64_t t = 0; t < g.k * g.k; ++t) {
      const float v = wk[t];
      float *dst = padded + (t / g.k) * g.pw + t % g.k;
#pragma omp simd
      for (int64_t q = 0; q < length; ++q) dst[q] += v * wide[q];
    }
    return;
  }
  for (int64_t i = 0; i < g.oh; ++i) {
    const float *row = grad + i * g.ow;
    for (int64_t t = 0; t < g.k * g.k; ++t) {
      const float v = wk[t];
      float *dst = padded + (i * g.sh + t / g.k) * g.pw + t % g.k;
      for (int64_t j = 0; j < g.ow; ++j) dst[j * g.sw] += v * row[j];
    }
  }
}

// Adds each tap's product of the output gradient with the padded input to acc[K*K].
void grad_weight_plane(const Geometry &g, const float *grad, const float *padded, float *wide, float *acc) {
  if (g.flat) {
    const int64_t length = g.oh * g.pw;
    std::memset(wide, 0, sizeof(float) * length);
    for (int64_t i = 0; i < g.oh; ++i) std::memcpy(wide + i * g.pw, grad + i * g.ow, sizeof(float) * g.ow);
    for (int64_t t = 0; t < g.k * g.k; ++t) {
      const float *src = padded + (t / g.k) * g.pw + t % g.k;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t q = 0; q < length; ++q) sum += wide[q] * src[q];
      acc[t] += sum;
    }
    return;
  }
  for (int64_t t = 0; t < g.k * g.k; ++t) {
    float sum = 0.0f;
    for (int64_t i = 0; i < g.oh; ++i) {
      const float *row = grad + i * g.ow;
      const float *src = padded + (i * g.sh + t / g.k) * g.pw + t % g.k;
      for (int64_t j = 0; j < g.ow; ++j) sum += row[j] * src[j * g.sw];
    }
    acc[t] += sum;
  }
}

}  // namespace

// Inputs x, w, spec; output y (N, C, OH, OW).
extern "C" int DepthwiseForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 4 || std::strcmp(dtypes[0], "float32") != 0) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const Geometry g = geometry(shapes[0], shapes[1], shapes[3], static_cast<const int64_t *>(params[2]));
  float *y = static_cast<float *>(params[3]);
#pragma omp parallel
  {
    Scratch s(g);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < g.n * g.c; ++p) {
      pad_plane(g, x + p * g.h * g.w, s.padded.data());
      forward_plane(g, s.padded.data(), w + (p % g.c) * g.k * g.k, s.wide.data(), y + p * g.oh * g.ow);
    }
  }
  return 0;
}

// Inputs dy (N, C, OH, OW), w, x (for its shape), spec; output dx (N, C, H, W).
extern "C" int DepthwiseGradInput(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 5 || std::strcmp(dtypes[0], "float32") != 0) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const Geometry g = geometry(shapes[2], shapes[1], shapes[0], static_cast<const int64_t *>(params[3]));
  float *dx = static_cast<float *>(params[4]);
#pragma omp parallel
  {
    Scratch s(g);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < g.n * g.c; ++p) {
      grad_input_plane(g, dy + p * g.oh * g.ow, w + (p % g.c) * g.k * g.k, s.wide.data(), s.padded.data());
      crop_plane(g, s.padded.data(), dx + p * g.h * g.w);
    }
  }
  return 0;
}

// Inputs dy, x, w (for its shape), spec; output dw (C, 1, K, K), summed over the batch.
extern "C" int DepthwiseGradWeight(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  if (nparam != 5 || std::strcmp(dtypes[0], "float32") != 0) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const Geometry g = geometry(shapes[1], shapes[2], shapes[0], static_cast<const int64_t *>(params[3]));
  float *dw = static_cast<float *>(params[4]);
#pragma omp parallel
  {
    Scratch s(g);
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < g.c; ++ch) {
      float *acc = dw + ch * g.k * g.k;
      std::memset(acc, 0, sizeof(float) * g.k * g.k);
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t p = b * g.c + ch;
        pad_plane(g, x + p * g.h * g.w, s.padded.data());
        grad_weight_plane(g, dy + p * g.oh * g.ow, s.padded.data(), s.wide.data(), acc);
      }
    }
  }
  return 0;
}
