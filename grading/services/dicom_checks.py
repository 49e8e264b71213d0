"""The per-file ingest check, free of Django so that it can run in worker processes.

``dicom_file_check`` reads one file with the DICOM layer (``read_mr_slice``: DICOM? MR?
greyscale pixel data that decodes? pixel spacing?; a multi-frame file, such as Enhanced
MR, with ``read_mr_frames``, each frame with its own geometry from the functional
groups) and returns what the portal stores about it, without the pixels, or the reason
it is refused. Each file's weighting comes from its header (``grading.dicom.protocol``).

``items_check`` runs it over a stream of uploaded files and zip entries, in a small pool
of worker processes for large uploads: a zip entry is inflated in the worker itself
(from the archive's file), with its real size and compression ratio checked while it
streams, and a good file is stored there too (Django's storage API), so that inflating,
parsing, hashing and writing all run beside the server process, which only records rows.
"""

from __future__ import annotations

import hashlib
import io
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
from typing import Any

import pydicom

from grading.dicom.protocol import classify_weighting, plane_of, sequence_header
from grading.dicom.reader import DicomReadError, read_mr_frames, read_mr_slice, slice_normal
from grading.dicom.uids import uid_problem
from grading.engine.types import MRSlice

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class CheckedFrame:
    """One frame of a multi-frame file: its own geometry. Lengths in mm."""

    frame_number: int  # 1-based
    rows: int
    columns: int
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float | None
    position: float | None
    orientation: tuple[float, ...] | None


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
    plane: str  # axial | coronal | sagittal | oblique | unknown
    size: int = 0  # bytes
    weighting: str = "unknown"  # grading.dicom.protocol.Weighting
    orientation: tuple[float, ...] | None = None  # ImageOrientationPatient
    frames: tuple[CheckedFrame, ...] = ()  # a multi-frame file: each frame; () single frame


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
    plane = str(plane_of(image_orientation))  # type: ignore[arg-type]
    if image_position is None:
        return None, plane
    position = float(sum(p * n for p, n in zip(image_position, normal, strict=True)))  # type: ignore[call-overload]
    return position, plane


def dicom_file_check(name: str, data: bytes) -> CheckedFile | RefusedFile:
    frames: list[MRSlice] = []
    try:
        mr_slice = read_mr_slice(data, name=name)
    except DicomReadError as exc:
        if not exc.reason.startswith("multi-frame"):
            return RefusedFile(exc.reason)
        try:
            frames = read_mr_frames(data, name=name)
        except DicomReadError as frame_exc:
            return RefusedFile(frame_exc.reason)
        mr_slice = frames[0]
    for what, uid in (
        ("StudyInstanceUID", mr_slice.study_instance_uid),
        ("SeriesInstanceUID", mr_slice.series_instance_uid),
        ("SOPInstanceUID", mr_slice.sop_instance_uid),
    ):
        if not uid:
            return RefusedFile(f"missing {what}")
        if (problem := uid_problem(uid, what=what)) is not None:
            return RefusedFile(problem)
    position, plane = _geometry(mr_slice.image_position, mr_slice.image_orientation)
    weighting = _weighting(data)
    checked_frames = tuple(
        CheckedFrame(
            frame_number=k + 1,
            rows=frame.shape[0],
            columns=frame.shape[1],
            pixel_spacing_mm=frame.pixel_spacing_mm,
            slice_thickness_mm=frame.slice_thickness_mm,
            position=_geometry(frame.image_position, frame.image_orientation)[0],
            orientation=frame.image_orientation,
        )
        for k, frame in enumerate(frames)
    )
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
        size=len(data),
        weighting=weighting,
        orientation=mr_slice.image_orientation,
        frames=checked_frames,
    )


def _weighting(data: bytes) -> str:
    """The file's weighting from its header (a second, pixel-free parse)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        return str(classify_weighting(sequence_header(ds))[0])
    except Exception:  # noqa: BLE001 - the file was read once already; say unknown
        return "unknown"


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


def stored_file_write(name: str, data: bytes) -> str | None:
    """Store the bytes under ``name`` through Django's default storage; None when they
    are already there. (Needs Django set up: the web process, or a check worker started
    with ``store_files``.)"""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    if default_storage.exists(name):
        return None
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        raise OSError(f"storage stored {name} as {saved}")
    return saved


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


def _item_check_in_worker(item: Item) -> WorkerOutcome:
    """In a worker that stores files: check, then write a good file through Django's
    storage, and send back only the result and the name if this call wrote it (the bytes
    stay here)."""
    from grading.models.studies import dicom_file_name  # Django is set up in workers

    result, data = item_check(item)
    written = None
    if isinstance(result, CheckedFile) and data is not None:
        try:
            written = stored_file_write(dicom_file_name(result.sha256), data)
        except Exception as exc:  # noqa: BLE001 - the parent raises it after its clean-up
            return StoreFailed(f"{type(exc).__name__}: {exc}"), None, None
    return result, None, written


@dataclass(frozen=True)
class StoreFailed:
    """Writing a good file failed in a check worker; the upload is aborted."""

    error: str


# What a check worker sends back for one item: the result (or StoreFailed), no bytes,
# and the stored file's name when the worker wrote it.
WorkerOutcome = tuple[Result | StoreFailed, None, str | None]


# --- a small pool of check processes --------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker_init(storages: dict[str, Any] | None) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and
    # these workers go with it, without a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Django (DJANGO_SETTINGS_MODULE is inherited) for the storage API, with the
    # parent's storage configuration as it is at run time.
    import django
    from django.conf import settings

    django.setup()
    if storages is not None:
        settings.STORAGES = storages


def _get_pool(processes: int) -> ProcessPoolExecutor:
    global _pool
    storages = _parent_storages()
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
                max_workers=processes,
                mp_context=context,
                initializer=_worker_init,
                initargs=(storages,),
            )
        return _pool


def _parent_storages() -> dict[str, Any] | None:
    try:
        from django.conf import settings

        return dict(settings.STORAGES) if settings.configured else None
    except Exception:  # noqa: BLE001 - no Django here: the workers use their own settings
        return None


def _drop_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def items_check(
    items: Iterable[Item],
    *,
    processes: int,
    window: int = 32,
    min_for_pool: int = 8,
    batch: int = 8,
) -> Iterator[tuple[Item, Result | StoreFailed, bytes | None, str | None]]:
    """Check uploaded files and zip entries, in input order.

    Yields ``(item, result, data, written)``. Checked here (fewer than ``min_for_pool``
    items, or ``processes`` 0): ``data`` holds a good file's bytes and nothing is stored.
    Checked in the ``processes`` worker processes (pydicom holds the GIL, so threads
    would not help; at most ``window`` items in flight): the worker has already stored a
    good file at ``dicom_file_name(sha256)``; ``data`` is None and ``written`` is that
    name when this call wrote it (None when the bytes were already there).

    Items go to the workers ``batch`` at a time (fewer when the window is small): one
    round trip per item cost more than the check of a tiny entry, and an archive of
    20 000 one-byte entries took 8 s instead of 1.
    """
    items = iter(items)
    head = list(itertools.islice(items, min_for_pool))
    if processes <= 0 or len(head) < min_for_pool:
        # A few files are checked here: not worth a hop to another process.
        for item in itertools.chain(head, items):
            yield (item, *item_check(item), None)
        return
    pool = _get_pool(processes)
    size = max(1, min(batch, window // (2 * processes)))
    pending: deque[tuple[list[Item], Future[list[WorkerOutcome]] | None]] = deque()
    broken = False

    def collect(
        entry: tuple[list[Item], Future[list[WorkerOutcome]] | None],
    ) -> Iterator[tuple[Item, Result | StoreFailed, bytes | None, str | None]]:
        nonlocal broken
        chunk, future = entry
        if future is not None:
            try:
                outcomes = future.result()
            except BrokenProcessPool:
                broken = True
                _drop_pool()
            else:
                for item, outcome in zip(chunk, outcomes, strict=True):
                    yield (item, *outcome)
                return
        for item in chunk:
            yield (item, *item_check(item), None)

    chunk: list[Item] = []
    for item in itertools.chain(head, items):
        chunk.append(item)
        if len(chunk) < size:
            continue
        pending.append((chunk, None if broken else _submit(pool, chunk)))
        chunk = []
        while len(pending) * size >= window:
            yield from collect(pending.popleft())
    if chunk:
        pending.append((chunk, None if broken else _submit(pool, chunk)))
    while pending:
        yield from collect(pending.popleft())


def _items_check_in_worker(items: list[Item]) -> list[WorkerOutcome]:
    return [_item_check_in_worker(item) for item in items]


def _submit(pool: ProcessPoolExecutor, items: list[Item]) -> Future[list[WorkerOutcome]] | None:
    try:
        return pool.submit(_items_check_in_worker, items)
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
