"""Model bundles (DESIGN §4): a folder with ``model.safetensors`` and ``model.json``.

Weights are safetensors only — never pickle, never ``torch.load`` on anything a user hands us.
``model.json`` records everything needed to rebuild the exact network (backbone, merge mode and
schedule), to feed it (preprocessing), to judge its outputs (classes, normal class, thresholds) and
to trust it (provenance, a checksum of the weights). Loading validates all of it and reports one
:class:`BundleError` naming the file and the problem. Saving writes a complete bundle beside the
target and renames it into place, so a crash or a full disk never leaves a half-written model.
The hidden folders it works in are named after their writer (host and PID), so the next save to
the same folder removes those a killed writer left (:func:`sweep_leftovers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.backbones import BackboneSpec
from models.errors import BundleError, ModelError
from models.files import JSONTooDeep, default_mode, fsync_file, read_json, sha256_file
from models.ltm import MASKS
from models.network import MERGE_MODES, InspectionNet
from models.preprocess import Preprocessing

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
# Optional: thumbnails of the training station's reference sample, for fine-tuning once the station's
# folder is gone (inspector.training.reference_sample). model.json records its size and SHA-256.
REFERENCE_FILE = "reference.safetensors"
BUNDLE_FILES = (WEIGHTS_FILE, META_FILE, REFERENCE_FILE)
# The hidden folders save_bundle works in, beside the target: the new bundle, and the one it replaces.
STAGING, RETIRED = "staging", "old"
_LEFTOVER = re.compile(
    rf"\.(?P<name>.+)\.(?P<kind>{STAGING}|{RETIRED})-(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-\w+"
)


@dataclass
class BundleMeta:
    """Everything in ``model.json``."""

    backbone: BackboneSpec
    classes: list[str]
    preprocessing: Preprocessing
    merge_mode: str = "none"
    gmacs_ratio: float | None = None
    # The token budget (``--tokens``) the schedule was fitted to, when one was given instead of a ratio.
    tokens: int | None = None
    schedule: list[Any] = field(default_factory=list)
    rank: int = 16
    mask: str = "v1"  # LTM mask module; bundles written before the field used v1
    normal_class: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self, weights_sha256: str) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "backbone": self.backbone.to_json(),
            "merge": {
                "mode": self.merge_mode,
                "gmacs_ratio": self.gmacs_ratio,
                "tokens": self.tokens,
                "schedule": self.schedule,
                "rank": self.rank,
                "mask": self.mask,
            },
            "classes": self.classes,
            "normal_class": self.normal_class,
            "preprocessing": self.preprocessing.to_json(),
            "thresholds": self.thresholds,
            "provenance": self.provenance,
            "weights": {"file": WEIGHTS_FILE, "sha256": weights_sha256},
        }


@dataclass
class Bundle:
    net: InspectionNet
    meta: BundleMeta
    path: Path | None = None


def meta_for(net: InspectionNet, classes: list[str], **fields: Any) -> BundleMeta:
    """A bundle record that matches ``net`` (backbone, merge schedule) and its input contract."""
    spec = net.spec
    prep = fields.pop("preprocessing", None) or Preprocessing(
        size=spec.img_size,
        channels=spec.in_chans,
        mean=[0.5] * spec.in_chans,
        std=[0.25] * spec.in_chans,
    )
    return BundleMeta(
        backbone=spec,
        classes=list(classes),
        preprocessing=prep,
        merge_mode=net.merge_mode,
        schedule=net.schedule(),
        rank=net.rank,
        mask=net.mask,
        **fields,
    )


_sha256 = sha256_file


def is_bundle(path: str | Path) -> bool:
    """A real folder (not a link to one) holding ``model.json``: the only thing ``--force`` replaces."""
    folder = Path(path)
    return folder.is_dir() and not folder.is_symlink() and (folder / META_FILE).is_file()


def absolute_path(path: str | Path) -> Path:
    """``path`` made absolute with a real last name: ``.``, ``..`` and ``x/..`` are resolved.

    The staging, retired and ``.partial`` folders are named after the target's last component;
    for ``.`` or ``..`` that gave hidden ``...partial`` and ``....old.*`` folders.
    The last component itself is not resolved, so a symlink stays a symlink.
    """
    given = Path(path)
    if not given.name.strip("."):
        return given.resolve()
    return given.parent.resolve() / given.name


def bundle_target(path: str | Path, overwrite: bool = False) -> Path:
    """The absolute folder a bundle will be written to, checked before any work is done.

    An existing path is replaced only when ``overwrite`` is set *and* it is a bundle: ``--force``
    must never delete a dataset, a home folder or anything else it did not write.
    """
    given = Path(path)
    target = absolute_path(given)
    if target == Path(target.anchor):
        raise BundleError(f"{given}: cannot write a bundle over the file system root")
    if os.path.lexists(target):
        if not overwrite:
            raise BundleError(f"{given}: already exists (use --force to replace it)")
        if not is_bundle(target):
            raise BundleError(
                f"{given}: exists and is not a model bundle (no model.json); "
                "--force only replaces a bundle, choose another --out"
            )
    return target


def save_bundle(
    net: InspectionNet,
    meta: BundleMeta,
    path: str | Path,
    overwrite: bool = False,
    reference: bytes | None = None,
) -> Path:
    """Write ``net`` and ``meta`` (and the ``reference`` file's bytes, when given) as a bundle at
    ``path`` atomically; refuse to replace unless asked.

    Only a bundle is ever replaced (see :func:`bundle_target`). The files get the permissions a
    plain ``open()`` would give, so a bundle copied to another account is readable as a whole.
    """
    target = bundle_target(path, overwrite)
    if net.schedule() != meta.schedule:
        raise BundleError(f"{target}: the merge schedule in model.json does not match the network")
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=work_prefix(target, STAGING), dir=target.parent))
    retired: Path | None = None
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(weights, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        text = json.dumps(meta.to_json(_sha256(staging / WEIGHTS_FILE)), indent=2) + "\n"
        (staging / META_FILE).write_text(text, encoding="utf-8")
        names = [WEIGHTS_FILE, META_FILE]
        if reference is not None:
            (staging / REFERENCE_FILE).write_bytes(reference)
            names.append(REFERENCE_FILE)
        for name in names:
            fsync_file(staging / name)
            os.chmod(staging / name, default_mode())
        os.chmod(staging, default_mode() | ((default_mode() & 0o444) >> 2))  # r -> x: a listable folder
        bundle_target(target, overwrite)  # still new, or still a bundle, after the minutes of writing
        if os.path.lexists(target):
            retired_in = tempfile.mkdtemp(prefix=work_prefix(target, RETIRED), dir=target.parent)
            retired = Path(retired_in) / target.name
            os.replace(target, retired)
        os.replace(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None:
            if retired.exists() and not os.path.lexists(target):
                os.replace(retired, target)  # put the previous bundle back
            if not retired.exists():
                with contextlib.suppress(OSError):
                    retired.parent.rmdir()  # the emptied .old. folder we made; rmdir never removes content
        if isinstance(exc, OSError):
            raise BundleError(f"{target}: could not write the bundle: {exc.strerror or exc}") from exc
        raise
    if retired is not None:
        shutil.rmtree(retired.parent, ignore_errors=True)
    return target


def _host_tag() -> str:
    """This host in a work folder's name: a PID says something only on its own host, and a models
    folder on a network share is written from several PCs."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogatepass")).hexdigest()[:8]


def work_prefix(target: Path, kind: str) -> str:
    """The start of a hidden work folder's name beside ``target``: what it is for and whose it is."""
    return f".{target.name}.{kind}-{_host_tag()}-{os.getpid()}-"


def _process_gone(pid: int) -> bool:
    """True only when no process ``pid`` runs on this host. Unknowable counts as running: another
    account's process (EPERM), this process, and Windows, where ``os.kill(pid, 0)`` would signal it."""
    if os.name != "posix" or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _holds_only_bundle_files(folder: Path) -> bool:
    """``folder`` holds nothing but regular files save_bundle writes (no links, no subfolders)."""
    try:
        with os.scandir(folder) as entries:
            return all(e.name in BUNDLE_FILES and e.is_file(follow_symlinks=False) for e in entries)
    except OSError:
        return False


def _leftover_is_ours(folder: Path, kind: str, target: Path) -> bool:
    """What a killed save leaves: a staging folder of bundle files, or a retired folder holding the
    replaced bundle; that one only once the new bundle is in place (before, it is the only copy)."""
    if kind == STAGING:
        return _holds_only_bundle_files(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    if not names:
        return True
    inner = folder / target.name
    return (
        names == [target.name]
        and inner.is_dir()
        and not inner.is_symlink()
        and _holds_only_bundle_files(inner)
        and is_bundle(target)
    )


def sweep_leftovers(parent: Path) -> list[Path]:
    """Remove the hidden work folders in ``parent`` that a save killed mid-way (``kill -9``, power
    loss) left behind, for any bundle there; returns those removed.

    Only a folder named by :func:`save_bundle` on this host, whose writer's process is gone, and that
    holds only what save_bundle puts there, is removed: never a live writer's folder, never a link
    (nor anything through one), never a folder with anything else in it. Folders named before the
    writer was part of the name cannot be told from a live save's and are left alone.
    """
    removed: list[Path] = []
    host = _host_tag()
    try:
        with os.scandir(parent) as entries:
            candidates = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    except OSError:
        return removed
    for name, is_dir in candidates:
        match = _LEFTOVER.fullmatch(name)
        if match is None or not is_dir or match["host"] != host or not _process_gone(int(match["pid"])):
            continue
        folder = parent / name
        if _leftover_is_ours(folder, match["kind"], parent / match["name"]):
            shutil.rmtree(folder, ignore_errors=True)  # rmtree never follows links; there are none here
            removed.append(folder)
    return removed


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise BundleError(f"{where}: field '{key}' is missing")
    value = data[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _schedule_entry(entry: Any) -> bool:
    if entry is None or isinstance(entry, int):
        return True
    return isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, int) for v in entry)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(merge: dict[str, Any], thresholds: dict[str, Any], where: str) -> None:
    """The numbers that steer verdicts and the merge budget, each within its meaning.

    An ``unsure_below`` of 7.5 would send every part to UNSURE; NaN would pass every comparison.
    """
    ratio = merge.get("gmacs_ratio")
    if ratio is not None and not (_number(ratio) and 0 < ratio <= 1):
        raise BundleError(f"{where}: 'merge.gmacs_ratio' must be a number in (0, 1], got {ratio!r}")
    tokens = merge.get("tokens")
    if tokens is not None and not (isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 1):
        raise BundleError(f"{where}: 'merge.tokens' must be a whole number of at least 1, got {tokens!r}")
    unsure = thresholds.get("unsure_below")
    if unsure is not None and not (_number(unsure) and 0 <= unsure <= 1):
        raise BundleError(f"{where}: 'thresholds.unsure_below' must be a number in [0, 1], got {unsure!r}")
    energy = thresholds.get("ood_energy_above")
    if energy is not None and not _number(energy):
        raise BundleError(f"{where}: 'thresholds.ood_energy_above' must be a finite number, got {energy!r}")


def _parse_meta(data: Any, where: str) -> BundleMeta:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object")
    version = _require(data, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{where}: written by a newer LTM Inspector "
            f"(format {version}; this one reads up to {FORMAT_VERSION})"
        )
    if version < 1:
        raise BundleError(f"{where}: invalid format_version {version}")
    backbone = _require(data, "backbone", dict, where)
    merge = _require(data, "merge", dict, where)
    classes = _require(data, "classes", list, where)
    prep = _require(data, "preprocessing", dict, where)
    if (
        len(classes) < 2
        or not all(isinstance(c, str) and c for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise BundleError(f"{where}: 'classes' must be at least two distinct names")
    normal = data.get("normal_class")
    if normal is not None and normal not in classes:
        raise BundleError(f"{where}: normal_class {normal!r} is not one of the classes")
    mode = _require(merge, "mode", str, where)
    if mode not in MERGE_MODES:
        raise BundleError(f"{where}: unknown merge mode {mode!r}")
    try:
        spec = BackboneSpec.from_json(backbone)
        preprocessing = Preprocessing.from_json(prep)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: invalid backbone or preprocessing record ({exc})") from exc
    except ModelError as exc:
        raise BundleError(f"{where}: {exc}") from exc
    if preprocessing.channels != spec.in_chans:
        raise BundleError(
            f"{where}: preprocessing has {preprocessing.channels} channels, backbone {spec.in_chans}"
        )
    if preprocessing.size != spec.img_size:
        raise BundleError(
            f"{where}: preprocessing size {preprocessing.size} differs from the backbone's {spec.img_size}"
        )
    schedule, rank = merge.get("schedule") or [], merge.get("rank", 16)
    if not isinstance(schedule, list) or not all(_schedule_entry(e) for e in schedule):
        raise BundleError(f"{where}: 'merge.schedule' must list, per block, null, an int or [h, w]")
    if not isinstance(rank, int) or not 1 <= rank <= 256:
        raise BundleError(f"{where}: 'merge.rank' must be an integer in 1..256")
    mask = merge.get("mask", "v1")
    if mask not in MASKS:
        raise BundleError(f"{where}: 'merge.mask' must be one of {', '.join(MASKS)}")
    for key in ("thresholds", "provenance"):
        if not isinstance(data.get(key) or {}, dict):
            raise BundleError(f"{where}: field '{key}' must be an object")
    _check_numbers(merge, data.get("thresholds") or {}, where)
    return BundleMeta(
        backbone=spec,
        classes=list(classes),
        preprocessing=preprocessing,
        merge_mode=mode,
        gmacs_ratio=merge.get("gmacs_ratio"),
        tokens=merge.get("tokens"),
        schedule=schedule,
        rank=rank,
        mask=mask,
        normal_class=normal,
        thresholds=dict(data.get("thresholds") or {}),
        provenance=dict(data.get("provenance") or {}),
        format_version=version,
    )


def read_meta(path: str | Path) -> tuple[BundleMeta, str]:
    """The validated ``model.json`` of a bundle and the weights checksum it promises."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such model folder")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"{meta_path}: missing")
    try:
        data = read_json(meta_path)
    except UnicodeDecodeError as exc:
        raise BundleError(f"{meta_path}: not a text file") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{meta_path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from exc
    except JSONTooDeep as exc:
        raise BundleError(f"{meta_path}: {exc}") from None
    meta = _parse_meta(data, str(meta_path))
    weights = data.get("weights") or {}
    sha = weights.get("sha256") if isinstance(weights, dict) else None
    if not isinstance(sha, str):
        raise BundleError(f"{meta_path}: field 'weights.sha256' is missing")
    return meta, sha


def load_bundle(path: str | Path) -> Bundle:
    """Rebuild the network of a bundle, checking every file against ``model.json``."""
    folder = Path(path)
    meta, sha = read_meta(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise BundleError(f"{weights_path}: missing")
    if _sha256(weights_path) != sha:
        raise BundleError(f"{weights_path}: checksum mismatch (truncated, corrupt or from another model)")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{weights_path}: unreadable safetensors file ({exc})") from exc
    try:
        net = InspectionNet(meta.backbone, len(meta.classes), meta.merge_mode, meta.rank, meta.mask)
        if meta.schedule:
            net.set_schedule(meta.schedule)
    except (ModelError, TypeError, ValueError) as exc:
        raise BundleError(f"{folder / META_FILE}: {exc}") from exc
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise BundleError(f"{weights_path}: does not match model.json: {detail}")
    net.load_state_dict(state)
    net.eval()
    return Bundle(net, meta, folder)


def split_seed(bundle: Bundle) -> int:
    """The seed that split the bundle's training (or fine-tuning) data: eval must split alike."""
    value = bundle.meta.provenance.get("split_seed", bundle.meta.provenance.get("seed", 0))
    return value if isinstance(value, int) else 0
