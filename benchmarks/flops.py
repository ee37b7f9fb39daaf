"""A training step's FLOPs from the operator calls libtorch's profiler recorded, counted as
PyTorch's FlopCounterMode counts them: convolutions forward and backward (only the gradients the
step asked for), and matrix products (mm, addmm, bmm, baddbmm, and the products inside our fused
attention kernel), 2 FLOPs per multiply-add; other ops count nothing. The same count serves ours (afterimage-bench --op-trace, through
Torch.recordOperations) and the peers (inverter.py --op-trace, through torch.profiler), so
equal counts mean the same convolutions and products of the same shapes.

    flops.py TRACE.json [...]   # prints each trace's FLOPs
"""
import json
import sys
from math import prod


def conv_output(x, w, stride, padding, dilation, transposed, output_padding):
    """The spatial sizes of a convolution's output."""
    sizes = []
    for i, size in enumerate(x[2:]):
        kernel = w[2 + i]
        if transposed:
            sizes.append((size - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel - 1) + output_padding[i] + 1)
        else:
            sizes.append((size + 2 * padding[i] - dilation[i] * (kernel - 1) - 1) // stride[i] + 1)
    return sizes


def conv_flops(x, w, out_spatial, transposed):
    """FlopCounterMode's conv_flop_count: 2 · batch · C_out · C_in/groups · kernel · positions."""
    positions = prod(x[2:]) if transposed else prod(out_spatial)
    return 2 * x[0] * w[0] * w[1] * prod(w[2:]) * positions


def expand(value, count):
    return list(value) * count if len(value) == 1 else list(value)


def count(events):
    """The FLOPs of `events` (dicts with "name", "shapes", "concrete", as the traces hold them)."""
    total = 0
    for event in events:
        name, shapes, concrete = event["name"], event["shapes"], event.get("concrete") or []
        if name == "aten::convolution" and len(shapes) >= 2 and len(concrete) >= 8:
            x, w = shapes[0], shapes[1]
            spatial = len(x) - 2
            stride, padding, dilation = (expand(concrete[i], spatial) for i in (3, 4, 5))
            transposed, output_padding = bool(concrete[6]), expand(concrete[7], spatial)
            total += conv_flops(x, w, conv_output(x, w, stride, padding, dilation, transposed, output_padding), transposed)
        elif name == "aten::convolution_backward" and len(shapes) >= 3 and len(concrete) >= 11:
            grad_out, x, w = shapes[0], shapes[1], shapes[2]
            transposed, mask = bool(concrete[7]), concrete[10]
            if mask[0]:  # the input's gradient: a transposed convolution of grad_out with the weight
                total += conv_flops(grad_out, w, x[2:], not transposed)
            if mask[1]:  # the weight's gradient: a convolution of the input with grad_out
                t = lambda s: [s[1], s[0]] + list(s[2:])
                a, b = (t(grad_out), t(x)) if transposed else (t(x), t(grad_out))
                total += conv_flops(a, b, t(w)[2:], False)
        elif name == "aten::mm" and len(shapes) >= 2:
            (m, k), (_, n) = shapes[0], shapes[1]
            total += 2 * m * k * n
        elif name == "aten::addmm" and len(shapes) >= 3:
            (m, k), (_, n) = shapes[1], shapes[2]
            total += 2 * m * k * n
        elif name in ("aten::bmm", "aten::baddbmm") and len(shapes) >= 2:
            a, b = (shapes[0], shapes[1]) if name == "aten::bmm" else (shapes[1], shapes[2])
            total += 2 * a[0] * a[1] * a[2] * b[2]
        elif name in ("afterimage::fused_attention", "afterimage::fused_attention_backward") and len(shapes) >= 3:
            # Ours: queries [B, N, dk], keys [B, dk, M], values [B, dv, M]. Counted as the aten
            # formulation's products: bmm(queries, keys) and bmm(weights, valuesᵀ) forward, and
            # each one's two gradient products backward: the work the peers' bmm calls do. The
            # kernel's backward also recomputes the scores, 2·B·N·M·dk more; that is left out, so
            # the count stays the same work as theirs (FlopCounterMode counts the recomputation
            # for PyTorch's own fused attention, whose call the peers do not make). The backward
            # is counted with all four products, as when queries, keys and values all take
            # gradients (SelfAttention's case). A second derivative (create_graph) records no
            # fused backward but the aten formulation's bmm calls, a recomputed forward included.
            (batch, n, dk), (_, _, m), (_, dv, _) = shapes[0], shapes[1], shapes[2]
            forward = 2 * batch * n * m * (dk + dv)
            total += forward if name == "afterimage::fused_attention" else 2 * forward
    return total


def read(path):
    with open(path) as file:
        return json.load(file)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"{path}: {count(read(path))} FLOPs")
