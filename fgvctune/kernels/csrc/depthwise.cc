// Depthwise 2-D convolution (one filter per channel, NCHW, float32) and its two gradients, as MindSpore
// custom "aot" kernels. MindSpore's CPU Conv2D hands oneDNN plain NCHW tensors, for which oneDNN runs a
// grouped convolution as im2col and a GEMM per channel; these loops work on each channel's plane directly.
// Built by build.py; every function has MindSpore's aot signature.
//
// Inputs are x (N, C, H, W), w (C, 1, K, K) and spec, int64 [stride_h, stride_w, pad_top, pad_left, same]:
// with same = 1 the padding is MindSpore's pad_mode "same" (the total a dimension needs, the smaller half at
// the top or left) and pad_top, pad_left are not read; the padding at the bottom and right is whatever the
// output's shape leaves over.
//
// How: each input plane is padded and split into its stride phases (at stride 2, the even and odd rows and
// columns: four planes), so every tap reads one phase at stride 1. Output rows are then computed as wide as a
// phase's rows, which makes each of the K*K taps one long multiply-add over contiguous memory (the extra
// columns are computed and dropped). The gradients reuse the layout: the input's at stride 1 is that same loop
// over dy with each filter turned half a circle; the weight's reads each block of dy once for all K*K taps.
// DepthwiseChannelsLastForward works on (N, H, W, C) tensors instead, each tap a vector multiply-add across channels;
// the forward pass on small planes copies eight channels into that layout and back (forward_interleaved).

#include "common.h"

#include <algorithm>
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

// common.h's add_and_activate on eight values: post(v + bias), post kNone, kRelu or kHardSwish.
inline Vec add_and_activate(Vec v, float bias, int64_t post) {
  const Vec zero = {}, six = zero + 6.0f;
  v += bias;
  if (post == kRelu) return v > zero ? v : zero;
  if (post != kHardSwish) return v;
  Vec gate = v + 3.0f;
  gate = gate < zero ? zero : gate;
  gate = gate > six ? six : gate;
  return v * gate / 6.0f;
}

struct Geometry {
  int64_t n, c, h, w, k, oh, ow, sh, sw, pt, pl;
  int64_t rows, cols;  // of one phase plane
  int64_t length;      // of the wide output, oh rows of `cols`
  std::vector<int64_t> taps;  // where each of the K*K taps starts reading, within the phase planes
  std::vector<int64_t> row_at, col_at;  // input element (i, j) sits at row_at[i] + col_at[j] in the phases

  int64_t tap(int64_t t) const { return taps[t]; }
  int64_t phases_size() const { return sh * sw * rows * cols + cols + k + kBlock; }  // room for overreads
};

Geometry geometry(const int64_t *x, const int64_t *w, const int64_t *y, const int64_t *spec) {
  Geometry g{};
  g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3], g.k = w[2];
  g.oh = y[2], g.ow = y[3];
  g.sh = spec[0], g.sw = spec[1], g.pt = spec[2], g.pl = spec[3];
  int64_t ph = (g.oh - 1) * g.sh + g.k, pw = (g.ow - 1) * g.sw + g.k;  // the padded plane the kernel reads
  if (spec[4]) {
    g.pt = ph > g.h ? (ph - g.h) / 2 : 0;
    g.pl = pw > g.w ? (pw - g.w) / 2 : 0;
  }
  if (ph < g.pt + g.h) ph = g.pt + g.h;
  if (pw < g.pl + g.w) pw = g.pl + g.w;
  g.rows = (ph + g.sh - 1) / g.sh, g.cols = (pw + g.sw - 1) / g.sw;
  g.length = g.oh * g.cols;
  for (int64_t a = 0; a < g.k; ++a) {
    for (int64_t b = 0; b < g.k; ++b) {
      g.taps.push_back(((a % g.sh) * g.sw + b % g.sw) * g.rows * g.cols + (a / g.sh) * g.cols + b / g.sw);
    }
  }
  for (int64_t i = 0; i < g.h; ++i) {
    const int64_t r = i + g.pt;
    g.row_at.push_back((r % g.sh) * g.sw * g.rows * g.cols + (r / g.sh) * g.cols);
  }
  for (int64_t j = 0; j < g.w; ++j) {
    const int64_t c = j + g.pl;
    g.col_at.push_back((c % g.sw) * g.rows * g.cols + c / g.sw);
  }
  return g;
}

inline int64_t phase_index(const Geometry &g, int64_t i, int64_t j) { return g.row_at[i] + g.col_at[j]; }

// A row's even columns to `even` and odd ones to `odd` (where the row has one), 32 at a time as two shuffles of two
// 16-float vectors (AVX-512's two-source permute): GCC's own loop for the stride-2 copy took 60% of a stride-2 layer.
typedef float Vec16 __attribute__((vector_size(64)));
typedef int Index16 __attribute__((vector_size(64)));

void deinterleave(const float *row, int64_t width, float *even, float *odd) {
  constexpr Index16 evens = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  constexpr Index16 odds = evens + 1;
  int64_t m = 0;
  for (; 2 * m + 32 <= width; m += 16) {
    Vec16 a, b;
    std::memcpy(&a, row + 2 * m, sizeof(a));
    std::memcpy(&b, row + 2 * m + 16, sizeof(b));
    const Vec16 e = __builtin_shuffle(a, b, evens), o = __builtin_shuffle(a, b, odds);
    std::memcpy(even + m, &e, sizeof(e));
    std::memcpy(odd + m, &o, sizeof(o));
  }
  if (2 * m + 16 <= width) {  // then 16 as one vector's halves
    Vec16 a;
    std::memcpy(&a, row + 2 * m, sizeof(a));
    const Vec16 e = __builtin_shuffle(a, evens), o = __builtin_shuffle(a, odds);
    std::memcpy(even + m, &e, sizeof(e) / 2);
    std::memcpy(odd + m, &o, sizeof(o) / 2);
    m += 8;
  }
  for (; 2 * m < width; ++m) {
    even[m] = row[2 * m];
    if (2 * m + 1 < width) odd[m] = row[2 * m + 1];
  }
}

// One input plane, padded with zeros, into its phase planes.
void split(const Geometry &g, const float *src, float *phases) {
  std::memset(phases, 0, sizeof(float) * g.phases_size());
  for (int64_t i = 0; i < g.h; ++i) {
    const float *from = src + i * g.w;
    if (g.sw == 1) {
      std::memcpy(phases + phase_index(g, i, 0), from, sizeof(float) * g.w);
    } else if (g.sw == 2) {  // the even and odd columns, each to its phase
      deinterleave(from, g.w, phases + phase_index(g, i, 0), g.w > 1 ? phases + phase_index(g, i, 1) : nullptr);
    } else {
      float *row = phases + g.row_at[i];
      for (int64_t j = 0; j < g.w; ++j) row[g.col_at[j]] = from[j];
    }
  }
}

// The inverse: an input plane from its phase planes, padding dropped.
void merge(const Geometry &g, const float *phases, float *dst) {
  for (int64_t i = 0; i < g.h; ++i) {
    if (g.sw == 1) {
      std::memcpy(dst + i * g.w, phases + phase_index(g, i, 0), sizeof(float) * g.w);
    } else {
      const float *row = phases + g.row_at[i];
      for (int64_t j = 0; j < g.w; ++j) dst[i * g.w + j] = row[g.col_at[j]];
    }
  }
}

// An output-gradient plane in wide rows, the extra columns zero.
void widen(const Geometry &g, const float *src, float *wide) {
  std::memset(wide, 0, sizeof(float) * (g.length + kBlock));
  for (int64_t i = 0; i < g.oh; ++i) std::memcpy(wide + i * g.cols, src + i * g.ow, sizeof(float) * g.ow);
}

// Per thread: one plane's phase planes and one wide output plane.
struct Scratch {
  std::vector<float> phases, wide;
  explicit Scratch(const Geometry &g) : phases(g.phases_size()), wide(g.length + kBlock) {}
};

// One output plane; with `post`, the plane's bias is added and the activation applied as it is written out.
void forward_plane(const Geometry &g, const float *phases, const float *wk, float *wide, float *out, float bias = 0.0f,
                   int64_t post = -1) {
  // In blocks of kBlock outputs, so the sums stay in registers through all K*K taps (and through the bias and
  // activation: the extra columns get them too, and are dropped).
  for (int64_t q0 = 0; q0 < g.length; q0 += kBlock) {
    Vec sums[kVecs] = {};
    for (int64_t t = 0; t < g.k * g.k; ++t) {
      const float *src = phases + g.tap(t) + q0;
      for (int v = 0; v < kVecs; ++v) sums[v] += wk[t] * load(src + v * kLanes);
    }
    if (post >= 0)
      for (int v = 0; v < kVecs; ++v) sums[v] = add_and_activate(sums[v], bias, post);
    std::memcpy(wide + q0, sums, sizeof(sums));  // wide has kBlock floats to spare
  }
  for (int64_t i = 0; i < g.oh; ++i) std::memcpy(out + i * g.ow, wide + i * g.cols, sizeof(float) * g.ow);
}

// The output gradient (in wide rows) spread back over the phase planes.
void grad_input_plane(const Geometry &g, const float *wide, const float *wk, float *phases) {
  std::memset(phases, 0, sizeof(float) * g.phases_size());
  for (int64_t t = 0; t < g.k * g.k; ++t) {
    const float v = wk[t];
    float *dst = phases + g.tap(t);
#pragma omp simd
    for (int64_t q = 0; q < g.length; ++q) dst[q] += v * wide[q];
  }
}

// Adds each tap's products of the output gradient (in wide rows) with the input's phase planes to acc[t], eight
// lanes apart (summed across lanes once per channel). The taps are the inner loop, so each block of the gradient
// is read once and, with K fixed, the K*K sums stay in registers.
template <int K>
void grad_weight_plane(const Geometry &g, const float *wide, const float *phases, Vec *acc) {
  Vec sums[K * K] = {};
  for (int64_t q0 = 0; q0 < g.length; q0 += kLanes) {  // wide is zero past length, phases has room
    const Vec dy = load(wide + q0);
#pragma GCC unroll 49
    for (int t = 0; t < K * K; ++t) sums[t] += dy * load(phases + g.tap(t) + q0);
  }
  for (int t = 0; t < K * K; ++t) acc[t] += sums[t];
}

// The same for any K, the sums in memory.
void grad_weight_plane(const Geometry &g, const float *wide, const float *phases, Vec *acc) {
  for (int64_t q0 = 0; q0 < g.length; q0 += kLanes) {
    const Vec dy = load(wide + q0);
    for (int64_t t = 0; t < g.k * g.k; ++t) acc[t] += dy * load(phases + g.tap(t) + q0);
  }
}

bool forward_interleaved(const Geometry &g, const float *x, const float *w, float *y, const float *b, int64_t post);

// Every output plane; with biases b, each plane's added and `post` applied (DepthwiseActForward).
void forward(const Geometry &g, const float *x, const float *w, float *y, const float *b = nullptr,
             int64_t post = -1) {
  if (forward_interleaved(g, x, w, y, b, post)) return;
#pragma omp parallel if (parallel : parallel_worth(g.n * g.c * g.oh * g.ow * g.k * g.k / 4))
  {
    Scratch s(g);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < g.n * g.c; ++p) {
      split(g, x + p * g.h * g.w, s.phases.data());
      forward_plane(g, s.phases.data(), w + (p % g.c) * g.k * g.k, s.wide.data(), y + p * g.oh * g.ow,
                    b ? b[p % g.c] : 0.0f, b ? post : -1);
    }
  }
}

// -- Channels last: (N, H, W, C), as ConvNeXt's fused blocks keep their tensors (fuse.py) -----------------------
// A unit of work is one image's eight channels (a vector): their planes are copied, padded, into scratch as (rows,
// cols, 8), so each tap is one vector multiply-add per output pixel. A strip of kStrip output pixels of one row
// keeps its sums in registers; at stride 1 with K fixed, each filter row's K vectors are loaded once for the strip
// and each input vector once for the K taps it meets. The seven input rows one output row reads (ConvNeXt's 7x7
// at 56 wide: 14 KB) stay in the L1 cache.
constexpr int kStrip = 8;

struct LastGeometry {
  int64_t n, h, w, c, k, oh, ow, sh, sw, pt, pl;
  int64_t rows, cols;  // of the padded plane the kernel reads
};

LastGeometry last_geometry(const int64_t *x, const int64_t *w, const int64_t *y, const int64_t *spec) {
  LastGeometry g{x[0], x[1], x[2], x[3], w[0], y[1], y[2], spec[0], spec[1], spec[2], spec[3], 0, 0};
  g.rows = (g.oh - 1) * g.sh + g.k, g.cols = (g.ow - 1) * g.sw + g.k;
  if (spec[4]) {  // "same": as geometry()
    g.pt = g.rows > g.h ? (g.rows - g.h) / 2 : 0;
    g.pl = g.cols > g.w ? (g.cols - g.w) / 2 : 0;
  }
  return g;
}

// P output pixels of one row from column ow0, into sums: w starts at the unit's channels.
template <int P>
inline void strip(const LastGeometry &g, const float *padded, const float *w, int64_t oh, int64_t ow0, Vec *sums) {
  for (int64_t a = 0; a < g.k; ++a) {
    const float *row = padded + ((oh * g.sh + a) * g.cols + ow0 * g.sw) * kLanes;
    for (int64_t t = 0; t < g.k; ++t) {
      const Vec wt = load(w + (a * g.k + t) * g.c);
      for (int p = 0; p < P; ++p) sums[p] += wt * load(row + (p * g.sw + t) * kLanes);
    }
  }
}

// The same at stride 1 with K fixed: input column j meets output pixel p at tap j - p.
template <int P, int K>
inline void sliding_strip(const LastGeometry &g, const float *padded, const float *w, int64_t oh, int64_t ow0,
                          Vec *sums) {
  // Unrolled in full, so the taps are known where they are used (GCC 12 gave wrong sums with the loop over j
  // unrolled in part, at P = 12).
  static_assert(P + K - 1 <= 16, "the loops below unroll in full");
  for (int64_t a = 0; a < K; ++a) {
    const float *row = padded + ((oh * g.sh + a) * g.cols + ow0) * kLanes;
    Vec wt[K];
    for (int t = 0; t < K; ++t) wt[t] = load(w + (a * K + t) * g.c);
#pragma GCC unroll 16
    for (int j = 0; j < P + K - 1; ++j) {
      const Vec v = load(row + j * kLanes);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p)
        if (j - p >= 0 && j - p < K) sums[p] += wt[j - p] * v;
    }
  }
}

// One output row of one unit in strips of P pixels, the last strip ending at the row's end (overlapping the one
// before it): out at the row's first pixel, w and b at the unit's channels.
template <int P, int K>
void row_strips(const LastGeometry &g, const float *padded, const float *w, const float *b, int64_t oh, float *out) {
  const Vec bias = load(b);
  for (int64_t ow = 0;; ow += P) {
    ow = std::min(ow, g.ow - P);
    Vec sums[P] = {};
    if (K) {
      sliding_strip<P, K>(g, padded, w, oh, ow, sums);
    } else {
      strip<P>(g, padded, w, oh, ow, sums);
    }
    for (int p = 0; p < P; ++p) {
      sums[p] += bias;
      std::memcpy(out + (ow + p) * g.c, &sums[p], sizeof(Vec));
    }
    if (ow == g.ow - P) break;
  }
}

// Every output row of one unit (image n, channels from c0).
template <int K>
void unit_rows(const LastGeometry &g, const float *padded, const float *w, const float *b, float *y, int64_t n,
               int64_t c0) {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    float *out = y + (n * g.oh + oh) * g.ow * g.c + c0;
    if (g.ow >= kStrip) {
      row_strips<kStrip, K>(g, padded, w + c0, b + c0, oh, out);
    } else if (g.ow == 7) {  // ConvNeXt's last stage at 224 pixels
      row_strips<7, K>(g, padded, w + c0, b + c0, oh, out);
    } else if (g.ow >= kStrip / 2) {
      row_strips<kStrip / 2, K>(g, padded, w + c0, b + c0, oh, out);
    } else {
      row_strips<1, 0>(g, padded, w + c0, b + c0, oh, out);
    }
  }
}

void forward_last(const LastGeometry &g, const float *x, const float *w, const float *b, float *y) {
  const int64_t groups = g.c / kLanes;
#pragma omp parallel if (parallel : parallel_worth(g.n * g.c * g.oh * g.ow * g.k * g.k / 4))
  {
    std::vector<float> padded(g.rows * g.cols * kLanes);  // zeros: the padding, never written, stays so
    const int64_t height = std::min(g.h, g.rows - g.pt), width = std::min(g.w, g.cols - g.pl);  // what is read
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < g.n * groups; ++unit) {
      const int64_t n = unit / groups, c0 = unit % groups * kLanes;
      for (int64_t i = 0; i < height; ++i) {
        float *row = padded.data() + ((i + g.pt) * g.cols + g.pl) * kLanes;
        const float *from = x + ((n * g.h + i) * g.w) * g.c + c0;
        for (int64_t j = 0; j < width; ++j) std::memcpy(row + j * kLanes, from + j * g.c, sizeof(Vec));
      }
      if (g.k == 7 && g.sw == 1) {  // ConvNeXt's
        unit_rows<7>(g, padded.data(), w, b, y, n, c0);
      } else {
        unit_rows<0>(g, padded.data(), w, b, y, n, c0);
      }
    }
  }
}

// Small planes, eight channels at a time: each plane on its own pays for its split, its wide rows (a 7 x 7 output
// computed 96 wide) and its copies, which cost more than its multiply-adds there. Here eight channels' planes are
// copied, padded, into (rows, cols, 8) as the channels-last kernel reads them and that kernel's strips computed on
// them (the taps in the same order, so the same sums), then the activation applied and the pixels' eight values
// written back to their planes. The copy in grows with the input plane: measured alone, mobilenet_v3_small's layers
// on 14 x 14 and 7 x 7 inputs took 18-46% less time so, those on 28 x 28 (at stride 1 and 2) 10-30% more. For input
// planes of at most kInterleaved values and output rows at least 4 wide (GCC fuses the one-pixel strip's
// multiply-adds otherwise than the loop per plane: a rounding apart, where the two agree bit for bit on wider
// rows), channels a multiple of 8; false where the loop per plane runs instead.
constexpr int64_t kInterleaved = 14 * 14;

bool forward_interleaved(const Geometry &g, const float *x, const float *w, float *y, const float *b, int64_t post) {
  if (g.c % kLanes || g.h * g.w > kInterleaved || g.ow < 4) return false;
  LastGeometry last{1, g.h, g.w, kLanes, g.k, g.oh, g.ow, g.sh, g.sw, g.pt, g.pl, 0, 0};
  last.rows = (g.oh - 1) * g.sh + g.k, last.cols = (g.ow - 1) * g.sw + g.k;
  const int64_t groups = g.c / kLanes, taps = g.k * g.k, area = g.oh * g.ow;
  const int64_t height = std::min(g.h, last.rows - g.pt), width = std::min(g.w, last.cols - g.pl);  // what is read
#pragma omp parallel if (parallel : parallel_worth(g.n * g.c * area * taps / 4))
  {
    std::vector<float> padded(last.rows * last.cols * kLanes);  // zeros: the padding, never written, stays so
    std::vector<float> weights(taps * kLanes), bias(kLanes), out(area * kLanes);
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < g.n * groups; ++unit) {
      const int64_t n = unit / groups, c0 = unit % groups * kLanes;
      for (int64_t lane = 0; lane < kLanes; ++lane) {
        const float *plane = x + (n * g.c + c0 + lane) * g.h * g.w;
        for (int64_t i = 0; i < height; ++i) {
          float *row = padded.data() + ((i + g.pt) * last.cols + g.pl) * kLanes + lane;
          for (int64_t j = 0; j < width; ++j) row[j * kLanes] = plane[i * g.w + j];
        }
        for (int64_t t = 0; t < taps; ++t) weights[t * kLanes + lane] = w[(c0 + lane) * taps + t];
        bias[lane] = b ? b[c0 + lane] : 0.0f;
      }
      if (g.sw == 1 && g.k == 3) {
        unit_rows<3>(last, padded.data(), weights.data(), bias.data(), out.data(), 0, 0);
      } else if (g.sw == 1 && g.k == 5) {
        unit_rows<5>(last, padded.data(), weights.data(), bias.data(), out.data(), 0, 0);
      } else if (g.sw == 1 && g.k == 7) {
        unit_rows<7>(last, padded.data(), weights.data(), bias.data(), out.data(), 0, 0);
      } else {
        unit_rows<0>(last, padded.data(), weights.data(), bias.data(), out.data(), 0, 0);
      }
      for (int64_t q = 0; q < area; ++q) {
        const Vec v = add_and_activate(load(out.data() + q * kLanes), 0.0f, b ? post : -1);
        for (int64_t lane = 0; lane < kLanes; ++lane) y[(n * g.c + c0 + lane) * area + q] = v[lane];
      }
    }
  }
  return true;
}

}  // namespace

void depthwise_forward(const float *x, const float *w, const float *bias, int64_t post, float *y,
                       const int64_t *x_shape, const int64_t *w_shape, const int64_t *y_shape, const int64_t *spec) {
  forward(geometry(x_shape, w_shape, y_shape, spec), x, w, y, bias, post);
}

// Inputs x, w, spec; output y (N, C, OH, OW).
FGVCTUNE_KERNEL(DepthwiseForward) {
  if (nparam != 4 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const Geometry g = geometry(shapes[0], shapes[1], shapes[3], static_cast<const int64_t *>(params[2]));
  forward(g, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
          static_cast<float *>(params[3]));
  return 0;
}

// Inputs x, w, b (C), spec with the activation after it, [..., post] (common.h's Post: kNone, kRelu or kHardSwish);
// output y = post(conv(x) + b): a folded depthwise layer and its activation in one pass, for inference (fuse.py).
FGVCTUNE_KERNEL(DepthwiseActForward) {
  if (nparam != 5 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t *spec = static_cast<const int64_t *>(params[3]);
  const int64_t post = spec[5];
  if (post != kNone && post != kRelu && post != kHardSwish) return 1;
  const Geometry g = geometry(shapes[0], shapes[1], shapes[4], spec);
  forward(g, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
          static_cast<float *>(params[4]), static_cast<const float *>(params[2]), post);
  return 0;
}

// Inputs dy (N, C, OH, OW), w, x (for its shape), spec; output dx (N, C, H, W).
FGVCTUNE_KERNEL(DepthwiseGradInput) {
  if (nparam != 5 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const Geometry g = geometry(shapes[2], shapes[1], shapes[0], static_cast<const int64_t *>(params[3]));
  float *dx = static_cast<float *>(params[4]);
  if (g.sh == 1 && g.sw == 1 && g.pt < g.k && g.pl < g.k) {
    // At stride 1 the input's gradient is the forward convolution of dy with each filter turned half a circle,
    // dy padded by K - 1 less the forward's padding (when that is not negative): the forward's loop.
    std::vector<float> turned(g.c * g.k * g.k);
    for (int64_t ch = 0; ch < g.c; ++ch)
      for (int64_t t = 0; t < g.k * g.k; ++t) turned[ch * g.k * g.k + t] = w[ch * g.k * g.k + g.k * g.k - 1 - t];
    const int64_t spec[5] = {1, 1, g.k - 1 - g.pt, g.k - 1 - g.pl, 0};
    forward(geometry(shapes[0], shapes[1], shapes[2], spec), dy, turned.data(), dx);
    return 0;
  }
#pragma omp parallel if (parallel : parallel_worth(g.n * g.c * g.oh * g.ow * g.k * g.k / 4))
  {
    Scratch s(g);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < g.n * g.c; ++p) {
      widen(g, dy + p * g.oh * g.ow, s.wide.data());
      grad_input_plane(g, s.wide.data(), w + (p % g.c) * g.k * g.k, s.phases.data());
      merge(g, s.phases.data(), dx + p * g.h * g.w);
    }
  }
  return 0;
}

// Inputs dy, x, w (for its shape), spec; output dw (C, 1, K, K), summed over the batch.
FGVCTUNE_KERNEL(DepthwiseGradWeight) {
  if (nparam != 5 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const Geometry g = geometry(shapes[1], shapes[2], shapes[0], static_cast<const int64_t *>(params[3]));
  float *dw = static_cast<float *>(params[4]);
#pragma omp parallel if (parallel : parallel_worth(g.n * g.c * g.oh * g.ow * g.k * g.k / 4))
  {
    Scratch s(g);
    std::vector<Vec> acc(g.k * g.k);
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < g.c; ++ch) {
      std::fill(acc.begin(), acc.end(), Vec{});
      for (int64_t b = 0; b < g.n; ++b) {
        const int64_t p = b * g.c + ch;
        split(g, x + p * g.h * g.w, s.phases.data());
        widen(g, dy + p * g.oh * g.ow, s.wide.data());
        if (g.k == 3) {
          grad_weight_plane<3>(g, s.wide.data(), s.phases.data(), acc.data());
        } else if (g.k == 5) {
          grad_weight_plane<5>(g, s.wide.data(), s.phases.data(), acc.data());
        } else {
          grad_weight_plane(g, s.wide.data(), s.phases.data(), acc.data());
        }
      }
      for (int64_t t = 0; t < g.k * g.k; ++t) {
        float sum = 0.0f;
        for (int lane = 0; lane < kLanes; ++lane) sum += acc[t][lane];
        dw[ch * g.k * g.k + t] = sum;
      }
    }
  }
  return 0;
}

// Inputs x (N, H, W, C), w (K, K, C), b (C), spec as DepthwiseForward's; output y (N, OH, OW, C) = conv(x) + b.
// C a multiple of 8. For inference (fuse.py's ConvNeXt blocks): no gradient.
FGVCTUNE_KERNEL(DepthwiseChannelsLastForward) {
  if (nparam != 5 || !is_float32(dtypes[0]) || shapes[0][3] % kLanes) return 1;  // MindSpore raises
  const LastGeometry g = last_geometry(shapes[0], shapes[1], shapes[4], static_cast<const int64_t *>(params[3]));
  forward_last(g, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
               static_cast<const float *>(params[2]), static_cast<float *>(params[4]));
  return 0;
}
