"""Areas, proportions, grades, flags and series volumes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.flags import Flag, flag_code
from grading.engine.hips import Box
from grading.engine.measure import (
    SMALL_HEAD_MM2,
    measure_hip,
    measure_labelmap,
    series_slice_spacing_mm,
    slice_order,
    summarise_series,
    with_one_side_only,
)
from grading.engine.necrosis import NecrosisResult
from grading.engine.types import Grade, HipSliceResult, MRSlice


def codes(flags: tuple[str, ...]) -> set[str]:
    return {flag_code(f) for f in flags}


def blank(shape: tuple[int, int] = (100, 100), **kwargs: object) -> MRSlice:
    return MRSlice(pixels=np.zeros(shape, np.float32), **kwargs)  # type: ignore[arg-type]


def head_with_necrosis(
    head_pixels: int, necrosis_pixels: int, shape: tuple[int, int] = (60, 60)
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Exact pixel counts: the first ``head_pixels`` pixels (row-major) inside a 1-pixel
    frame, the first ``necrosis_pixels`` of them necrotic."""
    inner = np.zeros((shape[0] - 2, shape[1] - 2), bool).ravel()
    inner[:head_pixels] = True
    head = np.pad(inner.reshape(shape[0] - 2, shape[1] - 2), 1)
    necrosis = np.zeros_like(head)
    rows, cols = np.nonzero(head)
    necrosis[rows[:necrosis_pixels], cols[:necrosis_pixels]] = True
    return head, necrosis


def test_areas_use_row_and_column_spacing() -> None:
    mr = blank((60, 60), pixel_spacing_mm=(0.5, 2.0))  # anisotropic: 1 mm² per pixel
    head, necrosis = head_with_necrosis(1200, 300)
    hip = measure_hip(mr, "left", Box(0, 0, 60, 60), head, necrosis)
    assert hip.head_area_mm2 == pytest.approx(1200.0)
    assert hip.necrosis_area_mm2 == pytest.approx(300.0)
    assert hip.proportion == pytest.approx(0.25)
    assert hip.grade is Grade.MODERATE
    mr2 = replace(mr, pixel_spacing_mm=(0.7, 0.9))
    hip2 = measure_hip(mr2, "left", Box(0, 0, 60, 60), head, necrosis)
    assert hip2.head_area_mm2 == pytest.approx(1200 * 0.63)
    assert hip2.proportion == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("necrosis", "grade"),
    [
        (0, Grade.NONE),
        (1, Grade.NONE),  # 1/2000 = 0.0005 < 0.1 %
        (2, Grade.MILD),  # exactly 0.1 %
        (299, Grade.MILD),
        (300, Grade.MODERATE),  # exactly 15 %
        (600, Grade.MODERATE),  # exactly 30 %
        (601, Grade.SEVERE),
        (2000, Grade.SEVERE),
    ],
)
def test_grade_edges_through_measure(necrosis: int, grade: Grade) -> None:
    mr = blank((60, 60), pixel_spacing_mm=(0.8, 0.8))
    head, nec = head_with_necrosis(2000, necrosis)
    hip = measure_hip(mr, "right", Box(0, 0, 60, 60), head, nec)
    assert hip.proportion == necrosis / 2000
    assert hip.grade is grade


def test_necrosis_outside_the_head_is_not_counted() -> None:
    mr = blank((60, 60))
    head, nec = head_with_necrosis(1000, 100)
    nec[-1, :] = True  # outside the head
    hip = measure_hip(mr, "right", Box(0, 0, 60, 60), head, nec)
    assert hip.necrosis_area_mm2 == pytest.approx(100.0)


def test_small_and_partial_heads_are_flagged() -> None:
    mr = blank((100, 100))
    small = np.zeros((20, 20), bool)
    small[5:15, 5:15] = True  # 100 mm² < SMALL_HEAD_MM2
    hip = measure_hip(mr, "left", Box(40, 40, 60, 60), small, np.zeros_like(small))
    assert codes(hip.flags) == {"small_head"}
    assert SMALL_HEAD_MM2 > 100
    edge = np.zeros((30, 30), bool)
    edge[:, :25] = True  # placed at the image's left edge
    hip = measure_hip(mr, "left", Box(10, 0, 40, 30), edge, np.zeros_like(edge))
    assert codes(hip.flags) == {"partial_head"}
    # the same mask away from the border is whole
    hip = measure_hip(mr, "left", Box(10, 5, 40, 35), edge, np.zeros_like(edge))
    assert hip.flags == ()
    assert hip.bbox == (10, 5, 40, 30)


def test_low_confidence_and_not_bimodal_flags() -> None:
    mr = blank((100, 100))
    head = np.zeros((40, 40), bool)
    head[5:35, 5:35] = True
    sure = np.where(head, 0.99, 0.01).astype(np.float32)
    unsure = np.where(head, 0.6, 0.3).astype(np.float32)
    box = Box(30, 30, 70, 70)
    assert measure_hip(mr, "left", box, head, ~head, probability=sure).flags == ()
    hip = measure_hip(mr, "left", box, head, ~head, probability=unsure)
    assert codes(hip.flags) == {"low_confidence"}
    assert hip.confidence == pytest.approx(0.6)
    ambiguous = NecrosisResult(
        mask=head,
        threshold=500.0,
        relative_threshold=0.7,
        reference=1000.0,
        otsu_relative=0.7,
        contrast=0.3,
        otsu_separation=0.6,
        bimodal=False,
        ambiguous=True,
        reason="darkest necrotic signal 40 % of the marrow",
    )
    hip = measure_hip(mr, "left", box, head, head, probability=sure, necrosis=ambiguous)
    assert hip.flags == ("not_bimodal: darkest necrotic signal 40 % of the marrow",)
    set_aside = replace(
        ambiguous,
        mask=np.zeros_like(head),
        ambiguous=False,
        flags=(Flag.NOT_COUNTED.note("a dark ring surrounds the head's marrow"),),
    )
    hip = measure_hip(mr, "left", box, head, set_aside.mask, probability=sure, necrosis=set_aside)
    assert hip.flags == ("not_counted: a dark ring surrounds the head's marrow",)
    assert hip.necrosis_area_mm2 == 0.0


def _hip(
    side: str, area: float, necrosis: float = 0.0, flags: tuple[str, ...] = ()
) -> HipSliceResult:
    proportion = necrosis / area if area else 0.0
    from grading.engine.grading_rules import grade_from_proportion

    return HipSliceResult(
        side=side,  # type: ignore[arg-type]
        head_area_mm2=area,
        necrosis_area_mm2=necrosis,
        proportion=proportion,
        grade=grade_from_proportion(proportion),
        flags=flags,
    )


def test_one_side_only_on_a_bilateral_slice() -> None:
    alone = with_one_side_only([_hip("left", 1500.0)], bilateral=True)
    assert codes(alone[0].flags) == {"one_side_only"}
    assert "right" in alone[0].flags[0]
    both = with_one_side_only([_hip("left", 1500.0), _hip("right", 1400.0)], bilateral=True)
    assert [h.side for h in both] == ["right", "left"]
    assert all(h.flags == () for h in both)
    crop = with_one_side_only([_hip("unknown", 1500.0)], bilateral=False)
    assert crop[0].flags == ()


def series_slices(count: int, *, spacing: float = 4.0, **kwargs: object) -> list[MRSlice]:
    """Bilateral-size axial slices (400 mm wide) at ``spacing`` mm along the normal."""
    return [
        MRSlice(
            pixels=np.zeros((400, 400), np.float32),
            pixel_spacing_mm=(1.0, 1.0),
            image_orientation=(1, 0, 0, 0, 1, 0),
            image_position=(0.0, 0.0, 10.0 + k * spacing),
            instance_number=count - k,
            **kwargs,  # type: ignore[arg-type]
        )
        for k in range(count)
    ]


def test_slice_spacing_sources() -> None:
    slices = series_slices(5, spacing=3.5)
    assert series_slice_spacing_mm(slices) == pytest.approx(3.5)
    assert series_slice_spacing_mm(list(reversed(slices))) == pytest.approx(3.5)
    no_position = [replace(s, image_position=None, spacing_between_slices_mm=4.4) for s in slices]
    assert series_slice_spacing_mm(no_position) == pytest.approx(4.4)
    thickness = [replace(s, image_position=None, slice_thickness_mm=5.0) for s in slices]
    assert series_slice_spacing_mm(thickness) == pytest.approx(5.0)
    assert series_slice_spacing_mm([replace(slices[0], image_position=None)]) == 1.0
    # one slice: positions give no gap, the header does
    assert series_slice_spacing_mm([replace(slices[0], slice_thickness_mm=3.0)]) == 3.0


def test_slice_order_follows_the_normal_then_instance_number() -> None:
    slices = series_slices(4)
    shuffled = [slices[2], slices[0], slices[3], slices[1]]
    assert slice_order(shuffled) == [1, 3, 0, 2]
    tilted = [replace(s, image_orientation=(1, 0, 0, 0, 0.8, -0.6)) for s in shuffled]
    positions = [float(np.dot(s.image_position, (0, 0.6, 0.8))) for s in tilted]  # type: ignore[arg-type]
    assert [positions[i] for i in slice_order(tilted)] == sorted(positions)
    no_position = [replace(s, image_position=None) for s in shuffled]
    assert [no_position[i].instance_number for i in slice_order(no_position)] == [1, 2, 3, 4]


def test_series_volumes_and_volumetric_grade() -> None:
    slices = series_slices(4, spacing=4.0, series_instance_uid="1.2.9")
    areas = [(800.0, 0.0), (1600.0, 100.0), (1800.0, 500.0), (900.0, 400.0)]
    per_slice = [
        (s, (_hip("right", a, n), _hip("left", a, 0.0)))
        for s, (a, n) in zip(slices, areas, strict=True)
    ]
    right, left = summarise_series("1.2.9", per_slice)
    assert right.side == "right" and left.side == "left"
    assert right.head_volume_mm3 == pytest.approx(4.0 * 5100.0)
    assert right.necrosis_volume_mm3 == pytest.approx(4.0 * 1000.0)
    assert right.proportion == pytest.approx(1000.0 / 5100.0)
    assert right.grade is Grade.MODERATE
    assert right.slice_count == 4
    assert left.grade is Grade.NONE and left.necrosis_volume_mm3 == 0.0
    assert right.series_instance_uid == "1.2.9"
    assert right.flags == () and left.flags == ()


def test_series_flags() -> None:
    slices = series_slices(4)
    # the left head is missing where the right one is large: one_side_only on the right
    per_slice = [
        (slices[0], (_hip("right", 500.0), _hip("left", 500.0))),
        (slices[1], (_hip("right", 1700.0),)),
        (slices[2], (_hip("right", 1800.0, flags=("partial_head: border",)),)),
        (slices[3], (_hip("right", 600.0), _hip("left", 650.0))),
    ]
    right, left = summarise_series("1", per_slice)
    assert codes(right.flags) == {"one_side_only", "partial_head"}
    assert codes(left.flags) == {"small_head"}  # its largest section is 650 mm²
    # a whole series with one head only
    lonely = [(s, (_hip("left", 1500.0),)) for s in slices]
    (only,) = summarise_series("1", lonely)
    assert codes(only.flags) == {"one_side_only"}
    # a crop series has no sides to miss
    crops = [
        (
            replace(s, pixels=np.zeros((256, 256), np.float32), pixel_spacing_mm=(0.5, 0.5)),
            (_hip("unknown", 1500.0),),
        )
        for s in slices
    ]
    (crop,) = summarise_series("1", crops)
    assert crop.flags == ()


def test_series_not_bimodal_only_when_the_grade_rests_on_it() -> None:
    slices = series_slices(3)
    ambiguous = ("not_bimodal: faint",)
    small_doubt = [
        (slices[0], (_hip("right", 1500.0, 400.0),)),
        (slices[1], (_hip("right", 1500.0, 400.0),)),
        (slices[2], (_hip("right", 1500.0, 10.0, flags=ambiguous),)),
    ]
    (hip,) = summarise_series("1", small_doubt)
    assert "not_bimodal" not in codes(hip.flags)
    decisive = [
        (slices[0], (_hip("right", 1500.0),)),
        (slices[1], (_hip("right", 1500.0),)),
        (slices[2], (_hip("right", 1500.0, 10.0, flags=ambiguous),)),
    ]
    (hip,) = summarise_series("1", decisive)
    assert "not_bimodal" in codes(hip.flags)
    assert hip.grade is Grade.MILD


def bilateral_labelmap() -> tuple[MRSlice, npt.NDArray[np.uint8]]:
    """A 400 x 400 mm body with two discs 90 mm either side of the centre."""
    n = 400
    y, x = np.mgrid[0:n, 0:n] + 0.5
    body = ((x - 200) / 170) ** 2 + ((y - 200) / 120) ** 2 <= 1
    pixels = np.where(body, 300.0, 0.0).astype(np.float32)
    labelmap = np.zeros((n, n), np.uint8)
    right = (x - 110) ** 2 + (y - 200) ** 2 <= 22**2
    left = (x - 290) ** 2 + (y - 200) ** 2 <= 22**2
    labelmap[right | left] = 1
    labelmap[right & (y < 190)] = 2
    mr = MRSlice(pixels=pixels, pixel_spacing_mm=(1.0, 1.0), image_orientation=(1, 0, 0, 0, 1, 0))
    return mr, labelmap


def test_measure_labelmap_splits_heads_by_side() -> None:
    mr, labelmap = bilateral_labelmap()
    right, left = measure_labelmap(labelmap, mr)
    assert (right.side, left.side) == ("right", "left")
    assert right.head_area_mm2 == pytest.approx(float((labelmap[:, :200] > 0).sum()))
    assert right.necrosis_area_mm2 == pytest.approx(float((labelmap == 2).sum()))
    assert left.necrosis_area_mm2 == 0.0
    assert right.grade is Grade.SEVERE or right.grade is Grade.MODERATE
    # a stray fragment a person painted joins its side; the other side erased
    edited = labelmap.copy()
    edited[:, 200:] = 0
    edited[150:152, 60:62] = 2
    (only,) = measure_labelmap(edited, mr)
    assert only.side == "right"
    assert codes(only.flags) == {"one_side_only"}
    assert only.necrosis_area_mm2 == pytest.approx(float((edited == 2).sum()))
    assert measure_labelmap(np.zeros_like(labelmap), mr) == ()


def test_measure_labelmap_on_a_crop_and_flipped_orientation() -> None:
    mr, labelmap = bilateral_labelmap()
    flipped = replace(mr, image_orientation=(-1, 0, 0, 0, 1, 0))
    assert [h.side for h in measure_labelmap(labelmap, flipped)] == ["right", "left"]
    right = measure_labelmap(labelmap, flipped)[0]
    assert right.necrosis_area_mm2 == 0.0  # image right is now the patient's right
    crop = MRSlice(
        pixels=np.zeros((256, 256), np.float32), pixel_spacing_mm=(0.4, 0.4), laterality="L"
    )
    small = np.zeros((256, 256), np.uint8)
    small[100:150, 100:150] = 1
    small[100:110, 100:150] = 2
    (hip,) = measure_labelmap(small, crop)
    assert hip.side == "left"
    assert hip.proportion == pytest.approx(0.2)
    assert hip.head_area_mm2 == pytest.approx(2500 * 0.16)


def test_measure_labelmap_rejects_bad_maps() -> None:
    mr, labelmap = bilateral_labelmap()
    with pytest.raises(ValueError, match="values"):
        measure_labelmap(np.where(labelmap > 0, 3, 0).astype(np.uint8), mr)
    with pytest.raises(ValueError, match="slice"):
        measure_labelmap(labelmap[:-1], mr)
