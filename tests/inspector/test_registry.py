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
