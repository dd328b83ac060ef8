"""Where the time goes: PyTorch operator profile of an unmerged and an LTM model, side by side.

Shows which operators shrink with the token count and which do not (per-op fixed cost, GEMM
efficiency at few tokens, the merge itself). Usage:

    python -m benchmarks.merge_profile --backbone vit_tiny_patch16_224 --size 224 --ratio 0.6
    python -m benchmarks.merge_profile --backbone vit-cpu --size 112 --channels 1 --ratio 0.6
"""

from __future__ import annotations

import argparse
import contextlib
import io

import torch
from torch.profiler import ProfilerActivity, profile

from models.backbones import resolve_backbone
from models.network import InspectionNet
from models.schedule import fit_schedule

MERGE_OPS = ("aten::bmm", "aten::mm", "aten::mul", "aten::sum", "aten::div", "aten::_softmax", "aten::cat")


def op_times(net: InspectionNet, sample: torch.Tensor, iters: int) -> dict[str, tuple[float, int]]:
    """Self CPU ms and calls per forward, by operator."""
    with torch.inference_mode():
        for _ in range(10):
            net(sample)
        with contextlib.redirect_stderr(io.StringIO()), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                net(sample)
    return {e.key: (e.self_cpu_time_total / iters / 1000, e.count // iters) for e in prof.key_averages()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vit_tiny_patch16_224")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--ratio", type=float, default=0.6)
    parser.add_argument("--channels", type=int, default=3, help="1 for the gray stations (xsdd, ELPV)")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--rows", type=int, default=16)
    args = parser.parse_args()
    spec = resolve_backbone(args.backbone, args.size, args.channels)
    nets = {}
    for mode in ("none", "ltm"):
        torch.manual_seed(0)
        nets[mode] = InspectionNet(spec, 2, mode).eval()
    fit_schedule(nets["ltm"], args.ratio)
    sample = torch.randn(1, args.channels, args.size, args.size)
    times = {mode: op_times(net, sample, args.iters) for mode, net in nets.items()}
    none, ltm = times["none"], times["ltm"]
    keys = sorted(set(none) | set(ltm), key=lambda k: -max(none.get(k, (0, 0))[0], ltm.get(k, (0, 0))[0]))
    print(f"| operator | unmerged ms | calls | LTM @ {args.ratio} ms | calls | ratio |")
    print("|---|---|---|---|---|---|")
    for key in keys[: args.rows]:
        a, b = none.get(key, (0.0, 0)), ltm.get(key, (0.0, 0))
        ratio = f"{b[0] / a[0]:.2f}" if a[0] else "new"
        print(f"| {key} | {a[0]:.3f} | {a[1]} | {b[0]:.3f} | {b[1]} | {ratio} |")
    total_a, total_b = sum(v[0] for v in none.values()), sum(v[0] for v in ltm.values())
    print(f"| **total** | {total_a:.2f} | | {total_b:.2f} | | {total_b / total_a:.2f} |")
    merge_only = sum(ltm[k][0] for k in MERGE_OPS if k in ltm and k not in none)
    share = merge_only / total_b
    print(f"\nops only the merged model runs: {merge_only:.2f} ms per forward ({share:.1%} of its time)")


if __name__ == "__main__":
    main()
