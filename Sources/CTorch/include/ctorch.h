// ctorch.h: the C ABI over libtorch that the Swift `Torch` module calls.
//
// Conventions (the tch-rs pattern):
// - Every tensor is an opaque `ct_tensor` owned by the caller and freed with `ct_free`.
// - Every function catches C++ exceptions; on failure it returns NULL / 0 / -1 and leaves
//   libtorch's message in a thread-local slot read with `ct_last_error` (NULL when none).
// - dtypes are c10::ScalarType codes; devices are -1 for the CPU and n >= 0 for cuda:n.
// - Optional tensor arguments are passed as NULL.
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;
typedef struct ct_module_s *ct_module;
typedef struct ct_package_s *ct_package;

// MARK: errors and memory
const char *ct_last_error(void);
void ct_clear_error(void);
void ct_free(ct_tensor t);
void ct_free_string(char *s);

// MARK: runtime
const char *ct_version(void);
char *ct_build_config(void);
void ct_set_num_threads(int n);
int ct_get_num_threads(void);
void ct_use_one_thread_here(void);
void ct_manual_seed(uint64_t seed);
// Waits for the GPU's queued work (no-op without CUDA): for timing and before reading clocks.
void ct_cuda_synchronize(void);
// Autocast (mixed precision) on the CPU (device -1) or CUDA: ops that autocast lists run in dtype.
void ct_set_autocast(int device, int dtype, bool enabled);
bool ct_autocast_enabled(int device);
int ct_autocast_dtype(int device);
// TensorFloat-32 in CUDA matrix products and convolutions (libtorch allows it in cuDNN by default).
void ct_set_allow_tf32(bool allowed);
bool ct_cuda_is_available(void);
int ct_cuda_device_count(void);
bool ct_is_grad_enabled(void);
void ct_set_grad_enabled(bool enabled);

// MARK: generators
ct_generator ct_generator_new(uint64_t seed, int device);
void ct_generator_free(ct_generator g);
void ct_generator_set_seed(ct_generator g, uint64_t seed);
ct_tensor ct_generator_get_state(ct_generator g);
void ct_generator_set_state(ct_generator g, ct_tensor state);

// MARK: creation
ct_tensor ct_empty(const int64_t *shape, int ndim, int dtype, int device);
ct_tensor ct_zeros(const int64_t *shape, int ndim, int dtype, int device);
ct_tensor ct_ones(const int64_t *shape, int ndim, int dtype, int device);
ct_tensor ct_full(const int64_t *shape, int ndim, double value, int dtype, int device);
ct_tensor ct_arange(double start, double end, double step, int dtype, int device);
ct_tensor ct_linspace(double start, double end, int64_t steps, int dtype, int device);
ct_tensor ct_eye(int64_t n, int dtype, int device);
ct_tensor ct_rand(const int64_t *shape, int ndim, ct_generator g, int dtype, int device);
ct_tensor ct_randn(const int64_t *shape, int ndim, ct_generator g, int dtype, int device);
ct_tensor ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, ct_generator g,
                     int dtype, int device);
ct_tensor ct_randperm(int64_t n, ct_generator g, int device);
ct_tensor ct_from_data(const void *data, const int64_t *shape, int ndim, int dtype);
ct_tensor ct_scalar_tensor(double value, int dtype, int device);

// MARK: inspection and data
bool ct_defined(ct_tensor t);
int ct_ndim(ct_tensor t);
// Elements between neighbours along `dim` (the layout: channels-last has stride 1 at dim 1).
int64_t ct_stride(ct_tensor t, int64_t dim);
void ct_shape(ct_tensor t, int64_t *out);
int64_t ct_numel(ct_tensor t);
int ct_dtype(ct_tensor t);
int ct_device(ct_tensor t);
bool ct_is_contiguous(ct_tensor t);
double ct_item_double(ct_tensor t);
int64_t ct_item_int(ct_tensor t);
// Copies the tensor's elements, converted to `dtype`, in row-major order into `out`.
int ct_copy_data(ct_tensor t, void *out, int64_t numel, int dtype);
char *ct_to_string(ct_tensor t);
int64_t ct_element_size(int dtype);

// MARK: conversion and copies
ct_tensor ct_to(ct_tensor t, int dtype, int device);
ct_tensor ct_contiguous(ct_tensor t);
ct_tensor ct_channels_last(ct_tensor t);
ct_tensor ct_clone(ct_tensor t);
ct_tensor ct_detach(ct_tensor t);
ct_tensor ct_shallow_copy(ct_tensor t);

// MARK: shape
ct_tensor ct_reshape(ct_tensor t, const int64_t *shape, int ndim);
ct_tensor ct_view(ct_tensor t, const int64_t *shape, int ndim);
ct_tensor ct_permute(ct_tensor t, const int64_t *dims, int ndim);
ct_tensor ct_transpose(ct_tensor t, int64_t a, int64_t b);
ct_tensor ct_flatten(ct_tensor t, int64_t start, int64_t end);
ct_tensor ct_squeeze(ct_tensor t);
ct_tensor ct_squeeze_dim(ct_tensor t, int64_t dim);
ct_tensor ct_unsqueeze(ct_tensor t, int64_t dim);
ct_tensor ct_expand(ct_tensor t, const int64_t *shape, int ndim);
ct_tensor ct_repeat(ct_tensor t, const int64_t *repeats, int ndim);
ct_tensor ct_cat(const ct_tensor *ts, int n, int64_t dim);
ct_tensor ct_stack(const ct_tensor *ts, int n, int64_t dim);
// Writes at most `capacity` pieces to `out` and returns how many there are (-1 on error).
int ct_split(ct_tensor t, int64_t size, int64_t dim, ct_tensor *out, int capacity);
int ct_chunk(ct_tensor t, int64_t chunks, int64_t dim, ct_tensor *out, int capacity);
ct_tensor ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length);
ct_tensor ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step);
ct_tensor ct_select(ct_tensor t, int64_t dim, int64_t index);
ct_tensor ct_index_select(ct_tensor t, int64_t dim, ct_tensor index);
ct_tensor ct_gather(ct_tensor t, int64_t dim, ct_tensor index);
ct_tensor ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src);
ct_tensor ct_scatter_add(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src);
ct_tensor ct_masked_select(ct_tensor t, ct_tensor mask);
ct_tensor ct_masked_fill(ct_tensor t, ct_tensor mask, double value);
ct_tensor ct_where(ct_tensor condition, ct_tensor a, ct_tensor b);
ct_tensor ct_flip(ct_tensor t, const int64_t *dims, int ndim);
ct_tensor ct_roll(ct_tensor t, const int64_t *shifts, const int64_t *dims, int n);
ct_tensor ct_tril(ct_tensor t, int64_t diagonal);
ct_tensor ct_diagonal(ct_tensor t, int64_t offset, int64_t dim1, int64_t dim2);

// MARK: binary arithmetic and comparison (broadcasting)
ct_tensor ct_add(ct_tensor a, ct_tensor b);
ct_tensor ct_sub(ct_tensor a, ct_tensor b);
ct_tensor ct_mul(ct_tensor a, ct_tensor b);
ct_tensor ct_div(ct_tensor a, ct_tensor b);
ct_tensor ct_pow(ct_tensor a, ct_tensor b);
ct_tensor ct_maximum(ct_tensor a, ct_tensor b);
ct_tensor ct_minimum(ct_tensor a, ct_tensor b);
ct_tensor ct_atan2(ct_tensor a, ct_tensor b);
ct_tensor ct_eq(ct_tensor a, ct_tensor b);
ct_tensor ct_ne(ct_tensor a, ct_tensor b);
ct_tensor ct_lt(ct_tensor a, ct_tensor b);
ct_tensor ct_le(ct_tensor a, ct_tensor b);
ct_tensor ct_gt(ct_tensor a, ct_tensor b);
ct_tensor ct_ge(ct_tensor a, ct_tensor b);
ct_tensor ct_logical_and(ct_tensor a, ct_tensor b);
ct_tensor ct_logical_or(ct_tensor a, ct_tensor b);
// The same with a scalar right operand, taken in the tensor's dtype (see scalar_for).
ct_tensor ct_add_scalar(ct_tensor a, double b);
ct_tensor ct_sub_scalar(ct_tensor a, double b);
ct_tensor ct_mul_scalar(ct_tensor a, double b);
ct_tensor ct_div_scalar(ct_tensor a, double b);
ct_tensor ct_pow_scalar(ct_tensor a, double b);
ct_tensor ct_eq_scalar(ct_tensor a, double b);
ct_tensor ct_ne_scalar(ct_tensor a, double b);
ct_tensor ct_lt_scalar(ct_tensor a, double b);
ct_tensor ct_le_scalar(ct_tensor a, double b);
ct_tensor ct_gt_scalar(ct_tensor a, double b);
ct_tensor ct_ge_scalar(ct_tensor a, double b);
ct_tensor ct_remainder_scalar(ct_tensor a, double b);   // Python's %: the divisor's sign
ct_tensor ct_floor_divide_scalar(ct_tensor a, double b);  // a / b rounded toward -inf
// Scalar on the left, as torch.rsub / Python's b / a: `b - a` and `b / a`.
ct_tensor ct_rsub_scalar(ct_tensor a, double b);
ct_tensor ct_rdiv_scalar(ct_tensor a, double b);
ct_tensor ct_matmul(ct_tensor a, ct_tensor b);
ct_tensor ct_addmm(ct_tensor bias, ct_tensor a, ct_tensor b);

// MARK: unary elementwise
ct_tensor ct_neg(ct_tensor t);
ct_tensor ct_exp(ct_tensor t);
ct_tensor ct_log(ct_tensor t);
ct_tensor ct_log2(ct_tensor t);
ct_tensor ct_log1p(ct_tensor t);
ct_tensor ct_expm1(ct_tensor t);
ct_tensor ct_sqrt(ct_tensor t);
ct_tensor ct_rsqrt(ct_tensor t);
ct_tensor ct_abs(ct_tensor t);
ct_tensor ct_sign(ct_tensor t);
ct_tensor ct_square(ct_tensor t);
ct_tensor ct_reciprocal(ct_tensor t);
ct_tensor ct_sin(ct_tensor t);
ct_tensor ct_cos(ct_tensor t);
ct_tensor ct_floor(ct_tensor t);
ct_tensor ct_ceil(ct_tensor t);
ct_tensor ct_round(ct_tensor t);
ct_tensor ct_trunc(ct_tensor t);
ct_tensor ct_erf(ct_tensor t);
ct_tensor ct_tanh(ct_tensor t);
ct_tensor ct_sigmoid(ct_tensor t);
ct_tensor ct_relu(ct_tensor t);
ct_tensor ct_silu(ct_tensor t);
ct_tensor ct_logical_not(ct_tensor t);
ct_tensor ct_isnan(ct_tensor t);
ct_tensor ct_isfinite(ct_tensor t);
ct_tensor ct_clamp(ct_tensor t, double min, double max, bool has_min, bool has_max);
ct_tensor ct_leaky_relu(ct_tensor t, double slope);
ct_tensor ct_gelu(ct_tensor t, bool tanh_approximation);
ct_tensor ct_softplus(ct_tensor t, double beta, double threshold);
ct_tensor ct_elu(ct_tensor t, double alpha);
ct_tensor ct_hardtanh(ct_tensor t, double min, double max);

// MARK: reductions (dims == NULL means all dimensions)
ct_tensor ct_sum(ct_tensor t, const int64_t *dims, int ndim, bool keepdim);
ct_tensor ct_mean(ct_tensor t, const int64_t *dims, int ndim, bool keepdim);
ct_tensor ct_prod(ct_tensor t);
ct_tensor ct_amax(ct_tensor t, const int64_t *dims, int ndim, bool keepdim);
ct_tensor ct_amin(ct_tensor t, const int64_t *dims, int ndim, bool keepdim);
int ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices);
int ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices);
ct_tensor ct_argmax(ct_tensor t, int64_t dim, bool keepdim);
ct_tensor ct_argmin(ct_tensor t, int64_t dim, bool keepdim);
ct_tensor ct_var(ct_tensor t, const int64_t *dims, int ndim, bool unbiased, bool keepdim);
ct_tensor ct_std(ct_tensor t, const int64_t *dims, int ndim, bool unbiased, bool keepdim);
ct_tensor ct_norm(ct_tensor t, double p, const int64_t *dims, int ndim, bool keepdim);
ct_tensor ct_logsumexp(ct_tensor t, const int64_t *dims, int ndim, bool keepdim);
ct_tensor ct_cumsum(ct_tensor t, int64_t dim);
int ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values,
            ct_tensor *indices);
int ct_sort(ct_tensor t, int64_t dim, bool descending, ct_tensor *values, ct_tensor *indices);
bool ct_allclose(ct_tensor a, ct_tensor b, double rtol, double atol);
bool ct_equal(ct_tensor a, ct_tensor b);

// MARK: linear algebra
ct_tensor ct_svdvals(ct_tensor t);
int ct_qr(ct_tensor t, ct_tensor *q, ct_tensor *r);
// Eigenvalues (ascending) and eigenvectors of a symmetric matrix.
int ct_eigh(ct_tensor t, ct_tensor *values, ct_tensor *vectors);
ct_tensor ct_outer(ct_tensor a, ct_tensor b);

// MARK: in-place (used under no-grad by optimizers, initialisers and running statistics)
int ct_copy_(ct_tensor dst, ct_tensor src);
// Replaces the tensor's data (dtype and device may change), keeping its identity: `p.data = src`.
int ct_set_data(ct_tensor t, ct_tensor src);
int ct_zero_(ct_tensor t);
int ct_fill_(ct_tensor t, double value);
int ct_add_(ct_tensor t, ct_tensor other, double alpha);
int ct_mul_(ct_tensor t, ct_tensor other);
int ct_mul_scalar_(ct_tensor t, double value);
int ct_add_scalar_(ct_tensor t, double value);
int ct_div_(ct_tensor t, ct_tensor other);
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, double value);
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, double value);
int ct_lerp_(ct_tensor t, ct_tensor end, double weight);
int ct_sqrt_(ct_tensor t);
int ct_clamp_(ct_tensor t, double min, double max);
int ct_uniform_(ct_tensor t, double low, double high, ct_generator g);
int ct_normal_(ct_tensor t, double mean, double std, ct_generator g);

// MARK: neural-network functions
ct_tensor ct_linear(ct_tensor x, ct_tensor w, ct_tensor b);
ct_tensor ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                    const int64_t *padding, const int64_t *dilation, int64_t groups);
ct_tensor ct_conv_transpose2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                              const int64_t *padding, const int64_t *output_padding,
                              int64_t groups, const int64_t *dilation);
ct_tensor ct_batch_norm(ct_tensor x, ct_tensor w, ct_tensor b, ct_tensor running_mean,
                        ct_tensor running_var, bool training, double momentum, double eps);
ct_tensor ct_group_norm(ct_tensor x, int64_t groups, ct_tensor w, ct_tensor b, double eps);
ct_tensor ct_layer_norm(ct_tensor x, const int64_t *shape, int ndim, ct_tensor w, ct_tensor b,
                        double eps);
ct_tensor ct_avg_pool2d(ct_tensor x, const int64_t *kernel, const int64_t *stride,
                        const int64_t *padding);
ct_tensor ct_max_pool2d(ct_tensor x, const int64_t *kernel, const int64_t *stride,
                        const int64_t *padding);
ct_tensor ct_adaptive_avg_pool2d(ct_tensor x, const int64_t *size);
ct_tensor ct_upsample_nearest2d(ct_tensor x, const int64_t *size);
ct_tensor ct_upsample_bilinear2d(ct_tensor x, const int64_t *size, bool align_corners);
// Antialiased bilinear resize (PIL-like when shrinking): at::_upsample_bilinear2d_aa.
ct_tensor ct_upsample_bilinear2d_aa(ct_tensor x, const int64_t *size);
// mode: 0 constant, 1 reflect, 2 replicate, 3 circular
ct_tensor ct_pad(ct_tensor x, const int64_t *pads, int n, int mode, double value);
ct_tensor ct_embedding(ct_tensor weight, ct_tensor indices);
// Sampling grids for affine warps: theta [N, 2, 3] → grid [N, H, W, 2] (align_corners false).
ct_tensor ct_affine_grid(ct_tensor theta, const int64_t *size, int ndim);
// Bilinear sampling of x at grid positions; mode 0 bilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection.
ct_tensor ct_grid_sample(ct_tensor x, ct_tensor grid, int mode, int padding);
ct_tensor ct_dropout(ct_tensor x, double p, bool training);
ct_tensor ct_softmax(ct_tensor x, int64_t dim);
ct_tensor ct_log_softmax(ct_tensor x, int64_t dim);
ct_tensor ct_one_hot(ct_tensor x, int64_t classes);
// reduction: 0 none, 1 mean, 2 sum
ct_tensor ct_cross_entropy(ct_tensor logits, ct_tensor target, int reduction,
                           double label_smoothing);
ct_tensor ct_nll_loss(ct_tensor logp, ct_tensor target, int reduction);
ct_tensor ct_mse_loss(ct_tensor a, ct_tensor b, int reduction);
ct_tensor ct_l1_loss(ct_tensor a, ct_tensor b, int reduction);
ct_tensor ct_smooth_l1_loss(ct_tensor a, ct_tensor b, int reduction, double beta);
ct_tensor ct_bce_with_logits(ct_tensor logits, ct_tensor target, int reduction);

// MARK: autograd
int ct_set_requires_grad(ct_tensor t, bool requires);
bool ct_requires_grad(ct_tensor t);
ct_tensor ct_grad(ct_tensor t);  // NULL (without an error) when no gradient exists
int ct_set_grad(ct_tensor t, ct_tensor grad);
int ct_zero_grad(ct_tensor t);
int ct_backward(ct_tensor t, ct_tensor gradient, bool retain_graph, bool create_graph);
// Gradients of `outputs` with respect to `inputs` (torch.autograd.grad); writes n_inputs
// tensors into `out` (undefined ones as NULL when allow_unused).
int ct_autograd_grad(const ct_tensor *outputs, int n_outputs, const ct_tensor *grad_outputs,
                     const ct_tensor *inputs, int n_inputs, bool retain_graph,
                     bool create_graph, bool allow_unused, ct_tensor *out);

// MARK: TorchScript
ct_module ct_jit_load(const char *path, int device);
void ct_jit_free(ct_module m);
int ct_jit_set_training(ct_module m, bool training);
int ct_jit_to(ct_module m, int device);
int ct_jit_freeze_parameters(ct_module m);
ct_tensor ct_jit_forward(ct_module m, const ct_tensor *inputs, int n);
int ct_jit_parameter_count(ct_module m, int64_t *count);
// The submodules (dotted names) whose outputs `forward` can return beside its own, in call
// order, one per line; the caller frees the string.
char *ct_jit_submodule_calls(ct_module m);
// Runs forward and writes its output to out[0] and the named submodules' outputs to out[1...].
int ct_jit_forward_with_features(ct_module m, const ct_tensor *inputs, int n_inputs,
                                 const char *const *names, int n_names, ct_tensor *out);

// MARK: AOTInductor packages (.pt2 from torch._inductor.aoti_compile_and_package)
ct_package ct_package_load(const char *path, int device);
void ct_package_free(ct_package p);
// The package's metadata as "key=value" lines; the caller frees the string.
char *ct_package_metadata(ct_package p);
// Runs the compiled model; writes at most `capacity` outputs, returns how many there are.
int ct_package_run(ct_package p, const ct_tensor *inputs, int n, ct_tensor *out, int capacity);

// MARK: Fused attention (attention.cpp)
// SAGAN/BigGAN attention's core in one CPU kernel with its own backward:
// out[b, n, :] = Σ_m softmax_m(queries[b, n, :] · keys[b, :, m]) · values[b, :, m], for
// queries [B, N, dk], keys [B, dk, M], values [B, dv, M] (float32 or float64, on the CPU);
// returns [B, N, dv]. No [B, N, M] matrix is stored: the backward recomputes each row.
ct_tensor ct_fused_attention(ct_tensor queries, ct_tensor keys, ct_tensor values);

// MARK: Fused batch norm and ReLU (batch_norm.cpp)
// y = relu((x − mean_c)/√(var_c + eps) · scale + shift + residual) in one CPU kernel with its own
// backward, for x [N, C, …] (float32 or float64, channels-first or channels-last). scale and
// shift are [C] (an affine batch norm), [N, C] (a conditional one) or NULL (1 and 0); residual
// is x's shape or NULL. In training the statistics are the batch's and the running statistics
// (NULL for none) take `momentum` of them as batch_norm's do; in evaluation the running
// statistics normalise. Gradients flow to x, scale, shift and residual.
ct_tensor ct_batch_norm_relu(ct_tensor x, ct_tensor scale, ct_tensor shift, ct_tensor residual, ct_tensor running_mean,
                             ct_tensor running_var, bool training, double momentum, double eps);

// MARK: Fused optimizers (optimizers.cpp)
// One update of `count` parameters from their gradients, by libtorch's fused multi-tensor
// kernels: Adam (AdamW when decoupled_weight_decay) at step `step` (1 on the first update),
// with its moments updated in place; SGD with momentum buffers (ignored, may be NULL, when
// momentum is 0), `first_step` storing each gradient as its buffer as PyTorch's first step
// does. Every tensor of one call shares a device and a dtype. 0, or -1 (ct_last_error says why).
int ct_fused_adam(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *exp_avgs, const ct_tensor *exp_avg_sqs, int count,
                  int64_t step, double lr, double beta1, double beta2, double weight_decay, double eps, bool decoupled_weight_decay);
int ct_fused_sgd(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *momentum_buffers, int count, double weight_decay,
                 double momentum, double lr, double dampening, bool nesterov, bool first_step);

// MARK: Profiling (libtorch's profiler; profiler.cpp)
// Starts recording every operator call on this process's CPU threads.
int ct_profile_begin(void);
// Stops recording; returns the calls (aten's and afterimage::fused_attention's) as a JSON array
// of {"name", "start_ns", "duration_ns", "thread", "shapes" (the inputs' sizes), "concrete"
// (scalar arguments, null for tensors)}. The caller frees the string.
char *ct_profile_end(void);

// MARK: Distributed (c10d: a TCP store and a Gloo process group; distributed.cpp)
typedef struct ct_process_group_s *ct_process_group;
// Joins a group of `world_size` processes as `rank`: rank 0 hosts the TCP store at host:port,
// the others connect to it; every step (connecting, each collective) gives up after
// `timeout_ms`. NULL on failure (ct_last_error says why).
ct_process_group ct_dist_init(const char *host, int port, int rank, int world_size, int64_t timeout_ms);
void ct_dist_free(ct_process_group group);
// In place on every rank: the sum (op 0) or the mean (op 1) of each tensor over the ranks.
int ct_dist_all_reduce(ct_process_group group, const ct_tensor *tensors, int n, int op);
// In place: every rank's tensors become rank `root`'s.
int ct_dist_broadcast(ct_process_group group, const ct_tensor *tensors, int n, int root);
int ct_dist_barrier(ct_process_group group);

#ifdef __cplusplus
}
#endif

#endif
