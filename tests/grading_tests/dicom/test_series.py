"""Series handling: folders, many files, ordering, spacing, multi-frame files, no Django."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import highdicom
import numpy as np
import pydicom
import pytest

from grading.dicom import (
    DicomReadError,
    iter_dicom_paths,
    read_many,
    read_mr_frames,
    read_mr_slice,
    slice_normal,
    slice_spacing_mm,
    sort_slices,
    write_mr_series,
)
from grading.engine.types import MRSlice
from tests.grading_tests.dicom.helpers import WrittenSeries, bundled


def _slice(
    position: tuple[float, float, float] | None,
    instance: int | None,
    *,
    orientation: tuple[float, float, float, float, float, float] | None = (1, 0, 0, 0, 1, 0),
    thickness: float | None = None,
    spacing: float | None = None,
) -> MRSlice:
    return MRSlice(
        pixels=np.zeros((2, 2), dtype=np.float32),
        image_position=position,
        image_orientation=orientation,
        instance_number=instance,
        slice_thickness_mm=thickness,
        spacing_between_slices_mm=spacing,
        source=f"i{instance}",
    )


def test_iter_dicom_paths_walks_folders_and_skips_hidden(tmp_path: Path) -> None:
    for relative in [
        "b/2.dcm",
        "b/1.dcm",
        "a/deep/er/x",
        ".hidden/skip.dcm",
        "a/.DS_Store",
        "DICOMDIR",
        "top.dcm",
        "b/labels/1.png",
        "truth.json",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    explicit_hidden = tmp_path / "a" / ".DS_Store"
    explicit_png = tmp_path / "b" / "labels" / "1.png"

    found = list(
        iter_dicom_paths([tmp_path, explicit_hidden, explicit_png, tmp_path / "missing.dcm"])
    )

    assert found == [
        tmp_path / "top.dcm",
        tmp_path / "a" / "deep" / "er" / "x",
        tmp_path / "b" / "1.dcm",
        tmp_path / "b" / "2.dcm",
        explicit_hidden,  # named directly: yielded
        explicit_png,  # named directly: yielded, so that reading it says it is no DICOM
        tmp_path / "missing.dcm",  # yielded so that reading reports it
    ]


def test_read_many_continues_past_bad_files(
    tmp_path: Path, write_series: Callable[..., WrittenSeries]
) -> None:
    written = write_series(shape=(3, 32, 32))
    junk = tmp_path / "junk.txt"
    junk.write_text("not dicom")
    inputs = [
        written.paths[0],
        junk,
        bundled("CT_small.dcm"),
        written.paths[1],
        tmp_path / "absent.dcm",
        bundled("MR_small_jpeg_ls_lossless.dcm"),
        written.paths[2],
    ]

    slices, errors = read_many(inputs)

    assert [s.source for s in slices] == [
        str(written.paths[0]),
        str(written.paths[1]),
        str(bundled("MR_small_jpeg_ls_lossless.dcm")),
        str(written.paths[2]),
    ]
    assert [str(e) for e in errors] == [
        f"{junk}: not a DICOM file (no 'DICM' marker and no DICOM data set found)",
        f"{bundled('CT_small.dcm')}: not an MR image (Modality 'CT')",
        f"{tmp_path / 'absent.dcm'}: file not found",
    ]


def test_read_many_of_a_folder(tmp_path: Path) -> None:
    write_mr_series(
        np.ones((4, 32, 32)), tmp_path / "s1", pixel_spacing_mm=(1, 1), slice_thickness_mm=2
    )
    (tmp_path / "s1" / "notes.txt").write_text("scanner notes")  # skipped by its extension
    (tmp_path / "s1" / "IM0005").write_bytes(b"not dicom either")  # no extension: read, refused
    slices, errors = read_many(iter_dicom_paths([tmp_path]))
    assert len(slices) == 4 and len(errors) == 1
    assert str(errors[0]).startswith(str(tmp_path / "s1" / "IM0005"))


def test_read_many_survives_unexpected_exceptions(
    monkeypatch: pytest.MonkeyPatch, write_series: Callable[..., WrittenSeries]
) -> None:
    written = write_series(shape=(2, 32, 32))
    import grading.dicom.reader as reader

    real = reader.read_mr_slice

    def flaky(path: object, *, name: str | None = None) -> MRSlice:
        if str(path).endswith("0001.dcm"):
            raise RuntimeError("decoder crashed")
        return real(path, name=name)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "read_mr_slice", flaky)
    slices, errors = reader.read_many(written.paths)
    assert len(slices) == 1
    assert str(errors[0]) == f"{written.paths[0]}: unexpected error: RuntimeError: decoder crashed"


def test_sort_slices_by_position_along_the_normal() -> None:
    # Oblique orientation: row (1, 0, 0), column (0, cos, -sin) -> normal (0, sin, cos).
    angle = np.deg2rad(20)
    orientation = (1.0, 0.0, 0.0, 0.0, float(np.cos(angle)), float(-np.sin(angle)))
    normal = np.array(slice_normal(orientation))
    assert normal == pytest.approx((0.0, np.sin(angle), np.cos(angle)))
    # Instance numbers deliberately disagree with the geometry.
    slices = [
        _slice(
            tuple(float(v) for v in (5.0, 1.0, 0.0) + k * 3.0 * normal),
            10 - k,
            orientation=orientation,
        )  # type: ignore[misc]
        for k in range(6)
    ]
    shuffled = slices[:]
    random.Random(4).shuffle(shuffled)

    ordered = sort_slices(shuffled)

    assert ordered == slices
    assert slice_spacing_mm(ordered) == pytest.approx(3.0)


def test_sort_slices_falls_back_to_instance_number() -> None:
    slices = [_slice((0, 0, 5.0), 3), _slice(None, 1), _slice((0, 0, 1.0), None), _slice(None, 2)]
    assert [s.instance_number for s in sort_slices(slices)] == [1, 2, 3, None]
    no_orientation = [
        _slice((0, 0, 2.0), 2, orientation=None),
        _slice((0, 0, 1.0), 1, orientation=None),
    ]
    assert [s.instance_number for s in sort_slices(no_orientation)] == [1, 2]


def test_sort_slices_of_a_written_series_read_in_any_order(tmp_path: Path) -> None:
    paths = write_mr_series(
        np.arange(5, dtype=float)[:, None, None] * np.ones((5, 32, 32)),
        tmp_path,
        pixel_spacing_mm=(0.9, 0.9),
        slice_thickness_mm=4.0,
        spacing_between_slices_mm=4.4,
        first_position=(-100.0, -120.0, 50.0),
    )
    slices, errors = read_many(reversed(paths))
    assert not errors
    ordered = sort_slices(slices)
    assert [float(s.pixels[0, 0]) for s in ordered] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert slice_spacing_mm(ordered) == pytest.approx(4.4)


def test_slice_spacing_fallbacks() -> None:
    with_gap = [_slice((0, 0, z), k) for k, z in enumerate((0.0, 2.5, 5.0, 10.0))]
    assert slice_spacing_mm(with_gap) == pytest.approx(2.5)  # median gap: one slice missing
    no_positions = [_slice(None, 1, thickness=3.0, spacing=3.3), _slice(None, 2, thickness=3.0)]
    assert slice_spacing_mm(no_positions) == 3.3
    only_thickness = [_slice(None, 1, thickness=3.0)]
    assert slice_spacing_mm(only_thickness) == 3.0
    one_positioned = [_slice((0, 0, 0.0), 1, spacing=6.0)]
    assert slice_spacing_mm(one_positioned) == 6.0
    same_position = [_slice((0, 0, 0.0), 1, thickness=2.0), _slice((0, 0, 0.0), 2, thickness=2.0)]
    assert slice_spacing_mm(same_position) == 2.0
    assert slice_spacing_mm([_slice(None, 1)]) is None
    assert slice_spacing_mm([]) is None


def test_slice_normal_refuses_degenerate_orientation() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        slice_normal((1, 0, 0, 1, 0, 0))


@pytest.fixture
def enhanced_mr(write_series: Callable[..., WrittenSeries], tmp_path: Path) -> WrittenSeries:
    """A Legacy Converted Enhanced MR (multi-frame) made by highdicom from a written series."""
    written = write_series(
        shape=(4, 32, 36),
        pixel_spacing_mm=(0.8, 0.9),
        slice_thickness_mm=3.0,
        spacing_between_slices_mm=4.0,
        image_orientation=(1, 0, 0, 0, 0, -1),
        first_position=(10.0, 20.0, 30.0),
        rescale_slope=0.5,
        rescale_intercept=-100.0,
        laterality="R",
        low=0,
        high=4000,
    )
    datasets = [pydicom.dcmread(path) for path in written.paths]
    multi_frame = highdicom.legacy.LegacyConvertedEnhancedMRImage(
        datasets,
        series_instance_uid=highdicom.UID(),
        series_number=99,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
    )
    path = tmp_path / "enhanced.dcm"
    multi_frame.save_as(path)
    return WrittenSeries(volume=written.volume, paths=[path])


def test_read_mr_frames_of_an_enhanced_mr(enhanced_mr: WrittenSeries) -> None:
    path = enhanced_mr.paths[0]
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == pydicom.uid.LegacyConvertedEnhancedMRImageStorage
    transform = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert (float(transform.RescaleSlope), float(transform.RescaleIntercept)) == (0.5, -100.0)

    frames = read_mr_frames(path)

    assert len(frames) == 4
    seen = set()
    for k, frame in enumerate(frames):
        # highdicom orders the frames itself; each frame's own position says which slice it is.
        assert frame.image_position is not None
        index = round((frame.image_position[1] - 20.0) / 4.0)
        seen.add(index)
        assert frame.image_position == pytest.approx((10.0, 20.0 + 4.0 * index, 30.0))
        np.testing.assert_array_equal(frame.pixels, enhanced_mr.volume[index])
        assert frame.image_orientation == (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
        assert frame.pixel_spacing_mm == (0.8, 0.9)
        assert frame.slice_thickness_mm == 3.0
        assert frame.spacing_between_slices_mm == 4.0
        assert frame.laterality == "R"
        assert frame.instance_number == k + 1
        assert frame.source == f"{path} [frame {k + 1}]"
    assert seen == {0, 1, 2, 3}
    assert len({f.sop_instance_uid for f in frames}) == 1
    ordered = sort_slices(frames)
    assert [f.image_position[1] for f in ordered if f.image_position] == [20.0, 24.0, 28.0, 32.0]
    assert slice_spacing_mm(ordered) == pytest.approx(4.0)


def test_read_mr_slice_refuses_multi_frame(enhanced_mr: WrittenSeries) -> None:
    path = enhanced_mr.paths[0]
    with pytest.raises(DicomReadError) as caught:
        read_mr_slice(path)
    assert str(caught.value) == f"{path}: multi-frame image (4 frames); read it with read_mr_frames"
    slices, errors = read_many([path])
    assert not slices and len(errors) == 1
    slices, errors = read_many([path], split_frames=True)
    assert len(slices) == 4 and not errors


def test_classic_multi_frame_mr_has_no_per_frame_position(tmp_path: Path) -> None:
    ds = pydicom.dcmread(
        write_mr_series(
            np.zeros((1, 32, 32)), tmp_path, pixel_spacing_mm=(1, 1), slice_thickness_mm=1
        )[0]
    )
    stack = np.stack([np.full((32, 32), k, dtype=np.uint16) for k in range(3)])
    ds.NumberOfFrames = 3
    ds.PixelData = stack.tobytes()
    path = tmp_path / "classic_multiframe.dcm"
    ds.save_as(path)

    frames = read_mr_frames(path)

    assert [float(f.pixels[0, 0]) for f in frames] == [0.0, 1.0, 2.0]
    assert all(f.image_position is None for f in frames)
    assert [f.instance_number for f in sort_slices(frames[::-1])] == [1, 2, 3]


def test_importing_grading_dicom_does_not_import_django() -> None:
    code = "import sys, grading.dicom; assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def test_mr_slice_is_a_plain_engine_value() -> None:
    mr_slice = read_mr_slice(bundled("MR_small.dcm"))
    assert isinstance(mr_slice, MRSlice)
    assert replace(mr_slice, source="x").source == "x"
    assert mr_slice.pixel_area_mm2 == pytest.approx(0.3125**2)
