"""The per-file ingest check, free of Django so that it can run in worker processes.

``dicom_file_check`` reads one file with the DICOM layer (``read_mr_slice``: DICOM? MR?
greyscale pixel data that decodes? pixel spacing? single frame?) and returns what the
portal stores about it, without the pixels, or the reason it is refused.

``items_check`` runs it over a stream of uploaded files and zip entries, in a small pool
of worker processes for large uploads: a zip entry is inflated in the worker itself
(from the archive's file), with its real size and compression ratio checked while it
streams, so that inflating, parsing and hashing all run beside the server process.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
import threading
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from grading.dicom.reader import DicomReadError, read_mr_slice, slice_normal

_CHUNK = 1024 * 1024


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


@dataclass(frozen=True)
class ArchiveProblem:
    """The zip entry broke the archive's bounds: the whole archive is refused."""

    reason: str


@dataclass(frozen=True)
class FileItem:
    name: str
    data: bytes


@dataclass(frozen=True)
class ZipEntryItem:
    """An entry of a zip archive on disk whose central directory was already checked."""

    name: str  # "<archive>/<entry>", for messages
    path: str
    entry: str
    max_ratio: float


Item = FileItem | ZipEntryItem
Result = CheckedFile | RefusedFile | ArchiveProblem


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


# --- zip entries ------------------------------------------------------------------------------

_open_zip: tuple[tuple[str, int, int, int], zipfile.ZipFile] | None = None


def _zip(path: str) -> zipfile.ZipFile:
    """The archive, kept open between its entries (keyed by inode, size and mtime, so a
    reused temporary file name is never mistaken for the previous archive)."""
    global _open_zip
    stat = os.stat(path)
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if _open_zip is None or _open_zip[0] != key:
        if _open_zip is not None:
            _open_zip[1].close()
        _open_zip = (key, zipfile.ZipFile(path))
    return _open_zip[1]


def zip_entry_read(item: ZipEntryItem) -> bytes | ArchiveProblem:
    """Inflate one entry, counting the real bytes: never more than its declared size,
    never more than ``max_ratio`` times its compressed size."""
    try:
        archive = _zip(item.path)
        info = archive.getinfo(item.entry)
        chunks: list[bytes] = []
        total = 0
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > info.file_size:
                    return ArchiveProblem(f"entry {item.entry!r} inflates past its declared size")
                if info.compress_size and total / info.compress_size > item.max_ratio:
                    return ArchiveProblem(
                        f"entry {item.entry!r} inflates more than {item.max_ratio:.0f}:1"
                    )
                chunks.append(chunk)
        return b"".join(chunks)
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        KeyError,
    ) as exc:
        return ArchiveProblem(f"entry {item.entry!r} cannot be read ({exc})")


def item_check(item: Item) -> tuple[Result, bytes | None]:
    """Check one uploaded file or zip entry; the bytes come back only for a good file."""
    if isinstance(item, ZipEntryItem):
        data = zip_entry_read(item)
        if isinstance(data, ArchiveProblem):
            return data, None
    else:
        data = item.data
    try:
        result = dicom_file_check(item.name, data)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one odd file never stops the others
        return RefusedFile(f"unreadable ({type(exc).__name__}: {exc})"), None
    return result, (data if isinstance(result, CheckedFile) else None)


def _item_check_in_worker(item: Item) -> tuple[Result, bytes | None]:
    # A file item's bytes are already in the parent: only send back what it lacks.
    result, data = item_check(item)
    return result, (data if isinstance(item, ZipEntryItem) else None)


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
            # import the parent's __main__ script. The children import this module by
            # name, so the project must be on their path.
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


def items_check(
    items: Iterable[Item], *, processes: int, window: int = 32, min_for_pool: int = 8
) -> Iterator[tuple[Item, Result, bytes | None]]:
    """Check uploaded files and zip entries; yield ``(item, result, bytes of a good
    file)`` in input order; in ``processes`` worker processes (pydicom holds the GIL, so
    threads would not help) when there are at least ``min_for_pool`` items, with at most
    ``window`` in flight."""
    items = iter(items)
    head = list(itertools.islice(items, min_for_pool))
    if processes <= 0 or len(head) < min_for_pool:
        # A few files are checked here: not worth a hop to another process.
        for item in itertools.chain(head, items):
            yield (item, *item_check(item))
        return
    pool = _get_pool(processes)
    pending: deque[tuple[Item, Future[tuple[Result, bytes | None]] | None]] = deque()
    broken = False

    def collect(
        entry: tuple[Item, Future[tuple[Result, bytes | None]] | None],
    ) -> tuple[Item, Result, bytes | None]:
        nonlocal broken
        item, future = entry
        if future is not None:
            try:
                result, data = future.result()
                if data is None and isinstance(item, FileItem) and isinstance(result, CheckedFile):
                    data = item.data
                return item, result, data
            except BrokenProcessPool:
                broken = True
                _drop_pool()
        return (item, *item_check(item))

    for item in itertools.chain(head, items):
        pending.append((item, None if broken else _submit(pool, item)))
        while len(pending) >= window:
            yield collect(pending.popleft())
    while pending:
        yield collect(pending.popleft())


def _submit(pool: ProcessPoolExecutor, item: Item) -> Future[tuple[Result, bytes | None]] | None:
    try:
        return pool.submit(_item_check_in_worker, item)
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
