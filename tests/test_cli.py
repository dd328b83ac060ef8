"""The CLI contract for what exists so far: `models info`, `export`, and one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from inspector.cli import app
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet

runner = CliRunner()


def test_models_info_prints_architecture_schedule_and_cost(tmp_path, tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 2, "ltm")
    net.set_schedule([None, [3, 3], None, None])
    path = save_bundle(net, meta_for(net, ["ok", "ng"], normal_class="ok"), tmp_path / "m")
    result = runner.invoke(app, ["models", "info", str(path)])
    assert result.exit_code == 0, result.output
    for text in ("vit_tiny_patch16_224", "ltm", "ok, ng", "GMACs", "params", "block 1: LTM -> 3x3"):
        assert text in result.output


def test_bad_bundle_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "m").mkdir()
    result = runner.invoke(app, ["models", "info", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "model.json: missing" in result.output
    assert "Traceback" not in result.output


def test_export_writes_onnx_and_reports_parity(tmp_path, tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 2, "none")
    path = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "m")
    result = runner.invoke(app, ["export", str(path), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").is_file()
    assert "max |Δprobability|" in result.output
