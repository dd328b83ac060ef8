"""The keep-defects term: log 2 when the merge ignores the defect, lower when it keeps it apart, and
its gradient reaches the merge modules; the mask-to-grid mapping follows the input geometry."""

from __future__ import annotations

import math

import numpy as np
import torch

from models.families.base import MergeMap
from models.keep_defects import keep_defects_loss
from models.network import InspectionNet
from models.preprocess import Preprocessing, masks_on_grid


def _map(sizes_of_patches: torch.Tensor) -> MergeMap:
    """A 2x2 grid where patch i ends wholly in final token i of the given size."""
    return MergeMap((2, 2), torch.eye(4)[None], sizes_of_patches[None])


def test_the_term_is_log_2_when_ignored_lower_when_the_defect_is_kept_and_none_without_a_defect():
    cover = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    even = keep_defects_loss([_map(torch.tensor([2.0, 2.0, 2.0, 2.0]))], cover)
    kept = keep_defects_loss([_map(torch.tensor([1.0, 4.0, 4.0, 4.0]))], cover)
    lost = keep_defects_loss([_map(torch.tensor([8.0, 1.0, 1.0, 1.0]))], cover)
    assert math.isclose(float(even), math.log(2), rel_tol=1e-5)
    assert float(kept) < float(even) < float(lost)
    assert keep_defects_loss([_map(torch.ones(4))], torch.zeros(1, 2, 2)) is None
    assert keep_defects_loss([_map(torch.ones(4))], torch.ones(1, 2, 2)) is None
    assert keep_defects_loss([], cover) is None


def test_its_gradient_reaches_the_ltm_merge(tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 3, "ltm", mask="content")
    net.set_schedule([None, [3, 3], None, [2, 2]])
    out = net.run(torch.randn(2, 1, 64, 64), track_maps=True)
    cover = torch.zeros(2, *out.merge_maps[0].grid)
    cover[:, :2, :2] = 1.0
    keep_defects_loss(out.merge_maps, cover).backward()
    merger = next(m for m in net.mergers if m.out_grid is not None)
    assert merger.proj.weight.grad is not None and merger.proj.weight.grad.abs().sum() > 0


def test_a_mask_lands_on_the_grid_where_a_letterboxed_image_puts_it():
    mask = np.zeros((40, 80), bool)
    mask[:, 60:] = True  # the right quarter of a wide part
    prep = Preprocessing(size=64, channels=1, mean=[0.5], std=[0.2], resize="letterbox")
    cover = masks_on_grid([mask, None], prep, (4, 4))[0]
    assert float(cover[0].max()) < 0.01  # the top row is padding
    assert float(cover[1:3, 3].min()) > 0.9 and float(cover[1:3, :3].max()) < 0.1
    assert float(masks_on_grid([None], prep, (4, 4)).abs().sum()) == 0
