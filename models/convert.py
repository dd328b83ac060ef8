"""Turn a trained unmerged network into an LTM or ToMe network without losing its training.

The backbone weights are copied as they are; LTM mask modules start as local average pooling
(see :mod:`models.ltm`), so the converted model needs only a short fine-tune — "replace the block,
fine-tune a little", as the paper and the plant both want. ToMe needs no training at all.
"""

from __future__ import annotations

from models.errors import ModelError
from models.network import InspectionNet
from models.schedule import ScheduleFit, fit_schedule


def convert(
    net: InspectionNet,
    mode: str,
    gmacs_ratio: float,
    rank: int = 16,
    points: list[int] | None = None,
    mask: str = "content",
) -> tuple[InspectionNet, ScheduleFit]:
    """A new network in merge ``mode`` with ``net``'s backbone weights, scheduled to ``gmacs_ratio``.

    ``points``: LTM merge blocks other than the default ones (see :func:`fit_schedule`).
    """
    if net.merge_mode != "none":
        raise ModelError(f"only unmerged models can be converted (this one is {net.merge_mode})")
    converted = InspectionNet(net.spec, net.backbone.num_classes, mode, rank, mask)
    converted.backbone.load_state_dict(net.backbone.state_dict())
    fit = fit_schedule(converted, gmacs_ratio, points=points)
    converted.train(net.training)
    return converted, fit
