"""One knob: target compute relative to the unmerged backbone, turned into a per-block schedule.

The FLOP counter is the judge: a schedule family with one continuous parameter is bisected on
measured GMACs, then refined one grid row/column (LTM) or one token (ToMe) at a time until the
measured ratio is as close to the target as the integer grid allows. Measuring, rather than using
a cost formula, keeps the merge overhead (mask module, merge matmuls, unmerge) inside the budget
and works unchanged for every backbone and input size.

LTM merges at three points spread over a ViT's depth (a quarter, half and three quarters deep),
each keeping the same fraction of tokens; in MobileViT it merges after the first block's
attention in every transformer. ToMe removes r tokens in every block (r rounded per block).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from models.errors import ModelError, ScheduleError
from models.flops import count_gmacs
from models.ltm import LTMMerge
from models.network import InspectionNet

TOLERANCE = 0.03


@dataclass(frozen=True)
class ScheduleFit:
    schedule: list[Any]
    gmacs: float
    base_gmacs: float

    @property
    def ratio(self) -> float:
        return self.gmacs / self.base_gmacs


class _Evaluator:
    """Measured GMACs of a schedule on ``net``, memoised (counting is the slow part)."""

    def __init__(self, net: InspectionNet) -> None:
        self.net = net
        self.cache: dict[str, float] = {}

    def __call__(self, schedule: list[Any]) -> float:
        key = repr(schedule)
        if key not in self.cache:
            self.net.set_schedule(schedule)
            self.cache[key] = count_gmacs(self.net, self.net.spec.img_size, self.net.spec.in_chans)
        return self.cache[key]


def ltm_merge_points(net: InspectionNet) -> list[int]:
    """Blocks whose attention is followed by an LTM merge."""
    return net.adapter.ltm_merge_points(net.stages())


def _ltm_schedule(net: InspectionNet, keep: float, points: set[int]) -> list[Any]:
    schedule: list[Any] = [None] * len(net.mergers)
    for stage, (h, w) in zip(net.stages(), net.block_grids, strict=True):
        for index in stage:
            if index in points:
                tokens = max(1.0, h * w * keep)
                new_h = min(h, max(1, round(h * math.sqrt(keep))))
                new_w = min(w, max(1, round(tokens / new_h)))
                h, w = new_h, new_w
                schedule[index] = [h, w]
    return schedule


def _tome_schedule(net: InspectionNet, rate: float) -> list[Any]:
    schedule: list[Any] = [0] * len(net.mergers)
    for stage, (h, w) in zip(net.stages(), net.block_grids, strict=True):
        tokens = h * w
        for position, index in enumerate(stage):
            r = math.floor(rate) + (1 if position < (rate % 1) * len(stage) else 0)
            r = min(r, tokens // 2)
            schedule[index] = r
            tokens -= r
    return schedule


def _neighbours_ltm(net: InspectionNet, schedule: list[Any]) -> list[list[Any]]:
    out = []
    for index, entry in enumerate(schedule):
        if entry is None:
            continue
        for axis in (0, 1):
            for step in (-1, 1):
                candidate = [None if e is None else list(e) for e in schedule]
                candidate[index][axis] += step
                try:
                    net.set_schedule(candidate)
                except ModelError:  # an invalid neighbour (grid too large, r out of range) is skipped
                    continue
                out.append(candidate)
    return out


def _neighbours_tome(net: InspectionNet, schedule: list[Any]) -> list[list[Any]]:
    out = []
    for index in range(len(schedule)):
        for step in (-1, 1):
            candidate = list(schedule)
            candidate[index] += step
            try:
                net.set_schedule(candidate)
            except ModelError:
                continue
            out.append(candidate)
    return out


def fit_schedule(
    net: InspectionNet,
    gmacs_ratio: float,
    tolerance: float = TOLERANCE,
    points: list[int] | None = None,
) -> ScheduleFit:
    """Set and return the schedule whose measured GMACs are closest to ``gmacs_ratio`` × unmerged.

    ``points`` overrides where LTM merges (block indices; default :func:`ltm_merge_points`): the
    benchmarks use it to weigh fewer, larger merges against the product's three.
    Raises :class:`ScheduleError` when the target is outside what this backbone can reach.
    """
    if net.merge_mode == "none":
        raise ScheduleError("an unmerged model has no merge schedule")
    if not 0.0 < gmacs_ratio <= 1.0:
        raise ScheduleError(f"gmacs_ratio must be in (0, 1], got {gmacs_ratio}")
    evaluate = _Evaluator(net)
    if net.merge_mode == "ltm":
        where = set(ltm_merge_points(net) if points is None else points)
        if not where or not where <= set(range(len(net.mergers))):
            raise ScheduleError(f"merge points {sorted(where)} are not blocks of {net.spec.name}")
        family, neighbours, lo, hi = (lambda t: _ltm_schedule(net, t, where)), _neighbours_ltm, 0.0, 1.0
    else:
        max_rate = max(h * w for h, w in net.block_grids) / 2
        family, neighbours, lo, hi = (lambda t: _tome_schedule(net, t)), _neighbours_tome, max_rate, 0.0
    empty: list[Any] = [None if net.merge_mode == "ltm" else 0] * len(net.mergers)
    base = evaluate(empty)
    target = gmacs_ratio * base
    floor = evaluate(family(lo))
    if target < floor * (1 - tolerance):
        net.set_schedule(empty)
        raise ScheduleError(
            f"{net.spec.name} at {net.spec.img_size}px cannot reach gmacs_ratio {gmacs_ratio:.2f} with "
            f"{net.merge_mode.upper()}; the most it can save gives {floor / base:.2f}"
        )
    # Bisection: lo gives too few GMACs, hi too many.
    for _ in range(14):
        mid = (lo + hi) / 2
        if evaluate(family(mid)) < target:
            lo = mid
        else:
            hi = mid
    best = min((family(lo), family(hi)), key=lambda s: abs(evaluate(s) - target))
    # Local refinement on the integer schedule.
    while True:
        candidates = neighbours(net, best)
        challenger = min(candidates, key=lambda s: abs(evaluate(s) - target), default=best)
        if abs(evaluate(challenger) - target) >= abs(evaluate(best) - target):
            break
        best = challenger
    net.set_schedule(best)
    gmacs = evaluate(best)
    if abs(gmacs / base - gmacs_ratio) > tolerance:
        net.set_schedule(empty)
        raise ScheduleError(
            f"{net.spec.name}: the closest schedule gives ratio {gmacs / base:.3f}, "
            f"not {gmacs_ratio:.2f}±{tolerance}"
        )
    return ScheduleFit(best, gmacs, base)


def budget_grid(grid: tuple[int, int], tokens: int) -> tuple[int, int]:
    """The grid of at most ``tokens`` cells, no larger than ``grid`` on either side, closest to
    ``grid``'s aspect among those that keep at least 90 % of the budget."""
    h, w = grid
    if h * w <= tokens:
        return grid
    fits = [(nh, min(w, tokens // nh)) for nh in range(1, h + 1) if tokens // nh >= 1]
    most = max(a * b for a, b in fits)
    near = [g for g in fits if g[0] * g[1] >= 0.9 * most]
    return min(near, key=lambda g: (abs(math.log((g[0] / g[1]) / (h / w))), -g[0] * g[1]))


def fit_token_budget(net: InspectionNet, tokens: int) -> ScheduleFit:
    """Cap the transformer's tokens: one LTM merge after the first block's attention to at most
    ``tokens`` tokens, however large the input.

    This is how LTM pays for resolution: the stem sees every pixel, the first block's attention sees
    every stride-16 token (so a defect a few tokens wide is noticed before anything is merged), and
    the merge then folds the uniform background and the letterbox padding into few tokens; every
    later block costs what it would at a small input. A grid already within the budget is not
    merged at all.
    """
    if net.merge_mode != "ltm":
        raise ScheduleError(
            f"a token budget needs learnable merging (LTM); this model merges with {net.merge_mode!r} "
            "(give ToMe a --gmacs-ratio instead)"
        )
    if tokens < 1:
        raise ScheduleError(f"the token budget must be at least 1, got {tokens}")
    evaluate = _Evaluator(net)
    empty: list[Any] = [None] * len(net.mergers)
    base = evaluate(empty)
    schedule = list(empty)
    for stage, grid in zip(net.stages(), net.block_grids, strict=True):
        target = budget_grid(grid, tokens)
        if target != grid:
            schedule[stage[0]] = list(target)
    net.set_schedule(schedule)
    return ScheduleFit(schedule, evaluate(schedule), base)


def describe_schedule(net: InspectionNet) -> str:
    """One line per merging block, for ``inspector models info``."""
    lines = []
    for index, (merger, entry) in enumerate(zip(net.mergers, net.schedule(), strict=True)):
        if isinstance(merger, LTMMerge) and entry:
            lines.append(f"block {index}: LTM -> {entry[0]}x{entry[1]} tokens")
        elif entry:
            lines.append(f"block {index}: ToMe r={entry}")
    return "\n".join(lines) or "no merging"
