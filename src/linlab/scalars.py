"""The one reader of a run folder's TensorBoard scalars, under today's tag names.

It reads what TensorBoard's ``EventAccumulator`` reads, the same way (event files of the
folder in name order; a file ends at its first truncated record or failed checksum; events
orphaned by a restart purged as TensorBoard purges them), about 3x faster
(``scripts/bench_scalars.py``): the accumulator checks each record's CRC-32C byte by byte in
Python, most of its time. Here every record of a file is checked in one NumPy pass,
by the linearity of the CRC over GF(2): with r₀ = 0, the register after bytes b₀…b_{L−1} is
⊕ᵢ Gₗ₋₁₋ᵢ[bᵢ], where Gₖ[b] is byte b followed by k zero bytes (G₀ is the CRC table), and
the CRC-32C of the data is that XOR the CRC-32C of L zero bytes.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from linlab import tags

TABLE_BYTES = 4096  # records up to this long are checked in one pass, longer ones in chunks
CRC_MASK_DELTA = 0xA282EAD8  # TFRecord's masked CRC: rotate right by 15, add this


def read_scalars(folder: str | Path) -> dict[str, dict[int, float]]:
    """Every scalar tag of the event files directly in ``folder``: ``{tag: {step: value}}``.

    Steps are in increasing order; a step written twice (a resumed run) keeps its last value.
    Tags an older linlab wrote (``val/loss``) come under today's names (``loss/val``).
    """
    if not Path(folder).is_dir():  # a job not started yet
        return {}
    points = _scalar_points(sorted(_event_files(Path(folder))))
    curves: dict[str, dict[int, float]] = {}
    for tag, steps in points.items():
        curves.setdefault(tags.current(tag), {}).update(steps)
    return {tag: dict(sorted(curve.items())) for tag, curve in curves.items()}


def _event_files(folder: Path) -> Iterator[str]:
    """TensorBoard's ``io_wrapper.IsSummaryEventsFile``: "tfevents" in the name, not a
    profiler's ``.profile-empty`` placeholder."""
    for name in os.listdir(folder):
        if "tfevents" in name and not name.endswith(".profile-empty"):
            yield os.path.join(folder, name)


def _scalar_points(paths: list[str]) -> dict[str, list[tuple[int, float]]]:
    """The ``simple_value`` points of the files' events in order, purged as
    ``EventAccumulator._MaybePurgeOrphanedData`` purges: from a file version of 2 on, a
    ``SessionLog.START`` at step s drops every point at step ≥ s; before that, an event whose
    step goes back drops its own tags' points at steps ≥ its step."""
    from tensorboard.backend.event_processing.event_util import ParseFileVersion
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    points: dict[str, list[tuple[int, float]]] = {}
    file_version, latest = None, -1

    def purge(step: int, tag_names: list[str]) -> None:
        for tag in set(tag_names) & set(points):
            points[tag] = [p for p in points[tag] if p[0] < step]

    for path in paths:
        for record in _records(Path(path).read_bytes()):
            event = Event.FromString(record)
            if event.HasField("file_version"):
                file_version = ParseFileVersion(event.file_version)
            if file_version and file_version >= 2:
                if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                    purge(event.step, list(points))
            elif event.step < latest and event.HasField("summary"):
                purge(event.step, [value.tag for value in event.summary.value])
            else:
                latest = event.step
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    points.setdefault(value.tag, []).append((event.step, value.simple_value))
    return points


def _records(data: bytes) -> list[bytes]:
    """A TFRecord file's records (length u64, masked CRC of the length, data, masked CRC of
    the data) up to the first one that is cut short or fails its checksum."""
    spans, offset = [], 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        start = offset + 12
        if start + length + 4 > len(data):
            break
        spans.append((offset, start, length))
        offset = start + length + 4
    if not spans:
        return []
    pieces = [(offset, 8) for offset, _, _ in spans] + [(start, n) for _, start, n in spans]
    crcs = masked_crc32c(data, pieces)
    stored = [struct.unpack_from("<I", data, offset + 8)[0] for offset, _, _ in spans]
    stored += [struct.unpack_from("<I", data, start + n)[0] for _, start, n in spans]
    records = []
    for i, (_, start, length) in enumerate(spans):
        if crcs[i] != stored[i] or crcs[len(spans) + i] != stored[len(spans) + i]:
            break
        records.append(data[start : start + length])
    return records


def masked_crc32c(data: bytes, pieces: list[tuple[int, int]]) -> list[int]:
    """TFRecord's masked CRC-32C of each ``data[offset : offset + length]`` (one NumPy pass;
    also what ``linlab.stacking.event_writer`` writes)."""
    short = [(o, n) for o, n in pieces if 0 < n <= TABLE_BYTES]  # an empty one's is 0
    crcs = dict(zip(short, _crc32c_table_pass(data, short), strict=True)) if short else {}
    masked = []
    for piece in pieces:
        crc = crcs.get(piece, 0) if piece[1] <= TABLE_BYTES else _crc32c_long(data, *piece)
        masked.append((((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF)
    return masked


def _crc32c_table_pass(data: bytes, pieces: list[tuple[int, int]]) -> list[int]:
    """CRC-32C of every piece (each 1..``TABLE_BYTES`` long) in one pass (module docstring)."""
    shifted, zeros = _tables()
    buffer = np.frombuffer(data, dtype=np.uint8)
    offsets, lengths = np.array(pieces, dtype=np.int64).T
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))  # in the pieces laid end to end
    position = np.arange(lengths.sum())
    index = np.repeat(offsets - starts, lengths) + position
    from_end = np.repeat(starts + lengths, lengths) - 1 - position
    contributions = shifted[from_end, buffer[index]]
    registers = np.bitwise_xor.reduceat(contributions, starts)
    return (registers ^ zeros[lengths]).tolist()


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """G (``TABLE_BYTES`` × 256: Gₖ[b], module docstring) and the CRC-32C of k zero bytes."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import CRC_TABLE

    table = np.array(CRC_TABLE, dtype=np.uint32)
    shifted = np.empty((TABLE_BYTES, 256), dtype=np.uint32)
    shifted[0] = table
    for k in range(1, TABLE_BYTES):
        shifted[k] = table[shifted[k - 1] & 0xFF] ^ (shifted[k - 1] >> 8)
    zeros = np.empty(TABLE_BYTES + 1, dtype=np.uint32)
    register = np.uint32(0xFFFFFFFF)
    for k in range(TABLE_BYTES + 1):
        zeros[k] = register ^ np.uint32(0xFFFFFFFF)
        register = table[register & 0xFF] ^ (register >> np.uint32(8))
    return shifted, zeros


def _crc32c_long(data: bytes, offset: int, length: int) -> int:
    """CRC-32C of a piece longer than ``TABLE_BYTES`` (an image's record), chunk by chunk:
    the register r carried into a chunk of n ≥ 4 bytes adds ⊕ⱼ Gₙ₋₁₋ⱼ[byte j of r] (r's
    bytes enter the CRC as if XORed into the chunk's first four), a tail under 4 bytes is
    taken byte by byte."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import CRC_TABLE

    shifted, zeros = _tables()
    end = offset + length
    chunks = [(o, min(TABLE_BYTES, end - o)) for o in range(offset, end, TABLE_BYTES)]
    tail = chunks.pop() if chunks[-1][1] < 4 else None
    register = 0xFFFFFFFF
    for (_, n), crc in zip(chunks, _crc32c_table_pass(data, chunks), strict=True):
        carried = 0
        for j in range(4):
            carried ^= int(shifted[n - 1 - j, (register >> (8 * j)) & 0xFF])
        register = carried ^ crc ^ int(zeros[n])
    for byte in data[tail[0] : tail[0] + tail[1]] if tail else b"":
        register = CRC_TABLE[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register ^ 0xFFFFFFFF
