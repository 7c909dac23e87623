"""The open-loop phases' tail, split by when each message was due and by what it was."""

from __future__ import annotations

from bench.harness import timeline_tail


def test_timeline_tail_puts_each_message_in_the_window_of_its_due_time_and_in_its_kind():
    timeline = [(0.1, 0.010, "Started"), (1.9, 0.030, "Started"), (2.0, 0.002, "Updated"), (5.5, 0.004, "Heartbeat")]
    tail = timeline_tail(timeline, 2.0)
    assert tail["by_window"] == {
        "0-2 s": {"n": 2, "p50_ms": 10.0, "p99_ms": 30.0},
        "2-4 s": {"n": 1, "p50_ms": 2.0, "p99_ms": 2.0},
        "4-6 s": {"n": 1, "p50_ms": 4.0, "p99_ms": 4.0},
    }
    assert tail["by_kind"] == {
        "Heartbeat": {"n": 1, "p50_ms": 4.0, "p99_ms": 4.0},
        "Started": {"n": 2, "p50_ms": 10.0, "p99_ms": 30.0},
        "Updated": {"n": 1, "p50_ms": 2.0, "p99_ms": 2.0},
    }
