// optimizers.cpp: Adam and SGD as libtorch's fused multi-tensor kernels (`_fused_adam_`,
// `_fused_adamw_`, `_fused_sgd_`; see include/ctorch.h, "Fused optimizers").
//
// Why: the per-tensor update is six aten calls per parameter (lerp, mul, addcmul, sqrt, div,
// addcdiv), each a pass over the parameter and a dispatch from Swift: in the 32×32 inverter
// step about 1,400 calls for G's and D's 114 tensors. The fused kernels do the whole update of
// every tensor in one call and one pass over each, with the same formulas (PyTorch's
// `torch.optim.Adam(fused=True)` is this call).
#include "ctorch.h"
#include "shim.hpp"

#include <ATen/ATen.h>

#include <vector>

namespace {
std::vector<at::Tensor> tensors(const ct_tensor *handles, int count) {
  std::vector<at::Tensor> out;
  out.reserve(count);
  for (int i = 0; i < count; i++) out.push_back(T(handles[i]));
  return out;
}
}  // namespace

int ct_fused_adam(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *exp_avgs, const ct_tensor *exp_avg_sqs, int count,
                  int64_t step, double lr, double beta1, double beta2, double weight_decay, double eps, bool decoupled_weight_decay) {
  STATUS(
      auto p = tensors(params, count); auto g = tensors(grads, count); auto m = tensors(exp_avgs, count);
      auto v = tensors(exp_avg_sqs, count);
      // The step count each tensor's bias correction reads (float32, exact to 2²⁴ steps), one
      // per tensor as the kernel takes them, on the parameters' device.
      auto steps = std::vector<at::Tensor>(count, at::full({}, (double)step, p.empty() ? at::TensorOptions().dtype(at::kFloat)
                                                                                     : p[0].options().dtype(at::kFloat)));
      if (decoupled_weight_decay) at::_fused_adamw_(p, g, m, v, {}, steps, lr, beta1, beta2, weight_decay, eps, false, false);
      else at::_fused_adam_(p, g, m, v, {}, steps, lr, beta1, beta2, weight_decay, eps, false, false);)
}

int ct_fused_sgd(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *momentum_buffers, int count, double weight_decay,
                 double momentum, double lr, double dampening, bool nesterov, bool first_step) {
  STATUS(
      auto p = tensors(params, count); auto g = tensors(grads, count);
      auto buffers = momentum != 0 ? tensors(momentum_buffers, count) : std::vector<at::Tensor>();
      at::_fused_sgd_(p, g, buffers, weight_decay, momentum, lr, dampening, nesterov, false, first_step);)
}
