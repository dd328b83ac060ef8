"""The model registry decides what is a version and what is a folder, and trusts no id as a path."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from inspector.cli import app
from inspector.errors import InspectorError
from inspector.registry import INDEX, Registry
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet


@pytest.fixture
def bundle(tmp_path, tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 2, "none")
    return save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "bundle")


def test_a_version_id_means_a_version_even_beside_a_folder_of_that_name(tmp_path, bundle, monkeypatch):
    """``models deploy v1`` with a folder ``v1`` here registered the folder instead (a second time)."""
    registry = Registry(tmp_path / "home")
    assert registry.deploy(str(bundle)).id == "v1"
    monkeypatch.chdir(tmp_path)
    os.rename(bundle, tmp_path / "v1")
    assert registry.deploy("v1").id == "v1"
    assert [v.id for v in registry.versions()] == ["v1"]
    os.rename(tmp_path / "v1", tmp_path / "v2")
    with pytest.raises(InspectorError, match=r"no model version 'v2'.*write \./v2"):
        registry.deploy("v2")
    assert registry.deploy("./v2").id == "v2", "an explicit path is a folder"
    with pytest.raises(InspectorError, match="neither a model version"):
        registry.deploy("nothing-here")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda index: index["versions"][0].update(id="../../elsewhere"), "invalid version id"),
        (lambda index: index["versions"][0].update(id="vx"), "invalid version id"),
        (lambda index: index["versions"].append(dict(index["versions"][0])), "listed twice"),
        (lambda index: index.update(deployed="v9"), "unknown version 'v9'"),
    ],
)
def test_a_tampered_index_is_one_clear_error(tmp_path, bundle, change, message):
    """Ids were trusted as paths (``../../x`` loaded a bundle from outside the registry)."""
    registry = Registry(tmp_path / "home")
    registry.deploy(str(bundle))
    path = registry.root / INDEX
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))
    for action in (registry.versions, registry.deployed, lambda: registry.path_of("v1")):
        with pytest.raises(InspectorError, match=message):
            action()


def test_a_nesting_bomb_in_the_index_is_one_clear_error(tmp_path, bundle):
    """``[[[[...`` a hundred thousand deep stopped every registry command with a RecursionError."""
    registry = Registry(tmp_path / "home")
    registry.deploy(str(bundle))
    (registry.root / INDEX).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InspectorError, match=r"registry index is unreadable \(nested too deeply") as info:
        registry.versions()
    assert INDEX in str(info.value) and "\n" not in str(info.value)


def test_models_deploy_says_which_is_which_in_one_line(tmp_path, bundle, monkeypatch):
    """The same rule through ``inspector models deploy`` (it goes through the roll-out gate)."""
    home = tmp_path / "home"
    Registry(home).deploy(str(bundle))
    monkeypatch.chdir(tmp_path)
    os.rename(bundle, tmp_path / "v2")
    runner = CliRunner()

    def deploy(ref: str):
        return runner.invoke(
            app, ["models", "deploy", ref, "--reason", "r", "--by", "qa", "--home", str(home)]
        )

    for ref, message in (
        ("v2", "no model version 'v2' in the registry"),
        ("vx", "vx: neither a model version"),
        ("nothing-here", "neither a model version"),
    ):
        result = deploy(ref)
        assert result.exit_code == 2 and message in result.output, (ref, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert "write ./v2" in deploy("v2").output
    assert [v.id for v in Registry(home).versions()] == ["v1"], "no stray folder was registered"
    path = home / "models" / INDEX
    index = json.loads(path.read_text())
    index["versions"][0]["id"] = "../../elsewhere"
    path.write_text(json.dumps(index))
    result = deploy("./v2")
    assert result.exit_code == 2 and "invalid version id" in result.output, result.output


def test_registered_copies_are_readable_like_any_file(tmp_path, bundle):
    (bundle / "model.safetensors").chmod(0o600)  # as bundles were written before
    previous = os.umask(0o022)
    try:
        version = Registry(tmp_path / "home").add(bundle)
    finally:
        os.umask(previous)
    copy = tmp_path / "home" / "models" / version.id
    assert {stat.S_IMODE(p.stat().st_mode) for p in copy.iterdir()} == {0o644}


def _swap_in(bundle_path, spec, seed: int = 1) -> None:
    """What ``inspector train ... --out <home>/models/v1 --force`` did: new weights, same name."""
    import torch

    torch.manual_seed(seed)
    net = InspectionNet(spec, 2, "none")
    save_bundle(net, meta_for(net, ["ok", "ng"]), bundle_path, overwrite=True)


def test_a_version_records_the_checksums_of_its_files(tmp_path, bundle):
    """The index keeps model.json's and the weights' SHA-256 of the registered copy."""
    from models.files import sha256_file

    version = Registry(tmp_path / "home").add(bundle)
    copy = tmp_path / "home" / "models" / version.id
    assert version.checksums == {
        "model.json": sha256_file(copy / "model.json"),
        "model.safetensors": sha256_file(copy / "model.safetensors"),
    }
    entry = json.loads((copy.parent / INDEX).read_text())["versions"][0]
    assert entry["checksums"] == version.checksums


def test_a_version_changed_outside_the_product_is_refused_by_run_deploy_and_rollback(
    tmp_path, bundle, tiny_vit_spec
):
    """Probe (issue 27): a version overwritten in place judged parts under its old name, unaudited."""
    from inspector.line.resolve import resolve_model, resolve_shadow

    home = tmp_path / "home"
    registry = Registry(home)
    registry.deploy(str(bundle))
    registry.deploy(str(bundle))  # v2, deployed over v1
    _swap_in(registry.root / "v1", tiny_vit_spec)
    index_before = (registry.root / INDEX).read_bytes()
    message = r"model version v1 was changed outside the product \(model.json, model.safetensors"
    for action in (
        registry.rollback,
        lambda: registry.deploy("v1"),
        lambda: registry.checked_path("v1"),
        lambda: resolve_shadow("v1", home),
        lambda: resolve_model(str(registry.root / "v1"), home),
    ):
        with pytest.raises(InspectorError, match=message):
            action()
    assert (registry.root / INDEX).read_bytes() == index_before, "a refusal changes nothing"
    _swap_in(registry.root / "v2", tiny_vit_spec)  # the deployed one
    with pytest.raises(InspectorError, match="model version v2 was changed outside the product"):
        resolve_model(None, home)
    result = CliRunner().invoke(app, ["run", "--source", str(tmp_path), "--home", str(home), "--frames", "1"])
    assert result.exit_code == 2 and "v2 was changed outside the product" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_an_index_without_checksums_loads_unverified_and_is_pinned_at_deploy(tmp_path, bundle):
    """Registries written before checksums were kept still run; the next deploy records them."""
    from inspector.line.resolve import resolve_model

    home = tmp_path / "home"
    registry = Registry(home)
    registry.deploy(str(bundle))
    path = registry.root / INDEX
    index = json.loads(path.read_text())
    recorded = index["versions"][0].pop("checksums")
    path.write_text(json.dumps(index))
    assert resolve_model(None, home) == registry.root / "v1"
    assert registry.versions()[0].checksums == {}
    assert registry.deploy("v1").checksums == recorded
    assert registry.versions()[0].checksums == recorded


def test_train_finetune_export_and_eval_refuse_outputs_inside_the_registry(tiny_station, tmp_path, bundle):
    """Probe (issue 27): ``train --out <home>/models/v1 --force`` replaced the deployed version."""
    home = tmp_path / "home"
    Registry(home).deploy(str(bundle))
    v1 = home / "models" / "v1"
    before = {p.name: p.read_bytes() for p in v1.iterdir()}
    fast = ["--backbone", "vit-cpu", "--img-size", "32", "--epochs", "1"]
    runner = CliRunner()
    for args in (
        ["train", str(tiny_station), "--out", str(v1), "--force", *fast],
        ["train", str(tiny_station), "--out", str(home / "models" / "v7"), *fast],
        ["finetune", str(bundle), str(tiny_station), "--out", str(v1), "--force", "--epochs", "1"],
        ["finetune", str(bundle), str(tiny_station), "--out", str(v1), "--force", "--unlabelled"],
        ["export", str(bundle), "--onnx", str(v1 / "model.onnx")],
        ["eval", str(bundle), str(tiny_station), "--json", str(v1 / "model.json")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "is inside the model registry" in result.output and "models deploy" in result.output
        assert str(home / "models") in result.output.replace("\n", "")
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert {p.name: p.read_bytes() for p in v1.iterdir()} == before
    assert not (home / "models" / "v7").exists()


def test_an_add_killed_mid_copy_leaves_a_folder_the_next_add_sweeps(tmp_path, bundle):
    """kill -9 while a bundle is copied into the registry: its hidden staging folder stayed forever."""
    import signal
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    home = tmp_path / "home"
    Registry(home).add(bundle)
    script = textwrap.dedent(
        f"""
        import os, shutil, signal
        from pathlib import Path
        from inspector.registry import Registry

        def killed(source, target, **kwargs):
            Path(target, "model.json").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)

        shutil.copytree = killed
        Registry(Path({str(home)!r})).add(Path({str(bundle)!r}))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=120)
    assert run.returncode == -signal.SIGKILL
    models = home / "models"
    assert [p.name for p in models.iterdir() if p.name.startswith(".v2.")], "the killed copy's folder"
    assert Registry(home).add(bundle).id == "v2"
    assert sorted(p.name for p in models.iterdir() if p.is_dir()) == ["v1", "v2"]


LAMP2 = {
    "name": "lamp2",
    "data": "/plant/lamp2",
    "fingerprint": "2222",
    "split": "test",
    "n": 30,
    "macro_f1": 0.818,
    "accuracy": 0.83,
    "role": "adapted",
}
ELPV = {**LAMP2, "name": "elpv", "data": "elpv", "split": "val", "macro_f1": 0.884, "role": "trained"}


def _provenance(folder, **provenance):
    """Give a bundle's model.json this provenance (before it is added: the registry checksums it)."""
    meta = json.loads((folder / "model.json").read_text())
    meta["provenance"] = provenance
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def test_a_version_records_the_stations_it_was_validated_on_and_models_list_shows_them(tmp_path, bundle):
    """Issue 26: a fine-tuned version serves two stations; the registry and the listing named none."""
    registry = Registry(tmp_path / "home")
    registry.deploy(str(_provenance(bundle, stations=[ELPV, LAMP2, {"name": 5}])))
    (version,) = registry.versions()
    assert [s.name for s in version.station_scores()] == ["elpv", "lamp2"], "the malformed one is skipped"
    assert version.stations[1] == LAMP2

    home = ["--home", str(tmp_path / "home")]
    listing = CliRunner().invoke(app, ["models", "list", *home], env={"COLUMNS": "400"})
    assert listing.exit_code == 0, listing.output
    assert "elpv 0.884 (val), lamp2 0.818 (test)" in listing.output
    as_json = CliRunner().invoke(app, ["models", "list", "--json", *home])
    assert as_json.exit_code == 0, as_json.output
    (row,) = json.loads(as_json.output)
    assert row["id"] == "v1" and row["deployed"] is True
    assert [s["name"] for s in row["stations"]] == ["elpv", "lamp2"] and row["stations"][1] == LAMP2


def test_an_index_from_before_stations_reads_them_from_the_registered_bundle(tmp_path, bundle):
    """Versions added before the index kept stations still load, and show what their model.json
    says (a legacy bundle: derived from data/data_fingerprint/val)."""
    legacy = dict(data="/plant/lamp1", data_fingerprint="1111", val={"macro_f1": 0.9, "accuracy": 0.9})
    registry = Registry(tmp_path / "home")
    registry.deploy(str(_provenance(bundle, **legacy)))
    path = registry.root / INDEX
    index = json.loads(path.read_text())
    assert index["versions"][0]["stations"][0]["name"] == "lamp1", "recorded at add"
    del index["versions"][0]["stations"]
    path.write_text(json.dumps(index))
    (version,) = registry.versions()
    assert version.stations is None and version.station_scores() == []
    (filled,) = registry.with_stations([version])
    assert [(s.name, s.role, s.macro_f1) for s in filled.station_scores()] == [("lamp1", "trained", 0.9)]
    index["versions"][0]["stations"] = "garbage"
    path.write_text(json.dumps(index))
    assert registry.versions()[0].station_scores() == [], "a hand-edited index never crashes a listing"
    assert registry.deployed().id == "v1"
