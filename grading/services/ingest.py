"""Upload: check each DICOM file, deduplicate, group into study/series, store, audit.

Every file is checked with the DICOM layer's ``read_mr_slice``, which decodes the pixels
(an MR greyscale image with pixel data and a pixel spacing); ``inspect_dicom`` reads the
patient, study and series attributes once per new study or series. Large uploads are
checked in ``ONFH_INGEST_PROCESSES`` worker processes (``grading.services.dicom_checks``).
A bad file gets a reason and the good ones go on. Instances are unique by
SOPInstanceUID: a re-upload is counted as accepted and stores nothing new.

Zip archives are refused as a whole (with a reason, and nothing from them stored) when
an entry has an absolute or ``..`` path, when the archive has too many entries, or when
its uncompressed size or compression ratio is out of bounds, as the headers declare it
or as the bytes really decompress while they stream. A request whose files together
exceed ``ONFH_MAX_UPLOAD_BYTES`` raises :class:`UploadTooLarge` (HTTP 413) before
anything is read. If storing fails half-way, the transaction rolls back and the files
this request wrote are deleted again.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from grading.dicom.reader import DicomReadError, inspect_dicom
from grading.models import Instance, Series, Site, Study
from grading.models.studies import dicom_file_name, instance_upload_to
from grading.services.arrivals import SeriesArrivals, series_arrivals_stamp
from grading.services.audit import audit_record
from grading.services.dicom_checks import (
    ArchiveProblem,
    CheckedFile,
    FileItem,
    RefusedFile,
    StoreFailed,
    ZipEntryItem,
    default_processes,
    dicom_file_check,
    items_check,
)

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_SPOOL_MAX = 8 * 1024 * 1024


class UploadError(Exception):
    """The whole request is refused (nothing stored). ``status_code`` for the API."""

    status_code = 400


class UploadTooLarge(UploadError):
    status_code = 413


class UidConflict(UploadError):
    """A concurrent upload stored some of the same UIDs in this site first (the database's
    unique (site, UID) constraints refused this one); nothing of this request is kept."""

    status_code = 409


def _is_uid_conflict(exc: IntegrityError) -> bool:
    # PostgreSQL names the constraint; SQLite names the columns.
    text = str(exc)
    return "unique_uid_per_" in text or (
        "UNIQUE constraint failed" in text and "_instance_uid" in text
    )


class ArchiveRefused(Exception):
    """One archive is refused as a whole; its reason goes into the report."""


@dataclass(frozen=True)
class RejectedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class AcceptedFile:
    """One accepted file: stored now (``stored``) or already stored here before."""

    name: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    study_id: int
    stored: bool


@dataclass
class IngestReport:
    """``accepted`` counts stored files plus re-uploads of files already stored here;
    ``studies`` are the studies those files belong to (new or existing); ``files`` the
    accepted files one by one and ``summaries`` what was done per study id (the audit's
    ``after``)."""

    studies: list[Study] = field(default_factory=list)
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedFile] = field(default_factory=list)
    files: list[AcceptedFile] = field(default_factory=list)
    summaries: dict[int, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "studies": [
                {"id": s.pk, "study_instance_uid": s.study_instance_uid} for s in self.studies
            ],
            "accepted": self.accepted,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": [{"name": r.name, "reason": r.reason} for r in self.rejected],
        }


@dataclass
class _Candidate:
    name: str
    data: bytes


@dataclass
class _Checked:
    name: str
    data: bytes | None  # None: stored already, by a check worker
    info: CheckedFile
    _header: Any = None
    # Its file is already at its content-addressed name (written while others were
    # still being checked).
    prewritten: bool = False

    @property
    def header(self) -> Any:
        """Patient, study and series attributes (``inspect_dicom``): read only for the first
        file of a new study or series, which keeps ingest to one parse per file."""
        if self._header is None:
            data = self.data
            if data is None:
                with default_storage.open(dicom_file_name(self.sha256), "rb") as handle:
                    data = handle.read()
            self._header = inspect_dicom(data, name=self.name)
        return self._header

    @property
    def sha256(self) -> str:
        return self.info.sha256

    @property
    def sop_instance_uid(self) -> str:
        return self.info.sop_instance_uid

    @property
    def series_instance_uid(self) -> str:
        return self.info.series_instance_uid

    @property
    def study_instance_uid(self) -> str:
        return self.info.study_instance_uid


# --- request size and archives ------------------------------------------------------------


def _size_of(upload: Any) -> int:
    size = getattr(upload, "size", None)
    if size is not None:
        return int(size)
    position = upload.tell()
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    upload.seek(position)
    return int(size)


def _is_zip(upload: IO[bytes]) -> bool:
    position = upload.tell()
    magic = upload.read(4)
    upload.seek(position)
    return magic in (b"PK\x03\x04", b"PK\x05\x06")


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_entry_reason(name: str) -> str | None:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _DRIVE.match(normalised):
        return f"entry {name!r} has an absolute path"
    if ".." in normalised.split("/"):
        return f"entry {name!r} has a '..' path (it would escape the archive)"
    return None


def _archive_members(archive: zipfile.ZipFile, archive_size: int) -> list[zipfile.ZipInfo]:
    """Check the archive's own description of itself before inflating anything."""
    infos = archive.infolist()
    if len(infos) > settings.ONFH_MAX_ZIP_ENTRIES:
        raise ArchiveRefused(
            f"too many entries ({len(infos)}; at most {settings.ONFH_MAX_ZIP_ENTRIES})"
        )
    max_total = settings.ONFH_MAX_ZIP_UNCOMPRESSED_BYTES
    max_ratio = settings.ONFH_MAX_ZIP_RATIO
    declared = 0
    for info in infos:
        reason = _unsafe_entry_reason(info.filename)
        if reason:
            raise ArchiveRefused(reason)
        if info.flag_bits & 0x1:
            raise ArchiveRefused(f"entry {info.filename!r} is encrypted")
        declared += info.file_size
        if info.compress_size and info.file_size / info.compress_size > max_ratio:
            raise ArchiveRefused(
                f"entry {info.filename!r} has a compression ratio of "
                f"{info.file_size / info.compress_size:.0f}:1 (at most {max_ratio:.0f}:1): "
                "refused as a possible zip bomb"
            )
    if declared > max_total:
        raise ArchiveRefused(
            f"uncompressed size {declared} bytes is over the limit of {max_total} bytes"
        )
    if archive_size and declared / archive_size > max_ratio:
        raise ArchiveRefused(
            f"compression ratio {declared / archive_size:.0f}:1 is over {max_ratio:.0f}:1: "
            "refused as a possible zip bomb"
        )
    files = [i for i in infos if not i.is_dir()]
    if not files:
        raise ArchiveRefused("the archive holds no files" + (" (only folders)" if infos else ""))
    return files


def _archive_path(upload: Any, cleanup: ExitStack) -> str:
    """A path to the archive on disk, for the check workers to read entries from."""
    path = getattr(upload, "temporary_file_path", None)
    if callable(path):
        return str(path())
    copy = cleanup.enter_context(tempfile.NamedTemporaryFile(suffix=".zip"))
    upload.seek(0)
    while chunk := upload.read(_CHUNK):
        copy.write(chunk)
    copy.flush()
    return copy.name


def _archive_items(name: str, upload: Any, cleanup: ExitStack) -> Iterator[ZipEntryItem]:
    """Check the archive's own description of itself (names, counts, declared sizes and
    ratios) and yield one item per file; the check workers inflate them, counting the
    real bytes (each entry at most its declared size, at most ``ONFH_MAX_ZIP_RATIO``)."""
    path = _archive_path(upload, cleanup)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _archive_members(archive, _size_of(upload))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveRefused(f"not a readable zip archive ({exc})") from exc
    ratio = settings.ONFH_MAX_ZIP_RATIO
    for info in members:
        yield ZipEntryItem(f"{name}/{info.filename}", path, info.filename, ratio)


def _upload_groups(
    files: Sequence[Any], cleanup: ExitStack
) -> Iterator[tuple[str, Iterator[FileItem | ZipEntryItem]]]:
    """(name, items) for each uploaded file: itself, or an archive's files."""
    for index, upload in enumerate(files):
        name = str(getattr(upload, "name", "") or f"file-{index + 1}")
        if hasattr(upload, "seek"):
            upload.seek(0)
        if _is_zip(upload):
            yield name, _archive_items(name, upload, cleanup)
        else:
            yield name, iter([FileItem(name, upload.read())])


# --- checks ------------------------------------------------------------------------------


def file_check(*, name: str, data: bytes) -> _Checked:
    """Check one DICOM file's bytes as an upload's file is checked (raises
    DicomReadError with the reason); the result goes to :func:`checked_store`."""
    return _check(_Candidate(name, data))


def _check(candidate: _Candidate) -> _Checked:
    """One parse with the DICOM layer's reader, which refuses (DicomReadError, with the
    reason) anything that is not DICOM, not MR, has no pixel data, cannot be decoded, is
    not greyscale or has no pixel spacing; a multi-frame file is read frame by frame."""
    return _checked(candidate, dicom_file_check(candidate.name, candidate.data))


def _checked(candidate: _Candidate, result: CheckedFile | RefusedFile) -> _Checked:
    if isinstance(result, RefusedFile):
        raise DicomReadError(candidate.name, result.reason)
    return _Checked(name=candidate.name, data=candidate.data, info=result)


def _dicom_date(value: str) -> date | None:
    value = (value or "").strip()
    if len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _person_name(value: str) -> str:
    return value.replace("^", " ").strip() if value else ""


# --- the service -------------------------------------------------------------------------


def upload_ingest(
    *, user: Any, site: Site, files: Sequence[Any], client_address: str | None
) -> IngestReport:
    """Check, deduplicate, store and group uploaded DICOM files and zip archives.

    ``files``: uploaded files (Django ``UploadedFile`` or any binary file object with a
    ``name``). Raises :class:`UploadTooLarge` for a request over the configured size;
    otherwise returns the report (possibly with nothing accepted). The analysis of each
    study that got new files is scheduled after the commit. Each series the request
    brings is marked as arriving from its first checked file until the request ends,
    so that no worker grades it half-way (``grading.services.arrivals``).
    """
    arrivals = SeriesArrivals(site=site, receiver="upload")
    try:
        return _upload_ingest(
            user=user, site=site, files=files, client_address=client_address, arrivals=arrivals
        )
    finally:
        arrivals.end()


def _upload_ingest(
    *,
    user: Any,
    site: Site,
    files: Sequence[Any],
    client_address: str | None,
    arrivals: SeriesArrivals,
) -> IngestReport:
    total = sum(_size_of(f) for f in files)
    if total > settings.ONFH_MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"the upload is {total} bytes, over the limit of {settings.ONFH_MAX_UPLOAD_BYTES} bytes"
        )

    report = IngestReport()
    groups: list[str] = []
    refused: dict[int, str] = {}
    tags: list[int] = []

    def stream(cleanup: ExitStack) -> Iterator[FileItem | ZipEntryItem]:
        # Every file of every upload, in order, tagged with its upload (group).
        for group, (name, items) in enumerate(_upload_groups(files, cleanup)):
            groups.append(name)
            try:
                for item in items:
                    tags.append(group)
                    yield item
            except ArchiveRefused as exc:
                refused[group] = str(exc)

    started = time.perf_counter()
    results: list[tuple[FileItem | ZipEntryItem, Any, bytes | None]] = []
    # Each good file is stored while the next ones are still being checked (by the check
    # worker itself, or here in a thread); whatever does not become an instance in the
    # end is deleted again.
    early: dict[str, Future[str | None]] = {}
    by_workers: list[str] = []
    store_error: str | None = None
    with ExitStack() as cleanup, ThreadPoolExecutor(2, "ingest-early") as writer:
        try:
            for item, outcome, data, written in items_check(
                stream(cleanup), processes=_check_processes()
            ):
                if isinstance(outcome, StoreFailed):
                    store_error = store_error or outcome.error
                    continue
                results.append((item, outcome, data))
                if isinstance(outcome, CheckedFile):
                    arrivals.mark(outcome.series_instance_uid)
                if written:
                    by_workers.append(written)
                if isinstance(outcome, CheckedFile) and data is not None:
                    name = dicom_file_name(outcome.sha256)
                    if name not in early:
                        early[name] = writer.submit(_file_write, name, data)
        finally:
            written_early = by_workers + _finished_writes(early)
    if store_error is not None:
        _delete(written_early)
        raise OSError(f"a file could not be stored: {store_error}")
    checked_s = time.perf_counter() - started
    try:
        for group, (_, outcome, _) in zip(tags, results, strict=True):
            if isinstance(outcome, ArchiveProblem):
                refused.setdefault(group, outcome.reason)

        checked: list[_Checked] = []
        seen: dict[str, str] = {}
        for group, (item, outcome, data) in zip(tags, results, strict=True):
            if group in refused:
                continue  # nothing from a refused archive goes on, not even its good files
            if isinstance(outcome, RefusedFile):
                report.rejected.append(RejectedFile(item.name, outcome.reason))
                continue
            assert isinstance(outcome, CheckedFile)
            entry = _Checked(name=item.name, data=data, info=outcome, prewritten=True)
            uid = entry.sop_instance_uid
            if uid in seen:
                if seen[uid] == entry.sha256:
                    report.duplicates += 1
                    report.accepted += 1
                else:
                    report.rejected.append(
                        RejectedFile(
                            item.name,
                            f"SOPInstanceUID {uid} appears twice with different content "
                            "in this upload",
                        )
                    )
                continue
            seen[uid] = entry.sha256
            checked.append(entry)
        for group, reason in sorted(refused.items()):
            report.rejected.append(RejectedFile(groups[group], f"archive refused: {reason}"))

        checked_store(
            user=user, site=site, checked=checked, report=report, client_address=client_address
        )
    except BaseException:
        _delete_unreferenced(written_early)
        raise
    sha_of = {c.sop_instance_uid: c.sha256 for c in checked}
    kept = {dicom_file_name(sha_of[f.sop_instance_uid]) for f in report.files if f.stored}
    _delete_unreferenced([name for name in written_early if name not in kept])
    logger.info(
        "upload of %d files: %d stored, %d already there, %d refused; checks %.2f s, store %.2f s",
        len(results),
        report.stored,
        report.duplicates,
        len(report.rejected),
        checked_s,
        time.perf_counter() - started - checked_s,
    )
    return report


def _finished_writes(writes: dict[str, Future[str | None]]) -> list[str]:
    """Wait for the writes; the names newly written. If any write failed, the others
    are deleted and the error is raised."""
    written: list[str] = []
    error: BaseException | None = None
    for future in writes.values():
        try:
            name = future.result()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the clean-up
            error = error or exc
            continue
        if name:
            written.append(name)
    if error is not None:
        _delete(written)
        raise error
    return written


def _delete_unreferenced(names: list[str]) -> None:
    """Delete files this request wrote but did not use, unless an instance (of a
    concurrent upload of the same bytes) has come to use them meanwhile."""
    if not names:
        return
    used = set(Instance.objects.filter(file__in=names).values_list("file", flat=True))
    _delete([name for name in names if name not in used])


def _delete(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001
            logger.exception("could not remove %s after a failed upload", name)


def checked_store(
    *,
    user: Any,
    site: Site,
    checked: list[_Checked],
    report: IngestReport,
    client_address: str | None,
    audit: bool = True,
    schedule: bool = True,
) -> None:
    """Deduplicate, store, group and (``audit``) audit checked files in one transaction
    and (``schedule``) send the analysis of each study that got new files after the
    commit; adds to ``report``. A caller that stores a stream of files one at a time
    (the DICOM receiver) passes ``audit=False, schedule=False`` and audits and schedules
    once at the end, from ``report.summaries``."""
    written: list[str] = []
    try:
        with transaction.atomic():
            summaries = _store(
                user=user, site=site, checked=checked, report=report, written=written
            )
            for pk, summary in summaries.items():
                merged = report.summaries.setdefault(
                    pk, {"created": False, "stored": 0, "duplicates": 0, "series": []}
                )
                merged["created"] = merged["created"] or summary["created"]
                merged["stored"] += summary["stored"]
                merged["duplicates"] += summary["duplicates"]
                merged["series"] += [u for u in summary["series"] if u not in merged["series"]]
            if audit:
                for study in report.studies:
                    if study.pk not in summaries:
                        continue
                    audit_record(
                        actor=user,
                        action="study.upload",
                        object_type="study",
                        object_id=study.pk,
                        study=study,
                        after=summaries[study.pk],
                        client_address=client_address,
                    )
            if schedule:
                _schedule_ingest([pk for pk, summary in summaries.items() if summary["stored"]])
    except BaseException as exc:
        for name in written:
            try:
                default_storage.delete(name)
            except Exception:  # noqa: BLE001
                logger.exception("could not remove %s after a failed upload", name)
        if isinstance(exc, IntegrityError) and _is_uid_conflict(exc):
            raise UidConflict(
                "Another upload stored some of the same UIDs in this site at the same "
                "moment; nothing of this request was stored. Send the files again: "
                "those already stored will be recognised."
            ) from exc
        raise


def studies_analysis_schedule(*, study_ids: Iterable[int]) -> None:
    """Send the analysis of these studies after the commit (``checked_store`` does this
    itself unless told not to)."""
    _schedule_ingest(study_ids)


def _check_processes() -> int:
    """Worker processes for the per-file checks (0: check in this process)."""
    processes = settings.ONFH_INGEST_PROCESSES
    return default_processes() if processes < 0 else processes


def _schedule_ingest(study_ids: Iterable[int]) -> None:
    for study_id in study_ids:
        transaction.on_commit(lambda sid=study_id: _send_ingest(sid))


def _send_ingest(study_id: int) -> None:
    """After the commit. If the broker is away the upload still succeeds: the workers'
    sweep finds series that never got an analysis and requests one."""
    from grading import tasks

    try:
        tasks.study_ingest.delay(study_id=study_id)
    except Exception:  # noqa: BLE001 - the committed upload must not fail for this
        logger.exception("could not send the ingest of study %s; the sweep will", study_id)


def _store(
    *, user: Any, site: Site, checked: list[_Checked], report: IngestReport, written: list[str]
) -> dict[int, dict[str, Any]]:
    """Rows and files for the checked items; the per-study summary for the audit."""
    # UIDs are unique per site: only this site's instances and series are looked at (one
    # site never blocks another's UIDs, nor learns that another site holds them).
    existing = {
        row["sop_instance_uid"]: row
        for row in Instance.objects.filter(
            series__study__site=site,
            sop_instance_uid__in=[c.sop_instance_uid for c in checked],
        ).values("sop_instance_uid", "sha256", "series__study_id", "series__study__site_id")
    }
    series_uids = {c.series_instance_uid for c in checked}
    series_by_uid = {
        s.series_instance_uid: s
        for s in Series.objects.select_related("study").filter(
            study__site=site, series_instance_uid__in=series_uids
        )
    }
    studies: dict[str, Study] = {}
    summaries: dict[int, dict[str, Any]] = {}

    def study_for(item: _Checked) -> Study:
        uid = item.study_instance_uid
        if uid not in studies:
            h = item.header
            study, created = Study.objects.get_or_create(
                site=site,
                study_instance_uid=uid,
                defaults={
                    "patient_name": _person_name(h.patient_name)[:200],
                    "patient_id": h.patient_id[:64],
                    "patient_birth_date": _dicom_date(h.patient_birth_date),
                    "patient_sex": h.patient_sex[:16],
                    "study_date": _dicom_date(h.study_date),
                    "study_description": h.study_description[:200],
                    "accession_number": h.accession_number[:64],
                    "created_by": user if getattr(user, "is_authenticated", False) else None,
                },
            )
            studies[uid] = study
            summaries[study.pk] = {"created": created, "stored": 0, "duplicates": 0, "series": []}
            if all(s.pk != study.pk for s in report.studies):
                report.studies.append(study)
        return studies[uid]

    new_instances: list[Instance] = []
    pending: list[Future[str | None]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-write") as writer:
        try:
            _store_rows(
                site=site,
                checked=checked,
                report=report,
                existing=existing,
                series_by_uid=series_by_uid,
                study_for=study_for,
                summaries=summaries,
                new_instances=new_instances,
                pending=pending,
                writer=writer,
            )
        finally:
            # Every write finishes (or fails) before anything else happens, so that a
            # failure can delete exactly what this request wrote.
            for future in pending:
                try:
                    name = future.result()
                except Exception:  # noqa: BLE001 - raised again below
                    continue
                if name:
                    written.append(name)
    for future in pending:
        future.result()  # raise the first write error, if any
    Instance.objects.bulk_create(new_instances)
    series_arrivals_stamp(series_ids={i.series_id for i in new_instances})
    # Weighting, plane and whether it is graded, as soon as the files are in.
    from grading.services.protocol import series_protocol_decide

    for series in {i.series_id: i.series for i in new_instances}.values():
        series_protocol_decide(series=series)
    return summaries


def _file_write(name: str, data: bytes) -> str | None:
    """Store the bytes under their content-addressed name; None when they are already
    there (an earlier, failed upload of the same file)."""
    if default_storage.exists(name):
        return None
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        raise OSError(f"storage stored {name} as {saved}")
    return saved


def _store_rows(
    *,
    site: Site,
    checked: list[_Checked],
    report: IngestReport,
    existing: dict[str, Any],
    series_by_uid: dict[str, Series],
    study_for: Any,
    summaries: dict[int, dict[str, Any]],
    new_instances: list[Instance],
    pending: list[Future[str | None]],
    writer: ThreadPoolExecutor,
) -> None:
    for item in checked:
        known = existing.get(item.sop_instance_uid)
        if known is not None:
            study = study_for(item)
            summaries[study.pk]["duplicates"] += 1
            report.duplicates += 1
            report.accepted += 1
            report.files.append(_accepted(item, study, stored=False))
            continue
        series = series_by_uid.get(item.series_instance_uid)
        if series is not None and series.study.study_instance_uid != item.study_instance_uid:
            report.rejected.append(
                RejectedFile(item.name, "its SeriesInstanceUID belongs to another study")
            )
            continue
        study = study_for(item)
        if series is None:
            h = item.header
            series = Series.objects.create(
                study=study,
                site=site,
                series_instance_uid=h.series_instance_uid,
                description=h.series_description[:200],
                number=h.series_number,
                modality=(h.modality or "MR").upper()[:16],
                plane=item.info.plane,
            )
            series_by_uid[item.series_instance_uid] = series
            summaries[study.pk]["series"].append(item.series_instance_uid)
        instances = _instance_rows(series, item)
        if not item.prewritten:
            assert item.data is not None
            pending.append(writer.submit(_file_write, instances[0].file.name, item.data))
        new_instances.extend(instances)
        summaries[study.pk]["stored"] += 1
        report.stored += 1
        report.accepted += 1
        report.files.append(_accepted(item, study, stored=True))


def _instance_rows(series: Series, item: _Checked) -> list[Instance]:
    """One Instance for a single-frame file; one per frame of a multi-frame file (Enhanced
    MR), each with its frame's geometry, all pointing at the one stored file."""
    info = item.info
    frames = info.frames or (None,)
    rows: list[Instance] = []
    for frame in frames:
        orientation = info.orientation if frame is None else frame.orientation
        instance = Instance(
            series=series,
            site_id=series.site_id,
            sop_instance_uid=info.sop_instance_uid,
            frame_number=None if frame is None else frame.frame_number,
            sha256=info.sha256,
            size_bytes=info.size,
            original_name=item.name[-255:],
            instance_number=info.instance_number if frame is None else frame.frame_number,
            position=info.position if frame is None else frame.position,
            rows=info.rows if frame is None else frame.rows,
            columns=info.columns if frame is None else frame.columns,
            pixel_spacing_row_mm=(
                info.pixel_spacing_mm if frame is None else frame.pixel_spacing_mm
            )[0],
            pixel_spacing_col_mm=(
                info.pixel_spacing_mm if frame is None else frame.pixel_spacing_mm
            )[1],
            slice_thickness_mm=info.slice_thickness_mm
            if frame is None
            else frame.slice_thickness_mm,
            weighting=info.weighting,
            orientation=list(orientation) if orientation is not None else None,
        )
        instance.file.name = instance_upload_to(instance, item.name)
        rows.append(instance)
    return rows


def _accepted(item: _Checked, study: Study, *, stored: bool) -> AcceptedFile:
    return AcceptedFile(
        name=item.name,
        sop_instance_uid=item.sop_instance_uid,
        series_instance_uid=item.series_instance_uid,
        study_instance_uid=item.study_instance_uid,
        study_id=study.pk,
        stored=stored,
    )


__all__ = [
    "AcceptedFile",
    "ArchiveRefused",
    "IngestReport",
    "RejectedFile",
    "UidConflict",
    "UploadError",
    "UploadTooLarge",
    "checked_store",
    "file_check",
    "studies_analysis_schedule",
    "upload_ingest",
]
