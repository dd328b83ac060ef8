"""The station-shift study's own machinery: its variant names, the fixed camera move, --extra-test."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmarks.adaptation_shifts import (
    build_stations,
    camera_move_matrix,
    fixed_camera_move,
    fixed_lamp_swap,
    variant_key,
)
from tests.conftest import make_station

DEMO = Path(__file__).resolve().parents[2] / "inspector" / "demo_model"


def test_default_variants_keep_the_names_earlier_results_are_filed_under():
    assert variant_key("all", 10, True) == "recalibrate+all@10"
    assert variant_key("all+replay", 10, True, 2) == "recalibrate+all+replay@10/s2"
    assert variant_key("recalibrate", 10, True, 0, 1e-4, ("angle",)) == "recalibrate"
    gentler = variant_key("all", 10, True, 1, 1e-4, ("angle",))
    assert gentler == "recalibrate+all@10/lr0.0001/aug=angle/s1"
    assert variant_key("all", 10, False, 0, 5e-4, ()) == "all@10/aug=none"


def test_a_camera_move_is_the_same_for_every_image_and_differs_by_seed():
    assert np.allclose(camera_move_matrix(3, 100), camera_move_matrix(3, 100))
    assert not np.allclose(camera_move_matrix(3, 100), camera_move_matrix(4, 100))
    assert not np.allclose(camera_move_matrix(3, 100), np.eye(3), atol=0.02)
    move = fixed_camera_move(3)
    first, second = np.full((64, 64), 90, np.uint8), np.full((64, 64), 150, np.uint8)
    first[30:34, 30:34] = second[30:34, 30:34] = 255  # one mark, in the same place on two parts
    moved = [np.argwhere(move(image) == 255) for image in (first, second)]
    assert len(moved[0]) and np.array_equal(moved[0], moved[1])  # the mark lands in the same place
    assert not np.array_equal(moved[0], np.argwhere(first == 255))  # somewhere else than it was


def test_a_lamp_swap_lights_every_part_the_same_way():
    rng = np.random.default_rng(0)
    first, second = (rng.integers(40, 200, (48, 48, 3), dtype=np.uint8) for _ in range(2))
    second[10:20, 5:40] = first[10:20, 5:40]  # the same patch, at the same place, on two parts
    swap = fixed_lamp_swap(1)
    lit = [swap(image) for image in (first, second)]
    assert np.array_equal(lit[0][10:20, 5:40], lit[1][10:20, 5:40])
    assert not np.array_equal(lit[0], first)
    assert not np.array_equal(fixed_lamp_swap(2)(first), lit[0])


def _rows(folder: Path) -> list[list[str]]:
    with (folder / "manifest.csv").open() as handle:
        return list(csv.reader(handle))[1:]


def test_extra_test_images_go_to_test_only_and_leave_the_station_as_it_was(tmp_path):
    data = make_station(tmp_path / "data", per_class=30, size=24)
    plain = build_stations(DEMO, str(data), "camera", 24, tmp_path / "plain")
    more = build_stations(DEMO, str(data), "camera", 24, tmp_path / "more", extra_test=12)
    before, after = _rows(plain / "shifted"), _rows(more / "shifted")
    assert after[: len(before)] == before and len(after) > len(before)
    assert {split for _path, _label, split in after[len(before) :]} == {"test"}
    seen = {(more / "unshifted" / name).read_bytes() for name, _label, _split in before}
    extra = {(more / "unshifted" / name).read_bytes() for name, _label, _split in after[len(before) :]}
    assert not seen & extra  # none of the station's own images is scored twice
    for kind in ("shifted", "unshifted"):
        for name, _label, _split in before:
            assert (plain / kind / name).read_bytes() == (more / kind / name).read_bytes()


def test_the_table_pools_seeds_keeps_tuned_names_apart_and_refuses_two_stations(tmp_path):
    import json

    import pytest

    from benchmarks.adaptation_table import _method, merged

    assert _method("recalibrate+all+replay@10/s2") == ("all+replay", 2)
    assert _method("recalibrate+all@10") == ("all", 0)
    assert _method("recalibrate+all@10/lr0.0001/aug=angle/s1") == ("all (lr0.0001, aug=angle)", 1)
    base = {"shifted": 0.6, "unshifted": 0.9, "n_test": 10}
    row = {"recovered": 0.5, "kept_on_unshifted": 0.85, "seconds": 60}
    files = []
    for name, entry in (
        ("a", {"base": base, "variants": {"recalibrate+all@10": row}}),
        ("b", {"base": base, "variants": {"recalibrate+all@10/s1": row}}),
        ("c", {"base": {**base, "shifted": 0.5}, "variants": {}}),
    ):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"x/camera/300": entry}))
    first, second, other = files
    pooled = merged([first, second])["x/camera/300"]["variants"]
    assert set(pooled) == {"recalibrate+all@10", "recalibrate+all@10/s1"}
    with pytest.raises(SystemExit, match="another base"):
        merged([first, other])
