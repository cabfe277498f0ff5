"""``linlab.scalars.read_scalars`` reads what TensorBoard's ``EventAccumulator`` reads, on
event files that end, break and restart the ways real ones do."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

from linlab import tags
from linlab.scalars import TABLE_BYTES, read_scalars


def accumulated(folder: Path) -> dict[str, dict[int, float]]:
    """TensorBoard's reading: every scalar tag's points, a later point of a step winning."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    curves: dict[str, dict[int, float]] = {}
    for tag in events.Tags()["scalars"]:
        curve = curves.setdefault(tags.current(tag), {})
        curve.update((e.step, e.value) for e in events.Scalars(tag))
    return {tag: dict(sorted(curve.items())) for tag, curve in curves.items()}


def scalar(step: int, **values: float) -> Event:
    summary = Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in values.items()])
    return Event(wall_time=1.0 + step, step=step, summary=summary)


def write_events(path: Path, events: list[Event], version: bool = True) -> None:
    with path.open("wb") as f:
        writer = RecordWriter(f)
        if version:
            writer.write(Event(wall_time=0.0, file_version="brain.Event:2").SerializeToString())
        for event in events:
            writer.write(event.SerializeToString())


def steps(first: int, last: int, tag: str = tags.VAL_LOSS) -> list[Event]:
    return [scalar(s, **{tag: 1.0 / s, tags.TRAIN_LOSS: 2.0 / s}) for s in range(first, last)]


START = Event(wall_time=50.0, step=5, session_log=SessionLog(status=SessionLog.START))
LONG_TAG = "params/" + "w" * TABLE_BYTES  # a record past the NumPy table: checked byte by byte


def truncate(path: Path, drop: int) -> None:
    path.write_bytes(path.read_bytes()[:-drop])


def flip(path: Path, at: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x40
    path.write_bytes(bytes(data))


CASES = {  # name: files (name, events, file version written) and what is done to the last one
    "two files in name order": ([("a", steps(1, 20)), ("b", steps(20, 30))], None),
    "cut in the last record": ([("a", steps(1, 20))], lambda p: truncate(p, 7)),
    "cut in a record's length": ([("a", steps(1, 20))], lambda p: truncate(p, 40)),
    "a byte flipped mid-file": ([("a", steps(1, 40))], lambda p: flip(p, 0.5)),
    "restart purges later steps": ([("a", steps(1, 10)), ("b", [START, *steps(5, 8)])], None),
    "older file: steps going back": ([("a", steps(1, 10) + steps(4, 6)[:1])], "no version"),
    "renamed tags merge": ([("a", steps(1, 5, "val/loss")), ("b", steps(5, 9))], None),
    "a record longer than the table": ([("a", [scalar(3, **{LONG_TAG: 0.5}), *steps(1, 4)])], None),
    "an empty file": ([("a", steps(1, 5)), ("b", [])], lambda p: p.write_bytes(b"")),
}


@pytest.mark.parametrize("case", CASES)
def test_read_scalars_equals_tensorboards_event_accumulator(tmp_path, case):
    files, damage = CASES[case]
    for name, events in files:
        write_events(tmp_path / f"events.out.tfevents.{name}", events, damage != "no version")
    (tmp_path / "events.out.tfevents.c.profile-empty").write_bytes(b"not events")
    if callable(damage):
        damage(tmp_path / f"events.out.tfevents.{files[-1][0]}")
    expected = accumulated(tmp_path)
    assert expected, case  # every case leaves some points to compare
    assert read_scalars(tmp_path) == expected
    assert [list(c) for c in read_scalars(tmp_path).values()] == [
        list(c) for c in expected.values()
    ]
