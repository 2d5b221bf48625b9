"""A streaming PNG encoder: rows in, a valid PNG out, memory bounded by what one call hands it.

Tall full-page screenshots are stitched from tiles. Pillow would need the whole image in memory to save it
(a 1280 x 200,000 px page is about 1 GB of RGBA), so we write the PNG ourselves: an IHDR chunk, the pixel
rows compressed by one ``zlib.compressobj`` as they arrive and emitted as a run of IDAT chunks, then IEND.
Every chunk carries its CRC-32 as the PNG specification (ISO/IEC 15948) requires.

Each row gets filter type 0 (None). The adaptive filters (Sub/Up/Paeth) compress photographs better, but
computing them per byte in pure Python would cost seconds per tile; screenshots are mostly flat colour,
where zlib alone does well.
"""

from __future__ import annotations

import struct
import zlib
from typing import Protocol

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour types we produce, with their bytes per pixel at 8 bits per sample.
COLOR_TYPES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}

# Compressed data is written in IDAT chunks of at most this size; any split is valid PNG.
IDAT_SIZE = 256 * 1024

# PNG limits width and height to 2**31 - 1.
MAX_DIMENSION = 2**31 - 1


class BinarySink(Protocol):
    """Anything with ``write(bytes)``: a file, a HashingWriter, a BytesIO."""

    def write(self, data: bytes, /) -> object: ...


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 over type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class PngWriter:
    """Writes a PNG of known size row by row to ``sink``.

    The size is fixed up front because IHDR comes first and the sink may not be seekable (a HashingWriter
    hashes as it writes). ``close()`` refuses to finish a PNG with missing rows rather than writing a file
    whose header lies about its height.
    """

    def __init__(self, sink: BinarySink, width: int, height: int, *, mode: str = "RGB", level: int = 6) -> None:
        if mode not in COLOR_TYPES:
            raise ValueError(f"unsupported PNG mode {mode!r}; use one of {', '.join(COLOR_TYPES)}")
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
            raise ValueError(f"PNG size {width}x{height} is outside 1..{MAX_DIMENSION}")
        color_type, self._bpp = COLOR_TYPES[mode]
        self.width = width
        self.height = height
        self.mode = mode
        self.row_bytes = width * self._bpp
        self.rows_written = 0
        self._sink = sink
        self._zlib = zlib.compressobj(level)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._closed = False
        header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
        sink.write(SIGNATURE + chunk(b"IHDR", header))

    def write_rows(self, pixels: bytes | bytearray | memoryview) -> None:
        """Append whole rows of raw pixels (``mode`` layout, top to bottom, no filter bytes)."""
        if self._closed:
            raise ValueError("PNG already closed")
        view = memoryview(pixels).cast("B")
        count, rest = divmod(len(view), self.row_bytes)
        if rest:
            raise ValueError(f"{len(view)} bytes is not a whole number of {self.row_bytes}-byte rows")
        if self.rows_written + count > self.height:
            raise ValueError(f"more rows than the declared height {self.height}")
        if count:
            # One compress call per batch of rows: per-row calls cost ten times more in call overhead.
            rows = [view[start : start + self.row_bytes] for start in range(0, len(view), self.row_bytes)]
            self._feed(self._zlib.compress(b"\x00" + b"\x00".join(rows)))
        self.rows_written += count

    def close(self) -> None:
        """Flush the compressor, write the last IDAT and IEND. Raises if rows are missing."""
        if self._closed:
            return
        if self.rows_written != self.height:
            raise ValueError(f"PNG declared {self.height} rows but got {self.rows_written}")
        self._feed(self._zlib.flush())
        self._emit()
        self._sink.write(chunk(b"IEND", b""))
        self._closed = True

    def _feed(self, data: bytes) -> None:
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= IDAT_SIZE:
                self._emit()

    def _emit(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            for start in range(0, len(data), IDAT_SIZE):
                self._sink.write(chunk(b"IDAT", data[start : start + IDAT_SIZE]))
            self._pending.clear()
            self._pending_size = 0
