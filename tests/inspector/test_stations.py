"""Which stations a version was validated on: the bundle's ``stations`` list, or what a legacy
bundle's provenance keys say; a hand-edited model.json never crashes the reading."""

from __future__ import annotations

import json

import pytest

from inspector.line.demo import DEMO_MODEL_DIR
from inspector.stations import MAX_NAME, MAX_STATIONS, StationScore, stations_text, validated_stations

ENTRY = {
    "name": "lamp2",
    "data": "/plant/lamp2",
    "fingerprint": "abcd1234abcd1234",
    "split": "test",
    "n": 40,
    "macro_f1": 0.818,
    "accuracy": 0.85,
    "role": "adapted",
}


def test_the_recorded_list_is_read_as_it_is():
    trained = {**ENTRY, "name": "elpv", "data": "elpv", "split": "val", "role": "trained", "macro_f1": 0.884}
    stations = validated_stations({"stations": [trained, ENTRY], "data": "ignored", "val": {"macro_f1": 0.1}})
    assert stations == [
        StationScore("elpv", "elpv", "abcd1234abcd1234", "val", 40, 0.884, 0.85, "trained"),
        StationScore("lamp2", "/plant/lamp2", "abcd1234abcd1234", "test", 40, 0.818, 0.85, "adapted"),
    ]
    assert stations_text(stations) == "elpv 0.884 (val), lamp2 0.818 (test)"
    assert stations_text([]) == "–"


def test_the_demo_model_is_a_legacy_bundle_trained_on_elpv():
    meta = json.loads((DEMO_MODEL_DIR / "model.json").read_text())
    (station,) = validated_stations(meta["provenance"])
    assert (station.name, station.data, station.role, station.split) == ("elpv", "elpv", "trained", "val")
    assert station.fingerprint == meta["provenance"]["data_fingerprint"]
    assert station.n == meta["provenance"]["val_images"]
    assert station.macro_f1 == pytest.approx(meta["provenance"]["val"]["macro_f1"])


def test_a_legacy_fine_tune_adds_its_new_station():
    provenance = {
        "data": "/plant/lamp1/manifest.csv",
        "data_fingerprint": "1111",
        "val": {"macro_f1": 0.9, "accuracy": 0.95},
        "finetuned_from": "/models/base",
        "station_data": "/plant/lamp2",
        "station_fingerprint": "2222",
        "after": {"macro_f1": 0.8, "accuracy": 0.82, "n": 30},
    }
    trained, adapted = validated_stations(provenance)
    assert (trained.name, trained.fingerprint, trained.n, trained.role) == ("lamp1", "1111", 0, "trained")
    assert (adapted.name, adapted.split, adapted.n, adapted.role) == ("lamp2", "test", 30, "adapted")
    assert adapted.macro_f1 == 0.8
    # "after" without a fine-tune (no finetuned_from) is not a station
    assert len(validated_stations({k: v for k, v in provenance.items() if k != "finetuned_from"})) == 1


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        "stations",
        [],
        {"stations": "lamp2"},
        {"stations": None, "data": 5, "val": {"macro_f1": 0.9, "accuracy": 0.9}},
        {"data": "x", "val": "0.9"},
        {"data": "x", "val": {"macro_f1": "0.9", "accuracy": 0.9}},
        {"data": "x", "val": {"macro_f1": float("nan"), "accuracy": 0.9}},
        {"data": "", "val": {"macro_f1": 0.9, "accuracy": 0.9}},
        {"data": "x", "val": {"macro_f1": 0.9, "accuracy": 0.9}, "data_fingerprint": ["a"]},
    ],
)
def test_hostile_provenance_gives_no_station_and_no_crash(hostile):
    assert validated_stations(hostile) == []


@pytest.mark.parametrize(
    "change",
    [
        {"name": 7},
        {"name": "   "},
        {"data": None},
        {"data": "x" * 10_000},
        {"fingerprint": {"a": 1}},
        {"split": "train"},
        {"role": "boss"},
        {"n": True},
        {"n": -1},
        {"n": "40"},
        {"macro_f1": None},
        {"macro_f1": True},
        {"accuracy": float("inf")},
    ],
)
def test_an_entry_of_the_wrong_shape_is_skipped(change):
    assert validated_stations({"stations": [{**ENTRY, **change}, ENTRY]}) == validated_stations(
        {"stations": [ENTRY]}
    )


def test_the_list_and_names_are_capped():
    stations = validated_stations({"stations": ["junk", 3, *[ENTRY] * 100, {**ENTRY, "name": "n" * 5000}]})
    assert len(stations) == MAX_STATIONS
    (long,) = validated_stations({"stations": [{**ENTRY, "name": "n" * 5000}]})
    assert len(long.name) == MAX_NAME
