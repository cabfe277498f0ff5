"""A sweep's worker processes end when the sweep's process dies, however it dies.

A sweep's process that is killed (SIGKILL, the OOM killer) runs no code of its own, so its
workers must notice by themselves. Each worker of a sweep (a joblib/loky worker from the moment
it starts, through :func:`joblib_workers_watch_parent`; a submitit worker from its first job)
polls its parent pid. When the parent is gone: a worker with no job exits at once; a worker
with a job gets SIGTERM, which stops the fit at the next minibatch and records it as
``interrupted`` (``linlab.faults``), and exits once that record is written. Loky workers that
never got a job used to wait for work for joblib's idle timeout (300 s), keeping loky's and
multiprocessing's resource trackers alive with them; those trackers end once the workers do.

Standard library only: a loky worker runs :func:`watch_from_start` before it imports anything
of a job.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
SWEEP_PID_VAR = "LINLAB_SWEEP_PID"
SWEEP_HOST_VAR = "LINLAB_SWEEP_HOST"
POLL_S = 0.2
RECORD_WAIT_S = 120  # a stopped job writes its record within a minibatch and a save

_watching = threading.Event()
_current_job: list[Path] = []  # the folder of the job this worker runs now (none between jobs)


def mark_sweep_parent() -> None:
    """In the sweep's process: name it to the workers it starts (they inherit the environment)."""
    os.environ[SWEEP_PID_VAR] = str(os.getpid())
    os.environ[SWEEP_HOST_VAR] = socket.gethostname()


def joblib_workers_watch_parent() -> None:
    """Make this process's joblib ``loky`` workers run :func:`watch_from_start` as they start.

    Hydra's joblib launcher asks for the backend by name; the name now gives loky's backend
    with that initializer (joblib's ``initializer`` argument of its loky executor).
    """
    from joblib import register_parallel_backend
    from joblib._parallel_backends import LokyBackend

    class LokyWatchingParent(LokyBackend):
        def configure(self, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
            kwargs.setdefault("initializer", watch_from_start)
            return super().configure(*args, **kwargs)

    register_parallel_backend("loky", LokyWatchingParent)


def watch_from_start() -> None:
    """In a loky worker, a child of the sweep's process: exit now if that process is gone
    (this worker was handed over to init, or a subreaper), else watch it."""
    parent = os.environ.get(SWEEP_PID_VAR)
    if parent is None or int(parent) == os.getpid():
        return
    if os.getppid() != int(parent):
        os._exit(EXIT_INTERRUPTED)
    _watch(int(parent))


def job_started(run_dir: Path) -> None:
    """In a worker, at a job's start: the job a dying sweep must stop (and watch if not yet)."""
    _current_job[:] = [run_dir]
    parent = os.environ.get(SWEEP_PID_VAR)
    if parent is not None and int(parent) != os.getpid():
        _watch(int(parent))


def job_ended() -> None:
    _current_job.clear()


def _watch(parent: int) -> None:
    if os.getppid() != parent:
        if os.environ.get(SWEEP_HOST_VAR) == socket.gethostname() and not _alive(parent):
            os._exit(EXIT_INTERRUPTED)  # started or handed a job after the sweep died
        return  # not the sweep's own child (e.g. a SLURM task on another node)
    if _watching.is_set():
        return
    _watching.set()
    watcher = threading.Thread(target=_stop_when_gone, args=(parent,), daemon=True)
    watcher.start()


def _stop_when_gone(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    if not _current_job:
        os._exit(EXIT_INTERRUPTED)
    killed_at = time.time()
    record = _current_job[0] / "results.json"
    os.kill(os.getpid(), signal.SIGTERM)
    while time.time() - killed_at < RECORD_WAIT_S and _current_job:
        if record.exists() and record.stat().st_mtime >= killed_at:
            break
        time.sleep(POLL_S)
    os._exit(EXIT_INTERRUPTED)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a killed process that nobody has reaped yet (a zombie) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != "Z"
