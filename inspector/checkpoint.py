"""Resumable training state without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds ``state.safetensors`` (model weights under ``model.``, optimizer moments
under ``opt.<param>.<name>``) and ``state.json`` (epoch, history, recipe, the network's merge mode
and schedule, optimizer hyper-parameters). Both are replaced atomically at every epoch end, so a
Ctrl-C or a crash leaves the last complete epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from inspector.errors import InspectorError

TENSORS = "state.safetensors"
META = "state.json"


def save_checkpoint(
    folder: Path, net: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    state = optimizer.state_dict()
    for index, moments in state["state"].items():
        for name, value in moments.items():
            tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [
        {k: v for k, v in g.items() if k != "params"} | {"params": g["params"]} for g in state["param_groups"]
    ]
    meta = dict(meta, optimizer_groups=groups)
    tmp_tensors, tmp_meta = folder / f".{TENSORS}.tmp", folder / f".{META}.tmp"
    save_file(tensors, str(tmp_tensors))
    tmp_meta.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp_tensors, folder / TENSORS)
    os.replace(tmp_meta, folder / META)


def read_checkpoint_meta(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InspectorError(f"{folder}: no usable checkpoint to resume from ({exc})") from exc


def load_checkpoint(folder: Path, net: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    meta = read_checkpoint_meta(folder)
    try:
        tensors = load_file(str(folder / TENSORS))
    except (OSError, SafetensorError) as exc:
        raise InspectorError(f"{folder / TENSORS}: unreadable checkpoint ({exc})") from exc
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": meta["optimizer_groups"]})
    return meta
