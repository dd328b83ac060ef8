"""The model registry in the app home: numbered versions, one deployed, deploy and roll back.

``<home>/models/v<N>/`` holds a copy of each registered bundle and ``<home>/models/registry.json``
the index: every version's figures (metrics, GMACs, latency), which one is deployed and the
deployment history. Copies are made beside the target and renamed into place; the index is
replaced atomically, so a crash never leaves a half-registered model or a dangling deployment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from models.bundle import load_bundle
from models.files import atomic_write_text, default_mode, read_json
from models.flops import count_gmacs, count_params
from models.latency import torch_latency

INDEX = "registry.json"
# A version id is "v" and a positive number, nothing else: it names a folder under the registry,
# so an id from registry.json must never be able to point anywhere else ("../../x").
VERSION_ID = re.compile(r"v[1-9][0-9]*")


def is_version_id(text: str) -> bool:
    return VERSION_ID.fullmatch(text) is not None


@dataclass
class Version:
    id: str
    created: str
    source: str
    classes: list[str]
    merge: str
    gmacs_ratio: float | None
    gmacs: float
    params: int
    latency_ms: float
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""


class Registry:
    def __init__(self, home: Path) -> None:
        self.root = home / "models"
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ index
    def _read(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"versions": [], "deployed": None, "history": []}
        try:
            index = read_json(path)
            ids = [Version(**entry).id for entry in index["versions"]]
            bad = [i for i in ids if not isinstance(i, str) or not is_version_id(i)]
            if bad:
                raise ValueError(f"invalid version id {bad[0]!r} (expected v1, v2, ...)")
            if len(set(ids)) != len(ids):
                raise ValueError("a version id is listed twice")
            if not isinstance(index["history"], list):
                raise TypeError("history is not a list")
            unknown = [i for i in [index["deployed"], *index["history"]] if i is not None and i not in ids]
            if unknown:
                raise ValueError(f"deployment of unknown version {unknown[0]!r}")
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InspectorError(f"{path}: the registry index is unreadable ({exc})") from exc
        return index

    def _write(self, index: dict[str, Any]) -> None:
        atomic_write_text(self.root / INDEX, json.dumps(index, indent=2) + "\n")

    def versions(self) -> list[Version]:
        return [Version(**v) for v in self._read()["versions"]]

    def deployed(self) -> Version | None:
        index = self._read()
        return next((Version(**v) for v in index["versions"] if v["id"] == index["deployed"]), None)

    def path_of(self, version_id: str) -> Path:
        if not is_version_id(version_id) or version_id not in {v.id for v in self.versions()}:
            raise InspectorError(f"no model version {version_id!r} in the registry ({self.root})")
        return self.root / version_id

    # ------------------------------------------------------------------ changes
    def add(self, bundle_path: Path, note: str = "") -> Version:
        """Register a copy of a bundle (validated first) as the next version."""
        bundle = load_bundle(bundle_path)
        meta, spec = bundle.meta, bundle.meta.backbone
        gmacs = round(count_gmacs(bundle.net, spec.img_size, spec.in_chans), 4)
        latency = round(torch_latency(bundle.net, runs=30, warmup=5).p50_ms, 2)
        index = self._read()
        taken = [int(v["id"][1:]) for v in index["versions"]]
        taken += [int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()]
        version_id = f"v{1 + max(taken, default=0)}"
        staging = Path(tempfile.mkdtemp(prefix=f".{version_id}.", dir=self.root))
        try:
            shutil.copytree(bundle_path, staging, dirs_exist_ok=True)
            for copied in staging.rglob("*"):  # older bundles kept their weights 0600
                if copied.is_file() and not copied.is_symlink():
                    os.chmod(copied, default_mode())
            os.chmod(staging, 0o755)
            os.replace(staging, self.root / version_id)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            reason = exc.strerror or exc
            raise InspectorError(f"could not copy {bundle_path} into the registry: {reason}") from exc
        provenance = meta.provenance
        version = Version(
            id=version_id,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            source=str(Path(bundle_path).resolve()),
            classes=meta.classes,
            merge=meta.merge_mode,
            gmacs_ratio=meta.gmacs_ratio,
            gmacs=gmacs,
            params=count_params(bundle.net),
            latency_ms=latency,
            metrics={
                k: provenance[k]
                for k in ("val", "after", "before", "merge_movement", "recalibration")
                if k in provenance
            },
            note=note,
        )
        index["versions"].append(asdict(version))
        self._write(index)
        return version

    def check_ref(self, ref: str) -> None:
        """Raise unless ``ref`` names a registered version or a folder, by the text alone.

        ``v<N>`` always means a registry version, even when a folder of that name sits in the
        working directory (``./v1`` is the folder): a deploy never picks up a stray folder.
        """
        if is_version_id(ref):
            if ref not in {v.id for v in self.versions()}:
                hint = f"; for the folder {ref} here, write ./{ref}" if Path(ref).is_dir() else ""
                raise InspectorError(f"no model version {ref!r} in the registry ({self.root}){hint}")
        elif not Path(ref).is_dir():
            raise InspectorError(f"{ref}: neither a model version (v1, v2, ...) nor a bundle folder")

    def deploy(self, ref: str) -> Version:
        """Deploy a registered version (``v3``) or a bundle folder (registered first); see
        :meth:`check_ref` for which is which."""
        self.check_ref(ref)
        if not is_version_id(ref):
            ref = self.add(Path(ref)).id
        self.path_of(ref)
        index = self._read()
        index["deployed"] = ref
        index["history"].append(ref)
        self._write(index)
        return next(Version(**v) for v in index["versions"] if v["id"] == ref)

    def rollback(self) -> Version:
        """Undo the last deployment: the one deployed before it becomes current again."""
        index = self._read()
        history = index["history"]
        if len(history) < 2:
            raise InspectorError("nothing to roll back to: no earlier deployment in the registry")
        history.pop()
        index["deployed"] = history[-1]
        self._write(index)
        return next(Version(**v) for v in index["versions"] if v["id"] == history[-1])
