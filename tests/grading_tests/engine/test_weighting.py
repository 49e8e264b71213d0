"""The T1 look of a series of unknown weighting, on the volume phantom's weightings."""

from __future__ import annotations

import numpy as np
import pytest

from grading.engine.phantoms.volume import make_volume_phantom, slice_volume
from grading.engine.weighting import looks_like_t1, marrow_to_muscle_ratio


@pytest.fixture(scope="module")
def phantom():
    return make_volume_phantom(5)


@pytest.mark.parametrize(("weighting", "t1_like"), [("T1", True), ("STIR", False), ("T2FS", False)])
def test_marrow_against_muscle(phantom, weighting: str, t1_like: bool) -> None:
    image = phantom.render(weighting)
    slices = slice_volume(
        phantom,
        image,
        "axial",
        centre_mm=(0.0, 0.0, 0.0),
        count=5,
        spacing_mm=4.0,
        field_of_view_mm=(300.0, 200.0),
        pixel_mm=1.0,
    )
    ratio = marrow_to_muscle_ratio(list(slices.images), list(slices.labels), [(1.0, 1.0)] * 5)
    assert looks_like_t1(ratio) is t1_like, ratio


def test_no_head_no_answer() -> None:
    empty = np.zeros((32, 32), dtype=np.uint8)
    assert marrow_to_muscle_ratio([np.ones((32, 32))], [empty], [(1.0, 1.0)]) is None
    assert not looks_like_t1(None)
