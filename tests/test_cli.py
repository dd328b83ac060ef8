"""The CLI contract for what exists so far: `models info`, `export`, and one-line errors."""

from __future__ import annotations

import re

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


def test_models_info_says_which_weights_a_fine_tune_kept(tmp_path, tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 2, "none")
    epochs = [{"epoch": e, "loss": 0.5, "val_macro_f1": f} for e, f in ((0, 0.61), (1, 0.66))]
    trace = {"n_val": 60, "base_val_macro_f1": 0.744, "kept_epoch": -1, "epochs": epochs}
    meta = meta_for(net, ["ok", "ng"], provenance={"finetune_epochs": trace})
    path = save_bundle(net, meta, tmp_path / "m")
    result = runner.invoke(app, ["models", "info", str(path)], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "the base's weights: none of 2 epochs beat its validation macro-F1 0.744" in result.output
    assert "(best epoch 0.660, 60 images)" in result.output


def test_a_fine_tune_record_edited_into_nonsense_is_left_out():
    from inspector.training.finetune import describe_epoch_trace

    epochs = [{"epoch": 0, "loss": 0.7, "val_macro_f1": 0.61}]
    good = {"n_val": 8, "base_val_macro_f1": 0.5, "kept_epoch": 0, "epochs": epochs}
    line = describe_epoch_trace(good)
    assert line == "epoch 1 of 1: validation macro-F1 0.610, the base's 0.500 (8 images)"
    for bad in (
        None,
        "text",
        {**good, "kept_epoch": 3},
        {**good, "kept_epoch": -1, "base_val_macro_f1": None},
        {**good, "epochs": [{"epoch": "x", "val_macro_f1": 1}]},
        {**good, "epochs": []},
        {**good, "n_val": [1]},
    ):
        assert describe_epoch_trace(bad) is None


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


def test_export_refuses_an_existing_file_without_force_and_any_non_regular_target(tmp_path, tiny_vit_spec):
    """``export --onnx`` overwrote an unrelated file and turned a FIFO into a file."""
    import os
    import stat

    net = InspectionNet(tiny_vit_spec, 2, "none")
    path = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "m")
    mine = tmp_path / "report.onnx"
    mine.write_text("not an export")
    result = runner.invoke(app, ["export", str(path), "--onnx", str(mine)])
    assert result.exit_code == 2 and "already exists (use --force" in result.output
    assert mine.read_text() == "not an export"
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["export", str(path), "--onnx", str(fifo), "--force"])
    assert result.exit_code == 2 and "refusing to write over it" in result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    result = runner.invoke(app, ["export", str(path), "--onnx", str(mine), "--force"])
    assert result.exit_code == 0, result.output
    assert mine.read_bytes() != b"not an export"


def test_export_refuses_to_write_over_its_own_bundle(tmp_path, tiny_vit_spec):
    """``export M --onnx M/model.safetensors --force`` destroyed the weights it was exporting."""
    net = InspectionNet(tiny_vit_spec, 2, "none")
    path = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    (tmp_path / "link.onnx").symlink_to(path / "model.json")
    for target in (path / "model.safetensors", path / "model.json", tmp_path / "link.onnx"):
        result = runner.invoke(app, ["export", str(path), "--onnx", str(target), "--force"])
        assert result.exit_code == 2 and "a file of the model bundle" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_eval_json_never_replaces_a_file_it_did_not_write_nor_writes_into_the_station(
    tmp_path, tiny_vit_spec, tiny_station
):
    """Probe (issue 27): ``eval --json station/ok/x.png`` replaced a dataset image with the report."""
    import json

    net = InspectionNet(tiny_vit_spec, 3, "none")
    path = save_bundle(net, meta_for(net, ["ok", "scratch", "spot"]), tmp_path / "m")
    image = sorted((tiny_station / "ok").iterdir())[0]
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    (tmp_path / "link.json").symlink_to(image)
    (tmp_path / "r.confusion.png").write_bytes(b"someone's picture")
    before = {p: p.read_bytes() for p in [*tiny_station.rglob("*"), *tmp_path.glob("*.*")] if p.is_file()}
    for target, says in (
        (image, "folder being judged"),
        (tiny_station / "ok" / "report.json", "folder being judged"),
        (path / "model.json", "not a report that 'inspector eval' wrote"),
        (notes, "not a report that 'inspector eval' wrote"),
        (tmp_path / "link.json", "folder being judged"),
        (tmp_path / "r.json", "does not belong to a report"),
    ):
        result = runner.invoke(app, ["eval", str(path), str(tiny_station), "--json", str(target)])
        assert result.exit_code == 2 and says in result.output.replace("\n", ""), (target, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p for p in tiny_station.rglob("*") if p.is_file()) == sorted(
        p for p in before if tiny_station in p.parents
    )
    ours = tmp_path / "ours.json"
    for _ in range(2):  # a new file, then the report it wrote: both fine
        result = runner.invoke(app, ["eval", str(path), str(tiny_station), "--json", str(ours)])
        assert result.exit_code == 0, result.output
    assert json.loads(ours.read_text())["n"] > 0


def test_data_info_counts_only_images_that_decode_and_refuses_two_labels(tiny_station):
    """A text file named .png was counted as an image; a file under two labels went unnoticed."""
    from tests_support import write_manifest

    (tiny_station / "ok" / "zz_notes.png").write_text("not an image")
    result = runner.invoke(app, ["data", "info", str(tiny_station)])
    assert result.exit_code == 0, result.output
    flat = result.output.replace("\n", "")  # rich wraps long lines at the test console's width
    assert "1 file(s) are not readable images" in flat and "zz_notes.png" in flat
    (ok_row,) = [line for line in result.output.splitlines() if re.match(r"\W*ok\b", line)]
    assert sum(int(n) for n in re.findall(r"\d+", ok_row)) == 24, "the text file is not counted"
    rows = [(f"ok/ok_{i:03d}.png", "ok") for i in range(3)] + [("ok/ok_000.png", "spot")]
    result = runner.invoke(app, ["data", "info", str(write_manifest(tiny_station, rows, ("path", "label")))])
    assert result.exit_code == 2 and "listed under two labels" in result.output.replace("\n", "")


def test_data_info_reports_image_sizes_and_the_geometry_train_would_pick(tiny_station):
    result = runner.invoke(app, ["data", "info", str(tiny_station)], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "sizes: 72 images, width 40–40 px" in result.output
    assert "train --resize auto would use: 160 px, stretch" in result.output


def _options() -> list[tuple[str, object]]:
    """(command, option) for every option of every ``inspector`` command."""
    import typer.main

    def walk(command, path):  # click commands and groups, typer's subclasses of them
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, [*path, name])
            return
        for param in command.params:
            if param.param_type_name == "option":
                yield " ".join(path), param

    return list(walk(typer.main.get_command(app), []))


def test_every_option_says_what_it_does():
    assert [f"{command} {option.opts[0]}" for command, option in _options() if not option.help] == []


def test_bracketed_help_text_is_escaped_so_rich_prints_it():
    """Rich reads "[default: 8]" as a markup tag and drops it from --help: every bracket is escaped."""
    import re

    raw = [
        f"{command} {option.opts[0]}"
        for command, option in _options()
        if re.search(r"(?<!\\)\[", option.help or "")
    ]
    assert raw == []


def test_fixed_choices_are_listed_in_help_and_are_the_librarys_own():
    from data.station import SPLITS
    from inspector.line.frame_queue import POLICIES
    from inspector.line.inference import BACKENDS
    from inspector.training.defaults import AUTO_TRAINABLE
    from inspector.training.loop import TRAINABLE
    from models.ltm import MASKS
    from models.network import MERGE_MODES
    from models.preprocess import NORMALIZE_MODES, RESIZE_MODES

    expected = {
        ("train", "--merge"): MERGE_MODES,
        ("train", "--normalize"): NORMALIZE_MODES,
        ("train", "--resize"): (*RESIZE_MODES, "auto"),
        ("train", "--ltm-start"): ("scratch", "convert"),
        ("train", "--mask"): MASKS,
        ("eval", "--split"): (*SPLITS, "all"),
        ("finetune", "--trainable"): (AUTO_TRAINABLE, *TRAINABLE),
        ("run", "--backend"): BACKENDS,
        ("run", "--drop"): POLICIES,
    }
    shown = {(command, option.opts[0]): option.metavar for command, option in _options()}
    for (command, option), choices in expected.items():
        metavar = shown[command, option]
        assert metavar and set(metavar.strip("<>").split("|")) == set(choices), (command, option, metavar)
        help_text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "240"}).output
        assert metavar in help_text, (command, option)


def test_a_value_outside_the_choices_is_one_line_before_any_work(tmp_path):
    result = runner.invoke(app, ["run", "--source", "sim", "--drop", "sideways", "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: --drop must be one of oldest, newest, block, got 'sideways'"
    assert not any(tmp_path.iterdir())  # nothing was opened or written
    result = runner.invoke(app, ["finetune", "m", "d", "--out", str(tmp_path / "o"), "--trainable", "head"])
    assert result.exit_code == 2 and "--trainable must be one of auto, merge, merge+norm" in result.output
