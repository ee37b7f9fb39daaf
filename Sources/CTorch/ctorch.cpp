// ctorch.cpp: one short C function per libtorch call (see include/ctorch.h).
//
// Every body runs inside PROTECT (shim.hpp), which turns a C++ exception into a thread-local
// error message and a failure return value. No logic lives here beyond argument marshalling.
// The distributed calls are in distributed.cpp.
#include <cmath>
#include "ctorch.h"
#include "shim.hpp"

#if !__has_include(<torch/torch.h>)
#error "libtorch's headers are not where Package.swift looked: run scripts/setup (it installs PyTorch 2.x into .venv), or set LIBTORCH to a libtorch 2.x folder"
#endif
#include <ATen/autocast_mode.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/torch.h>

#if TORCH_VERSION_MAJOR < 2
#error "Afterimage needs libtorch 2.x; LIBTORCH points at an older one"
#endif

#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct ct_generator_s {
  at::Generator generator;
};
struct ct_module_s {
  torch::jit::Module module;
  // forward, rewritten to also return named submodules' outputs; one per list of names.
  std::map<std::vector<std::string>, std::unique_ptr<torch::jit::GraphFunction>> with_features;
  std::mutex with_features_lock;  // guards the map; running a built function needs no lock
};
struct ct_package_s {
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
};

thread_local std::string last_error;
thread_local bool has_error = false;

// Wraps a tensor-returning expression.
#define TENSOR(expr) PROTECT(return wrap(expr);, nullptr)

static c10::optional<at::Tensor> opt(ct_tensor t) {
  if (t == nullptr) return c10::nullopt;
  return t->tensor;
}
static at::IntArrayRef ints(const int64_t *p, int n) { return at::IntArrayRef(p, (size_t)n); }
static at::OptionalIntArrayRef dims_or_all(const int64_t *p, int n) {
  if (p == nullptr) return c10::nullopt;
  return at::IntArrayRef(p, (size_t)n);
}
static at::Device device_of(int device) {
  return device < 0 ? at::Device(at::kCPU) : at::Device(at::kCUDA, (c10::DeviceIndex)device);
}
static at::TensorOptions options(int dtype, int device) {
  return at::TensorOptions().dtype((at::ScalarType)dtype).device(device_of(device));
}
static c10::optional<at::Generator> gen(ct_generator g) {
  if (g == nullptr) return c10::nullopt;
  return g->generator;
}
static char *copy_string(const std::string &s) {
  char *out = (char *)malloc(s.size() + 1);
  memcpy(out, s.c_str(), s.size() + 1);
  return out;
}
// Swift passes scalars as doubles; a whole number applied to an integer tensor becomes an
// integer scalar, as a Python int literal would, so `labels + 1` stays int64.
static at::Scalar scalar_for(const at::Tensor &t, double value) {
  bool integral = at::isIntegralType(t.scalar_type(), /*includeBool=*/false);
  // A double converts to int64_t only inside [-2^63, 2^63) (anything else, NaN included, is
  // undefined behaviour), so the range is checked before the cast.
  if (integral && value >= -9223372036854775808.0 && value < 9223372036854775808.0 && value == std::trunc(value))
    return at::Scalar((int64_t)value);
  return at::Scalar(value);
}
static int64_t reduction_of(int r) {
  return r == 0 ? at::Reduction::None : (r == 1 ? at::Reduction::Mean : at::Reduction::Sum);
}

extern "C" {

// MARK: errors and memory
const char *ct_last_error(void) { return has_error ? last_error.c_str() : nullptr; }
void ct_clear_error(void) {
  has_error = false;
  last_error.clear();
}
void ct_free(ct_tensor t) { delete t; }
void ct_free_string(char *s) { free(s); }

// MARK: runtime
const char *ct_version(void) { return TORCH_VERSION; }
char *ct_build_config(void) { PROTECT(return copy_string(at::show_config());, nullptr) }
void ct_set_num_threads(int n) { at::set_num_threads(n); }
int ct_get_num_threads(void) { return at::get_num_threads(); }
void ct_use_one_thread_here(void) {
  // libtorch sizes a thread's OpenMP team on that thread's first parallel region (from the
  // process-wide count); trigger that now, then shrink this thread's team to itself.
  (void)at::get_num_threads();
  static const auto set = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");  // looked up once
  if (set != nullptr) set(1);
}
void ct_manual_seed(uint64_t seed) { torch::manual_seed(seed); }
void ct_cuda_synchronize(void) {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
}
void ct_set_autocast(int device, int dtype, bool enabled) {
  at::DeviceType type = device < 0 ? at::kCPU : at::kCUDA;
  at::autocast::set_autocast_dtype(type, (at::ScalarType)dtype);
  at::autocast::set_autocast_enabled(type, enabled);
  // Casts are cached per autocast region; a region that ends must drop them.
  if (!enabled) at::autocast::clear_cache();
}
void ct_set_allow_tf32(bool allowed) {
  at::globalContext().setAllowTF32CuBLAS(allowed);
  at::globalContext().setAllowTF32CuDNN(allowed);
}
int ct_autocast_dtype(int device) {
  return (int)at::autocast::get_autocast_dtype(device < 0 ? at::kCPU : at::kCUDA);
}
bool ct_autocast_enabled(int device) {
  return at::autocast::is_autocast_enabled(device < 0 ? at::kCPU : at::kCUDA);
}
bool ct_cuda_is_available(void) { return torch::cuda::is_available(); }
int ct_cuda_device_count(void) { return (int)torch::cuda::device_count(); }
bool ct_is_grad_enabled(void) { return at::GradMode::is_enabled(); }
void ct_set_grad_enabled(bool enabled) { at::GradMode::set_enabled(enabled); }

// MARK: generators
ct_generator ct_generator_new(uint64_t seed, int device) {
  PROTECT(
      at::Generator g = device < 0 ? at::make_generator<at::CPUGeneratorImpl>(seed)
                                   : at::globalContext().defaultGenerator(device_of(device)).clone();
      if (device >= 0) g.set_current_seed(seed); return new ct_generator_s{g};, nullptr)
}
void ct_generator_free(ct_generator g) { delete g; }
void ct_generator_set_seed(ct_generator g, uint64_t seed) {
  std::lock_guard<std::mutex> lock(g->generator.mutex());
  g->generator.set_current_seed(seed);
}
ct_tensor ct_generator_get_state(ct_generator g) {
  PROTECT(std::lock_guard<std::mutex> lock(g->generator.mutex());
          return wrap(g->generator.get_state());, nullptr)
}
void ct_generator_set_state(ct_generator g, ct_tensor state) {
  try {
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    g->generator.set_state(T(state));
  } catch (const std::exception &e) {
    last_error = e.what();
    has_error = true;
  }
}

// MARK: creation
ct_tensor ct_empty(const int64_t *s, int n, int dtype, int device) {
  TENSOR(torch::empty(ints(s, n), options(dtype, device)))
}
ct_tensor ct_zeros(const int64_t *s, int n, int dtype, int device) {
  TENSOR(torch::zeros(ints(s, n), options(dtype, device)))
}
ct_tensor ct_ones(const int64_t *s, int n, int dtype, int device) {
  TENSOR(torch::ones(ints(s, n), options(dtype, device)))
}
ct_tensor ct_full(const int64_t *s, int n, double value, int dtype, int device) {
  TENSOR(torch::full(ints(s, n), value, options(dtype, device)))
}
ct_tensor ct_arange(double start, double end, double step, int dtype, int device) {
  TENSOR(torch::arange(start, end, step, options(dtype, device)))
}
ct_tensor ct_linspace(double start, double end, int64_t steps, int dtype, int device) {
  TENSOR(torch::linspace(start, end, steps, options(dtype, device)))
}
ct_tensor ct_eye(int64_t n, int dtype, int device) { TENSOR(torch::eye(n, options(dtype, device))) }
ct_tensor ct_rand(const int64_t *s, int n, ct_generator g, int dtype, int device) {
  TENSOR(at::rand(ints(s, n), gen(g), options(dtype, device)))
}
ct_tensor ct_randn(const int64_t *s, int n, ct_generator g, int dtype, int device) {
  TENSOR(at::randn(ints(s, n), gen(g), options(dtype, device)))
}
ct_tensor ct_randint(int64_t low, int64_t high, const int64_t *s, int n, ct_generator g,
                     int dtype, int device) {
  TENSOR(at::randint(low, high, ints(s, n), gen(g), options(dtype, device)))
}
ct_tensor ct_randperm(int64_t n, ct_generator g, int device) {
  TENSOR(at::randperm(n, gen(g), options((int)at::kLong, device)))
}
ct_tensor ct_from_data(const void *data, const int64_t *s, int n, int dtype) {
  TENSOR(torch::from_blob(const_cast<void *>(data), ints(s, n), options(dtype, -1)).clone())
}
ct_tensor ct_scalar_tensor(double value, int dtype, int device) {
  TENSOR(torch::scalar_tensor(value, options(dtype, device)))
}

// MARK: inspection and data
bool ct_defined(ct_tensor t) { return t != nullptr && T(t).defined(); }
int ct_ndim(ct_tensor t) { return (int)T(t).dim(); }
int64_t ct_stride(ct_tensor t, int64_t dim) { return T(t).stride(dim); }
void ct_shape(ct_tensor t, int64_t *out) {
  auto sizes = T(t).sizes();
  std::copy(sizes.begin(), sizes.end(), out);
}
int64_t ct_numel(ct_tensor t) { return T(t).numel(); }
int ct_dtype(ct_tensor t) { return (int)T(t).scalar_type(); }
int ct_device(ct_tensor t) { return T(t).is_cuda() ? (int)T(t).get_device() : -1; }
bool ct_is_contiguous(ct_tensor t) { return T(t).is_contiguous(); }
double ct_item_double(ct_tensor t) { PROTECT(return T(t).item<double>();, 0.0) }
int64_t ct_item_int(ct_tensor t) { PROTECT(return T(t).item<int64_t>();, 0) }
int ct_copy_data(ct_tensor t, void *out, int64_t numel, int dtype) {
  STATUS(at::Tensor c = T(t).detach().to(at::kCPU, (at::ScalarType)dtype).contiguous();
         TORCH_CHECK(c.numel() == numel, "ct_copy_data: tensor has ", c.numel(),
                     " elements, the buffer holds ", numel);
         memcpy(out, c.data_ptr(), (size_t)numel * c.element_size()))
}
char *ct_to_string(ct_tensor t) {
  PROTECT(std::ostringstream s; s << T(t); return copy_string(s.str());, nullptr)
}
int64_t ct_element_size(int dtype) { return (int64_t)c10::elementSize((at::ScalarType)dtype); }

// MARK: conversion and copies
ct_tensor ct_to(ct_tensor t, int dtype, int device) {
  TENSOR(T(t).to(device_of(device), (at::ScalarType)dtype))
}
ct_tensor ct_contiguous(ct_tensor t) { TENSOR(T(t).contiguous()) }
ct_tensor ct_channels_last(ct_tensor t) {
  // Strided as channels-last even where the shape makes the layouts coincide (one channel, or a
  // 1×1 kernel): contiguous(ChannelsLast) returns such a tensor as it is, with channels-first
  // strides, and convolutions then pick channels-first for everything computed from it (BigGAN's
  // first D layer on grayscale images, every 1×1 convolution), so that the step converts layouts
  // back and forth (as PyTorch's module.to(memory_format=...) does, this copies into
  // channels-last strides).
  PROTECT(const auto &x = T(t); if (x.dim() != 4) return wrap(x.contiguous(at::MemoryFormat::ChannelsLast));
          if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast)
              return wrap(x);
          return wrap(x.to(x.options(), /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::ChannelsLast));, nullptr)
}
ct_tensor ct_clone(ct_tensor t) { TENSOR(T(t).clone()) }
ct_tensor ct_detach(ct_tensor t) { TENSOR(T(t).detach()) }
ct_tensor ct_shallow_copy(ct_tensor t) { TENSOR(T(t)) }

// MARK: shape
ct_tensor ct_reshape(ct_tensor t, const int64_t *s, int n) { TENSOR(T(t).reshape(ints(s, n))) }
ct_tensor ct_view(ct_tensor t, const int64_t *s, int n) { TENSOR(T(t).view(ints(s, n))) }
ct_tensor ct_permute(ct_tensor t, const int64_t *d, int n) { TENSOR(T(t).permute(ints(d, n))) }
ct_tensor ct_transpose(ct_tensor t, int64_t a, int64_t b) { TENSOR(T(t).transpose(a, b)) }
ct_tensor ct_flatten(ct_tensor t, int64_t start, int64_t end) { TENSOR(T(t).flatten(start, end)) }
ct_tensor ct_squeeze(ct_tensor t) { TENSOR(T(t).squeeze()) }
ct_tensor ct_squeeze_dim(ct_tensor t, int64_t dim) { TENSOR(T(t).squeeze(dim)) }
ct_tensor ct_unsqueeze(ct_tensor t, int64_t dim) { TENSOR(T(t).unsqueeze(dim)) }
ct_tensor ct_expand(ct_tensor t, const int64_t *s, int n) { TENSOR(T(t).expand(ints(s, n))) }
ct_tensor ct_repeat(ct_tensor t, const int64_t *r, int n) { TENSOR(T(t).repeat(ints(r, n))) }

static std::vector<at::Tensor> tensor_list(const ct_tensor *ts, int n) {
  std::vector<at::Tensor> list;
  list.reserve((size_t)n);
  for (int i = 0; i < n; i++) list.push_back(T(ts[i]));
  return list;
}
static int write_list(const std::vector<at::Tensor> &pieces, ct_tensor *out, int capacity) {
  for (size_t i = 0; i < pieces.size() && (int)i < capacity; i++) out[i] = wrap(pieces[i]);
  return (int)pieces.size();
}
ct_tensor ct_cat(const ct_tensor *ts, int n, int64_t dim) { TENSOR(torch::cat(tensor_list(ts, n), dim)) }
ct_tensor ct_stack(const ct_tensor *ts, int n, int64_t dim) {
  TENSOR(torch::stack(tensor_list(ts, n), dim))
}
int ct_split(ct_tensor t, int64_t size, int64_t dim, ct_tensor *out, int capacity) {
  PROTECT(return write_list(T(t).split(size, dim), out, capacity);, -1)
}
int ct_chunk(ct_tensor t, int64_t chunks, int64_t dim, ct_tensor *out, int capacity) {
  PROTECT(return write_list(T(t).chunk(chunks, dim), out, capacity);, -1)
}
ct_tensor ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length) {
  TENSOR(T(t).narrow(dim, start, length))
}
ct_tensor ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  TENSOR(T(t).slice(dim, start, end, step))
}
ct_tensor ct_select(ct_tensor t, int64_t dim, int64_t index) { TENSOR(T(t).select(dim, index)) }
ct_tensor ct_index_select(ct_tensor t, int64_t dim, ct_tensor index) {
  TENSOR(T(t).index_select(dim, T(index)))
}
ct_tensor ct_gather(ct_tensor t, int64_t dim, ct_tensor index) { TENSOR(T(t).gather(dim, T(index))) }
ct_tensor ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src) {
  TENSOR(T(t).scatter(dim, T(index), T(src)))
}
ct_tensor ct_scatter_add(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src) {
  TENSOR(T(t).scatter_add(dim, T(index), T(src)))
}
ct_tensor ct_masked_select(ct_tensor t, ct_tensor mask) { TENSOR(T(t).masked_select(T(mask))) }
ct_tensor ct_masked_fill(ct_tensor t, ct_tensor mask, double value) {
  TENSOR(T(t).masked_fill(T(mask), scalar_for(T(t), value)))
}
ct_tensor ct_where(ct_tensor c, ct_tensor a, ct_tensor b) { TENSOR(torch::where(T(c), T(a), T(b))) }
ct_tensor ct_flip(ct_tensor t, const int64_t *d, int n) { TENSOR(T(t).flip(ints(d, n))) }
ct_tensor ct_roll(ct_tensor t, const int64_t *shifts, const int64_t *dims, int n) {
  TENSOR(T(t).roll(ints(shifts, n), ints(dims, n)))
}
ct_tensor ct_tril(ct_tensor t, int64_t diagonal) { TENSOR(T(t).tril(diagonal)) }
ct_tensor ct_diagonal(ct_tensor t, int64_t offset, int64_t d1, int64_t d2) {
  TENSOR(T(t).diagonal(offset, d1, d2))
}

// MARK: binary arithmetic and comparison
ct_tensor ct_add(ct_tensor a, ct_tensor b) { TENSOR(T(a) + T(b)) }
ct_tensor ct_sub(ct_tensor a, ct_tensor b) { TENSOR(T(a) - T(b)) }
ct_tensor ct_mul(ct_tensor a, ct_tensor b) { TENSOR(T(a) * T(b)) }
ct_tensor ct_div(ct_tensor a, ct_tensor b) { TENSOR(T(a) / T(b)) }
ct_tensor ct_pow(ct_tensor a, ct_tensor b) { TENSOR(T(a).pow(T(b))) }
ct_tensor ct_maximum(ct_tensor a, ct_tensor b) { TENSOR(at::maximum(T(a), T(b))) }
ct_tensor ct_minimum(ct_tensor a, ct_tensor b) { TENSOR(at::minimum(T(a), T(b))) }
ct_tensor ct_atan2(ct_tensor a, ct_tensor b) { TENSOR(T(a).atan2(T(b))) }
ct_tensor ct_eq(ct_tensor a, ct_tensor b) { TENSOR(T(a).eq(T(b))) }
ct_tensor ct_ne(ct_tensor a, ct_tensor b) { TENSOR(T(a).ne(T(b))) }
ct_tensor ct_lt(ct_tensor a, ct_tensor b) { TENSOR(T(a).lt(T(b))) }
ct_tensor ct_le(ct_tensor a, ct_tensor b) { TENSOR(T(a).le(T(b))) }
ct_tensor ct_gt(ct_tensor a, ct_tensor b) { TENSOR(T(a).gt(T(b))) }
ct_tensor ct_ge(ct_tensor a, ct_tensor b) { TENSOR(T(a).ge(T(b))) }
ct_tensor ct_logical_and(ct_tensor a, ct_tensor b) { TENSOR(T(a).logical_and(T(b))) }
ct_tensor ct_logical_or(ct_tensor a, ct_tensor b) { TENSOR(T(a).logical_or(T(b))) }

// A scalar right operand, taken in the tensor's kind by scalar_for.
ct_tensor ct_add_scalar(ct_tensor a, double b) { TENSOR(T(a) + scalar_for(T(a), b)) }
ct_tensor ct_sub_scalar(ct_tensor a, double b) { TENSOR(T(a) - scalar_for(T(a), b)) }
ct_tensor ct_mul_scalar(ct_tensor a, double b) { TENSOR(T(a) * scalar_for(T(a), b)) }
ct_tensor ct_div_scalar(ct_tensor a, double b) { TENSOR(T(a) / scalar_for(T(a), b)) }
ct_tensor ct_pow_scalar(ct_tensor a, double b) { TENSOR(T(a).pow(scalar_for(T(a), b))) }
ct_tensor ct_eq_scalar(ct_tensor a, double b) { TENSOR(T(a).eq(scalar_for(T(a), b))) }
ct_tensor ct_ne_scalar(ct_tensor a, double b) { TENSOR(T(a).ne(scalar_for(T(a), b))) }
ct_tensor ct_lt_scalar(ct_tensor a, double b) { TENSOR(T(a).lt(scalar_for(T(a), b))) }
ct_tensor ct_le_scalar(ct_tensor a, double b) { TENSOR(T(a).le(scalar_for(T(a), b))) }
ct_tensor ct_gt_scalar(ct_tensor a, double b) { TENSOR(T(a).gt(scalar_for(T(a), b))) }
ct_tensor ct_ge_scalar(ct_tensor a, double b) { TENSOR(T(a).ge(scalar_for(T(a), b))) }
ct_tensor ct_remainder_scalar(ct_tensor a, double b) { TENSOR(T(a).remainder(scalar_for(T(a), b))) }
ct_tensor ct_floor_divide_scalar(ct_tensor a, double b) { TENSOR(T(a).div(scalar_for(T(a), b), "floor")) }
// A scalar left operand (`b - a`, `b / a`): a 0-dim tensor of the tensor's dtype keeps type
// promotion as in Python.
static at::Tensor left_operand(const at::Tensor &a, double b) {
  return torch::scalar_tensor(scalar_for(a, b), a.options());
}
ct_tensor ct_rsub_scalar(ct_tensor a, double b) { TENSOR(left_operand(T(a), b) - T(a)) }
ct_tensor ct_rdiv_scalar(ct_tensor a, double b) { TENSOR(left_operand(T(a), b) / T(a)) }

ct_tensor ct_matmul(ct_tensor a, ct_tensor b) { TENSOR(T(a).matmul(T(b))) }
ct_tensor ct_addmm(ct_tensor bias, ct_tensor a, ct_tensor b) { TENSOR(at::addmm(T(bias), T(a), T(b))) }

// MARK: unary elementwise
ct_tensor ct_neg(ct_tensor t) { TENSOR(T(t).neg()) }
ct_tensor ct_exp(ct_tensor t) { TENSOR(T(t).exp()) }
ct_tensor ct_log(ct_tensor t) { TENSOR(T(t).log()) }
ct_tensor ct_log2(ct_tensor t) { TENSOR(T(t).log2()) }
ct_tensor ct_log1p(ct_tensor t) { TENSOR(T(t).log1p()) }
ct_tensor ct_expm1(ct_tensor t) { TENSOR(T(t).expm1()) }
ct_tensor ct_sqrt(ct_tensor t) { TENSOR(T(t).sqrt()) }
ct_tensor ct_rsqrt(ct_tensor t) { TENSOR(T(t).rsqrt()) }
ct_tensor ct_abs(ct_tensor t) { TENSOR(T(t).abs()) }
ct_tensor ct_sign(ct_tensor t) { TENSOR(T(t).sign()) }
ct_tensor ct_square(ct_tensor t) { TENSOR(T(t).square()) }
ct_tensor ct_reciprocal(ct_tensor t) { TENSOR(T(t).reciprocal()) }
ct_tensor ct_sin(ct_tensor t) { TENSOR(T(t).sin()) }
ct_tensor ct_cos(ct_tensor t) { TENSOR(T(t).cos()) }
ct_tensor ct_floor(ct_tensor t) { TENSOR(T(t).floor()) }
ct_tensor ct_ceil(ct_tensor t) { TENSOR(T(t).ceil()) }
ct_tensor ct_round(ct_tensor t) { TENSOR(T(t).round()) }
ct_tensor ct_trunc(ct_tensor t) { TENSOR(T(t).trunc()) }
ct_tensor ct_erf(ct_tensor t) { TENSOR(T(t).erf()) }
ct_tensor ct_tanh(ct_tensor t) { TENSOR(T(t).tanh()) }
ct_tensor ct_sigmoid(ct_tensor t) { TENSOR(T(t).sigmoid()) }
ct_tensor ct_relu(ct_tensor t) { TENSOR(T(t).relu()) }
ct_tensor ct_silu(ct_tensor t) { TENSOR(at::silu(T(t))) }
ct_tensor ct_logical_not(ct_tensor t) { TENSOR(T(t).logical_not()) }
ct_tensor ct_isnan(ct_tensor t) { TENSOR(T(t).isnan()) }
ct_tensor ct_isfinite(ct_tensor t) { TENSOR(T(t).isfinite()) }
ct_tensor ct_clamp(ct_tensor t, double min, double max, bool has_min, bool has_max) {
  TENSOR(T(t).clamp(has_min ? c10::optional<at::Scalar>(min) : c10::nullopt,
                    has_max ? c10::optional<at::Scalar>(max) : c10::nullopt))
}
ct_tensor ct_leaky_relu(ct_tensor t, double slope) { TENSOR(at::leaky_relu(T(t), slope)) }
ct_tensor ct_gelu(ct_tensor t, bool tanh_approx) { TENSOR(at::gelu(T(t), tanh_approx ? "tanh" : "none")) }
ct_tensor ct_softplus(ct_tensor t, double beta, double threshold) {
  TENSOR(at::softplus(T(t), beta, threshold))
}
ct_tensor ct_elu(ct_tensor t, double alpha) { TENSOR(at::elu(T(t), alpha)) }
ct_tensor ct_hardtanh(ct_tensor t, double min, double max) { TENSOR(at::hardtanh(T(t), min, max)) }

// MARK: reductions
ct_tensor ct_sum(ct_tensor t, const int64_t *d, int n, bool keepdim) {
  TENSOR(d == nullptr ? T(t).sum() : T(t).sum(ints(d, n), keepdim))
}
ct_tensor ct_mean(ct_tensor t, const int64_t *d, int n, bool keepdim) {
  TENSOR(d == nullptr ? T(t).mean() : T(t).mean(ints(d, n), keepdim))
}
ct_tensor ct_prod(ct_tensor t) { TENSOR(T(t).prod()) }
ct_tensor ct_amax(ct_tensor t, const int64_t *d, int n, bool keepdim) {
  TENSOR(d == nullptr ? T(t).max() : T(t).amax(ints(d, n), keepdim))
}
ct_tensor ct_amin(ct_tensor t, const int64_t *d, int n, bool keepdim) {
  TENSOR(d == nullptr ? T(t).min() : T(t).amin(ints(d, n), keepdim))
}
int ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  STATUS(auto r = T(t).max(dim, keepdim); *values = wrap(std::get<0>(r));
         *indices = wrap(std::get<1>(r)))
}
int ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  STATUS(auto r = T(t).min(dim, keepdim); *values = wrap(std::get<0>(r));
         *indices = wrap(std::get<1>(r)))
}
ct_tensor ct_argmax(ct_tensor t, int64_t dim, bool keepdim) { TENSOR(T(t).argmax(dim, keepdim)) }
ct_tensor ct_argmin(ct_tensor t, int64_t dim, bool keepdim) { TENSOR(T(t).argmin(dim, keepdim)) }
ct_tensor ct_var(ct_tensor t, const int64_t *d, int n, bool unbiased, bool keepdim) {
  TENSOR(at::var(T(t), dims_or_all(d, n), unbiased, keepdim))
}
ct_tensor ct_std(ct_tensor t, const int64_t *d, int n, bool unbiased, bool keepdim) {
  TENSOR(at::std(T(t), dims_or_all(d, n), unbiased, keepdim))
}
ct_tensor ct_norm(ct_tensor t, double p, const int64_t *d, int n, bool keepdim) {
  TENSOR(d == nullptr ? T(t).norm(p) : T(t).norm(p, ints(d, n), keepdim))
}
ct_tensor ct_logsumexp(ct_tensor t, const int64_t *d, int n, bool keepdim) {
  PROTECT(
      if (d == nullptr) {
        std::vector<int64_t> all((size_t)T(t).dim());
        for (size_t i = 0; i < all.size(); i++) all[i] = (int64_t)i;
        return wrap(T(t).logsumexp(all, keepdim));
      } return wrap(T(t).logsumexp(ints(d, n), keepdim));, nullptr)
}
ct_tensor ct_cumsum(ct_tensor t, int64_t dim) { TENSOR(T(t).cumsum(dim)) }
int ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values,
            ct_tensor *indices) {
  STATUS(auto r = T(t).topk(k, dim, largest, sorted); *values = wrap(std::get<0>(r));
         *indices = wrap(std::get<1>(r)))
}
int ct_sort(ct_tensor t, int64_t dim, bool descending, ct_tensor *values, ct_tensor *indices) {
  STATUS(auto r = T(t).sort(dim, descending); *values = wrap(std::get<0>(r));
         *indices = wrap(std::get<1>(r)))
}
bool ct_allclose(ct_tensor a, ct_tensor b, double rtol, double atol) {
  PROTECT(return T(a).allclose(T(b), rtol, atol);, false)
}
bool ct_equal(ct_tensor a, ct_tensor b) { PROTECT(return T(a).equal(T(b));, false) }

// MARK: linear algebra
ct_tensor ct_svdvals(ct_tensor t) { TENSOR(at::linalg_svdvals(T(t))) }
int ct_qr(ct_tensor t, ct_tensor *q, ct_tensor *r) {
  STATUS(auto result = at::linalg_qr(T(t)); *q = wrap(std::get<0>(result));
         *r = wrap(std::get<1>(result)))
}
int ct_eigh(ct_tensor t, ct_tensor *values, ct_tensor *vectors) {
  STATUS(auto result = at::linalg_eigh(T(t)); *values = wrap(std::get<0>(result));
         *vectors = wrap(std::get<1>(result)))
}
ct_tensor ct_outer(ct_tensor a, ct_tensor b) { TENSOR(at::outer(T(a), T(b))) }

// MARK: in-place
int ct_copy_(ct_tensor dst, ct_tensor src) { STATUS(dst->tensor.copy_(T(src))) }
int ct_set_data(ct_tensor t, ct_tensor src) { STATUS(t->tensor.set_data(T(src))) }
int ct_zero_(ct_tensor t) { STATUS(t->tensor.zero_()) }
int ct_fill_(ct_tensor t, double value) { STATUS(t->tensor.fill_(scalar_for(T(t), value))) }
int ct_add_(ct_tensor t, ct_tensor other, double alpha) { STATUS(t->tensor.add_(T(other), alpha)) }
int ct_mul_(ct_tensor t, ct_tensor other) { STATUS(t->tensor.mul_(T(other))) }
int ct_mul_scalar_(ct_tensor t, double value) { STATUS(t->tensor.mul_(scalar_for(T(t), value))) }
int ct_add_scalar_(ct_tensor t, double value) { STATUS(t->tensor.add_(scalar_for(T(t), value))) }
int ct_div_(ct_tensor t, ct_tensor other) { STATUS(t->tensor.div_(T(other))) }
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, double value) {
  STATUS(t->tensor.addcmul_(T(a), T(b), value))
}
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, double value) {
  STATUS(t->tensor.addcdiv_(T(a), T(b), value))
}
int ct_lerp_(ct_tensor t, ct_tensor end, double weight) { STATUS(t->tensor.lerp_(T(end), weight)) }
int ct_sqrt_(ct_tensor t) { STATUS(t->tensor.sqrt_()) }
int ct_clamp_(ct_tensor t, double min, double max) { STATUS(t->tensor.clamp_(min, max)) }
int ct_uniform_(ct_tensor t, double low, double high, ct_generator g) {
  STATUS(t->tensor.uniform_(low, high, gen(g)))
}
int ct_normal_(ct_tensor t, double mean, double std, ct_generator g) {
  STATUS(t->tensor.normal_(mean, std, gen(g)))
}

// MARK: neural-network functions
ct_tensor ct_linear(ct_tensor x, ct_tensor w, ct_tensor b) { TENSOR(at::linear(T(x), T(w), opt(b))) }
ct_tensor ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                    const int64_t *padding, const int64_t *dilation, int64_t groups) {
  TENSOR(at::conv2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2), ints(dilation, 2),
                    groups))
}
ct_tensor ct_conv_transpose2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                              const int64_t *padding, const int64_t *output_padding,
                              int64_t groups, const int64_t *dilation) {
  TENSOR(at::conv_transpose2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2),
                              ints(output_padding, 2), groups, ints(dilation, 2)))
}
ct_tensor ct_batch_norm(ct_tensor x, ct_tensor w, ct_tensor b, ct_tensor rm, ct_tensor rv,
                        bool training, double momentum, double eps) {
  TENSOR(at::batch_norm(T(x), opt(w), opt(b), opt(rm), opt(rv), training, momentum, eps,
                        /*cudnn_enabled=*/true))
}
ct_tensor ct_group_norm(ct_tensor x, int64_t groups, ct_tensor w, ct_tensor b, double eps) {
  TENSOR(at::group_norm(T(x), groups, opt(w), opt(b), eps))
}
ct_tensor ct_layer_norm(ct_tensor x, const int64_t *s, int n, ct_tensor w, ct_tensor b, double eps) {
  TENSOR(at::layer_norm(T(x), ints(s, n), opt(w), opt(b), eps))
}
ct_tensor ct_avg_pool2d(ct_tensor x, const int64_t *k, const int64_t *s, const int64_t *p) {
  TENSOR(at::avg_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2)))
}
ct_tensor ct_max_pool2d(ct_tensor x, const int64_t *k, const int64_t *s, const int64_t *p) {
  TENSOR(at::max_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2)))
}
ct_tensor ct_adaptive_avg_pool2d(ct_tensor x, const int64_t *size) {
  TENSOR(at::adaptive_avg_pool2d(T(x), ints(size, 2)))
}
ct_tensor ct_upsample_nearest2d(ct_tensor x, const int64_t *size) {
  TENSOR(at::upsample_nearest2d(T(x), ints(size, 2)))
}
ct_tensor ct_upsample_bilinear2d(ct_tensor x, const int64_t *size, bool align_corners) {
  TENSOR(at::upsample_bilinear2d(T(x), ints(size, 2), align_corners))
}
ct_tensor ct_upsample_bilinear2d_aa(ct_tensor x, const int64_t *size) {
  TENSOR(at::_upsample_bilinear2d_aa(T(x), ints(size, 2), /*align_corners=*/false))
}
ct_tensor ct_pad(ct_tensor x, const int64_t *pads, int n, int mode, double value) {
  static const char *modes[] = {"constant", "reflect", "replicate", "circular"};
  PROTECT(TORCH_CHECK(mode >= 0 && mode < 4, "unknown padding mode ", mode);
          return wrap(at::pad(T(x), ints(pads, n), modes[mode],
                              mode == 0 ? c10::optional<double>(value) : c10::nullopt));
          , nullptr)
}
ct_tensor ct_embedding(ct_tensor weight, ct_tensor indices) {
  TENSOR(at::embedding(T(weight), T(indices)))
}
ct_tensor ct_affine_grid(ct_tensor theta, const int64_t *size, int ndim) {
  TENSOR(at::affine_grid_generator(T(theta), ints(size, ndim), /*align_corners=*/false))
}
ct_tensor ct_grid_sample(ct_tensor x, ct_tensor grid, int mode, int padding) {
  TENSOR(at::grid_sampler(T(x), T(grid), mode, padding, /*align_corners=*/false))
}
ct_tensor ct_dropout(ct_tensor x, double p, bool training) { TENSOR(at::dropout(T(x), p, training)) }
ct_tensor ct_softmax(ct_tensor x, int64_t dim) { TENSOR(T(x).softmax(dim)) }
ct_tensor ct_log_softmax(ct_tensor x, int64_t dim) { TENSOR(T(x).log_softmax(dim)) }
ct_tensor ct_one_hot(ct_tensor x, int64_t classes) { TENSOR(at::one_hot(T(x), classes)) }
ct_tensor ct_cross_entropy(ct_tensor logits, ct_tensor target, int reduction, double smoothing) {
  TENSOR(at::cross_entropy_loss(T(logits), T(target), c10::nullopt, reduction_of(reduction), -100,
                                smoothing))
}
ct_tensor ct_nll_loss(ct_tensor logp, ct_tensor target, int reduction) {
  TENSOR(at::nll_loss(T(logp), T(target), c10::nullopt, reduction_of(reduction), -100))
}
ct_tensor ct_mse_loss(ct_tensor a, ct_tensor b, int reduction) {
  TENSOR(at::mse_loss(T(a), T(b), reduction_of(reduction)))
}
ct_tensor ct_l1_loss(ct_tensor a, ct_tensor b, int reduction) {
  TENSOR(at::l1_loss(T(a), T(b), reduction_of(reduction)))
}
ct_tensor ct_smooth_l1_loss(ct_tensor a, ct_tensor b, int reduction, double beta) {
  TENSOR(at::smooth_l1_loss(T(a), T(b), reduction_of(reduction), beta))
}
ct_tensor ct_bce_with_logits(ct_tensor logits, ct_tensor target, int reduction) {
  TENSOR(at::binary_cross_entropy_with_logits(T(logits), T(target), c10::nullopt, c10::nullopt,
                                              reduction_of(reduction)))
}

// MARK: autograd
int ct_set_requires_grad(ct_tensor t, bool requires) { STATUS(t->tensor.requires_grad_(requires)) }
bool ct_requires_grad(ct_tensor t) { return T(t).requires_grad(); }
ct_tensor ct_grad(ct_tensor t) {
  PROTECT(const at::Tensor &g = T(t).grad(); if (!g.defined()) return nullptr; return wrap(g);
          , nullptr)
}
int ct_set_grad(ct_tensor t, ct_tensor grad) {
  STATUS(t->tensor.mutable_grad() = grad == nullptr ? at::Tensor() : T(grad))
}
int ct_zero_grad(ct_tensor t) {
  STATUS(at::Tensor &g = t->tensor.mutable_grad(); if (g.defined()) g = at::Tensor())
}
int ct_backward(ct_tensor t, ct_tensor gradient, bool retain_graph, bool create_graph) {
  STATUS(T(t).backward(gradient == nullptr ? at::Tensor() : T(gradient),
                       retain_graph || create_graph, create_graph))
}
int ct_autograd_grad(const ct_tensor *outputs, int n_outputs, const ct_tensor *grad_outputs,
                     const ct_tensor *inputs, int n_inputs, bool retain_graph, bool create_graph,
                     bool allow_unused, ct_tensor *out) {
  PROTECT(
      std::vector<at::Tensor> grads;
      if (grad_outputs != nullptr) {
        for (int i = 0; i < n_outputs; i++)
          grads.push_back(grad_outputs[i] == nullptr ? at::Tensor() : T(grad_outputs[i]));
      } auto result = torch::autograd::grad(tensor_list(outputs, n_outputs), tensor_list(inputs, n_inputs),
                                            grads, retain_graph || create_graph, create_graph,
                                            allow_unused);
      for (int i = 0; i < n_inputs; i++) out[i] = result[i].defined() ? wrap(result[i]) : nullptr;
      return 0;, -1)
}

// MARK: TorchScript
ct_module ct_jit_load(const char *path, int device) {
  PROTECT(return new ct_module_s{torch::jit::load(path, device_of(device))};, nullptr)
}
void ct_jit_free(ct_module m) { delete m; }
int ct_jit_set_training(ct_module m, bool training) { STATUS(m->module.train(training)) }
int ct_jit_to(ct_module m, int device) { STATUS(m->module.to(device_of(device))) }
int ct_jit_freeze_parameters(ct_module m) {
  STATUS(for (auto parameter : m->module.parameters()) parameter.requires_grad_(false))
}
ct_tensor ct_jit_forward(ct_module m, const ct_tensor *inputs, int n) {
  PROTECT(
      std::vector<torch::jit::IValue> args;
      for (int i = 0; i < n; i++) args.emplace_back(T(inputs[i]));
      torch::jit::IValue result = m->module.forward(args);
      TORCH_CHECK(result.isTensor(), "the TorchScript module returned ", result.tagKind(),
                  ", not a single tensor");
      return wrap(result.toTensor());, nullptr)
}
int ct_jit_parameter_count(ct_module m, int64_t *count) {
  STATUS(int64_t total = 0; for (const auto &p : m->module.parameters()) total += p.numel();
         *count = total)
}

// MARK: TorchScript: submodules' outputs
// A module's `forward` graph calls its children with prim::CallMethod on a prim::GetAttr of
// `self`. Inlining those calls one level at a time (copying the callee's graph in place of the
// call) exposes the grandchildren's calls the same way, so every submodule called from the top-level block (not inside an if or a loop) gets a
// Value in one graph: its output, which can then be returned beside the logits.
namespace {
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

struct SubmoduleCall {
  std::string path;  // "features.3", as named_modules() names it
  Value *output;
};

// The dotted path of the submodule that `value` holds, when it is `self` or a GetAttr chain from it.
bool submodule_path(Value *value, Value *self, std::string &path) {
  if (value == self) {
    path.clear();
    return true;
  }
  Node *node = value->node();
  if (node->kind() != c10::prim::GetAttr) return false;
  std::string parent;
  if (!submodule_path(node->input(0), self, parent)) return false;
  const std::string &name = node->s(c10::attr::name);
  path = parent.empty() ? name : parent + "." + name;
  return true;
}

// Inlines every submodule call in `graph`'s top-level block, recursively, and returns each
// call's single tensor output in call order (the first call when a submodule is called twice).
std::vector<SubmoduleCall> inline_submodule_calls(const torch::jit::Module &module, Graph &graph) {
  std::map<std::string, torch::jit::Module> modules;
  modules.emplace("", module);  // the module itself, for the helper methods it calls on self
  for (const auto &named : module.named_modules()) modules.emplace(named.name, named.value);
  std::vector<SubmoduleCall> calls;
  Value *self = graph.inputs()[0];
  Node *node = graph.block()->nodes().front();
  while (node != graph.block()->return_node()) {
    Node *next = node->next();
    std::string path;
    // Submodules' forward calls, and any method of the module itself (a scripted model's
    // forward often calls a helper such as self._forward_impl, whose body holds the calls).
    const bool call = node->kind() == c10::prim::CallMethod && submodule_path(node->input(0), self, path);
    const std::string method = call ? node->s(c10::attr::name) : "";
    if (call && modules.count(path) != 0 && (path.empty() || method == "forward")) {
      Node *before = node->prev();
      auto &callee = torch::jit::toGraphFunction(modules.at(path).get_method(method).function());
      // One level only: inlineCallTo would inline the callee's own calls too, hiding them.
      std::vector<Value *> outputs;
      {
        torch::jit::WithInsertPoint here(node);
        outputs = torch::jit::insertGraph(graph, *callee.graph(), node->inputs());
      }
      for (size_t i = 0; i < outputs.size(); i++) {
        Value *replaced = node->outputs()[i];
        replaced->replaceAllUsesWith(outputs[i]);
        // An enclosing module's recorded output may be this call's (its last child's): follow it.
        for (auto &call : calls)
          if (call.output == replaced) call.output = outputs[i];
      }
      node->destroy();
      bool seen = false;
      for (const auto &call : calls) seen = seen || call.path == path;
      if (!path.empty() && outputs.size() == 1 && outputs[0]->type()->kind() == c10::TypeKind::TensorType && !seen)
        calls.push_back({path, outputs[0]});
      next = before->next();  // walk into the inlined body
    }
    node = next;
  }
  return calls;
}
}  // namespace

char *ct_jit_submodule_calls(ct_module m) {
  PROTECT(
      auto graph = m->module.get_method("forward").graph()->copy();
      std::string names; for (const auto &call : inline_submodule_calls(m->module, *graph)) {
        if (!names.empty()) names += "\n";
        names += call.path;
      } return copy_string(names);, nullptr)
}

int ct_jit_forward_with_features(ct_module m, const ct_tensor *inputs, int n_inputs,
                                 const char *const *names, int n_names, ct_tensor *out) {
  PROTECT(
      std::vector<std::string> wanted(names, names + n_names);
      std::unique_lock<std::mutex> lock(m->with_features_lock);
      auto &function = m->with_features[wanted];
      if (!function) {
        auto graph = m->module.get_method("forward").graph()->copy();
        auto calls = inline_submodule_calls(m->module, *graph);
        // A function returns one value: the tuple (output, feature maps…).
        std::vector<Value *> returned{graph->outputs()[0]};
        for (const auto &name : wanted) {
          Value *found = nullptr;
          for (const auto &call : calls)
            if (call.path == name) found = call.output;
          TORCH_CHECK(found != nullptr, "forward calls no submodule named '", name, "'");
          returned.push_back(found);
        }
        Node *tuple = graph->appendNode(graph->createTuple(returned));
        graph->eraseOutput(0);
        graph->registerOutput(tuple->output());
        function = std::make_unique<torch::jit::GraphFunction>("forward_with_features", graph, nullptr);
      } torch::jit::GraphFunction *built = function.get();
      lock.unlock();
      torch::jit::Stack stack;
      stack.emplace_back(m->module._ivalue());
      for (int i = 0; i < n_inputs; i++) stack.emplace_back(T(inputs[i]));
      built->run(stack);
      TORCH_CHECK(stack.size() == 1 && stack[0].isTuple(), "the rewritten forward returned no tuple");
      const auto &values = stack[0].toTupleRef().elements();
      TORCH_CHECK(values[0].isTensor(), "the TorchScript module returned ", values[0].tagKind(), ", not a single tensor");
      for (int i = 0; i <= n_names; i++) out[i] = wrap(values[(size_t)i].toTensor());
      return 0;, -1)
}

// MARK: AOTInductor packages (torch.export + aoti_compile_and_package, .pt2)
ct_package ct_package_load(const char *path, int device) {
  PROTECT(auto loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
              path, "model", false, 1, (c10::DeviceIndex)(device < 0 ? -1 : device));
          return new ct_package_s{std::move(loader)};, nullptr)
}
void ct_package_free(ct_package p) { delete p; }
char *ct_package_metadata(ct_package p) {
  PROTECT(std::string text; for (const auto &entry : p->loader->get_metadata()) {
    text += entry.first + "=" + entry.second + "\n";
  } return copy_string(text);, nullptr)
}
int ct_package_run(ct_package p, const ct_tensor *inputs, int n, ct_tensor *out, int capacity) {
  PROTECT(std::vector<at::Tensor> args = tensor_list(inputs, n);
          // The compiled kernels assume contiguous inputs of the traced dtype.
          for (auto &arg : args) arg = arg.contiguous();
          return write_list(p->loader->run(args), out, capacity);, -1)
}

}  // extern "C"
