"""How a long training job talks to whoever started it: the CLI prints, the wizard draws curves
and offers Stop, a benchmark keeps quiet. One object instead of four keyword arguments on every
step of ``train_model`` / ``finetune_model``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspector.training.loop import EpochRecord

Log = Callable[[str], None]


def _silent(_line: str) -> None:
    pass


@dataclass(frozen=True)
class Hooks:
    """``log`` gets one line per step; ``progress`` shows bars on stderr while images load;
    ``should_stop`` is polled between batches (True: stop after this epoch's checkpoint);
    ``on_epoch`` gets each epoch's record (the wizard's curves)."""

    log: Log = print
    progress: bool = True
    should_stop: Callable[[], bool] | None = None
    on_epoch: Callable[[EpochRecord], None] | None = None

    def epoch(self, record: EpochRecord) -> None:
        if self.on_epoch is not None:
            self.on_epoch(record)


QUIET = Hooks(log=_silent, progress=False)
"""For benchmarks and tests: no lines, no bars."""
