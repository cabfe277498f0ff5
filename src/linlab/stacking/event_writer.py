"""A stacked group's TensorBoard events written by one thread, not one thread per member.

Each member's ``SummaryWriter`` starts its own writer thread (TensorBoard's ``_AsyncWriter``),
which takes the GIL for every event and wakes every ``flush_secs``. A group of 1024 members ran
1025 threads: a load average of 800 on 2 cores, its steps waiting for the GIL. Here every
member's events go to one thread, each to its own file; a file gets the same records in the
same order as with its own thread, and is flushed at least every ``flush_secs``.

The training thread only appends an event to a deque (no lock, no wake-up); the writer wakes
when ``BATCH`` events wait or ``flush_secs`` have passed, and appends each file's waiting
records with one write: TensorBoard's local file system opens and closes the file for every
write, which cost more than the records themselves. The records' checksums are computed for the
whole batch in one NumPy pass (``tfrecords``).
"""

from __future__ import annotations

import collections
import itertools
import struct
import threading
import time
from collections.abc import Iterable
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger

from linlab.scalars import masked_crc32c

BATCH = 1024  # events waiting that wake the writer
LIMIT = 16 * BATCH  # events waiting that make the training thread wait for the writer
CRC_RECORDS = 128  # records checksummed in one NumPy pass (its arrays: ~1 MiB)
_STOP = object()


class GroupWriterThread(threading.Thread):
    """Writes ``(file number, bytes)`` items appended with ``put`` to ``record_writers``;
    flushes each file written since the last flush every ``flush_secs``. A failed write is kept
    and raised to every writer.

    An item holds the file's number, not its writer: a tuple of an int and bytes is not
    tracked by Python's cyclic GC, so the events waiting do not pile up in its oldest
    generation (whose growth triggers full collections, seconds long in a big group)."""

    def __init__(self, flush_secs: float) -> None:
        super().__init__(daemon=True, name="linlab-group-events")
        self.items: collections.deque[Any] = collections.deque()
        self.wake = threading.Event()
        self.flush_secs, self.exception = flush_secs, None
        self.record_writers: list[Any] = []
        self.open_writers = 0
        self.lock = threading.Lock()

    def put(self, item: Any) -> None:
        """Queue an event (on the training thread): cheap, the writer wakes for a batch."""
        self.items.append(item)
        if len(self.items) >= BATCH:
            self.wake.set()
            if len(self.items) >= LIMIT:
                self.written()

    def written(self) -> None:
        """Return once every event put so far is written."""
        done = threading.Event()
        self.items.append(done)
        self.wake.set()
        done.wait()

    def run(self) -> None:
        pending: set[Any] = set()
        next_flush = time.monotonic() + self.flush_secs
        while True:
            self.wake.wait(timeout=max(next_flush - time.monotonic(), 0.0))
            self.wake.clear()
            if not self._write_waiting(pending):
                return
            if time.monotonic() >= next_flush:
                self._flush(pending)
                next_flush = time.monotonic() + self.flush_secs

    def _write_waiting(self, pending: set[Any]) -> bool:
        """Write the events waiting, each file's in one write; False after ``_STOP``."""
        records: dict[int, list[bytes]] = {}
        try:
            while True:
                try:
                    item = self.items.popleft()
                except IndexError:
                    return True
                if item is _STOP:
                    return False
                if isinstance(item, threading.Event):
                    self._append(records, pending)
                    item.set()
                    continue
                number, data = item
                records.setdefault(number, []).append(data)
        finally:
            self._append(records, pending)

    def _append(self, records: dict[int, list[bytes]], pending: set[Any]) -> None:
        """Each file's waiting records, framed, in one write to the file."""
        if not records or self.exception is not None:
            records.clear()
            return
        frames = iter(tfrecords([data for datas in records.values() for data in datas]))
        for number, datas in records.items():
            record_writer = self.record_writers[number]
            chunk = b"".join(next(frames) for _ in datas)
            try:
                record_writer._writer.write(chunk)
                pending.add(record_writer)
            except Exception as error:  # raised to the writers (``MemberWriter``)
                self.exception = error
                break
        records.clear()

    def _flush(self, pending: set[Any]) -> None:
        for record_writer in pending:
            try:
                record_writer.flush()
            except Exception as error:
                self.exception = error
        pending.clear()

    def closed_one(self) -> None:
        """A member's writer closed; the last one stops the thread."""
        with self.lock:
            self.open_writers -= 1
            last = self.open_writers == 0
        if last:
            self.items.append(_STOP)
            self.wake.set()
            self.join()


def tfrecords(datas: list[bytes]) -> list[bytes]:
    """Each ``data`` as TensorBoard's ``RecordWriter`` writes it (length, its masked CRC-32C,
    the data, its masked CRC-32C), the checksums of all in one NumPy pass: TensorBoard's own
    is pure Python, about 30 µs an event, on the thread that also holds the GIL for training.
    ``CRC_RECORDS`` records at a time, which bounds the pass's temporary arrays."""
    if len(datas) > CRC_RECORDS:
        parts = range(0, len(datas), CRC_RECORDS)
        return [frame for i in parts for frame in tfrecords(datas[i : i + CRC_RECORDS])]
    headers = [struct.pack("<Q", len(data)) for data in datas]
    lengths = [8] * len(headers) + [len(data) for data in datas]
    offsets = list(itertools.accumulate(lengths, initial=0))[:-1]
    crcs = masked_crc32c(b"".join(headers + datas), list(zip(offsets, lengths, strict=True)))
    n = len(datas)
    return [
        b"".join((header, struct.pack("<I", crcs[i]), data, struct.pack("<I", crcs[n + i])))
        for i, (header, data) in enumerate(zip(headers, datas, strict=True))
    ]


class MemberWriter:
    """TensorBoard's ``_AsyncWriter`` interface (``write``, ``flush``, ``close``) on the group's
    thread: ``flush`` waits until the events put are written, then flushes this member's file."""

    def __init__(self, record_writer: Any, thread: GroupWriterThread) -> None:
        self._writer, self._thread, self._closed = record_writer, thread, False
        self._number = len(thread.record_writers)
        thread.record_writers.append(record_writer)

    def write(self, bytestring: bytes) -> None:
        self._check(open_only=True)
        self._thread.put((self._number, bytestring))

    def flush(self) -> None:
        self._check(open_only=True)
        self._thread.written()
        self._check()
        self._writer.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._thread.written()
            self._writer.flush()
            self._writer.close()
        finally:
            self._thread.closed_one()

    def _check(self, open_only: bool = False) -> None:
        """Raise the thread's failed write (as TensorBoard's writer does), or that this
        writer is closed (``open_only``)."""
        if self._thread.exception is not None:
            raise self._thread.exception
        if open_only and self._closed:
            raise OSError("Writer is closed")


def one_writer_thread(loggers: Iterable[Logger]) -> None:
    """Move every TensorBoard logger's events file onto one new ``GroupWriterThread`` (its own
    thread stopped once it has written what it had, as its ``stop`` does); other loggers are
    left as they are."""
    writers = []
    for logger in loggers:
        if isinstance(logger, LightningTensorBoardLogger):
            event_writer = getattr(logger.experiment.file_writer, "event_writer", None)
            if event_writer is not None:
                writers.append(event_writer)
    if not writers:
        return
    thread = GroupWriterThread(min(float(w._async_writer._worker._flush_secs) for w in writers))
    workers = [w._async_writer._worker for w in writers]
    for worker in workers:  # all told to stop first, then waited for: no hand-off per member
        worker._queue.put(worker._shutdown_signal)
    for worker in workers:
        worker.join()
    for event_writer in writers:
        own = event_writer._async_writer
        own.flush()  # its thread's failed write raised; the file flushed
        event_writer._async_writer = MemberWriter(own._writer, thread)
    thread.open_writers = len(writers)
    thread.start()
