"""The streaming PNG encoder, read back by an independent decoder (Pillow)."""

from __future__ import annotations

import io
import os
import zlib

import pytest
from PIL import Image

from evicap.capture.png import IDAT_SIZE, PngWriter


def decode(data: bytes) -> Image.Image:
    Image.open(io.BytesIO(data)).verify()  # checks every chunk CRC
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_rows_written_in_pieces_decode_to_the_same_pixels(mode: str) -> None:
    source = Image.frombytes(mode, (37, 53), os.urandom(37 * 53 * len(mode)))
    raw = source.tobytes()
    row = 37 * len(mode)
    out = io.BytesIO()
    png = PngWriter(out, 37, 53, mode=mode)
    for start, end in ((0, 1), (1, 20), (20, 53)):  # uneven tiles, as the stitcher hands them over
        png.write_rows(raw[start * row : end * row])
    png.close()

    image = decode(out.getvalue())
    assert image.mode == mode
    assert image.size == (37, 53)
    assert image.tobytes() == raw


def test_large_image_spans_many_idat_chunks_and_decodes() -> None:
    width, height = 512, 600
    noise = os.urandom(width * 3 * height)  # incompressible, so the IDAT stream is well over IDAT_SIZE
    out = io.BytesIO()
    png = PngWriter(out, width, height)
    png.write_rows(noise)
    png.close()

    data = out.getvalue()
    assert data.count(b"IDAT") > len(noise) // IDAT_SIZE
    assert decode(data).tobytes() == noise
    assert data.endswith(b"IEND\xaeB`\x82")


def test_missing_rows_refuse_to_close_instead_of_lying_in_the_header() -> None:
    png = PngWriter(io.BytesIO(), 4, 3)
    png.write_rows(bytes(4 * 3 * 2))
    with pytest.raises(ValueError, match="declared 3 rows but got 2"):
        png.close()


def test_partial_rows_and_extra_rows_are_rejected() -> None:
    png = PngWriter(io.BytesIO(), 4, 1)
    with pytest.raises(ValueError, match="whole number"):
        png.write_rows(bytes(5))
    with pytest.raises(ValueError, match="more rows"):
        png.write_rows(bytes(4 * 3 * 2))


def test_pixel_stream_is_plain_zlib_with_filter_byte_per_row() -> None:
    out = io.BytesIO()
    png = PngWriter(out, 2, 2, mode="L")
    png.write_rows(b"\x01\x02\x03\x04")
    png.close()
    data = out.getvalue()
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    assert zlib.decompress(data[start : start + length]) == b"\x00\x01\x02\x00\x03\x04"
