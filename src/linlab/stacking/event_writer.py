"""A stacked group's TensorBoard events written by one thread, not one thread per member.

Each ``SummaryWriter`` starts its own writer thread (TensorBoard's ``_AsyncWriter``), which
takes the GIL for every event and wakes every ``flush_secs``. A group of 1024 members ran 1025
threads: a load average of 800 on 2 cores, its steps waiting for the GIL. Here every member's
events go to one thread, each to its own file; a file gets the same records in the same order
as with its own thread, and is flushed at least every ``flush_secs``. The members' writers are
made without a thread of their own (``ThreadlessSummaryWriter``): starting a thousand threads
only to stop and join them cost more than a member's loggers and callbacks together. A writer
that lives for a few records (a run's HParams session) writes them on the caller's thread
(``DirectWriter``).

The training thread only appends an event to a deque (no lock, no wake-up); the writer wakes
when ``BATCH`` events (``PER_FILE`` a file, for many files) wait or ``flush_secs`` have
passed, and appends each file's waiting records with one write: TensorBoard's local file
system opens and closes the file for every write, which cost more than the records themselves.
The records' checksums are computed for the whole batch in one NumPy pass (``tfrecords``).
"""

from __future__ import annotations

import collections
import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat import tf
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.event_file_writer import (
    EventFileWriter,
    _AsyncWriter,
    _global_uid,
)
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.writer import FileWriter

from linlab.scalars import masked_crc32c

BATCH = 1024  # events waiting that wake the writer (at least; 4 a file for many files)
PER_FILE = 4  # a wake-up's events per file: each file's are one write (an open and a close)
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
        self.open_writers, self.stopped = 0, False
        self.batch = BATCH  # events waiting that wake the writer
        self.lock = threading.Lock()
        self.files_lock = threading.Lock()  # a file is flushed or closed by one thread at a time

    def member_writer(self, record_writer: RecordWriter) -> MemberWriter | _AsyncWriter:
        """A writer of ``record_writer``'s file on this thread; once the thread has stopped
        (every member's writer closed: a writer reopened after the fit), TensorBoard's own."""
        with self.lock:
            if self.stopped:
                return _AsyncWriter(record_writer, max_queue_size=10, flush_secs=self.flush_secs)
            self.open_writers += 1
            self.batch = min(max(BATCH, PER_FILE * self.open_writers), LIMIT // 2)
        return MemberWriter(record_writer, self)

    def put(self, item: Any) -> None:
        """Queue an event (on the training thread): cheap, the writer wakes for a batch."""
        self.items.append(item)
        if len(self.items) >= self.batch:
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
        """Flush the files written since the last flush; a file its member closed since (after
        its last records were written) is not flushed again."""
        with self.files_lock:
            for record_writer in pending:
                if record_writer.closed:
                    continue
                try:
                    record_writer.flush()
                except Exception as error:
                    self.exception = error
        pending.clear()

    def closed_one(self) -> None:
        """A member's writer closed; the last one stops the thread."""
        with self.lock:
            self.open_writers -= 1
            last = self.stopped = self.open_writers == 0
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
        with self._thread.files_lock:
            self._writer.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._thread.written()
            with self._thread.files_lock:
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


class DirectWriter:
    """TensorBoard's ``_AsyncWriter`` interface on the caller's thread, for a writer of a few
    records (a run's HParams session), where starting and joining a thread costs more than the
    records: they wait until ``flush`` (or ``close``), then are framed together (``tfrecords``)
    and appended in one write."""

    def __init__(self, record_writer: RecordWriter) -> None:
        self._writer, self._closed = record_writer, False
        self._waiting: list[bytes] = []

    def write(self, bytestring: bytes) -> None:
        if self._closed:
            raise OSError("Writer is closed")
        self._waiting.append(bytestring)

    def flush(self) -> None:
        if self._closed:
            raise OSError("Writer is closed")
        self._write_waiting()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._write_waiting()
        finally:
            self._writer.close()

    def _write_waiting(self) -> None:
        if self._waiting:
            chunk = b"".join(tfrecords(self._waiting))
            self._waiting = []
            self._writer._writer.write(chunk)
        self._writer.flush()


WriterFor = Callable[[RecordWriter], Any]  # TensorBoard's ``_AsyncWriter`` interface


class ThreadlessEventFileWriter(EventFileWriter):
    """TensorBoard's ``EventFileWriter`` (the same file name and first record, TensorBoard
    2.21's ``__init__``) whose records go through ``writer_for(record_writer)`` instead of a
    thread of its own. The first record is not flushed here: the writer's owner flushes."""

    def __init__(self, logdir: str, writer_for: WriterFor, filename_suffix: str = "") -> None:
        self._logdir = logdir
        tf.io.gfile.makedirs(logdir)
        stamp, host, uid = int(time.time()), socket.gethostname(), _global_uid.get()
        name = f"events.out.tfevents.{stamp:010d}.{host}.{os.getpid()}.{uid}"
        self._file_name = os.path.join(logdir, name) + filename_suffix
        self._general_file_writer = tf.io.gfile.GFile(self._file_name, "wb")
        self._async_writer = writer_for(RecordWriter(self._general_file_writer))
        source = event_pb2.SourceMetadata(writer="tensorboard.summary.writer.event_file_writer")
        first = event_pb2.Event(
            wall_time=time.time(), file_version="brain.Event:2", source_metadata=source
        )
        self.add_event(first)


class ThreadlessFileWriter(FileWriter):
    """torch's ``FileWriter`` around a ``ThreadlessEventFileWriter``."""

    def __init__(self, log_dir: str, writer_for: WriterFor, filename_suffix: str = "") -> None:
        self.event_writer = ThreadlessEventFileWriter(str(log_dir), writer_for, filename_suffix)


class ThreadlessSummaryWriter(SummaryWriter):
    """A ``SummaryWriter`` whose event files write through ``writer_for`` (``DirectWriter``,
    or a ``GroupWriterThread``'s ``member_writer``); with ``purge_step``, torch's own."""

    def __init__(self, writer_for: WriterFor, **kwargs: Any) -> None:
        self._writer_for = writer_for
        super().__init__(**kwargs)

    def _get_file_writer(self) -> FileWriter:
        if (self.all_writers is None or self.file_writer is None) and self.purge_step is None:
            suffix = self.filename_suffix
            self.file_writer = ThreadlessFileWriter(self.log_dir, self._writer_for, suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
        return super()._get_file_writer()


def one_writer_thread(loggers: Iterable[Logger]) -> None:
    """Make every TensorBoard logger's writer (those not made yet) on one new
    ``GroupWriterThread``, as Lightning's ``experiment`` makes it, but without the writer's own
    thread; every member's first record is on disk when this returns. Other loggers are left
    as they are."""
    tensorboard = [
        logger
        for logger in loggers
        if isinstance(logger, LightningTensorBoardLogger) and logger._experiment is None
    ]
    if not tensorboard or rank_zero_only.rank != 0:
        return
    flush_secs = min(float(logger._kwargs.get("flush_secs", 120)) for logger in tensorboard)
    thread = GroupWriterThread(flush_secs)
    thread.start()
    for logger in tensorboard:
        if logger.root_dir:
            logger._fs.makedirs(logger.root_dir, exist_ok=True)
        kwargs = {"log_dir": logger.log_dir, **logger._kwargs}
        logger._experiment = ThreadlessSummaryWriter(thread.member_writer, **kwargs)
        logger.experiment  # noqa: B018  (linlab's logger shares the histogram bins)
    thread.written()
