"""How far each LTM merge moves away from fixed local pooling, measured on real images.

"Learned means learned" (DESIGN §5): a mask module that stays at its pooling prior is fixed
pooling under another name. For every LTM merge this reports the share of token mass the mask
sends elsewhere than area-overlap pooling would (total variation between the mask's rows and the
prior's, 0 = pooling, 1 = all of it), averaged over tokens and images. Training records it on the
validation images in the bundle; ``inspector models info`` and the Models screen show it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from models.ltm import LTMMerge, moved_mass, overlap_prior
from models.network import InspectionNet


def merge_movement(net: InspectionNet, batches: Iterable[torch.Tensor]) -> list[dict]:
    """Per LTM merge: block index, grids, mask kind and mean moved mass over ``batches``."""
    totals: dict[int, list[float]] = {}
    grids: dict[int, tuple] = {}
    handles = []

    def hook(index: int):
        def record(module: LTMMerge, args: tuple, output: tuple) -> None:
            _, _, grid = args
            mask, out_grid = output[2], output[3]
            prior = torch.from_numpy(overlap_prior(*grid, *out_grid)).to(mask.dtype)
            totals.setdefault(index, []).extend(moved_mass(mask, prior).tolist())
            grids[index] = (tuple(grid), tuple(out_grid))

        return record

    for index, merger in enumerate(net.mergers):
        if isinstance(merger, LTMMerge) and merger.out_grid is not None:
            handles.append(merger.register_forward_hook(hook(index)))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                net(batch)
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return [
        {
            "block": index,
            "grid": f"{grids[index][0][0]}x{grids[index][0][1]}→{grids[index][1][0]}x{grids[index][1][1]}",
            "mask": net.mask,
            "moved": round(sum(values) / len(values), 4),
        }
        for index, values in sorted(totals.items())
    ]


def describe_movement(rows: list[dict]) -> str:
    """One line: ``block 1 10x10→7x6 moved 23%, …`` (empty when there are no LTM merges)."""
    return ", ".join(f"block {r['block']} {r['grid']} moved {100 * r['moved']:.0f}%" for r in rows)
