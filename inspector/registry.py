"""The model registry in the app home: numbered versions, one deployed, deploy and roll back.

``<home>/models/v<N>/`` holds a copy of each registered bundle and ``<home>/models/registry.json``
the index: every version's figures (metrics, GMACs, latency), which one is deployed and the
deployment history. Copies are made beside the target and renamed into place; the index is
replaced atomically, so a crash never leaves a half-registered model or a dangling deployment.

Only this module writes under ``<home>/models``: the CLI refuses any other output there
(:func:`refuse_registry_output`), and each version's ``model.json`` and weights are checksummed
into the index when it is added, then checked before a version is run, deployed or rolled back to
(:meth:`Registry.checked_path`). A bundle swapped in by hand, or by ``train --out <home>/models/v1
--force``, is refused instead of judging parts under a name that no longer means those weights.
The checksums guard against changes made outside the product, not against someone who edits the
index as well.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.stations import StationScore, parse_entries, validated_stations
from models.bundle import (
    META_FILE,
    STAGING,
    WEIGHTS_FILE,
    load_bundle,
    read_meta,
    sweep_leftovers,
    work_prefix,
)
from models.errors import ModelError
from models.files import atomic_write_text, default_mode, read_json, sha256_file
from models.flops import count_gmacs, count_params
from models.latency import torch_latency

INDEX = "registry.json"
# A version id is "v" and a positive number, nothing else: it names a folder under the registry,
# so an id from registry.json must never be able to point anywhere else ("../../x").
VERSION_ID = re.compile(r"v[1-9][0-9]*")
# The files of a version whose SHA-256 the index records (model.json carries the weights' hash too).
CHECKED_FILES = (META_FILE, WEIGHTS_FILE)
SHA256 = re.compile(r"[0-9a-f]{64}")


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
    # File name -> SHA-256 of the registered copy; empty for a version registered before the
    # registry kept checksums (it loads unverified and is pinned at its next deploy or rollback).
    checksums: dict[str, str] = field(default_factory=dict)
    # Every station the version was validated on (inspector.stations.StationScore as JSON), read
    # from its bundle when it was added; None for a version registered before the registry kept
    # them (Registry.station_scores then reads its model.json).
    stations: list[dict[str, Any]] | None = None

    def station_scores(self) -> list[StationScore]:
        """The recorded stations, validated (the index is a file anyone could edit)."""
        return parse_entries(self.stations)


def _check_checksums(entry: dict[str, Any]) -> None:
    """An index entry's checksums are absent, or one SHA-256 for each of :data:`CHECKED_FILES`."""
    sums = entry.get("checksums", {})
    valid = isinstance(sums, dict) and (
        not sums
        or set(sums) == set(CHECKED_FILES)
        and all(isinstance(v, str) and SHA256.fullmatch(v) for v in sums.values())
    )
    if not valid:
        raise ValueError(f"invalid checksums for {entry.get('id')!r}")


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of each of a bundle folder's :data:`CHECKED_FILES` (an unreadable one raises OSError)."""
    return {name: sha256_file(folder / name) for name in CHECKED_FILES}


def _changed_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    """The recorded files of ``folder`` that are missing, unreadable or differ from their checksum."""
    changed = []
    for name, expected in recorded.items():
        try:
            same = (folder / name).is_file() and sha256_file(folder / name) == expected
        except OSError:
            same = False
        if not same:
            changed.append(name)
    return changed


def registry_holding(path: str | Path) -> Path | None:
    """The model registry folder (``<home>/models`` with its index) that ``path`` is or lies in.

    Found from the path itself (symlinks resolved), so any home's registry counts, not only the
    one this command would use; a ``models`` folder without ``registry.json`` has no versions yet.
    """
    target = Path(path).resolve()
    for folder in (target, *target.parents):
        if folder.name == "models" and (folder / INDEX).is_file():
            return folder
    return None


def refuse_registry_output(path: str | Path, option: str = "--out") -> None:
    """Refuse an output inside a model registry, before any work: a bundle written (or forced)
    over ``<home>/models/v1`` would swap the deployed weights with no gate and no audit row."""
    root = registry_holding(path)
    if root is not None:
        raise InspectorError(
            f"{option} {path} is inside the model registry {root}: its versions are written only by "
            "'inspector models deploy' or the fine-tune wizard; write elsewhere and deploy that"
        )


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
            for entry in index["versions"]:
                _check_checksums(entry)
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

    def station_scores(self, version: Version) -> list[StationScore]:
        """The stations ``version`` was validated on: as recorded in the index, or, for a version
        added before the index kept them, as its registered ``model.json`` says (unreadable: none)."""
        if version.stations is not None:
            return version.station_scores()
        try:
            meta = read_json(self.root / version.id / META_FILE)  # ids are checked by _read
        except (OSError, ValueError):
            return []
        return validated_stations(meta.get("provenance") if isinstance(meta, dict) else None)

    def with_stations(self, versions: list[Version]) -> list[Version]:
        """``versions`` with every one's stations filled in (what the listings show)."""
        return [replace(v, stations=[s.to_json() for s in self.station_scores(v)]) for v in versions]

    def path_of(self, version_id: str) -> Path:
        """Where a version's files are; not verified (see :meth:`checked_path` before loading it)."""
        if not is_version_id(version_id) or version_id not in {v.id for v in self.versions()}:
            raise InspectorError(f"no model version {version_id!r} in the registry ({self.root})")
        return self.root / version_id

    def checked_path(self, version_id: str) -> Path:
        """:meth:`path_of`, once the version's files match the checksums recorded when it was added.

        A version from an index written before checksums were kept has none to compare: it is
        used unverified (refusing it would stop a line over an upgrade) and pinned by its next
        :meth:`deploy` or :meth:`rollback`, which write the index anyway; a line run only reads it.
        """
        path = self.path_of(version_id)
        version = next(v for v in self.versions() if v.id == version_id)
        self._verify(version)
        return path

    def _verify(self, version: Version) -> None:
        changed = _changed_files(self.root / version.id, version.checksums)
        if changed:
            raise InspectorError(
                f"model version {version.id} was changed outside the product ({', '.join(changed)} not "
                f"as registered in {self.root / version.id}); refusing to use it"
            )

    def _pinned(self, index: dict[str, Any], version_id: str) -> Version:
        """The index entry of ``version_id``, verified; a legacy entry gets its checksums recorded."""
        entry = next(v for v in index["versions"] if v["id"] == version_id)
        version = Version(**entry)
        self._verify(version)
        if not version.checksums:
            try:
                entry["checksums"] = file_checksums(self.root / version_id)
            except OSError as exc:
                reason = exc.strerror or exc
                raise InspectorError(f"model version {version_id}: unreadable ({reason})") from exc
        return Version(**entry)

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
        sweep_leftovers(self.root)  # an add killed mid-copy (kill -9, power loss) left a hidden folder
        staging = Path(tempfile.mkdtemp(prefix=work_prefix(self.root / version_id, STAGING), dir=self.root))
        try:
            shutil.copytree(bundle_path, staging, dirs_exist_ok=True)
            for copied in staging.rglob("*"):  # older bundles kept their weights 0600
                if copied.is_file() and not copied.is_symlink():
                    os.chmod(copied, default_mode())
            checksums = self._copied_checksums(bundle_path, staging)
            os.chmod(staging, 0o755)
            os.replace(staging, self.root / version_id)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            reason = exc.strerror or exc
            raise InspectorError(f"could not copy {bundle_path} into the registry: {reason}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
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
            checksums=checksums,
            stations=[score.to_json() for score in validated_stations(provenance)],
        )
        index["versions"].append(asdict(version))
        self._write(index)
        return version

    @staticmethod
    def _copied_checksums(source: Path, copy: Path) -> dict[str, str]:
        """Checksums of the copy, which must be the bundle that was validated: weights that no
        longer match the copied model.json (the source changed while it was copied) are refused."""
        checksums = file_checksums(copy)
        try:
            promised = read_meta(copy)[1]
        except ModelError as exc:
            raise InspectorError(f"{source} changed while it was copied into the registry ({exc})") from None
        if checksums[WEIGHTS_FILE] != promised:
            raise InspectorError(f"{source} changed while it was copied into the registry; add it again")
        return checksums

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
        version = self._pinned(index, ref)  # a version changed outside the product is never deployed
        index["deployed"] = ref
        index["history"].append(ref)
        self._write(index)
        return version

    def rollback(self) -> Version:
        """Undo the last deployment: the one deployed before it becomes current again."""
        index = self._read()
        history = index["history"]
        if len(history) < 2:
            raise InspectorError("nothing to roll back to: no earlier deployment in the registry")
        version = self._pinned(index, history[-2])  # refused (nothing changed) if it was tampered with
        history.pop()
        index["deployed"] = history[-1]
        self._write(index)
        return version
