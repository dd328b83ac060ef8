"""A candidate whose classes differ from the deployed model's: a gate check that always fails.

Adding a defect class (or dropping one) changes what the line reports to the MES and what QA
reviews: it is a deliberate act, not a side effect of a retrain. The offline gate used to find the
deployed model unable to score a station holding the new class, said "nothing to compare with" and
let the candidate through with no check and no reason. Now the gate compares both models on the
held-out images of the classes they share and adds this check, which fails whenever the class
sets differ: the deploy then needs ``--override-gate`` and a ``--reason``, and the audit row says
what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSetCheck:
    """The gate's class-set check (reads like :class:`inspector.rollout.GateCheck`: what, passed, text)."""

    deployed: tuple[str, ...]
    candidate: tuple[str, ...]
    what: str = "class set"

    @property
    def added(self) -> list[str]:
        return [name for name in self.candidate if name not in self.deployed]

    @property
    def dropped(self) -> list[str]:
        return [name for name in self.deployed if name not in self.candidate]

    @property
    def passed(self) -> bool:
        return not self.added and not self.dropped

    @property
    def shared(self) -> list[str]:
        """The classes both models know, in the candidate's order: what the gate can compare."""
        return [name for name in self.candidate if name in self.deployed]

    def change(self) -> str:
        """``adds dent; drops spot`` (empty when the sets are equal)."""
        parts = []
        if self.added:
            parts.append("adds " + ", ".join(self.added))
        if self.dropped:
            parts.append("drops " + ", ".join(self.dropped))
        return "; ".join(parts)

    def text(self) -> str:
        if self.passed:
            return f"class set unchanged ({', '.join(self.candidate)})"
        shared = ", ".join(self.shared) or "none"
        return (
            f"class set changed: {self.change()} (deployed: {', '.join(self.deployed)}; "
            f"candidate: {', '.join(self.candidate)}; compared on the shared classes: {shared})"
        )


def class_set_check(deployed: Sequence[str], candidate: Sequence[str]) -> ClassSetCheck:
    return ClassSetCheck(tuple(deployed), tuple(candidate))
