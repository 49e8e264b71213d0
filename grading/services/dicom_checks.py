"""The per-file ingest check, free of Django so that it can run in worker processes.

``dicom_file_check`` reads one file with the DICOM layer (``read_mr_slice``: DICOM? MR?
greyscale pixel data that decodes? pixel spacing? single frame?) and returns what the
portal stores about it, without the pixels, or the reason it is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from grading.dicom.reader import DicomReadError, read_mr_slice, slice_normal


@dataclass(frozen=True)
class CheckedFile:
    """What ingest keeps of a good file (no pixels). Lengths in mm."""

    sha256: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    instance_number: int | None
    rows: int
    columns: int
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float | None
    position: float | None  # along the slice normal
    plane: str  # axial | coronal | sagittal | unknown


@dataclass(frozen=True)
class RefusedFile:
    reason: str


def _geometry(image_position: object, image_orientation: object) -> tuple[float | None, str]:
    if image_orientation is None:
        return None, "unknown"
    try:
        normal = slice_normal(image_orientation)  # type: ignore[arg-type]
    except ValueError:
        return None, "unknown"
    axis = max(range(3), key=lambda i: abs(normal[i]))
    plane = ("sagittal", "coronal", "axial")[axis]
    if image_position is None:
        return None, plane
    position = float(sum(p * n for p, n in zip(image_position, normal, strict=True)))  # type: ignore[call-overload]
    return position, plane


def dicom_file_check(name: str, data: bytes) -> CheckedFile | RefusedFile:
    try:
        mr_slice = read_mr_slice(data, name=name)
    except DicomReadError as exc:
        reason = exc.reason
        if reason.startswith("multi-frame"):
            reason = f"{reason.split(';')[0]}: upload single-frame slices"
        return RefusedFile(reason)
    for what, uid in (
        ("StudyInstanceUID", mr_slice.study_instance_uid),
        ("SeriesInstanceUID", mr_slice.series_instance_uid),
        ("SOPInstanceUID", mr_slice.sop_instance_uid),
    ):
        if not uid:
            return RefusedFile(f"missing {what}")
    position, plane = _geometry(mr_slice.image_position, mr_slice.image_orientation)
    return CheckedFile(
        sha256=hashlib.sha256(data).hexdigest(),
        sop_instance_uid=mr_slice.sop_instance_uid,
        series_instance_uid=mr_slice.series_instance_uid,
        study_instance_uid=mr_slice.study_instance_uid,
        instance_number=mr_slice.instance_number,
        rows=mr_slice.shape[0],
        columns=mr_slice.shape[1],
        pixel_spacing_mm=mr_slice.pixel_spacing_mm,
        slice_thickness_mm=mr_slice.slice_thickness_mm,
        position=position,
        plane=plane,
    )


def _check_pair(item: tuple[str, bytes]) -> CheckedFile | RefusedFile:
    try:
        return dicom_file_check(*item)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one odd file never stops the others
        return RefusedFile(f"unreadable ({type(exc).__name__}: {exc})")


# --- a small pool of check processes --------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker_init() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and
    # these workers go with it, without a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _get_pool(processes: int) -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # forkserver: children fork from a clean helper process, not from this
            # (threaded) server process. Nothing preloaded: by default the helper would
            # import the parent's __main__ script. The children import this module by name, so
            # the project must be on their path.
            root = str(Path(__file__).resolve().parents[2])
            paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if root not in paths:
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [root, *paths] if p)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([])  # not even __main__
            _pool = ProcessPoolExecutor(
                max_workers=processes, mp_context=context, initializer=_worker_init
            )
        return _pool


def _drop_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def dicom_files_check(
    items: Iterable[tuple[str, bytes]],
    *,
    processes: int,
    window: int = 32,
    min_for_pool: int = 8,
) -> Iterator[tuple[tuple[str, bytes], CheckedFile | RefusedFile]]:
    """Check ``(name, bytes)`` items and yield ``(item, result)`` in input order; in
    ``processes`` worker processes when that is more than 0 (pydicom holds the GIL, so
    threads would not help), at most ``window`` files in flight."""
    items = iter(items)
    head = list(itertools.islice(items, min_for_pool))
    if processes <= 0 or len(head) < min_for_pool:
        # A few files are checked here: not worth a hop to another process.
        for item in itertools.chain(head, items):
            yield item, _check_pair(item)
        return
    items = itertools.chain(head, items)
    pool = _get_pool(processes)
    pending: deque[tuple[tuple[str, bytes], Future[CheckedFile | RefusedFile] | None]] = deque()
    broken = False

    def result(
        entry: tuple[tuple[str, bytes], Future[CheckedFile | RefusedFile] | None],
    ) -> tuple[tuple[str, bytes], CheckedFile | RefusedFile]:
        nonlocal broken
        item, future = entry
        if future is not None:
            try:
                return item, future.result()
            except BrokenProcessPool:
                broken = True
                _drop_pool()
        return item, _check_pair(item)

    for item in items:
        pending.append((item, None if broken else _submit(pool, item)))
        while len(pending) >= window:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


def _submit(
    pool: ProcessPoolExecutor, item: tuple[str, bytes]
) -> Future[CheckedFile | RefusedFile] | None:
    try:
        return pool.submit(_check_pair, item)
    except (BrokenProcessPool, RuntimeError):
        _drop_pool()
        return None


def default_processes() -> int:
    return min(2, os.cpu_count() or 1)


def _ready() -> bool:
    return True


def dicom_checks_warm(processes: int) -> None:
    """Start the check processes now (they import pydicom and numpy), so that the first
    large upload does not wait for them. Call from a background thread."""
    if processes <= 0:
        return
    pool = _get_pool(processes)
    for future in [pool.submit(_ready) for _ in range(processes)]:
        future.result()
