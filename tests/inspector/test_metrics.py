"""The evaluation's pictures draw class names as written."""

from __future__ import annotations

from inspector.training.metrics import plot_confusion


def test_confusion_plot_draws_a_mathtext_class_name_as_written(tmp_path):
    """A class folder named ``$a^{$`` stopped ``eval`` with a matplotlib mathtext traceback."""
    path = plot_confusion([[3, 1], [0, 2]], ["$a^{$", "ok"], tmp_path / "c.png", "$title^{$")
    assert path.read_bytes().startswith(b"\x89PNG")
