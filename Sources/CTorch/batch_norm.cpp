// batch_norm.cpp: batch norm, its scale and shift, an optional residual and the ReLU as one CPU
// kernel with its own backward (see include/ctorch.h, "Fused batch norm and ReLU"):
//
//   y = relu((x − mean_c) / √(var_c + ε) · scale + shift + residual)
//
// where scale and shift are per channel (an affine batch norm) or per sample and channel
// (BigGAN's conditional batch norm, `scale = 1 + gain(ℓ)`), and residual is a ResNet block's
// shortcut.
//
// Why: built from aten ops, the chain is batch_norm, mul, add, (add,) relu forward and as many
// backwards, each a pass that reads and writes the whole activation. At the inverter's sizes
// (64×16×32×32, 4 MB) a pass costs its memory traffic, so their count is their cost: in the 32×32
// inverter step they took about a fifth of the time (benchmarks/profile.py). Here the forward
// makes three reads of x (the mean, the centred squares, the output) and one write; the backward
// two reads of the gradient, the output and x (the per-sample sums, then the gradient) and one
// write. The output is the ReLU's, so the mask comes from it and nothing else is saved.
//
// The arithmetic is aten's (its CPU batch norm also writes y = x·α + β with α = scale/σ and
// β = shift − mean·α, and its backward uses Σ g·(x − mean)); the sums run in another order: each
// sample's per-channel sums lane by lane in T, gathered into double every kTilesPerFlush tiles,
// and the samples' sums combined in double.
//
// Layouts: x [N, C, …] contiguous, either channels-first (each (n, c) a run of S = H·W values)
// or channels-last (each (n, s) a run of C values); the residual and the gradient are made to
// match x. Samples run in parallel on libtorch's intra-op threads (at::parallel_for).
#include "ctorch.h"
#include "shim.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>
#include <vector>

namespace {

#define ALWAYS_INLINE inline __attribute__((always_inline))
// On a lambda (after its parameters): inlined into each target clone below, as a separate
// function it would be compiled for the baseline target only.
#define INLINED __attribute__((always_inline))

struct Layout {
  int64_t N, C, S;  // samples, channels, positions per channel (H·W)
  bool channels_last;
  // Whether the [N·C] coefficients (α, β, p) differ between samples (a conditional batch norm);
  // if not, every sample reads sample 0's, and a task fills its tiles once.
  bool per_sample = false;
  int64_t coefficients_of(int64_t n) const { return per_sample ? n * C : 0; }
};

// The loops run over tiles: kTile or so values with one pattern of channels. In channels-last
// a sample is one run of S·C values whose channel repeats every C, and a tile is a whole number
// of rows (lane j is channel j mod C); in channels-first each (n, c) is a run of S values of one
// channel. Either way every inner loop is a long unit-stride loop over a tile, against
// coefficients laid out as the tile is, so it vectorises at any C (a loop over one row of 8 or 16
// channels would spend its time starting and ending).
constexpr int64_t kTile = 256;
// Tiles summed in T (lane by lane) before the sums join a double: each lane adds at most this
// many values in float32.
constexpr int64_t kTilesPerFlush = 64;

int64_t tile_length(const Layout &l) { return l.channels_last ? l.C * std::max<int64_t>(1, kTile / l.C) : std::min(l.S, kTile); }

// Calls run(offset, length, channel) for each run of sample n: channel −1 for the channels-last
// run whose lanes cycle through the channels.
template <typename Run>
ALWAYS_INLINE void each_run(const Layout &l, int64_t n, Run run) {
  if (l.channels_last) {
    run(n * l.S * l.C, l.S * l.C, int64_t(-1));
  } else {
    for (int64_t c = 0; c < l.C; c++) run((n * l.C + c) * l.S, l.S, c);
  }
}

// tile[j] = the value of lane j's channel: per_channel[j mod C] in a cycling run, else
// per_channel[channel].
template <typename T>
ALWAYS_INLINE void fill_tile(T *tile, const T *per_channel, int64_t channel, int64_t length, int64_t C) {
  if (channel >= 0) {
    for (int64_t j = 0; j < length; j++) tile[j] = per_channel[channel];
  } else {  // length is a whole number of rows of C
    for (int64_t row = 0; row < length; row += C)
      for (int64_t c = 0; c < C; c++) tile[row + c] = per_channel[c];
  }
}

// A tile of coefficients and what it holds, so that it is filled only when that changes (once
// per task in channels-last with per-channel coefficients).
template <typename T>
struct Tile {
  T *values;
  const T *source = nullptr;
  int64_t channel = -2;
  ALWAYS_INLINE void hold(const T *per_channel, int64_t for_channel, int64_t length, int64_t C) {
    if (per_channel == source && for_channel == channel) return;
    fill_tile(values, per_channel, for_channel, length, C);
    source = per_channel;
    channel = for_channel;
  }
};

// out[channel of lane j] += acc[j] for every lane, and acc back to zero.
template <typename T>
ALWAYS_INLINE void fold(T *acc, int64_t channel, int64_t length, int64_t C, double *out) {
  if (channel >= 0) {
    double total = 0;
    for (int64_t j = 0; j < length; j++) total += acc[j];
    out[channel] += total;
  } else {
    for (int64_t row = 0; row < length; row += C)
      for (int64_t c = 0; c < C; c++) out[c] += acc[row + c];
  }
  for (int64_t j = 0; j < length; j++) acc[j] = 0;
}

// For every (n, c) of samples [begin, end): first[n·C + c] = Σ_s of the first value `tile_terms`
// adds to its accumulators, second[…] of the second (when second is not null).
// tile_terms(acc1, acc2, offset, length, mean_tile, alpha_tile, beta_tile) adds a tile's terms
// lane by lane; the tiles hold mean [C] and alpha, beta [N·C] laid out as the run (those given).
// scratch holds kScratchTiles tiles.
template <typename T, typename TileTerms>
ALWAYS_INLINE void sum_per_sample(const Layout &l, int64_t begin, int64_t end, const T *mean, const T *alpha, const T *beta,
                                  double *first, double *second, T *scratch, TileTerms tile_terms) {
  const int64_t C = l.C, L = tile_length(l);
  T *acc1 = scratch, *acc2 = scratch + L;
  Tile<T> mean_tile{scratch + 2 * L}, alpha_tile{scratch + 3 * L}, beta_tile{scratch + 4 * L};
  for (int64_t j = 0; j < 2 * L; j++) scratch[j] = 0;
  for (int64_t n = begin; n < end; n++) {
    double *out1 = first + n * C, *out2 = second ? second + n * C : nullptr;
    for (int64_t c = 0; c < C; c++) {
      out1[c] = 0;
      if (out2) out2[c] = 0;
    }
    each_run(l, n, [&](int64_t offset, int64_t length, int64_t channel) INLINED {
      if (mean) mean_tile.hold(mean, channel, L, C);
      if (alpha) alpha_tile.hold(alpha + l.coefficients_of(n), channel, L, C);
      if (beta) beta_tile.hold(beta + l.coefficients_of(n), channel, L, C);
      int64_t tiles = 0;
      for (int64_t start = 0; start < length; start += L) {
        tile_terms(acc1, acc2, offset + start, std::min(L, length - start), mean_tile.values, alpha_tile.values, beta_tile.values);
        if (++tiles % kTilesPerFlush == 0 || start + L >= length) {
          fold(acc1, channel, L, C, out1);
          if (out2) fold(acc2, channel, L, C, out2);
        }
      }
    });
  }
}

// The ReLU's input z = x·α + β, the same expression forward and backward, so that the backward
// recomputes the forward's z bit for bit (and with it the ReLU's mask).
template <typename T>
ALWAYS_INLINE T pre_relu(T x, T alpha, T beta) {
  return x * alpha + beta;
}

// The passes, each over samples [begin, end). Written once as templates, compiled per dtype
// below. mean [C]; alpha, beta, p [N·C]; q, r [C]. scratch holds kScratchTiles tiles.

// sums[n·C + c] = Σ_s x.
template <typename T>
ALWAYS_INLINE void sums_rows(const T *__restrict x, const Layout &l, int64_t begin, int64_t end, double *sums, T *scratch) {
  sum_per_sample<T>(l, begin, end, nullptr, nullptr, nullptr, sums, nullptr, scratch,
                    [&](T *__restrict acc, T *, int64_t offset, int64_t length, const T *, const T *, const T *) INLINED {
                      const T *__restrict v = x + offset;
                      for (int64_t j = 0; j < length; j++) acc[j] += v[j];
                    });
}

// squares[n·C + c] = Σ_s (x − mean_c)².
template <typename T>
ALWAYS_INLINE void centred_squares_rows(const T *__restrict x, const T *mean, const Layout &l, int64_t begin, int64_t end,
                                        double *squares, T *scratch) {
  sum_per_sample<T>(l, begin, end, mean, nullptr, nullptr, squares, nullptr, scratch,
                    [&](T *__restrict acc, T *, int64_t offset, int64_t length, const T *__restrict m, const T *, const T *) INLINED {
                      const T *__restrict v = x + offset;
                      for (int64_t j = 0; j < length; j++) {
                        const T d = v[j] - m[j];
                        acc[j] += d * d;
                      }
                    });
}

// y = relu(x·α + β (+ residual)). `z < 0 ? 0 : z` keeps a NaN, as aten's relu does.
template <typename T>
ALWAYS_INLINE void output_rows(const T *__restrict x, const T *__restrict residual, const T *alpha, const T *beta, const Layout &l,
                               int64_t begin, int64_t end, T *__restrict y, T *scratch) {
  const int64_t L = tile_length(l);
  Tile<T> alpha_held{scratch}, beta_held{scratch + L};
  T *__restrict alpha_tile = alpha_held.values, *__restrict beta_tile = beta_held.values;
  for (int64_t n = begin; n < end; n++) {
    each_run(l, n, [&](int64_t offset, int64_t length, int64_t channel) INLINED {
      alpha_held.hold(alpha + l.coefficients_of(n), channel, L, l.C);
      beta_held.hold(beta + l.coefficients_of(n), channel, L, l.C);
      for (int64_t start = 0; start < length; start += L) {
        const int64_t count = std::min(L, length - start), o = offset + start;
        if (residual) {
          for (int64_t j = 0; j < count; j++) {
            const T z = pre_relu(x[o + j], alpha_tile[j], beta_tile[j]) + residual[o + j];
            y[o + j] = z < 0 ? T(0) : z;
          }
        } else {
          for (int64_t j = 0; j < count; j++) {
            const T z = pre_relu(x[o + j], alpha_tile[j], beta_tile[j]);
            y[o + j] = z < 0 ? T(0) : z;
          }
        }
      }
    });
  }
}

// The ReLU's gradient g_z = g_y where z > 0 (aten's threshold_backward: zero where its output
// y ≤ 0, the same lanes), and per (n, c): Σ_s g_z and Σ_s g_z·(x − mean_c). With alpha and beta
// (no residual) the mask comes from z = x·α + β recomputed, which spares reading y; with a
// residual, from y.
template <typename T>
ALWAYS_INLINE void backward_sums_rows(const T *__restrict grad_y, const T *__restrict y, const T *__restrict x, const T *mean,
                                      const T *alpha, const T *beta, const Layout &l, int64_t begin, int64_t end, double *sum_grad,
                                      double *sum_grad_centred, T *scratch) {
  if (alpha) {
    sum_per_sample<T>(l, begin, end, mean, alpha, beta, sum_grad, sum_grad_centred, scratch,
                      [&](T *__restrict acc1, T *__restrict acc2, int64_t offset, int64_t length, const T *__restrict m,
                          const T *__restrict a, const T *__restrict b) INLINED {
                        const T *__restrict g_y = grad_y + offset, *__restrict xx = x + offset;
                        for (int64_t j = 0; j < length; j++) {
                          const T incoming = g_y[j];  // loaded unconditionally, so the select vectorises
                          const T g = pre_relu(xx[j], a[j], b[j]) <= 0 ? T(0) : incoming;
                          acc1[j] += g;
                          acc2[j] += g * (xx[j] - m[j]);
                        }
                      });
  } else {
    sum_per_sample<T>(l, begin, end, mean, nullptr, nullptr, sum_grad, sum_grad_centred, scratch,
                      [&](T *__restrict acc1, T *__restrict acc2, int64_t offset, int64_t length, const T *__restrict m, const T *,
                          const T *) INLINED {
                        const T *__restrict g_y = grad_y + offset, *__restrict yy = y + offset, *__restrict xx = x + offset;
                        for (int64_t j = 0; j < length; j++) {
                          const T incoming = g_y[j];
                          const T g = yy[j] <= 0 ? T(0) : incoming;
                          acc1[j] += g;
                          acc2[j] += g * (xx[j] - m[j]);
                        }
                      });
  }
}

// grad_x = g_z·p[n, c] + (x − mean_c)·q_c + r_c, and grad_residual = g_z where asked for; the
// mask as in backward_sums_rows. In evaluation (`statistics_constant`) q and r are 0 and the
// mean is not read.
template <typename T>
ALWAYS_INLINE void backward_output_rows(const T *__restrict grad_y, const T *__restrict y, const T *__restrict x, const T *mean,
                                        const T *alpha, const T *beta, const T *p, const T *q, const T *r, bool statistics_constant,
                                        const Layout &l, int64_t begin, int64_t end, T *__restrict grad_x, T *__restrict grad_residual,
                                        T *scratch) {
  const int64_t L = tile_length(l);
  Tile<T> p_held{scratch}, q_held{scratch + L}, r_held{scratch + 2 * L}, m_held{scratch + 3 * L}, a_held{scratch + 4 * L},
      b_held{scratch + 5 * L};
  T *__restrict p_tile = p_held.values, *__restrict q_tile = q_held.values, *__restrict r_tile = r_held.values,
                *__restrict m_tile = m_held.values, *__restrict a_tile = a_held.values, *__restrict b_tile = b_held.values;
  for (int64_t n = begin; n < end; n++) {
    each_run(l, n, [&](int64_t offset, int64_t length, int64_t channel) INLINED {
      p_held.hold(p + l.coefficients_of(n), channel, L, l.C);
      q_held.hold(q, channel, L, l.C);
      r_held.hold(r, channel, L, l.C);
      m_held.hold(mean, channel, L, l.C);
      if (alpha) {
        a_held.hold(alpha + l.coefficients_of(n), channel, L, l.C);
        b_held.hold(beta + l.coefficients_of(n), channel, L, l.C);
      }
      for (int64_t start = 0; start < length; start += L) {
        const int64_t count = std::min(L, length - start), o = offset + start;
        const T *__restrict g_y = grad_y + o, *__restrict xx = x + o;
        T *__restrict g_x = grad_x + o;
        if (grad_residual) {  // with a residual: the mask from y
          const T *__restrict yy = y + o;
          T *__restrict g_r = grad_residual + o;
          for (int64_t j = 0; j < count; j++) {
            const T incoming = g_y[j];  // loaded unconditionally, so the select vectorises
            const T g = yy[j] <= 0 ? T(0) : incoming;
            g_x[j] = g * p_tile[j] + (xx[j] - m_tile[j]) * q_tile[j] + r_tile[j];
            g_r[j] = g;
          }
        } else if (!alpha) {
          const T *__restrict yy = y + o;
          for (int64_t j = 0; j < count; j++) {
            const T incoming = g_y[j];
            const T g = yy[j] <= 0 ? T(0) : incoming;
            g_x[j] = g * p_tile[j] + (xx[j] - m_tile[j]) * q_tile[j] + r_tile[j];
          }
        } else if (statistics_constant) {
          for (int64_t j = 0; j < count; j++) {
            const T incoming = g_y[j];
            g_x[j] = pre_relu(xx[j], a_tile[j], b_tile[j]) <= 0 ? T(0) : incoming * p_tile[j];
          }
        } else {
          for (int64_t j = 0; j < count; j++) {
            const T incoming = g_y[j];
            const T g = pre_relu(xx[j], a_tile[j], b_tile[j]) <= 0 ? T(0) : incoming;
            g_x[j] = g * p_tile[j] + (xx[j] - m_tile[j]) * q_tile[j] + r_tile[j];
          }
        }
      }
    });
  }
}

// The float passes once more for CPUs with AVX2 and FMA (x86-64-v3), chosen at load time (an
// ifunc), as in attention.cpp: the build targets baseline x86-64.
#if defined(__x86_64__) && defined(__linux__)
#define FOR_AVX2_TOO __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FOR_AVX2_TOO
#endif

FOR_AVX2_TOO void sums_kernel(const float *x, const Layout &l, int64_t begin, int64_t end, double *sums, float *scratch) {
  sums_rows(x, l, begin, end, sums, scratch);
}
FOR_AVX2_TOO void centred_squares_kernel(const float *x, const float *mean, const Layout &l, int64_t begin, int64_t end,
                                         double *squares, float *scratch) {
  centred_squares_rows(x, mean, l, begin, end, squares, scratch);
}
FOR_AVX2_TOO void output_kernel(const float *x, const float *residual, const float *alpha, const float *beta, const Layout &l,
                                int64_t begin, int64_t end, float *y, float *scratch) {
  output_rows(x, residual, alpha, beta, l, begin, end, y, scratch);
}
FOR_AVX2_TOO void backward_sums_kernel(const float *grad_y, const float *y, const float *x, const float *mean, const float *alpha,
                                       const float *beta, const Layout &l, int64_t begin, int64_t end, double *sum_grad,
                                       double *sum_grad_centred, float *scratch) {
  backward_sums_rows(grad_y, y, x, mean, alpha, beta, l, begin, end, sum_grad, sum_grad_centred, scratch);
}
FOR_AVX2_TOO void backward_output_kernel(const float *grad_y, const float *y, const float *x, const float *mean, const float *alpha,
                                         const float *beta, const float *p, const float *q, const float *r, bool statistics_constant,
                                         const Layout &l, int64_t begin, int64_t end, float *grad_x, float *grad_residual,
                                         float *scratch) {
  backward_output_rows(grad_y, y, x, mean, alpha, beta, p, q, r, statistics_constant, l, begin, end, grad_x, grad_residual, scratch);
}

// Float64 (the reference and gradient checks) needs no clones.
void sums_kernel(const double *x, const Layout &l, int64_t begin, int64_t end, double *sums, double *scratch) {
  sums_rows(x, l, begin, end, sums, scratch);
}
void centred_squares_kernel(const double *x, const double *mean, const Layout &l, int64_t begin, int64_t end, double *squares,
                            double *scratch) {
  centred_squares_rows(x, mean, l, begin, end, squares, scratch);
}
void output_kernel(const double *x, const double *residual, const double *alpha, const double *beta, const Layout &l, int64_t begin,
                   int64_t end, double *y, double *scratch) {
  output_rows(x, residual, alpha, beta, l, begin, end, y, scratch);
}
void backward_sums_kernel(const double *grad_y, const double *y, const double *x, const double *mean, const double *alpha,
                          const double *beta, const Layout &l, int64_t begin, int64_t end, double *sum_grad, double *sum_grad_centred,
                          double *scratch) {
  backward_sums_rows(grad_y, y, x, mean, alpha, beta, l, begin, end, sum_grad, sum_grad_centred, scratch);
}
void backward_output_kernel(const double *grad_y, const double *y, const double *x, const double *mean, const double *alpha,
                            const double *beta, const double *p, const double *q, const double *r, bool statistics_constant,
                            const Layout &l, int64_t begin, int64_t end, double *grad_x, double *grad_residual, double *scratch) {
  backward_output_rows(grad_y, y, x, mean, alpha, beta, p, q, r, statistics_constant, l, begin, end, grad_x, grad_residual, scratch);
}

// Tiles of scratch each task holds (the passes use at most 6).
constexpr int64_t kScratchTiles = 6;

// Samples per parallel task: one sample is C·S values, thousands at every size that matters.
constexpr int64_t kGrain = 1;

Layout layout_of(const at::Tensor &x) {
  const int64_t N = x.size(0), C = x.size(1);
  return {N, C, N * C == 0 ? 0 : x.numel() / (N * C), x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()};
}

// A scale or shift as [N·C] values in double: per sample [N, C], per channel [C] repeated, or
// `fill` where absent.
std::vector<double> per_sample(const at::Tensor &values, int64_t N, int64_t C, double fill) {
  std::vector<double> out(N * C, fill);
  if (!values.defined()) return out;
  auto v = values.to(at::kDouble).contiguous();
  const double *d = v.const_data_ptr<double>();
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) out[n * C + c] = values.dim() == 2 ? d[n * C + c] : d[c];
  return out;
}

// Per channel [C]: the batch's mean and 1/√(var + ε) (training), or the running statistics'.
// In training the running statistics take this batch's mean and unbiased variance.
std::pair<at::Tensor, at::Tensor> statistics(const at::Tensor &x, const Layout &l, const at::Tensor &running_mean,
                                             const at::Tensor &running_var, bool training, double momentum, double eps) {
  const int64_t N = l.N, C = l.C, M = l.N * l.S;
  auto options = x.options().dtype(at::kDouble);
  if (!training) {
    auto invstd = (running_var.to(at::kDouble) + eps).rsqrt();
    return {running_mean.to(at::kDouble).contiguous(), invstd.contiguous()};
  }
  std::vector<double> per_sample_sums(N * C);
  auto mean = at::empty({C}, options), variance = at::empty({C}, options);
  double *m = mean.data_ptr<double>(), *v = variance.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_relu_statistics", [&] {
    const scalar_t *data = x.const_data_ptr<scalar_t>();
    at::parallel_for(0, N, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> scratch(kScratchTiles * tile_length(l));
      sums_kernel(data, l, begin, end, per_sample_sums.data(), scratch.data());
    });
    for (int64_t c = 0; c < C; c++) {
      double total = 0;
      for (int64_t n = 0; n < N; n++) total += per_sample_sums[n * C + c];
      m[c] = total / M;
    }
    std::vector<scalar_t> mean_t(m, m + C);
    at::parallel_for(0, N, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> scratch(kScratchTiles * tile_length(l));
      centred_squares_kernel(data, mean_t.data(), l, begin, end, per_sample_sums.data(), scratch.data());
    });
    for (int64_t c = 0; c < C; c++) {
      double total = 0;
      for (int64_t n = 0; n < N; n++) total += per_sample_sums[n * C + c];
      v[c] = total / M;  // biased, as the normalisation uses
    }
  });
  if (running_mean.defined()) {
    at::NoGradGuard no_grad;
    running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
    running_var.mul_(1 - momentum).add_((variance * ((double)M / (M - 1))).to(running_var.scalar_type()), momentum);
  }
  return {mean, (variance + eps).rsqrt()};
}

// The ReLU's input is x·α + β (+ residual) with, per (n, c), α = scale/σ and
// β = shift − mean·α: computed once, in double, for the forward and again for the backward.
template <typename T>
std::pair<std::vector<T>, std::vector<T>> slopes_and_offsets(const at::Tensor &scale, const at::Tensor &shift, int64_t N, int64_t C,
                                                             const at::Tensor &mean, const at::Tensor &invstd) {
  auto a = per_sample(scale, N, C, 1), b = per_sample(shift, N, C, 0);
  const double *m = mean.const_data_ptr<double>(), *is = invstd.const_data_ptr<double>();
  std::vector<T> alpha(N * C), beta(N * C);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      const double slope = a[n * C + c] * is[c];
      alpha[n * C + c] = slope;
      beta[n * C + c] = b[n * C + c] - m[c] * slope;
    }
  return {alpha, beta};
}

at::Tensor forward_output(const at::Tensor &x, const at::Tensor &scale, const at::Tensor &shift, const at::Tensor &residual,
                          const Layout &l, const at::Tensor &mean, const at::Tensor &invstd) {
  auto y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_relu_forward", [&] {
    const auto [alpha, beta] = slopes_and_offsets<scalar_t>(scale, shift, l.N, l.C, mean, invstd);
    const scalar_t *data = x.const_data_ptr<scalar_t>();
    const scalar_t *shortcut = residual.defined() ? residual.const_data_ptr<scalar_t>() : nullptr;
    scalar_t *out = y.data_ptr<scalar_t>();
    at::parallel_for(0, l.N, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> scratch(kScratchTiles * tile_length(l));
      output_kernel(data, shortcut, alpha.data(), beta.data(), l, begin, end, out, scratch.data());
    });
  });
  return y;
}

// The same function before its ReLU, from aten ops and differentiable itself: the backward's
// path when a second derivative is asked for (create_graph). In evaluation the statistics are
// constants.
at::Tensor reference_pre_relu(const at::Tensor &x, const at::Tensor &scale, const at::Tensor &shift, const at::Tensor &residual, bool training,
                     double eps, const at::Tensor &mean, const at::Tensor &invstd) {
  std::vector<int64_t> broadcast(x.dim(), 1), reduced{0};
  broadcast[1] = x.size(1);
  for (int64_t d = 2; d < x.dim(); d++) reduced.push_back(d);
  at::Tensor normalised;
  if (training) {
    auto batch_mean = x.mean(reduced, /*keepdim=*/true);
    auto batch_var = (x - batch_mean).pow(2).mean(reduced, /*keepdim=*/true);
    normalised = (x - batch_mean) * (batch_var + eps).rsqrt();
  } else {
    normalised = (x - mean.to(x.scalar_type()).view(broadcast)) * invstd.to(x.scalar_type()).view(broadcast);
  }
  auto per_sample_shape = [&](const at::Tensor &t) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = x.size(1);
    if (t.dim() == 2) shape[0] = x.size(0);
    return t.view(shape);
  };
  auto z = scale.defined() ? normalised * per_sample_shape(scale) : normalised;
  if (shift.defined()) z = z + per_sample_shape(shift);
  if (residual.defined()) z = z + residual;
  return z;
}

// autograd::Function records every tensor input's device and dtype, which an undefined tensor
// has not: an absent scale, shift, residual or running statistic travels as an empty tensor.
at::Tensor absent_as_empty(const at::Tensor &t, const at::Tensor &like) { return t.defined() ? t : at::empty({0}, like.options()); }
at::Tensor empty_as_absent(const at::Tensor &t) { return t.numel() > 0 ? t : at::Tensor(); }

class BatchNormRelu : public torch::autograd::Function<BatchNormRelu> {
 public:
  // Every tensor defined (absent_as_empty); the empty ones mean absent.
  static at::Tensor forward(torch::autograd::AutogradContext *context, const at::Tensor &x, const at::Tensor &scale_or_empty,
                            const at::Tensor &shift_or_empty, const at::Tensor &residual_or_empty, const at::Tensor &running_mean_or_empty,
                            const at::Tensor &running_var_or_empty, bool training, double momentum, double eps) {
    const auto scale = empty_as_absent(scale_or_empty), shift = empty_as_absent(shift_or_empty),
               residual = empty_as_absent(residual_or_empty), running_mean = empty_as_absent(running_mean_or_empty),
               running_var = empty_as_absent(running_var_or_empty);
    // Named in profiles (the tests check that it ran).
    RECORD_FUNCTION("afterimage::batch_norm_relu", std::vector<c10::IValue>({x}));
    auto layout = layout_of(x);
    layout.per_sample = (scale.defined() && scale.dim() == 2) || (shift.defined() && shift.dim() == 2);
    auto [mean, invstd] = statistics(x, layout, running_mean, running_var, training, momentum, eps);
    auto y = forward_output(x, scale, shift, residual, layout, mean, invstd);
    context->save_for_backward({x, scale_or_empty, y, mean, invstd, shift_or_empty});
    context->saved_data["training"] = training;
    context->saved_data["has_residual"] = residual.defined();
    context->saved_data["eps"] = eps;
    context->saved_data["shift_per_sample"] = shift.defined() && shift.dim() == 2;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *context, torch::autograd::variable_list grads) {
    auto saved = context->get_saved_variables();
    const auto &x = saved[0], &y = saved[2], &mean = saved[3], &invstd = saved[4];
    const auto scale = empty_as_absent(saved[1]), saved_shift = empty_as_absent(saved[5]);
    const bool training = context->saved_data["training"].toBool();
    const bool has_residual = context->saved_data["has_residual"].toBool();
    const bool shift_per_sample = context->saved_data["shift_per_sample"].toBool();
    const double eps = context->saved_data["eps"].toDouble();
    torch::autograd::variable_list result(9);  // x, scale, shift, residual; the rest take none
    const bool wants_shift = context->needs_input_grad(2), wants_residual = context->needs_input_grad(3);
    if (at::GradMode::is_enabled()) {  // create_graph: differentiate the aten formulation instead
      // The shift and residual enter z additively, so their values do not enter the
      // derivatives: zeros of their shapes stand in for them (and take their gradients).
      const int64_t N = x.size(0), C = x.size(1);
      auto shift = wants_shift ? at::zeros(shift_per_sample ? std::vector<int64_t>{N, C} : std::vector<int64_t>{C}, x.options())
                                     .requires_grad_()
                               : at::Tensor();
      auto residual = wants_residual ? at::zeros_like(x).requires_grad_() : at::Tensor();
      std::vector<at::Tensor> inputs;
      std::vector<size_t> positions;
      const at::Tensor candidates[4] = {x, scale, shift, residual};
      for (size_t i = 0; i < 4; i++)
        if (context->needs_input_grad(i)) {
          inputs.push_back(candidates[i]);
          positions.push_back(i);
        }
      if (inputs.empty()) return result;
      // relu's derivative is the saved output's mask (zero where y ≤ 0, as threshold_backward),
      // a constant: differentiate z against the masked gradient.
      auto z = reference_pre_relu(x, scale, shift, residual, training, eps, mean, invstd);
      auto pre_relu_grad = grads[0] * (y <= 0).logical_not().to(x.scalar_type());
      auto gradients = torch::autograd::grad({z}, inputs, {pre_relu_grad}, /*retain_graph=*/true, /*create_graph=*/true);
      for (size_t j = 0; j < positions.size(); j++) result[positions[j]] = gradients[j];
      return result;
    }
    RECORD_FUNCTION("afterimage::batch_norm_relu_backward", std::vector<c10::IValue>({x}));
    auto layout = layout_of(x);
    layout.per_sample = (scale.defined() && scale.dim() == 2) || shift_per_sample;
    const int64_t N = layout.N, C = layout.C, M = layout.N * layout.S;
    const auto format = layout.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    auto grad_y = grads[0].contiguous(format);
    auto a = per_sample(scale, N, C, 1);
    const double *m = mean.const_data_ptr<double>(), *is = invstd.const_data_ptr<double>();
    std::vector<double> sum_grad(N * C), sum_grad_centred(N * C);
    auto grad_x = at::empty_like(x);
    auto grad_residual = wants_residual ? at::empty_like(x) : at::Tensor();
    // In evaluation, where the scale and shift take no gradient, the per-sample sums are not
    // needed: the backward is one pass.
    const bool wants_sums = training || context->needs_input_grad(1) || wants_shift;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_relu_backward", [&] {
      const scalar_t *gy = grad_y.const_data_ptr<scalar_t>(), *yd = y.const_data_ptr<scalar_t>(), *xd = x.const_data_ptr<scalar_t>();
      std::vector<scalar_t> mean_t(m, m + C);
      // Without a residual the ReLU's mask is recomputed from x (alpha, beta), which spares
      // reading y; with one, it is read from y.
      std::vector<scalar_t> alpha, beta;
      if (!has_residual) std::tie(alpha, beta) = slopes_and_offsets<scalar_t>(scale, saved_shift, N, C, mean, invstd);
      const scalar_t *alpha_p = has_residual ? nullptr : alpha.data(), *beta_p = has_residual ? nullptr : beta.data();
      if (wants_sums)
        at::parallel_for(0, N, kGrain, [&](int64_t begin, int64_t end) {
          std::vector<scalar_t> scratch(kScratchTiles * tile_length(layout));
          backward_sums_kernel(gy, yd, xd, mean_t.data(), alpha_p, beta_p, layout, begin, end, sum_grad.data(), sum_grad_centred.data(),
                               scratch.data());
        });
      // g_x̂ = g_z·a: its mean over (n, s) is Σ_n a·Σ_s g_z / M, and that of g_x̂·x̂ is
      // Σ_n a·σ⁻¹·Σ_s g_z·(x − mean) / M. In evaluation the statistics are constants.
      std::vector<scalar_t> p(N * C), q(C, 0), r(C, 0);
      for (int64_t c = 0; c < C; c++) {
        double mean_grad = 0, mean_grad_normalised = 0;
        for (int64_t n = 0; n < N; n++) {
          mean_grad += a[n * C + c] * sum_grad[n * C + c];
          mean_grad_normalised += a[n * C + c] * is[c] * sum_grad_centred[n * C + c];
          p[n * C + c] = a[n * C + c] * is[c];
        }
        if (training) {
          r[c] = -is[c] * mean_grad / M;
          q[c] = -is[c] * is[c] * mean_grad_normalised / M;
        }
      }
      scalar_t *gx = grad_x.data_ptr<scalar_t>(), *gr = wants_residual ? grad_residual.data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, N, kGrain, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> scratch(kScratchTiles * tile_length(layout));
        backward_output_kernel(gy, yd, xd, mean_t.data(), alpha_p, beta_p, p.data(), q.data(), r.data(), !training, layout, begin, end,
                               gx, gr, scratch.data());
      });
    });
    result[0] = grad_x;
    result[3] = grad_residual;
    // Per (n, c): d/d scale = Σ_s g_z·x̂ = σ⁻¹·Σ_s g_z·(x − mean), d/d shift = Σ_s g_z; summed
    // over the samples for a per-channel scale or shift.
    auto options = x.options().dtype(at::kDouble);
    if (context->needs_input_grad(1)) {
      auto g = at::from_blob(sum_grad_centred.data(), {N, C}, options).clone() * invstd.view({1, C});
      result[1] = (scale.dim() == 2 ? g : g.sum(0)).to(scale.scalar_type());
    }
    if (wants_shift) {
      auto g = at::from_blob(sum_grad.data(), {N, C}, options).clone();
      result[2] = (shift_per_sample ? g : g.sum(0)).to(x.scalar_type());
    }
    return result;
  }
};

}  // namespace

namespace {
// The checks, then the kernel: what ct_batch_norm_relu runs inside its error guard.
at::Tensor batch_norm_relu(const at::Tensor &input, const at::Tensor &s, const at::Tensor &b, const at::Tensor &r,
                           const at::Tensor &rm, const at::Tensor &rv, bool training, double momentum, double eps) {
  TORCH_CHECK(input.dim() >= 2, "batch norm + ReLU: the input must be [N, C, …], got ", input.dim(), " dimensions");
  TORCH_CHECK(input.device().is_cpu(), "batch norm + ReLU runs on the CPU only");
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble, "batch norm + ReLU takes float32 or float64 tensors");
  const int64_t N = input.size(0), C = input.size(1);
  for (const at::Tensor *t : {&s, &b}) {
    if (!t->defined()) continue;
    TORCH_CHECK((t->dim() == 1 && t->size(0) == C) || (t->dim() == 2 && t->size(0) == N && t->size(1) == C),
                "batch norm + ReLU: a scale or shift must be [C] or [N, C] = [", N, ", ", C, "], got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == input.scalar_type() && t->device().is_cpu(),
                "batch norm + ReLU: the scale and shift must have the input's dtype, on the CPU");
  }
  if (r.defined())
    TORCH_CHECK(r.sizes() == input.sizes() && r.scalar_type() == input.scalar_type() && r.device().is_cpu(),
                "batch norm + ReLU: the residual must have the input's shape ", input.sizes(), " and dtype; got ", r.sizes());
  TORCH_CHECK(rm.defined() == rv.defined(), "batch norm + ReLU: give both running statistics or neither");
  if (rm.defined())
    TORCH_CHECK(rm.numel() == C && rv.numel() == C, "batch norm + ReLU: running statistics of ", rm.numel(), " values for ", C, " channels");
  TORCH_CHECK(training || rm.defined(), "batch norm + ReLU: evaluation needs the running statistics");
  TORCH_CHECK(!training || input.numel() / std::max<int64_t>(C, 1) > 1,
              "batch norm + ReLU: expected more than 1 value per channel when training, got input of size ", input.sizes());
  // Channels-first or channels-last, as x comes; anything else is made channels-first.
  const bool channels_last = input.dim() == 4 && input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous();
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  TORCH_CHECK(C > 0, "batch norm + ReLU: the input has no channels");
  const auto x = input.contiguous(format);
  return BatchNormRelu::apply(x, absent_as_empty(s, x), absent_as_empty(b, x), absent_as_empty(r.defined() ? r.contiguous(format) : r, x),
                              absent_as_empty(rm, x), absent_as_empty(rv, x), training, momentum, eps);
}

const at::Tensor &or_undefined(ct_tensor t) {
  static const at::Tensor undefined;
  return t ? T(t) : undefined;
}
}  // namespace

ct_tensor ct_batch_norm_relu(ct_tensor x, ct_tensor scale, ct_tensor shift, ct_tensor residual, ct_tensor running_mean,
                             ct_tensor running_var, bool training, double momentum, double eps) {
  PROTECT(return wrap(batch_norm_relu(T(x), or_undefined(scale), or_undefined(shift), or_undefined(residual), or_undefined(running_mean),
                                      or_undefined(running_var), training, momentum, eps));
          , nullptr)
}
