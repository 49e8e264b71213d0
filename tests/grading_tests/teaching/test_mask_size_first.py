"""A mask PNG's header size is checked against the slice before anything is decoded
(issue 13 item 21): a small file that declares a huge image is refused by its header."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image, ImageFile

from grading.services.labelmaps import labelmap_from_png
from grading.teaching.services import mask_from_png


def _png_declaring(width: int, height: int) -> bytes:
    """A valid 8x8 greyscale PNG whose IHDR is rewritten to declare ``width`` x
    ``height`` (CRC fixed): the header reads fine, the pixels do not exist."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("the PNG was decoded before its size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_students_mask_is_refused_by_its_header(no_decoding) -> None:
    with pytest.raises(
        ValidationError, match="9000x8000 \\(width x height\\), the image is 256x256"
    ):
        mask_from_png(_png_declaring(9000, 8000), shape=(256, 256))


def test_a_label_map_is_refused_by_its_header(no_decoding) -> None:
    with pytest.raises(
        ValidationError, match="9000x8000 \\(width x height\\), the image is 256x256"
    ):
        labelmap_from_png(_png_declaring(9000, 8000), shape=(256, 256))


def test_a_mask_of_the_right_size_is_still_read() -> None:
    buffer = io.BytesIO()
    mask = np.zeros((16, 12), np.uint8)
    mask[3:5, 4:6] = 255
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    assert mask_from_png(buffer.getvalue(), shape=(16, 12)).sum() == 4
    assert labelmap_from_png(buffer.getvalue(), shape=(16, 12)).shape == (16, 12)
