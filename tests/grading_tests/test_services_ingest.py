"""upload_ingest: checks, dedup, grouping, zip safety, limits, nothing left behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading import tasks
from grading.models import AuditEvent, Instance, Series, Study
from grading.services import UploadTooLarge, audit_verify, upload_ingest
from tests.conftest import write_phantom_series

pytestmark = pytest.mark.django_db


def _uploads(paths: list[Path]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]


def _zip(
    entries: dict[str, bytes], *, name: str = "study.zip", compression: int = zipfile.ZIP_DEFLATED
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return SimpleUploadedFile(name, buffer.getvalue())


def _stored_files(media_root: Path) -> set[Path]:
    return {p for p in media_root.rglob("*") if p.is_file()}


def _ingest(scenario, files):
    return upload_ingest(
        user=scenario.clinician, site=scenario.site, files=files, client_address="10.0.0.1"
    )


def test_upload_stores_groups_audits_and_schedules_after_commit(
    scenario, phantom_files, media_root, django_capture_on_commit_callbacks
) -> None:
    with (
        mock.patch.object(tasks.study_ingest, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        report = _ingest(scenario, _uploads(phantom_files.paths))
    assert report.accepted == report.stored == 6 and not report.rejected
    study = Study.objects.get()
    assert study.study_instance_uid == phantom_files.study_instance_uid
    assert study.site == scenario.site and study.created_by == scenario.clinician
    assert str(study.study_date) == "2024-01-02"
    series = Series.objects.get()
    assert series.plane == "axial" and series.analysable
    instances = list(Instance.objects.order_by("position"))
    assert len(instances) == 6
    positions = [i.position for i in instances]
    assert positions == sorted(positions) and len(set(positions)) == 6
    for instance in instances:
        assert instance.file.storage.exists(instance.file.name)
        assert instance.rows == 256 and instance.pixel_spacing_row_mm > 0
    delay.assert_called_once_with(study_id=study.pk)
    event = AuditEvent.objects.get(action="study.upload")
    assert event.study == study and event.actor == scenario.clinician
    assert event.client_address == "10.0.0.1" and event.after["stored"] == 6
    assert audit_verify().ok


def test_reupload_is_no_error_and_no_duplicate(scenario, phantom_files) -> None:
    _ingest(scenario, _uploads(phantom_files.paths))
    report = _ingest(scenario, _uploads(phantom_files.paths))
    assert report.accepted == 6 and report.stored == 0 and report.duplicates == 6
    assert not report.rejected
    assert [s.pk for s in report.studies] == [Study.objects.get().pk]
    assert Instance.objects.count() == 6


def test_same_file_twice_in_one_upload(scenario, phantom_files) -> None:
    files = _uploads(phantom_files.paths[:2]) + _uploads(phantom_files.paths[:1])
    report = _ingest(scenario, files)
    assert report.stored == 2 and report.duplicates == 1 and report.accepted == 3


def test_the_same_uids_at_another_site_are_that_sites_own(scenario, phantom_files) -> None:
    """UIDs are unique per site (issue 13 item 7): one site cannot block another's
    UIDs, and nothing in the answer hints that another site holds them."""
    _ingest(scenario, _uploads(phantom_files.paths[:2]))
    report = upload_ingest(
        user=scenario.outsider,
        site=scenario.other_site,
        files=_uploads(phantom_files.paths[:3]),
        client_address=None,
    )
    assert report.accepted == report.stored == 3 and not report.rejected
    north, south = (Study.objects.get(site=site) for site in (scenario.site, scenario.other_site))
    assert north.study_instance_uid == south.study_instance_uid
    assert north.pk != south.pk
    assert Instance.objects.filter(series__study=north).count() == 2
    assert Instance.objects.filter(series__study=south).count() == 3
    # A re-upload at either site is a duplicate of that site's own copy.
    again = upload_ingest(
        user=scenario.outsider,
        site=scenario.other_site,
        files=_uploads(phantom_files.paths[:3]),
        client_address=None,
    )
    assert again.duplicates == 3 and again.stored == 0


def test_a_series_uid_of_another_study_is_refused_without_naming_a_site(
    scenario, tmp_path, phantom_files
) -> None:
    _ingest(scenario, _uploads(phantom_files.paths[:1]))
    moved = write_phantom_series(
        tmp_path, seed=9, n_slices=1, series_uid=phantom_files.series_instance_uid
    )
    for path in moved.paths:  # its own SOP Instance UIDs, in another study
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(path)
    report = _ingest(scenario, _uploads(moved.paths))
    assert report.stored == 0
    assert [r.reason for r in report.rejected] == ["its SeriesInstanceUID belongs to another study"]
    # At another site the same series UID in another study is that site's own.
    elsewhere = upload_ingest(
        user=scenario.outsider,
        site=scenario.other_site,
        files=_uploads(moved.paths),
        client_address=None,
    )
    assert elsewhere.stored == 1 and not elsewhere.rejected


def test_grouping_into_studies_and_series(scenario, tmp_path) -> None:
    a = write_phantom_series(tmp_path / "a", seed=5, n_slices=2, matrix=(128, 128))
    b = write_phantom_series(
        tmp_path / "b",
        seed=6,
        n_slices=2,
        matrix=(128, 128),
        study_uid=a.study_instance_uid,
        series_number=2,
    )
    c = write_phantom_series(tmp_path / "c", seed=7, n_slices=2, matrix=(128, 128))
    report = _ingest(scenario, _uploads(a.paths + b.paths + c.paths))
    assert report.stored == 6
    assert Study.objects.count() == 2
    assert Series.objects.filter(study__study_instance_uid=a.study_instance_uid).count() == 2
    assert len(report.studies) == 2


def test_bad_files_get_a_reason_and_the_good_ones_go_on(scenario, phantom_files, tmp_path) -> None:
    good = phantom_files.paths[0]
    ds = pydicom.dcmread(good)
    ds.Modality = "CT"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ct = io.BytesIO()
    ds.save_as(ct, enforce_file_format=True)
    nopix = pydicom.dcmread(good)
    del nopix.PixelData
    nopix.SOPInstanceUID = pydicom.uid.generate_uid()
    nopix_bytes = io.BytesIO()
    nopix.save_as(nopix_bytes, enforce_file_format=True)
    files = [
        SimpleUploadedFile("notes.txt", b"hello, not an image"),
        SimpleUploadedFile("ct.dcm", ct.getvalue()),
        SimpleUploadedFile("nopix.dcm", nopix_bytes.getvalue()),
        SimpleUploadedFile("truncated.dcm", good.read_bytes()[:2000]),
        SimpleUploadedFile(good.name, good.read_bytes()),
    ]
    report = _ingest(scenario, files)
    assert report.accepted == 1 and Instance.objects.count() == 1
    reasons = {r.name: r.reason for r in report.rejected}
    assert set(reasons) == {"notes.txt", "ct.dcm", "nopix.dcm", "truncated.dcm"}
    assert "not a DICOM" in reasons["notes.txt"]
    assert "MR" in reasons["ct.dcm"]
    assert "pixel data" in reasons["nopix.dcm"]


def test_zip_archive_is_unpacked(scenario, phantom_files) -> None:
    archive = _zip({f"study/{p.name}": p.read_bytes() for p in phantom_files.paths})
    report = _ingest(scenario, [archive])
    assert report.stored == 6 and not report.rejected


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("../evil.dcm", "'..'"),
        ("a/../../evil.dcm", "'..'"),
        ("/etc/evil.dcm", "absolute"),
        ("C:\\evil.dcm", "absolute"),
        ("..\\evil.dcm", "'..'"),
    ],
)
def test_zip_slip_and_absolute_paths_refuse_the_whole_archive(
    scenario, phantom_files, media_root, entry, words
) -> None:
    before = _stored_files(media_root)
    entries = {p.name: p.read_bytes() for p in phantom_files.paths[:3]}
    entries[entry] = phantom_files.paths[3].read_bytes()
    report = _ingest(scenario, [_zip(entries, name="bad.zip")])
    assert report.accepted == 0
    assert report.rejected[0].name == "bad.zip" and words in report.rejected[0].reason
    assert not Study.objects.exists() and not Instance.objects.exists()
    assert _stored_files(media_root) == before


def test_zip_bomb_by_ratio_is_refused(scenario, phantom_files, media_root, settings) -> None:
    settings.ONFH_MAX_ZIP_RATIO = 50
    before = _stored_files(media_root)
    entries = {p.name: p.read_bytes() for p in phantom_files.paths[:2]}
    entries["zeros.dcm"] = bytes(20 * 1024 * 1024)
    report = _ingest(scenario, [_zip(entries, name="bomb.zip")])
    assert report.accepted == 0 and "zip bomb" in report.rejected[0].reason
    assert not Instance.objects.exists() and _stored_files(media_root) == before


@pytest.mark.parametrize(
    ("entries", "words"),
    [({}, "the archive holds no files"), ({"scans/": b""}, "no files (only folders)")],
)
def test_an_archive_without_files_says_so(scenario, phantom_files, entries, words) -> None:
    # Before, an empty archive answered 400 with nothing refused and no reason.
    report = _ingest(
        scenario, [_zip(entries, name="empty.zip"), *_uploads(phantom_files.paths[:1])]
    )
    assert report.accepted == 1
    [refused] = report.rejected
    assert refused.name == "empty.zip" and words in refused.reason


def test_zip_over_the_uncompressed_limit_is_refused(scenario, phantom_files, settings) -> None:
    settings.ONFH_MAX_ZIP_UNCOMPRESSED_BYTES = 300_000
    report = _ingest(scenario, [_zip({p.name: p.read_bytes() for p in phantom_files.paths})])
    assert report.accepted == 0 and "over the limit" in report.rejected[0].reason
    assert not Instance.objects.exists()


def test_zip_that_lies_about_its_sizes_is_refused_while_streaming(scenario, settings) -> None:
    """Headers claim a tiny entry; the real bytes inflate far beyond the limit."""
    settings.ONFH_MAX_ZIP_UNCOMPRESSED_BYTES = 1_000_000
    archive = _zip({"x.dcm": bytes(5_000_000)}, name="liar.zip")
    raw = bytearray(archive.read())
    # Patch the declared uncompressed size (local header offset 22, central dir offset 24).
    central = raw.rfind(b"PK\x01\x02")
    raw[22:26] = (1000).to_bytes(4, "little")
    raw[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    report = _ingest(scenario, [SimpleUploadedFile("liar.zip", bytes(raw))])
    assert report.accepted == 0 and report.rejected[0].name == "liar.zip"
    assert not Instance.objects.exists()


def test_request_over_the_size_limit_is_refused_whole(
    scenario, phantom_files, media_root, settings
) -> None:
    settings.ONFH_MAX_UPLOAD_BYTES = 200_000
    before = _stored_files(media_root)
    with pytest.raises(UploadTooLarge) as info:
        _ingest(scenario, _uploads(phantom_files.paths))
    assert info.value.status_code == 413 and "limit" in str(info.value)
    assert not Instance.objects.exists() and not AuditEvent.objects.exists()
    assert _stored_files(media_root) == before


def test_storage_failure_half_way_leaves_nothing_behind(scenario, media_root, tmp_path) -> None:
    from django.core.files.storage import default_storage

    fresh = write_phantom_series(tmp_path, seed=11, n_slices=6, matrix=(128, 128))

    before = _stored_files(media_root)
    real_save = default_storage.save
    calls = []

    def flaky_save(name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 4:
            raise OSError("disk full")
        return real_save(name, content, *args, **kwargs)

    with mock.patch.object(default_storage, "save", side_effect=flaky_save), pytest.raises(OSError):
        _ingest(scenario, _uploads(fresh.paths))
    assert len(calls) >= 4
    assert not Study.objects.exists() and not Instance.objects.exists()
    assert _stored_files(media_root) == before


@pytest.mark.parametrize("processes", [0, 2])
def test_large_upload_checked_in_worker_processes_gives_the_same_answer(
    scenario, tmp_path, settings, processes
) -> None:
    settings.ONFH_INGEST_PROCESSES = processes
    many = write_phantom_series(tmp_path, seed=12, n_slices=10, matrix=(128, 128))
    entries = {p.name: p.read_bytes() for p in many.paths}
    entries["junk.dcm"] = b"not dicom at all"
    report = _ingest(scenario, [_zip(entries, name="many.zip")])
    assert report.stored == 10 and report.accepted == 10
    assert [(r.name, r.reason.split(" (")[0]) for r in report.rejected] == [
        ("many.zip/junk.dcm", "not a DICOM file")
    ]
    positions = list(Instance.objects.order_by("position").values_list("position", flat=True))
    assert len(set(positions)) == 10
    assert set(Series.objects.values_list("plane", flat=True)) == {"axial"}


def test_many_tiny_entries_go_to_the_check_workers_in_batches(tmp_path) -> None:
    """Found by probing the running portal: a 1.9 MB zip of 20 000 one-byte entries took
    8 s, one process round trip per entry (0.8 s checked in the web process). Entries
    now go to the workers in batches; the answers and their order stay the same."""
    from grading.services import dicom_checks

    path = tmp_path / "tiny.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(64):
            archive.writestr(f"f{k}.txt", b"x")
    items = [
        dicom_checks.ZipEntryItem(f"tiny.zip/f{k}.txt", str(path), f"f{k}.txt", 100.0)
        for k in range(64)
    ]
    here = [(i.name, r.reason) for i, r, *_ in dicom_checks.items_check(items, processes=0)]
    submitted = []
    real_submit = dicom_checks._submit

    def counting_submit(pool, batch):
        submitted.append(len(batch) if isinstance(batch, list) else 1)
        return real_submit(pool, batch)

    with mock.patch.object(dicom_checks, "_submit", counting_submit):
        pooled = [(i.name, r.reason) for i, r, *_ in dicom_checks.items_check(items, processes=2)]
    assert pooled == here and len(here) == 64
    assert all("not a DICOM file" in reason for _, reason in here)
    assert sum(submitted) == 64 and len(submitted) == 8


def _zip_with_a_liar(entries: dict[str, bytes], liar: str, declared: int) -> SimpleUploadedFile:
    """A zip whose entry ``liar`` declares ``declared`` bytes but inflates to more."""
    archive = _zip(entries, name="liar.zip")
    raw = bytearray(archive.read())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(liar)
    raw[info.header_offset + 22 : info.header_offset + 26] = declared.to_bytes(4, "little")
    name = liar.encode()
    position = 0
    while True:
        position = raw.find(b"PK\x01\x02", position + 1)
        if raw[position + 46 : position + 46 + len(name)] == name:
            break
    raw[position + 24 : position + 28] = declared.to_bytes(4, "little")
    return SimpleUploadedFile("liar.zip", bytes(raw))


@pytest.mark.parametrize("processes", [0, 2])
def test_archive_refused_half_way_leaves_no_files_even_from_check_workers(
    scenario, tmp_path, settings, media_root, processes
) -> None:
    settings.ONFH_INGEST_PROCESSES = processes
    many = write_phantom_series(tmp_path, seed=14, n_slices=10, matrix=(128, 128))
    entries = {p.name: p.read_bytes() for p in many.paths}
    entries["zz-last.dcm"] = bytes(400_000)
    before = _stored_files(media_root)
    report = _ingest(scenario, [_zip_with_a_liar(entries, "zz-last.dcm", 1000)])
    assert report.accepted == 0 and report.rejected[0].name == "liar.zip"
    assert "zz-last.dcm" in report.rejected[0].reason  # zipfile stops at the declared size
    assert not Instance.objects.exists()
    assert _stored_files(media_root) == before


def test_files_stored_by_check_workers_are_in_the_portal_storage(
    scenario, tmp_path, settings
) -> None:
    import hashlib

    from django.core.files.storage import default_storage

    settings.ONFH_INGEST_PROCESSES = 2
    many = write_phantom_series(tmp_path, seed=15, n_slices=10, matrix=(128, 128))
    report = _ingest(scenario, [_zip({p.name: p.read_bytes() for p in many.paths})])
    assert report.stored == 10
    originals = {hashlib.sha256(p.read_bytes()).hexdigest() for p in many.paths}
    for instance in Instance.objects.all():
        with default_storage.open(instance.file.name, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == instance.sha256
        assert instance.size_bytes > 0
    assert {i.sha256 for i in Instance.objects.all()} == originals
    assert Study.objects.get().patient_id == "PHANTOM"
