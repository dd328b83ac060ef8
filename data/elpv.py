"""ELPV solar-cell electroluminescence images (pip package ``elpv-dataset``) as the ``elpv`` station.

2,624 cells, 300×300 8-bit gray, each with an expert defect probability of 0, ⅓, ⅔ or 1 and a
cell type (mono / poly). On a line a cell is either shipped or not, so we map to two classes:

- ``ok``     — probability 0 (1,508 cells): all experts saw a functional cell;
- ``defect`` — probability ⅔ or 1 (821 cells): most experts saw a defect;
- probability ⅓ (295 cells) is *left out*: mostly-fine cells with a doubt. Training on them as
  either class teaches label noise, and a two-class model cannot learn "doubt"; on the line such
  parts should land in UNSURE through the calibrated thresholds, which is what they are for.

Splits are seeded, stratified by class and cell type (the package gives no module id to group by).
"""

from __future__ import annotations

import csv
from pathlib import Path

from data.dataset import Sample, Station, assign_splits, finish_station
from data.errors import DataError

LABEL_NOTE = "ok = p0, defect = p2/3 or p1, p1/3 left out (ambiguous)"


def elpv_root() -> Path:
    try:
        import elpv_dataset
    except ImportError as exc:
        raise DataError("the ELPV dataset is not installed (pip install elpv-dataset)") from exc
    return Path(elpv_dataset.__file__).parent / "data"


def elpv_label(probability: float) -> str | None:
    """Our line label for an ELPV defect probability (None: left out as ambiguous)."""
    if probability < 0.1:
        return "ok"
    if probability > 0.5:
        return "defect"
    return None


def load_elpv(seed: int = 0) -> Station:
    root = elpv_root()
    samples = []
    with (root / "labels.csv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter=" ", skipinitialspace=True):
            if len(row) < 3:
                continue
            name, probability, cell_type = row[0], float(row[1]), row[2]
            label = elpv_label(probability)
            if label is not None:
                samples.append(
                    Sample(
                        (root / name).resolve(), label, "", "", (("probability", row[1]), ("type", cell_type))
                    )
                )
    if not samples:
        raise DataError(f"{root / 'labels.csv'}: no ELPV labels found")
    # Stratify by class and cell type: use them jointly as the label for splitting only.
    keyed = [Sample(s.path, f"{s.label}/{s.get('type')}", "", "", s.meta) for s in samples]
    split_of = {s.path: s.split for s in assign_splits(keyed, seed)[0]}
    samples = [Sample(s.path, s.label, split_of[s.path], "", s.meta) for s in samples]
    station = finish_station(root, samples, "elpv", [], seed)
    station.label_note = LABEL_NOTE
    return station
