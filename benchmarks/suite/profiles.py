"""The suite's profiles (what to train and time), its variants (unmerged, LTM, ToMe, design
tries) and the paper's headline table; one place for what every other module reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.backbones import BACKBONE_PRESETS

ROOT = Path(__file__).resolve().parents[2]  # the repository (benchmarks/suite/ is two down)
SPLIT_SEED = 0
SYNTHETIC = "synthetic"
# A tiny ViT for the quick profile: 6x6 tokens of width 48 at 48 px, 4 blocks.
QUICK_BACKBONE = ("vit_tiny_patch16_224", {"depth": 4, "embed_dim": 48, "num_heads": 2, "patch_size": 8})


@dataclass(frozen=True)
class Profile:
    datasets: tuple[str, ...]
    backbones: tuple[str, ...]
    seeds: tuple[int, ...]
    base_epochs: int  # E: the unmerged base every variant starts from
    extra_epochs: int  # F: what every trained variant gets on top
    ratios: tuple[float, ...]  # LTM points; ToMe at the same GMACs
    ablation_ratio: float | None  # LTM without the IB term
    merge_lr_ratio: float | None = None  # LTM with a 10x merge learning rate (a design try)
    one_merge: tuple[float, int] | None = None  # LTM at (ratio) as ONE merge after (block): a design try
    design_cells: tuple[tuple[str, str], ...] = ()  # (dataset, backbone) the design tries run on; () = all
    img_size: int = 112
    extra_ratios: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per backbone
    latency_runs: int = 100  # batch-1 calls per model and runtime, over all rounds
    rounds: int = 5
    batch_runs: int = 20  # batch-16 calls per model, over all rounds
    batch: int = 16
    warmup: int = 5  # untimed calls before each model's timed calls, every round
    matmul_seconds: float = 1.0  # per matrix size, twice per speed run (before and after PyTorch)
    note: str = ""  # printed under the report's heading


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        datasets=(SYNTHETIC,),
        backbones=("vit-quick",),
        seeds=(0,),
        base_epochs=1,
        extra_epochs=1,
        ratios=(0.6,),
        ablation_ratio=0.6,
        img_size=48,
        latency_runs=10,
        rounds=2,
        batch_runs=2,
        warmup=2,
        matmul_seconds=0.2,
        note="**A smoke test of the machinery (CI runs it): a tiny ViT, 1+1 epochs on generated "
        "images, a handful of timed calls on a shared machine. Its numbers mean nothing.**",
    ),
    "full": Profile(
        datasets=("xsdd", "magnetic_tile", "elpv"),
        backbones=("vit-cpu", "mobilevit-xs"),
        seeds=(0, 1, 2),
        base_epochs=20,
        extra_epochs=6,
        ratios=(0.8, 0.6, 0.45),
        ablation_ratio=0.6,
        merge_lr_ratio=0.6,
        # Fewer operator calls for PyTorch eager (benchmarks/merge_points.py): the 0.6 budget as
        # one merge after block 2 instead of three spread merges.
        one_merge=(0.6, 2),
        # Design tries run (3 seeds) on the cell where they were conceived; the other cells do
        # not spend 6 more epochs per seed on each.
        design_cells=(("xsdd", "vit-cpu"),),
        # MobileViT-XS reaches neither 0.6 nor 0.45 at 112 px (LTM floor 0.72, ToMe 0.80): its LTM
        # curve gets the paper's own MobileViT-XS ratio (0.52 / 0.70 GFLOPs = 0.74) instead.
        extra_ratios={"mobilevit-xs": (0.74,)},
    ),
}

# Wang & Yang, "Efficient Visual Transformer by Learnable Token Merging", ImageNet-1k top-1, GPU.
PAPER = [
    {"model": "MobileViT-XS", "gflops": (0.70, 0.52), "top1_delta": 1.0},
    {"model": "ViT-S", "gflops": (4.3, 3.7), "top1_delta": 0.6},
    {"model": "ViT-B", "gflops": (17.6, 12.9), "top1_delta": 0.2},
    {"model": "Swin-T", "gflops": (4.5, 3.8), "top1_delta": 0.5},
]

METHODS = (
    "unmerged",
    "LTM",
    "LTM no-IB",
    "LTM merge-lr×10",
    "LTM one merge",
    "ToMe off-the-shelf",
    "ToMe fine-tuned",
)

# The plot's style per method (every method in METHODS needs one).
COLOURS = {
    "unmerged": "black",
    "LTM": "tab:blue",
    "LTM no-IB": "tab:cyan",
    "LTM merge-lr×10": "tab:purple",
    "LTM one merge": "tab:green",
    "ToMe off-the-shelf": "tab:orange",
    "ToMe fine-tuned": "tab:red",
}
MARKERS = {
    "unmerged": "*",
    "LTM": "o",
    "LTM no-IB": "D",
    "LTM merge-lr×10": "P",
    "LTM one merge": "X",
    "ToMe off-the-shelf": "v",
    "ToMe fine-tuned": "s",
}


@dataclass(frozen=True)
class Variant:
    key: str  # folder and cache name
    method: str  # one of METHODS
    mode: str  # none / ltm / tome
    ratio: float | None
    train: bool  # gets the F extra epochs
    ib: bool = False
    merge_lr_scale: float = 1.0  # Recipe.merge_lr_scale: the merge modules' learning-rate multiplier
    points: tuple[int, ...] | None = None  # LTM merge blocks (None: the product's schedule)

    @property
    def arch(self) -> str:
        """Variants with the same architecture share one speed measurement."""
        if self.mode == "none":
            return "unmerged"
        where = "" if self.points is None else "-at" + "-".join(map(str, self.points))
        return f"{self.mode}-{self.ratio:g}{where}"

    @property
    def label(self) -> str:
        return self.method if self.ratio is None else f"{self.method} @ {self.ratio:g}"


def variants(profile: Profile, backbone: str, dataset: str) -> list[Variant]:
    ratios = sorted(set(profile.ratios) | set(profile.extra_ratios.get(backbone, ())), reverse=True)
    out = [Variant("unmerged", "unmerged", "none", None, True)]
    out += [Variant(f"ltm-{r:g}", "LTM", "ltm", r, True, ib=True) for r in ratios]
    if profile.ablation_ratio is not None:
        r = profile.ablation_ratio
        out.append(Variant(f"ltm-{r:g}-noib", "LTM no-IB", "ltm", r, True))
    cells = profile.design_cells
    design = not cells or (dataset, backbone) in cells
    if profile.merge_lr_ratio is not None and design:
        # A design try: the LTM scalars barely leave their initialisation at 1x (BENCHMARKS.md,
        # adaptation), so the merge modules get 10x the backbone's learning rate.
        r = profile.merge_lr_ratio
        out.append(
            Variant(f"ltm-{r:g}-mlr10", "LTM merge-lr×10", "ltm", r, True, ib=True, merge_lr_scale=10.0)
        )
    if profile.one_merge is not None and design:
        r, block = profile.one_merge
        out.append(Variant(f"ltm-{r:g}-one", "LTM one merge", "ltm", r, True, ib=True, points=(block,)))
    out += [Variant(f"tome-{r:g}-ots", "ToMe off-the-shelf", "tome", r, False) for r in ratios]
    out += [Variant(f"tome-{r:g}-ft", "ToMe fine-tuned", "tome", r, True) for r in ratios]
    return out


def register_presets() -> None:
    """The quick profile's tiny ViT as a backbone preset, so ``train_model`` can build it by name."""
    BACKBONE_PRESETS.setdefault("vit-quick", QUICK_BACKBONE)
