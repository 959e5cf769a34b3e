// Convolution and matrix product through a private copy of oneDNN, as MindSpore custom "aot" kernels. Built
// by build.py when the onednn-cpu-gomp package is installed; every exported function has MindSpore's aot
// signature.
//
// MindSpore's CPU Conv2D hands its own oneDNN plain NCHW tensors and OIHW weights. oneDNN then runs every
// convolution as im2col and a GEMM, and where it may use AVX-512 it wraps the convolution in a layout change
// that leaves only its reference kernel for k x k filters (so fgvctune caps MindSpore's oneDNN at AVX2, see
// runtime.py; the cap slows MindSpore's MatMul too). This second oneDNN, loaded privately (its own copy of the
// library, its own instruction-set setting), chooses the convolution's layouts: tensors are reordered into
// them and back around each call, as PyTorch does. Matrix products need no reorder.
//
// Convolution (float32, NCHW): x (N, C, H, W), w (O, C / groups, KH, KW) and spec, int64 [stride_h, stride_w,
// pad_top, pad_left, dilation_h, dilation_w, same, groups, any_isa]: with same = 1 the padding is MindSpore's
// pad_mode "same" (the total each dimension needs, the smaller half at the top or left) and the two pads are not
// read; the padding at the bottom and right is what the output's shape leaves over.
// Matrix product (float32, 2-D): see DenseForward below.
// any_isa = 1 lets this oneDNN use every instruction set the CPU has (read at the first call).

#include "common.h"

#include <dlfcn.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

#define FUNCTIONS(X)                                         \
  X(dnnl_set_max_cpu_isa)                                    \
  X(dnnl_engine_create)                                      \
  X(dnnl_stream_create)                                      \
  X(dnnl_stream_wait)                                        \
  X(dnnl_memory_desc_create_with_tag)                        \
  X(dnnl_memory_desc_create_with_strides)                    \
  X(dnnl_memory_desc_equal)                                  \
  X(dnnl_memory_create)                                      \
  X(dnnl_memory_set_data_handle)                             \
  X(dnnl_convolution_forward_primitive_desc_create)          \
  X(dnnl_convolution_backward_data_primitive_desc_create)    \
  X(dnnl_convolution_backward_weights_primitive_desc_create) \
  X(dnnl_matmul_primitive_desc_create)                       \
  X(dnnl_reorder_primitive_desc_create)                      \
  X(dnnl_primitive_attr_create)                              \
  X(dnnl_primitive_attr_destroy)                             \
  X(dnnl_primitive_attr_set_post_ops)                        \
  X(dnnl_post_ops_create)                                    \
  X(dnnl_post_ops_destroy)                                   \
  X(dnnl_post_ops_append_binary)                             \
  X(dnnl_post_ops_append_eltwise)                            \
  X(dnnl_primitive_desc_query_md)                            \
  X(dnnl_primitive_desc_destroy)                             \
  X(dnnl_primitive_create)                                   \
  X(dnnl_primitive_execute)

// The library's functions, looked up in the private copy (FGVCTUNE_DNNL, the path build.py compiles in).
struct Api {
#define DECLARE(name) decltype(&::name) name = nullptr;
  FUNCTIONS(DECLARE)
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
};

const Api *api(bool any_isa) {
  static const Api *loaded = [any_isa]() -> const Api * {
    // RTLD_LOCAL and DEEPBIND: this copy's symbols stay its own, apart from MindSpore's oneDNN.
    void *library = dlopen(FGVCTUNE_DNNL, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!library) return nullptr;
    auto *a = new Api;
#define RESOLVE(name)                                                   \
  a->name = reinterpret_cast<decltype(&::name)>(dlsym(library, #name)); \
  if (!a->name) return nullptr;
    FUNCTIONS(RESOLVE)
    if (any_isa) a->dnnl_set_max_cpu_isa(dnnl_cpu_isa_default);  // before its first use, or it is refused
    if (a->dnnl_engine_create(&a->engine, dnnl_cpu, 0) != dnnl_success) return nullptr;
    if (a->dnnl_stream_create(&a->stream, a->engine, dnnl_stream_default_flags) != dnnl_success) return nullptr;
    return a;
  }();
  return loaded;
}

// One tensor of a primitive: the caller's memory and, where oneDNN chose another layout, its own buffer with
// the reorder between the two.
struct Arg {
  int id;
  bool output;
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder;
  bool constant = false;  // weights that never change within one fusing (a fused layer's; fuse.py, channels_last.py)
  const void *reordered = nullptr;  // where and in which fusing (cells.fused_layers' generation) `inner` was last
  int64_t generation = -1;          // reordered from, for a constant one
};

struct Plan {
  dnnl_primitive_t primitive;
  std::vector<Arg> args;  // in the order of the aot call's pointers: the inputs, then the output
};

Arg bind(const Api &a, dnnl_primitive_desc_t pd, int id, dnnl_query_t query, dnnl_memory_desc_t user_md,
         bool output, int index = 0) {
  Arg arg{id, output, nullptr, nullptr, nullptr};
  a.dnnl_memory_create(&arg.user, user_md, a.engine, DNNL_MEMORY_NONE);
  const_dnnl_memory_desc_t inner_md = a.dnnl_primitive_desc_query_md(pd, query, index);
  if (a.dnnl_memory_desc_equal(user_md, inner_md)) {
    arg.inner = arg.user;
    return arg;
  }
  a.dnnl_memory_create(&arg.inner, inner_md, a.engine, DNNL_MEMORY_ALLOCATE);
  dnnl_primitive_desc_t reorder_pd;
  if (output)
    a.dnnl_reorder_primitive_desc_create(&reorder_pd, inner_md, a.engine, user_md, a.engine, nullptr);
  else
    a.dnnl_reorder_primitive_desc_create(&reorder_pd, user_md, a.engine, inner_md, a.engine, nullptr);
  a.dnnl_primitive_create(&arg.reorder, reorder_pd);
  a.dnnl_primitive_desc_destroy(reorder_pd);
  return arg;
}

Plan *finish(const Api &a, dnnl_primitive_desc_t pd, std::vector<Arg> args) {
  auto *p = new Plan{nullptr, std::move(args)};
  const bool made = a.dnnl_primitive_create(&p->primitive, pd) == dnnl_success;
  a.dnnl_primitive_desc_destroy(pd);
  return made ? p : nullptr;
}

// A primitive's work for parallel_worth: an eighth of its multiply-adds, or the elements it reads and writes where
// that is more (a memory-bound one, such as a matrix-vector product).
int64_t primitive_work(int64_t multiply_adds, int64_t elements) { return std::max(multiply_adds / 8, elements); }

// One thread for work too small to wake the others (common.h), set while a plan is made (oneDNN fixes its split
// across threads then) and while it runs.
struct Threads {
  const int before = omp_get_max_threads();
  explicit Threads(int64_t work) {
    if (!parallel_worth(work)) omp_set_num_threads(1);
  }
  ~Threads() { omp_set_num_threads(before); }
};

// Runs a plan on the caller's buffers (the inputs, then the output), building it on first use under `key`;
// `work` as primitive_work counts it. A constant input is reordered again when it comes from another address or
// another fusing (`generation`): a layer's plan is keyed by its place in the network, so fusing a network again
// (each trial of a tuning study) reuses the plans rather than adding a copy of the weights each time.
template <typename Make>
int run(const Api *a, const std::string &key, Make make, std::vector<void *> pointers, int64_t work,
        int64_t generation = -1) {
  if (!a) return 1;
  static std::mutex lock;  // the plans' own buffers are shared: one call at a time (each uses every core)
  static std::map<std::string, Plan *> plans;
  std::lock_guard<std::mutex> hold(lock);
  const Threads threads(work);
  Plan *&p = plans[key];
  if (!p) p = make();
  if (!p || p->args.size() != pointers.size()) return 1;
  std::vector<dnnl_exec_arg_t> args;
  for (size_t i = 0; i < p->args.size(); ++i) {
    Arg &arg = p->args[i];
    a->dnnl_memory_set_data_handle(arg.user, pointers[i]);
    if (arg.reorder && !arg.output &&
        !(arg.constant && arg.reordered == pointers[i] && arg.generation == generation)) {
      dnnl_exec_arg_t io[2] = {{DNNL_ARG_FROM, arg.user}, {DNNL_ARG_TO, arg.inner}};
      a->dnnl_primitive_execute(arg.reorder, a->stream, 2, io);
      arg.reordered = pointers[i], arg.generation = generation;
    }
    args.push_back({arg.id, arg.inner});
  }
  if (a->dnnl_primitive_execute(p->primitive, a->stream, static_cast<int>(args.size()), args.data()) != dnnl_success)
    return 1;
  for (const Arg &arg : p->args) {
    if (arg.reorder && arg.output) {
      dnnl_exec_arg_t io[2] = {{DNNL_ARG_FROM, arg.inner}, {DNNL_ARG_TO, arg.user}};
      a->dnnl_primitive_execute(arg.reorder, a->stream, 2, io);
    }
  }
  return a->dnnl_stream_wait(a->stream) == dnnl_success ? 0 : 1;
}

std::string key_of(char kind, std::initializer_list<int64_t> numbers) {
  std::string key(1, kind);
  for (int64_t n : numbers) key += std::to_string(n) + ",";
  return key;
}

// -- convolution ----------------------------------------------------------------------------------------------
enum Kind { kForward, kGradInput, kGradWeight, kBiasedForward };

struct Geometry {
  dnnl_dims_t x, w, y, strides, dilates, pad_l, pad_r;
  int64_t groups;
  int w_ndims;  // 5 with groups: (G, O / G, C / G, KH, KW), the same memory as MindSpore's (O, C / G, KH, KW)
};

Geometry geometry(const int64_t *x, const int64_t *w, const int64_t *y, const int64_t *spec) {
  Geometry g{};
  g.groups = spec[7];
  for (int i = 0; i < 4; ++i) g.x[i] = x[i], g.y[i] = y[i];
  if (g.groups > 1) {
    g.w_ndims = 5;
    g.w[0] = g.groups, g.w[1] = w[0] / g.groups;
    for (int i = 1; i < 4; ++i) g.w[i + 1] = w[i];
  } else {
    g.w_ndims = 4;
    for (int i = 0; i < 4; ++i) g.w[i] = w[i];
  }
  for (int d = 0; d < 2; ++d) {
    const int64_t stride = spec[d], dilation = spec[4 + d], in = x[2 + d], out = y[2 + d];
    const int64_t extent = (w[2 + d] - 1) * dilation + 1;
    int64_t before = spec[2 + d];
    if (spec[6]) before = std::max<int64_t>((out - 1) * stride + extent - in, 0) / 2;
    g.strides[d] = stride, g.dilates[d] = dilation - 1, g.pad_l[d] = before;
    g.pad_r[d] = (out - 1) * stride + extent - in - before;  // what the output's shape leaves over
  }
  return g;
}

// A convolution's work for parallel_worth, as primitive_work counts it (its gradients' is the same).
int64_t work_of(const Geometry &g) {
  const int64_t x = g.x[0] * g.x[1] * g.x[2] * g.x[3], y = g.y[0] * g.y[1] * g.y[2] * g.y[3];
  const int64_t taps = (g.x[1] / g.groups) * g.w[g.w_ndims - 2] * g.w[g.w_ndims - 1];  // multiply-adds per output
  return primitive_work(y * taps, x + g.y[1] * taps + y);
}

dnnl_memory_desc_t described(const Api &a, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  a.dnnl_memory_desc_create_with_tag(&md, ndims, dims, dnnl_f32, tag);
  return md;
}

// oneDNN's post-ops for `post` (common.h's Post), done by the convolution on its output: the caller destroys them.
// kSumRelu adds `summand`, a tensor of the output's shape and layout read as the output is written (a binary
// post-op: oneDNN's sum post-op adds to what dst holds, which took a copy of the summand there first, a pass over
// the output: resnet50's summed convolutions at batch 1 10% slower so).
dnnl_primitive_attr_t post_ops(const Api &a, int64_t post, const_dnnl_memory_desc_t summand = nullptr) {
  dnnl_post_ops_t ops;
  dnnl_primitive_attr_t attr;
  a.dnnl_post_ops_create(&ops);
  if (post == kSumRelu) a.dnnl_post_ops_append_binary(ops, dnnl_binary_add, summand);
  if (post == kRelu || post == kSumRelu) a.dnnl_post_ops_append_eltwise(ops, dnnl_eltwise_relu, 0.0f, 0.0f);
  if (post == kHardSwish) a.dnnl_post_ops_append_eltwise(ops, dnnl_eltwise_hardswish, 1.0f / 6.0f, 0.5f);
  a.dnnl_primitive_attr_create(&attr);
  a.dnnl_primitive_attr_set_post_ops(attr, ops);
  a.dnnl_post_ops_destroy(ops);
  return attr;
}

// The primitive for one kind and geometry, its arguments in the order the aot call passes them; a biased forward
// applies `post` (kNone, kRelu or kHardSwish) to its output too.
Plan *convolution(const Api &a, Kind kind, const Geometry &g, int64_t post = kNone) {
  const dnnl_dims_t channels = {g.y[1]};
  const dnnl_memory_desc_t any_x = described(a, 4, g.x, dnnl_format_tag_any),
                           any_w = described(a, g.w_ndims, g.w, dnnl_format_tag_any),
                           any_y = described(a, 4, g.y, dnnl_format_tag_any), bias = described(a, 1, channels, dnnl_a);
  dnnl_primitive_desc_t forward = nullptr, pd = nullptr;
  const dnnl_primitive_attr_t attr = post_ops(a, post);
  const bool made = a.dnnl_convolution_forward_primitive_desc_create(
                        &forward, a.engine, dnnl_forward_training, dnnl_convolution_direct, any_x, any_w,
                        kind == kBiasedForward ? bias : nullptr, any_y, g.strides, g.dilates, g.pad_l, g.pad_r,
                        attr) == dnnl_success;
  a.dnnl_primitive_attr_destroy(attr);
  if (!made) return nullptr;
  const dnnl_memory_desc_t x = described(a, 4, g.x, dnnl_nchw), y = described(a, 4, g.y, dnnl_nchw),
                           w = described(a, g.w_ndims, g.w, g.w_ndims == 5 ? dnnl_goihw : dnnl_oihw);
  Arg first, second, third;
  if (kind == kBiasedForward) {  // (x, w, b) -> y
    const Arg biases = bind(a, forward, DNNL_ARG_BIAS, dnnl_query_weights_md, bias, false, 1);
    return finish(a, forward,
                  {bind(a, forward, DNNL_ARG_SRC, dnnl_query_src_md, x, false),
                   bind(a, forward, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, w, false), biases,
                   bind(a, forward, DNNL_ARG_DST, dnnl_query_dst_md, y, true)});
  }
  if (kind == kForward) {  // (x, w) -> y
    pd = forward;
    first = bind(a, pd, DNNL_ARG_SRC, dnnl_query_src_md, x, false);
    second = bind(a, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, w, false);
    third = bind(a, pd, DNNL_ARG_DST, dnnl_query_dst_md, y, true);
  } else if (kind == kGradInput) {  // (dy, w) -> dx
    if (a.dnnl_convolution_backward_data_primitive_desc_create(&pd, a.engine, dnnl_convolution_direct, any_x,
                                                               any_w, any_y, g.strides, g.dilates, g.pad_l,
                                                               g.pad_r, forward, nullptr) != dnnl_success)
      return nullptr;
    first = bind(a, pd, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, y, false);
    second = bind(a, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, w, false);
    third = bind(a, pd, DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, x, true);
  } else {  // (dy, x) -> dw
    if (a.dnnl_convolution_backward_weights_primitive_desc_create(&pd, a.engine, dnnl_convolution_direct, any_x,
                                                                  any_w, nullptr, any_y, g.strides, g.dilates,
                                                                  g.pad_l, g.pad_r, forward,
                                                                  nullptr) != dnnl_success)
      return nullptr;
    first = bind(a, pd, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, y, false);
    second = bind(a, pd, DNNL_ARG_SRC, dnnl_query_src_md, x, false);
    third = bind(a, pd, DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, w, true);
  }
  if (pd != forward) a.dnnl_primitive_desc_destroy(forward);
  return finish(a, pd, {first, second, third});
}

// A 1x1 convolution at stride 1 without padding is a matrix product per image on the NCHW tensors themselves:
// y[n] (O, HW) = w (O, C) @ x[n] (C, HW), and dx[n] = w.T @ dy[n]. Run so, it needs no reorder: the mobilenets
// (pointwise layers on small feature maps) infer 6-13% faster than through the reordered convolution.
bool pointwise(const Geometry &g) {
  return g.groups == 1 && g.w[2] == 1 && g.w[3] == 1 && g.strides[0] == 1 && g.strides[1] == 1 &&
         g.pad_l[0] == 0 && g.pad_l[1] == 0 && g.pad_r[0] == 0 && g.pad_r[1] == 0;
}

Plan *pointwise_product(const Api &a, Kind kind, const Geometry &g) {
  const int64_t n = g.x[0], c = g.x[1], o = g.y[1], hw = g.x[2] * g.x[3];
  auto strided = [&](std::initializer_list<int64_t> dims, std::initializer_list<int64_t> strides) {
    dnnl_dims_t d, s;
    std::copy(dims.begin(), dims.end(), d), std::copy(strides.begin(), strides.end(), s);
    dnnl_memory_desc_t md;
    a.dnnl_memory_desc_create_with_strides(&md, 3, d, dnnl_f32, s);
    return md;
  };
  auto images = [&](int64_t channels) { return strided({n, channels, hw}, {channels * hw, hw, 1}); };
  // The image tensor is the product's right-hand side (oneDNN's weights), the filter its left (broadcast).
  const bool forward = kind == kForward;
  const dnnl_memory_desc_t image = images(forward ? c : o), result = images(forward ? o : c),
                           filter = forward ? strided({1, o, c}, {o * c, c, 1}) : strided({1, c, o}, {o * c, 1, c});
  dnnl_primitive_desc_t pd;
  if (a.dnnl_matmul_primitive_desc_create(&pd, a.engine, filter, image, nullptr, result, nullptr) != dnnl_success)
    return nullptr;
  // the aot call's order: forward (x, w) -> y, gradient of the input (dy, w) -> dx
  return finish(a, pd,
                {bind(a, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, image, false),
                 bind(a, pd, DNNL_ARG_SRC, dnnl_query_src_md, filter, false),
                 bind(a, pd, DNNL_ARG_DST, dnnl_query_dst_md, result, true)});
}

int convolve(Kind kind, const char *dtype, void *spec_param, std::vector<void *> buffers, const int64_t *x,
             const int64_t *w, const int64_t *y, int64_t post = kNone, const float *summand = nullptr) {
  if (std::string(dtype) != "float32") return 1;  // MindSpore raises
  const int64_t *spec = static_cast<const int64_t *>(spec_param);
  const Api *a = api(spec[8] != 0);
  const Geometry g = geometry(x, w, y, spec);
  auto key = [&](Kind k) {
    return key_of('0' + k, {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], g.strides[0], g.strides[1],
                            g.dilates[0], g.dilates[1], g.pad_l[0], g.pad_l[1], g.pad_r[0], g.pad_r[1], g.groups,
                            k == kBiasedForward ? post : kNone});
  };
  const int64_t work = work_of(g);
  if (kind == kBiasedForward && pointwise(g)) {  // pointwise.cc's loop, the bias and `post` in it
    pointwise_forward(static_cast<const float *>(buffers[0]), static_cast<const float *>(buffers[1]),
                      static_cast<const float *>(buffers[2]), summand, post, static_cast<float *>(buffers[3]), g.x[0],
                      g.x[1], g.y[1], g.x[2] * g.x[3]);
    return 0;
  }
  if (kind == kBiasedForward && !summand &&
      stem_geometry(g.x[1], g.w[2], g.w[3], g.strides[0], g.strides[1], g.dilates[0] || g.dilates[1], g.groups,
                    g.pad_l[1])) {  // stem.cc's loop
    stem_forward(static_cast<const float *>(buffers[0]), static_cast<const float *>(buffers[1]),
                 static_cast<const float *>(buffers[2]), post, static_cast<float *>(buffers[3]), g.x[0], g.x[1],
                 g.x[2], g.x[3], g.y[1], g.y[2], g.y[3], g.pad_l[0], g.pad_l[1]);
    return 0;
  }
  if (summand) return 1;  // a pointwise layer's alone
  if ((kind == kForward || kind == kGradInput) && pointwise(g))
    return run(a, key(kind), [&] { return pointwise_product(*a, kind, g); }, buffers, work);
  return run(a, key(kind), [&] { return convolution(*a, kind, g, post); }, buffers, work);
}

// -- the fused inference chain (fuse.py) ----------------------------------------------------------------------
// A folded convolution whose input and output stay in oneDNN's blocked layout nChw16c ((N, C / 16, H, W, 16), the
// one its AVX-512 convolutions read and write), with ReLU, or the residual sum and ReLU, done in the same call
// (post-ops): a chain of them needs no reorder and no elementwise pass between convolutions. The tensors MindSpore
// sees keep their (N, C, H, W) shapes; only these kernels, ToBlocked / ToPlain and pooling.cc's
// MaxPoolBlockedForward read them. The chain's first convolution may read plain NCHW (`enters`: a ResNet's stem, on
// the image's three channels), its output blocked all the same.
Plan *fused(const Api &a, const Geometry &g, int64_t post, bool enters) {
  const dnnl_dims_t channels = {g.y[1]};
  const dnnl_memory_desc_t x = described(a, 4, g.x, enters ? dnnl_nchw : dnnl_aBcd16b),
                           y = described(a, 4, g.y, dnnl_aBcd16b),
                           any_w = described(a, g.w_ndims, g.w, dnnl_format_tag_any),
                           w = described(a, g.w_ndims, g.w, g.w_ndims == 5 ? dnnl_goihw : dnnl_oihw),
                           bias = described(a, 1, channels, dnnl_a);
  const dnnl_primitive_attr_t attr = post_ops(a, post, y);
  dnnl_primitive_desc_t pd = nullptr;
  const bool made = a.dnnl_convolution_forward_primitive_desc_create(
                        &pd, a.engine, dnnl_forward_inference, dnnl_convolution_direct, x, any_w, bias, y, g.strides,
                        g.dilates, g.pad_l, g.pad_r, attr) == dnnl_success;
  a.dnnl_primitive_attr_destroy(attr);
  if (!made) return nullptr;
  Arg weights = bind(a, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, w, false);
  weights.constant = true;  // reordered at the first call of a fusing alone (the key holds the layer's place)
  std::vector<Arg> args = {bind(a, pd, DNNL_ARG_SRC, dnnl_query_src_md, x, false), weights,
                           bind(a, pd, DNNL_ARG_BIAS, dnnl_query_weights_md, bias, false, 1)};
  if (post == kSumRelu) {  // the summand read as it is (the output's layout) while the output is written
    Arg summand{DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, false, nullptr, nullptr, nullptr};
    a.dnnl_memory_create(&summand.user, y, a.engine, DNNL_MEMORY_NONE);
    summand.inner = summand.user;
    args.push_back(summand);
  }
  args.push_back(bind(a, pd, DNNL_ARG_DST, dnnl_query_dst_md, y, true));
  return finish(a, pd, std::move(args));
}

// (x, w, b[, summand], spec) -> y, spec = the convolution's, then post (Post), the layer's place and its fusing's
// generation (cells.fused_layers): its weights are constants, reordered into oneDNN's layout at its first call and
// kept. `enters`: x is plain NCHW.
int convolve_fused(void **params, int64_t **shapes, const char **dtypes, bool summed, bool enters = false) {
  const int inputs = summed ? 4 : 3;
  if (std::string(dtypes[0]) != "float32") return 1;  // MindSpore raises
  const int64_t *spec = static_cast<const int64_t *>(params[inputs]);
  const int64_t *x = shapes[0], *w = shapes[1], *y = shapes[inputs + 1];
  if ((x[1] % 16 && !enters) || y[1] % 16 || spec[7] != 1 || summed != (spec[9] == kSumRelu)) return 1;
  const Api *a = api(spec[8] != 0);
  const Geometry g = geometry(x, w, y, spec);
  const std::string key = key_of(enters ? 'e' : 'f', {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3],
                                                      g.strides[0], g.strides[1], g.dilates[0], g.dilates[1],
                                                      g.pad_l[0], g.pad_l[1], g.pad_r[0], g.pad_r[1], spec[9],
                                                      spec[10]});
  std::vector<void *> pointers(params, params + inputs);  // x, w, b[, summand]
  pointers.push_back(params[inputs + 1]);
  return run(a, key, [&] { return fused(*a, g, spec[9], enters); }, pointers, work_of(g), spec[11]);
}

// x (N, C, H, W), C a multiple of 16, copied from plain NCHW into nChw16c (`blocked`) or back.
int relayout(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, bool blocked) {
  if (nparam != 2 || ndims[0] != 4 || shapes[0][1] % 16 || !is_float32(dtypes[0])) return 1;  // MindSpore raises
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t n = shapes[0][0], blocks = shapes[0][1] / 16, area = shapes[0][2] * shapes[0][3];
#pragma omp parallel for collapse(2) schedule(static) if (parallel : parallel_worth(n * blocks * 16 * area))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t start = (i * blocks + b) * 16 * area;  // the same 16 planes in either layout
      for (int64_t p = 0; p < area; ++p)
        for (int64_t c = 0; c < 16; ++c) {
          const int64_t in_blocks = start + p * 16 + c, in_planes = start + c * area + p;
          y[blocked ? in_blocks : in_planes] = x[blocked ? in_planes : in_blocks];
        }
    }
  return 0;
}

}  // namespace

// (x, w, b, spec) -> y: blocked in and out, ReLU after where spec says so
FGVCTUNE_KERNEL(ConvFusedForward) { return nparam == 5 ? convolve_fused(params, shapes, dtypes, false) : 1; }

// (x, w, b, summand, spec) -> relu(conv(x) + b + summand): blocked in and out
FGVCTUNE_KERNEL(ConvFusedSumForward) { return nparam == 6 ? convolve_fused(params, shapes, dtypes, true) : 1; }

// (x, w, b, spec) -> y as ConvFusedForward's, x plain NCHW (any number of channels)
FGVCTUNE_KERNEL(ConvFusedEnterForward) {
  return nparam == 5 ? convolve_fused(params, shapes, dtypes, false, true) : 1;
}

// (x) -> the same values in nChw16c, x (N, C, H, W) plain with C a multiple of 16
FGVCTUNE_KERNEL(ToBlocked) { return relayout(nparam, params, ndims, shapes, dtypes, true); }

// (x) -> the same values in plain NCHW, x in nChw16c
FGVCTUNE_KERNEL(ToPlain) { return relayout(nparam, params, ndims, shapes, dtypes, false); }

// (x, w, spec) -> y
FGVCTUNE_KERNEL(ConvForward) {
  if (nparam != 4) return 1;
  return convolve(kForward, dtypes[0], params[2], {params[0], params[1], params[3]}, shapes[0], shapes[1],
                  shapes[3]);
}

// (x, w, b, spec) -> y + b: a folded BatchNorm's shift added in the same pass
FGVCTUNE_KERNEL(ConvBiasForward) {
  if (nparam != 5) return 1;
  return convolve(kBiasedForward, dtypes[0], params[3], {params[0], params[1], params[2], params[4]}, shapes[0],
                  shapes[1], shapes[4]);
}

// (x, w, b, spec) -> post(y + b), spec the convolution's and then post (common.h's Post: kNone, kRelu or
// kHardSwish): a folded layer and its activation in one call, for inference (fuse.py)
FGVCTUNE_KERNEL(ConvActForward) {
  if (nparam != 5) return 1;
  const int64_t post = static_cast<const int64_t *>(params[3])[9];
  if (post != kNone && post != kRelu && post != kHardSwish) return 1;
  return convolve(kBiasedForward, dtypes[0], params[3], {params[0], params[1], params[2], params[4]}, shapes[0],
                  shapes[1], shapes[4], post);
}

// (x, w, b, summand, spec) -> y + b + summand for a pointwise layer (1x1, stride 1, no padding), spec the
// convolution's and then kSum: a folded projection and the residual sum after it in one call, for inference
// (fuse.py, MobileNetV3's blocks)
FGVCTUNE_KERNEL(ConvSumForward) {
  if (nparam != 6 || static_cast<const int64_t *>(params[4])[9] != kSum) return 1;
  for (int d = 0; d < 4; ++d)
    if (shapes[3][d] != shapes[5][d]) return 1;
  return convolve(kBiasedForward, dtypes[0], params[4], {params[0], params[1], params[2], params[5]}, shapes[0],
                  shapes[1], shapes[5], kNone, static_cast<const float *>(params[3]));
}

// (dy, w, x, spec) -> dx; x is passed for its shape
FGVCTUNE_KERNEL(ConvGradInput) {
  if (nparam != 5) return 1;
  return convolve(kGradInput, dtypes[0], params[3], {params[0], params[1], params[4]}, shapes[2], shapes[1],
                  shapes[0]);
}

// (dy, x, w, spec) -> dw; w is passed for its shape
FGVCTUNE_KERNEL(ConvGradWeight) {
  if (nparam != 5) return 1;
  return convolve(kGradWeight, dtypes[0], params[3], {params[0], params[1], params[4]}, shapes[1], shapes[2],
                  shapes[0]);
}

// nn.Dense's matrix product and its two gradients: x (M, K), w (N, K), dy (M, N), spec int64 [any_isa].
namespace {

constexpr int64_t kFewRows = 2;  // up to which the forward product is dot products (multiply)

// params (a, b, [bias,] spec, out): out = a @ b, each read transposed in place where ta, tb; with `biased`, bias (N)
// added by oneDNN as it writes the product (channels_last.py's ConvNeXt); `post` kTanhGelu applies GELU's tanh
// form to the output right after, in this call, while it is in cache (oneDNN's GELU post-op was as fast or slower
// at every size of convnext_tiny's expansions: 1,368 against 1,146 us for 196 x 384 -> 1536). A spec of three,
// [any_isa, place, generation] (cells.fused_layers), says b is a constant of that layer's: reordered into oneDNN's
// own layout at its first call and kept, where oneDNN otherwise packs it anew at every call (at batch 1 that costs
// as much as a small product).
int multiply(void **params, int64_t **shapes, const char **dtypes, bool ta, bool tb, bool biased = false,
             int64_t post = kNone) {
  if (!is_float32(dtypes[0])) return 1;  // MindSpore raises
  const int64_t m = shapes[0][ta ? 1 : 0], k = shapes[0][ta ? 0 : 1], n = shapes[1][tb ? 0 : 1];
  const int64_t work = primitive_work(m * k * n, m * k + k * n + m * n);
  const float *bias = biased ? static_cast<const float *>(params[2]) : nullptr;
  void *spec = params[biased ? 3 : 2], *out = params[biased ? 4 : 3];
  if (!ta && tb && m <= kFewRows) {
    // x @ w.T for a few rows (a classifier at batch 1): each output a dot product with a weight row, the weights
    // read once as they are stored. oneDNN's matmul packs the weights anew at every call first: 0.2 ms for
    // mobilenet_v3_small's 576 x 1024 layer at batch 1, the weights read once take 0.08 or less.
    const float *x = static_cast<const float *>(params[0]), *w = static_cast<const float *>(params[1]);
    float *y = static_cast<float *>(out);
#pragma omp parallel for schedule(static) if (parallel : parallel_worth(work))
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t l = 0; l < k; ++l) sum += x[i * k + l] * w[j * k + l];
        y[i * n + j] = bias ? sum + bias[j] : sum;
      }
    if (post == kTanhGelu) tanh_gelu(y, y, m * n);
    return 0;
  }
  const Api *a = api(static_cast<const int64_t *>(spec)[0] != 0);
  const bool constant = shapes[biased ? 3 : 2][0] == 3;
  const int64_t layer = constant ? static_cast<const int64_t *>(spec)[1] : -1;
  const int64_t generation = constant ? static_cast<const int64_t *>(spec)[2] : -1;
  auto make = [&]() -> Plan * {
    dnnl_memory_desc_t src, weights, packed, biases = nullptr, dst;
    const dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n}, bias_dims = {1, n};
    const dnnl_dims_t a_strides = {ta ? 1 : k, ta ? m : 1}, b_strides = {tb ? 1 : n, tb ? k : 1},
                      c_strides = {n, 1};  // row-major, either input read transposed in place
    a->dnnl_memory_desc_create_with_strides(&src, 2, a_dims, dnnl_f32, a_strides);
    a->dnnl_memory_desc_create_with_strides(&weights, 2, b_dims, dnnl_f32, b_strides);
    if (constant) a->dnnl_memory_desc_create_with_tag(&packed, 2, b_dims, dnnl_f32, dnnl_format_tag_any);
    a->dnnl_memory_desc_create_with_strides(&dst, 2, c_dims, dnnl_f32, c_strides);
    if (biased) a->dnnl_memory_desc_create_with_strides(&biases, 2, bias_dims, dnnl_f32, c_strides);
    dnnl_primitive_desc_t pd;
    if (a->dnnl_matmul_primitive_desc_create(&pd, a->engine, src, constant ? packed : weights, biases, dst,
                                             nullptr) != dnnl_success)
      return nullptr;
    std::vector<Arg> args = {bind(*a, pd, DNNL_ARG_SRC, dnnl_query_src_md, src, false),
                             bind(*a, pd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, weights, false)};
    args.back().constant = constant;
    if (biased) args.push_back(bind(*a, pd, DNNL_ARG_BIAS, dnnl_query_weights_md, biases, false, 1));
    args.push_back(bind(*a, pd, DNNL_ARG_DST, dnnl_query_dst_md, dst, true));
    return finish(*a, pd, std::move(args));
  };
  std::vector<void *> pointers = {params[0], params[1]};
  if (biased) pointers.push_back(params[2]);
  pointers.push_back(out);
  if (run(a, key_of(biased ? 'b' : 'm', {m, k, n, ta, tb, layer}), make, pointers, work, generation)) return 1;
  if (post == kTanhGelu) tanh_gelu(static_cast<float *>(out), static_cast<float *>(out), m * n);  // (in cache)
  return 0;
}

}  // namespace

// (x, w, spec) -> x @ w.T
FGVCTUNE_KERNEL(DenseForward) {
  return nparam == 4 && ndims[0] == 2 ? multiply(params, shapes, dtypes, false, true) : 1;
}

// (dy, w, spec) -> dy @ w
FGVCTUNE_KERNEL(DenseGradInput) {
  return nparam == 4 ? multiply(params, shapes, dtypes, false, false) : 1;
}

// (dy, x, spec) -> dy.T @ x
FGVCTUNE_KERNEL(DenseGradWeight) {
  return nparam == 4 ? multiply(params, shapes, dtypes, true, false) : 1;
}

// (x, w, b, spec) -> x @ w.T + b: a Dense layer's product and bias in one oneDNN call, for inference
// (channels_last.py's ConvNeXt, w a constant of the layer spec[1:] names)
FGVCTUNE_KERNEL(DenseBiasForward) {
  return nparam == 5 && ndims[0] == 2 ? multiply(params, shapes, dtypes, false, true, true) : 1;
}

// (x, w, b, spec) -> GELU's tanh form of x @ w.T + b: a ConvNeXt block's expansion and its activation in one call
// (channels_last.py), for inference as DenseBiasForward
FGVCTUNE_KERNEL(DenseBiasGeluForward) {
  return nparam == 5 && ndims[0] == 2 ? multiply(params, shapes, dtypes, false, true, true, kTanhGelu) : 1;
}
