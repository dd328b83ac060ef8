"""LTM against the unmerged model and ToMe, side by side, with the paper's headline table beside it.

Profiles (``PROFILES``): ``quick`` trains a tiny ViT on a generated 3-class station in about a
minute (CI runs it to exercise the machinery; its numbers mean nothing); ``full`` runs xsdd,
magnetic_tile and ELPV on ``vit-cpu`` and ``mobilevit-xs`` at the product's 112 px, seeds 0-2,
for hours. Everything is cached under ``<out>/runs/suite/<profile>/`` (bundles + one metrics JSON
per variant, speed per backbone): a rerun skips what is finished and resumes an interrupted base
training from its last epoch, so ``full`` can run over several sittings.

How the training budget is shared (same data, same epochs, same seeds for every variant). Per
(dataset, backbone, seed) ONE unmerged base model is trained for E epochs with the product's
``train_model`` (``inspector train --merge none``). Every variant then starts from that base and
gets the same F further epochs through the product's ``finetune_model`` (``inspector finetune``
with ``--trainable all``: AdamW at 5e-4 with a 1-epoch warm-up and cosine decay, the default light
augmentation, the starting weights competing as "epoch -1" in model selection on validation
macro-F1, as the wizard does). This reuses the product's loop with the least new code:

- ``unmerged``: the base + F unmerged epochs;
- ``ltm-R``: ``convert(base, "ltm", R)`` (mask modules start as local average pooling) + F epochs
  with the Information Bottleneck term (``Recipe.ib``: weight 0.1 after 30% of the F epochs);
- ``ltm-0.6-noib``: the same at 0.6 without the IB term (the ablation);
- ``tome-R-ots``: ``convert(base, "tome", R)``, no training (ToMe off the shelf);
- ``tome-R-ft``: the same + F epochs (no IB: it is LTM's training objective, not ToMe's);
- design tries, only on ``Profile.design_cells`` (xsdd / vit-cpu): ``ltm-0.6-mlr10`` (10x learning
  rate for the merge modules) and ``ltm-0.6-one`` (the 0.6 budget as one merge after block 2).

Unmerged and ToMe therefore also see E+F epochs; nothing but the merging differs. The split is
the dataset's own (xsdd, magnetic_tile) or a seeded stratified one drawn ONCE with seed 0 (ELPV,
the generated station), so every seed and variant is scored on the same test images; the seeds
vary initial weights, sampling and augmentation. (Bundles record ``split_seed`` = the training
seed; they are benchmark artefacts, not for ``inspector eval`` on re-split data.) Ratios the
backbone cannot reach (MobileViT-XS has floors, see ``models/schedule.py``) are skipped with the
schedule's own reason. The converted bundles keep the base's UNSURE thresholds (verdict
thresholds play no part in the metrics here); fine-tuned ones are recalibrated by
``finetune_model``.

Speed (per backbone, all finished architectures of every dataset in ONE process, models
interleaved round by round as in ``benchmarks/merge_cost.py``; PyTorch first, then ONNX Runtime
with no ORT session alive while PyTorch is timed): PyTorch eager and ONNX Runtime p50/p95 at batch
1, PyTorch throughput at batch 16, peak memory of a batch-16 PyTorch forward (growth of the
process's peak RSS, VmHWM after resetting it through /proc/self/clear_refs, with glibc told to
mmap large blocks so freed tensors leave RSS; Linux only, "n/a" elsewhere), and a single-precision
matmul peak (``torch.mm``, 1024-2048 square, before and after the PyTorch phase) of the same
machine in the same run, next to each model's achieved ONNX Runtime GFLOP/s (2 x GMACs / p50).
Variants that share an architecture (LTM with and without IB, ToMe off the shelf and fine-tuned)
share one measurement; ToMe is not exportable, so its ONNX Runtime cells are n/a. Usage:

    python -m benchmarks.suite --profile quick
    python -m benchmarks.suite --profile full [--only-dataset xsdd] [--only-backbone vit-cpu] [--seeds 0 1]
    python -m benchmarks.suite --profile full --only-dataset elpv --no-speed   # train only, time later
    python -m benchmarks.suite --profile full --report      # tables + JSON + PNG from whatever is cached

The package's rooms: ``profiles`` (profiles, variants, the paper's table), ``orchestration`` (the
plan, the cache-aware run, the ETA), ``speed`` (latency, throughput, memory, matmul peak),
``report`` (JSON, markdown, plot), ``cache`` (JSON on disk) and ``cli``.
"""

from benchmarks.suite.cli import main
from benchmarks.suite.orchestration import Step, Suite
from benchmarks.suite.profiles import COLOURS, MARKERS, METHODS, PAPER, PROFILES, Profile, Variant, variants

__all__ = [
    "COLOURS",
    "MARKERS",
    "METHODS",
    "PAPER",
    "PROFILES",
    "Profile",
    "Step",
    "Suite",
    "Variant",
    "main",
    "variants",
]
