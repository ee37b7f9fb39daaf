// attention.cpp: SAGAN/BigGAN self-attention's core, softmax(QᵀK) applied to V, as one fused CPU
// kernel with its own backward (see include/ctorch.h, "Fused attention").
//
// Why: in BigGAN the attention's query and key have C/8 channels and its value C/2 (2 and 8 at
// ch 16), so the matmuls are tiny, but the attention matrix between them is [B, HW, HW/4]:
// 64×1024×256 floats, 67 MB, at 32×32. Built from aten ops (bmm, softmax, bmm, and their
// backwards) that matrix goes through memory about a dozen times per forward and backward, and
// on a 2-core machine each pass costs about as much as all the arithmetic. Here each query row's
// 256 scores live in a small buffer in L1: the forward computes them, their softmax and the
// weighted values in a few sweeps over that buffer, keeps only each row's maximum and sum, and
// the backward recomputes the row (as flash attention does) instead of reading a saved matrix.
// The products and the softmax are the aten ops', up to rounding (the exp is a polynomial, sums
// run in another order, the backward recomputes the scores); nothing [B, HW, HW/4] is stored.
//
// Layouts: queries [B, N, dk], keys [B, dk, M], values [B, dv, M], output [B, N, dv], each
// contiguous, so every inner loop runs over m with unit stride and vectorises. Batches run in
// parallel on libtorch's intra-op threads (at::parallel_for), as its own kernels do.
#include "ctorch.h"
#include "shim.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

// Lanes of the partial sums and maxima: each lane is an independent accumulator, so the
// compiler vectorises the reductions without reordering any one lane's additions.
constexpr int64_t kLanes = 8;

// Inlined into each clone of the float kernels below, so each is compiled for its target.
#define ALWAYS_INLINE inline __attribute__((always_inline))

// e^x for x ≤ 0 in float32, written so that a loop of it vectorises (std::exp and std::floor
// do not, on baseline x86-64): x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its degree-6 Taylor
// polynomial (relative error about 2e-7, a few ulp), and 2ⁿ built in the exponent
// bits. n is rounded by adding 1.5·2²³, which leaves it in the sum's low mantissa bits. Inputs
// below −87 give about 1e-38, a zero for a softmax weight.
ALWAYS_INLINE float exp_nonpositive(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5·2²³
  x = x < -87.0f ? -87.0f : x;
  const float shifted = x * 1.44269504088896341f + kRound;
  const float n = shifted - kRound;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;  // ln 2 in two parts
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t bits;  // unsigned: a NaN's bits shift without undefined behaviour (and stay a NaN below)
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits - 0x4B400000u + 127u) << 23;  // n + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double exp_nonpositive(double x) { return std::exp(x); }

// Σ_m a[m]·b[m] over `count` values, in kLanes partial sums.
template <typename T>
ALWAYS_INLINE T dot(const T *a, const T *b, int64_t count) {
  T lanes[kLanes] = {};
  int64_t m = 0;
  for (; m + kLanes <= count; m += kLanes)
    for (int64_t l = 0; l < kLanes; l++) lanes[l] += a[m + l] * b[m + l];
  T total = 0;
  for (int64_t l = 0; l < kLanes; l++) total += lanes[l];
  for (; m < count; m++) total += a[m] * b[m];
  return total;
}

// scores[m] = Σ_k q[k]·keys[k][m]: one query's scores against the M keys ([dk][M]).
template <typename T>
ALWAYS_INLINE void scores_of(const T *q, const T *keys, int64_t dk, int64_t M, T *scores) {
  for (int64_t m = 0; m < M; m++) scores[m] = q[0] * keys[m];
  for (int64_t k = 1; k < dk; k++) {
    const T qk = q[k], *row = keys + k * M;
    for (int64_t m = 0; m < M; m++) scores[m] += qk * row[m];
  }
}

// The forward for batch entries [begin, end): out [N][dv], and each row's max_m s_m and
// 1/Σ_m e^(s_m − max). Three sweeps over a row's M scores, kLanes at a time: the scores and
// their maximum; the exponentials and their sum; the weighted values, 8 channels per sweep so
// that each block of weights is loaded once for all 8 (a third faster than one dot product
// per channel).
template <typename T>
ALWAYS_INLINE void forward_rows(const T *queries, const T *keys, const T *values, T *out, T *stats, int64_t begin, int64_t end,
                                 int64_t N, int64_t M, int64_t dk, int64_t dv, T *weights) {
  const int64_t blocked = M - M % kLanes;
  for (int64_t b = begin; b < end; b++) {
    const T *K = keys + b * dk * M, *V = values + b * dv * M;
    for (int64_t n = 0; n < N; n++) {
      const T *q = queries + (b * N + n) * dk;
      // Sweep 1: the scores and their maximum.
      T largest_lanes[kLanes];
      for (int64_t l = 0; l < kLanes; l++) largest_lanes[l] = -std::numeric_limits<T>::infinity();
      for (int64_t m0 = 0; m0 < blocked; m0 += kLanes) {
        T s[kLanes];
        for (int64_t l = 0; l < kLanes; l++) s[l] = q[0] * K[m0 + l];
        for (int64_t k = 1; k < dk; k++)
          for (int64_t l = 0; l < kLanes; l++) s[l] += q[k] * K[k * M + m0 + l];
        for (int64_t l = 0; l < kLanes; l++) {
          weights[m0 + l] = s[l];
          largest_lanes[l] = s[l] > largest_lanes[l] ? s[l] : largest_lanes[l];
        }
      }
      T largest = largest_lanes[0];
      for (int64_t l = 1; l < kLanes; l++) largest = largest_lanes[l] > largest ? largest_lanes[l] : largest;
      for (int64_t m = blocked; m < M; m++) {
        T s = q[0] * K[m];
        for (int64_t k = 1; k < dk; k++) s += q[k] * K[k * M + m];
        weights[m] = s;
        largest = s > largest ? s : largest;
      }
      // Sweep 2: the unnormalised softmax and its sum.
      T total_lanes[kLanes] = {};
      for (int64_t m0 = 0; m0 < blocked; m0 += kLanes)
        for (int64_t l = 0; l < kLanes; l++) {
          const T e = exp_nonpositive(weights[m0 + l] - largest);
          weights[m0 + l] = e;
          total_lanes[l] += e;
        }
      T total = 0;
      for (int64_t l = 0; l < kLanes; l++) total += total_lanes[l];
      for (int64_t m = blocked; m < M; m++) total += (weights[m] = exp_nonpositive(weights[m] - largest));
      // Sweep 3 (per 8 channels): the weighted values, each block of weights loaded once.
      T *o = out + (b * N + n) * dv;
      int64_t c0 = 0;
      for (; c0 + kLanes <= dv; c0 += kLanes) {
        T acc[kLanes][kLanes] = {};
        for (int64_t m0 = 0; m0 < blocked; m0 += kLanes)
          for (int64_t j = 0; j < kLanes; j++)
            for (int64_t l = 0; l < kLanes; l++) acc[j][l] += weights[m0 + l] * V[(c0 + j) * M + m0 + l];
        for (int64_t j = 0; j < kLanes; j++) {
          T sum = 0;
          for (int64_t l = 0; l < kLanes; l++) sum += acc[j][l];
          for (int64_t m = blocked; m < M; m++) sum += weights[m] * V[(c0 + j) * M + m];
          o[c0 + j] = sum / total;
        }
      }
      for (; c0 < dv; c0++) o[c0] = dot(weights, V + c0 * M, M) / total;
      // The row's maximum and 1/Σ, so the backward recomputes the very same weights: a single
      // log-sum-exp would round to |max|·ε, one common error on every weight of the row,
      // which the softmax gradient p ⊙ (dp − Σ p·dp) multiplies by Σ p·dp.
      stats[2 * (b * N + n)] = largest;
      stats[2 * (b * N + n) + 1] = T(1) / total;
    }
  }
}

// The backward for batch entries [begin, end), from d out [N][dv]: each row's softmax p is
// recomputed from its maximum and sum; dp = dO·V, ds = p ⊙ (dp − Σ p·dp), then
// dQ = ds·Kᵀ, dK += q ⊗ ds, dV += dO ⊗ p.
template <typename T>
ALWAYS_INLINE void backward_rows(const T *queries, const T *keys, const T *values, const T *stats, const T *grad_out, T *grad_queries, T *grad_keys,
                   T *grad_values, int64_t begin, int64_t end, int64_t N, int64_t M, int64_t dk, int64_t dv, T *p, T *ds) {
  for (int64_t b = begin; b < end; b++) {
    const T *K = keys + b * dk * M, *V = values + b * dv * M;
    T *dK = grad_keys + b * dk * M, *dV = grad_values + b * dv * M;
    std::fill(dK, dK + dk * M, T(0));
    std::fill(dV, dV + dv * M, T(0));
    for (int64_t n = 0; n < N; n++) {
      const T *q = queries + (b * N + n) * dk, *dO = grad_out + (b * N + n) * dv;
      scores_of(q, K, dk, M, p);
      const T largest = stats[2 * (b * N + n)], scale = stats[2 * (b * N + n) + 1];
      for (int64_t m = 0; m < M; m++) p[m] = exp_nonpositive(p[m] - largest) * scale;
      // ds first holds dp[m] = Σ_c dO[c]·V[c][m].
      for (int64_t m = 0; m < M; m++) ds[m] = dO[0] * V[m];
      for (int64_t c = 1; c < dv; c++) {
        const T g = dO[c], *row = V + c * M;
        for (int64_t m = 0; m < M; m++) ds[m] += g * row[m];
      }
      const T mean = dot(p, ds, M);
      for (int64_t m = 0; m < M; m++) ds[m] = p[m] * (ds[m] - mean);
      T *dq = grad_queries + (b * N + n) * dk;
      for (int64_t k = 0; k < dk; k++) {
        dq[k] = dot(ds, K + k * M, M);
        const T qk = q[k];
        T *row = dK + k * M;
        for (int64_t m = 0; m < M; m++) row[m] += qk * ds[m];
      }
      for (int64_t c = 0; c < dv; c++) {
        const T g = dO[c];
        T *row = dV + c * M;
        for (int64_t m = 0; m < M; m++) row[m] += g * p[m];
      }
    }
  }
}

// The float kernels once more for CPUs with AVX2 and FMA (x86-64-v3), chosen at load time by
// the dynamic linker (an ifunc): the build targets baseline x86-64, where the loops above run
// four floats wide instead of eight.
#if defined(__x86_64__) && defined(__linux__)
#define FOR_AVX2_TOO __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FOR_AVX2_TOO
#endif

FOR_AVX2_TOO void forward_kernel(const float *queries, const float *keys, const float *values, float *out, float *stats,
                                     int64_t begin, int64_t end, int64_t N, int64_t M, int64_t dk, int64_t dv, float *weights) {
  forward_rows(queries, keys, values, out, stats, begin, end, N, M, dk, dv, weights);
}

FOR_AVX2_TOO void backward_kernel(const float *queries, const float *keys, const float *values, const float *stats,
                                      const float *grad_out, float *grad_queries, float *grad_keys, float *grad_values, int64_t begin,
                                      int64_t end, int64_t N, int64_t M, int64_t dk, int64_t dv, float *p, float *ds) {
  backward_rows(queries, keys, values, stats, grad_out, grad_queries, grad_keys, grad_values, begin, end, N, M, dk, dv, p, ds);
}

// Float64 (the gradient checks) needs no clones.
void forward_kernel(const double *queries, const double *keys, const double *values, double *out, double *stats, int64_t begin,
                    int64_t end, int64_t N, int64_t M, int64_t dk, int64_t dv, double *weights) {
  forward_rows(queries, keys, values, out, stats, begin, end, N, M, dk, dv, weights);
}

void backward_kernel(const double *queries, const double *keys, const double *values, const double *stats, const double *grad_out,
                     double *grad_queries, double *grad_keys, double *grad_values, int64_t begin, int64_t end, int64_t N, int64_t M,
                     int64_t dk, int64_t dv, double *p, double *ds) {
  backward_rows(queries, keys, values, stats, grad_out, grad_queries, grad_keys, grad_values, begin, end, N, M, dk, dv, p, ds);
}

// Grain of the batch loop: one batch entry is N·M·(dk + dv) multiply-adds, plenty per task.
constexpr int64_t kGrain = 1;

// The kernel's forward: queries [B, N, dk], keys [B, dk, M], values [B, dv, M] (contiguous,
// one floating dtype) → output [B, N, dv] and each row's maximum and 1/sum [B, N, 2].
std::pair<at::Tensor, at::Tensor> fused_forward(const at::Tensor &queries, const at::Tensor &keys, const at::Tensor &values) {
  const int64_t B = queries.size(0), N = queries.size(1), dk = queries.size(2), M = keys.size(2), dv = values.size(1);
  auto out = at::empty({B, N, dv}, queries.options());
  auto stats = at::empty({B, N, 2}, queries.options());  // each row's maximum score and 1/Σ e^(s − max)
  AT_DISPATCH_FLOATING_TYPES(queries.scalar_type(), "fused_attention_forward", [&] {
    const scalar_t *q = queries.const_data_ptr<scalar_t>(), *k = keys.const_data_ptr<scalar_t>(), *v = values.const_data_ptr<scalar_t>();
    scalar_t *o = out.data_ptr<scalar_t>(), *l = stats.data_ptr<scalar_t>();
    at::parallel_for(0, B, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> weights(M);  // one row's scores, then its unnormalised softmax
      forward_kernel(q, k, v, o, l, begin, end, N, M, dk, dv, weights.data());
    });
  });
  return {out, stats};
}

// The same core from aten ops, differentiable itself: the backward's path when a second
// derivative is asked for (create_graph), where the fused kernel's results would carry none.
at::Tensor reference(const at::Tensor &queries, const at::Tensor &keys, const at::Tensor &values) {
  return at::bmm(at::softmax(at::bmm(queries, keys), -1), values.transpose(1, 2));  // [B, N, dv]
}

class FusedAttention : public torch::autograd::Function<FusedAttention> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext *context, const at::Tensor &queries, const at::Tensor &keys,
                            const at::Tensor &values) {
    // Named in profiles (benchmarks/flops.py counts its products from the inputs' shapes).
    RECORD_FUNCTION("afterimage::fused_attention", std::vector<c10::IValue>({queries, keys, values}));
    auto [out, stats] = fused_forward(queries, keys, values);
    context->save_for_backward({queries, keys, values, stats});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *context, torch::autograd::variable_list grads) {
    auto saved = context->get_saved_variables();
    const auto &queries = saved[0], &keys = saved[1], &values = saved[2], &stats = saved[3];
    if (at::GradMode::is_enabled()) {  // create_graph: differentiate the aten formulation instead
      // Only the inputs that take gradients (autograd.grad refuses a constant); the others get none.
      std::vector<at::Tensor> inputs;
      std::vector<size_t> positions;
      for (size_t i = 0; i < 3; i++)
        if (context->needs_input_grad(i)) {
          inputs.push_back(saved[i]);
          positions.push_back(i);
        }
      torch::autograd::variable_list result(3);
      if (inputs.empty()) return result;
      auto out = reference(queries, keys, values);
      auto gradients = torch::autograd::grad({out}, inputs, {grads[0]}, /*retain_graph=*/true, /*create_graph=*/true);
      for (size_t j = 0; j < positions.size(); j++) result[positions[j]] = gradients[j];
      return result;
    }
    RECORD_FUNCTION("afterimage::fused_attention_backward", std::vector<c10::IValue>({queries, keys, values}));
    auto grad_out = grads[0].contiguous();
    const int64_t B = queries.size(0), N = queries.size(1), dk = queries.size(2), M = keys.size(2), dv = values.size(1);
    auto grad_queries = at::empty_like(queries), grad_keys = at::empty_like(keys), grad_values = at::empty_like(values);
    AT_DISPATCH_FLOATING_TYPES(queries.scalar_type(), "fused_attention_backward", [&] {
      const scalar_t *q = queries.const_data_ptr<scalar_t>(), *k = keys.const_data_ptr<scalar_t>(), *v = values.const_data_ptr<scalar_t>();
      const scalar_t *l = stats.const_data_ptr<scalar_t>(), *g = grad_out.const_data_ptr<scalar_t>();
      scalar_t *gq = grad_queries.data_ptr<scalar_t>(), *gk = grad_keys.data_ptr<scalar_t>(), *gv = grad_values.data_ptr<scalar_t>();
      at::parallel_for(0, B, kGrain, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> p(M), ds(M);  // one row's softmax and the gradient of its scores
        backward_kernel(q, k, v, l, g, gq, gk, gv, begin, end, N, M, dk, dv, p.data(), ds.data());
      });
    });
    return {grad_queries, grad_keys, grad_values};
  }
};

}  // namespace

ct_tensor ct_fused_attention(ct_tensor queries, ct_tensor keys, ct_tensor values) {
  PROTECT(
      const auto &q = T(queries); const auto &k = T(keys); const auto &v = T(values);
      TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "fused attention: queries, keys and values must be 3-dimensional");
      TORCH_CHECK(q.size(0) == k.size(0) && k.size(0) == v.size(0), "fused attention: the batch sizes differ");
      TORCH_CHECK(q.size(2) == k.size(1), "fused attention: queries have ", q.size(2), " channels and keys ", k.size(1));
      TORCH_CHECK(k.size(2) == v.size(2), "fused attention: ", k.size(2), " keys but ", v.size(2), " values");
      TORCH_CHECK(q.size(2) > 0 && k.size(2) > 0 && v.size(1) > 0, "fused attention: empty queries, keys or values");
      TORCH_CHECK(q.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu(), "fused attention runs on the CPU only");
      TORCH_CHECK(q.scalar_type() == k.scalar_type() && k.scalar_type() == v.scalar_type() &&
                      (q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble),
                  "fused attention takes float32 or float64 tensors of one dtype");
      return wrap(FusedAttention::apply(q.contiguous(), k.contiguous(), v.contiguous()));, nullptr)
}
