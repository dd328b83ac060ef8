"""Resumable training state without pickle, in one file replaced atomically after every epoch.

``checkpoint.safetensors`` holds the model weights (``model.``), the best epoch's weights so far
(``best.``), the optimizer moments (``opt.<param>.<name>``) and, in its metadata, the JSON record
of the run (epoch, history, best, recipe, merge mode and schedule, optimizer hyper-parameters).
One file and one rename: a Ctrl-C, a crash or a full disk leaves the last complete epoch, never a
mix of two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from inspector.errors import InspectorError
from models.files import atomic_write

FILE = "checkpoint.safetensors"


def save_checkpoint(
    folder: Path,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    best_state: dict[str, torch.Tensor] | None,
    meta: dict[str, Any],
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if best_state is not None:
        tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()}
    state = optimizer.state_dict()
    for index, moments in state["state"].items():
        for name, value in moments.items():
            tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    record = json.dumps(dict(meta, optimizer_groups=state["param_groups"]))
    atomic_write(folder / FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"run": record}))


def read_checkpoint_meta(folder: Path) -> dict[str, Any]:
    try:
        with safe_open(str(folder / FILE), framework="pt") as handle:
            return json.loads(handle.metadata()["run"])
    except (OSError, SafetensorError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InspectorError(f"{folder / FILE}: no usable checkpoint to resume from ({exc})") from exc


def load_checkpoint(
    folder: Path, net: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore ``net`` and ``optimizer``; returns the run record and the best weights so far."""
    meta = read_checkpoint_meta(folder)
    try:
        tensors = load_file(str(folder / FILE))
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        moments: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, name = key.split(".", 2)
                moments.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": moments, "param_groups": meta["optimizer_groups"]})
    except (OSError, SafetensorError, RuntimeError, ValueError, KeyError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise InspectorError(f"{folder / FILE}: the checkpoint does not match this run ({reason})") from exc
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return meta, best
