"""The one timing loop the benchmarks and the wizard share: models take turns, round by round."""

from __future__ import annotations

from models.latency import interleaved_rounds


def test_calls_take_turns_round_by_round_with_their_own_counts():
    order: list[str] = []
    calls = {key: (lambda key=key: order.append(key)) for key in ("a", "b")}
    rounds_seen: list[int] = []
    samples = interleaved_rounds(
        calls, 2, runs={"a": 2, "b": 1}, warmup={"a": 0, "b": 1}, on_round=rounds_seen.append
    )
    assert order == ["a", "a", "b", "b"] * 2  # per round: a's runs, then b's warm-up and run
    assert rounds_seen == [0, 1]
    assert {key: len(values) for key, values in samples.items()} == {"a": 4, "b": 2}
    assert all(value >= 0.0 for values in samples.values() for value in values)


def test_rounds_may_be_any_iterable_and_counts_one_number():
    order: list[str] = []
    calls = {key: (lambda key=key: order.append(key)) for key in ("x", "y")}
    samples = interleaved_rounds(calls, iter(range(3)), runs=1)
    assert order == ["x", "y"] * 3
    assert list(samples) == ["x", "y"] and all(len(values) == 3 for values in samples.values())
