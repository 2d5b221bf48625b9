"""PDQ perceptual hashes (Meta's algorithm, through the ``pdqhash`` package) of image files, in bounded memory.

Hostile images are the normal case here: a capture may hold anything a page served. Before any pixel is decoded
the header's dimensions are checked against ``max_pixels``; JPEGs are decoded at reduced scale (``draft``), and
any image larger than ``WORK_SIDE`` on a side is reduced before hashing: PDQ itself works on a 64x64 luminance
image, and the reduction makes it about five times faster (benchmarks/bench_detect.py). What cannot be hashed
raises ``Unhashable`` with the reason.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000 x 5000; beyond that only MD5/SHA-256 are kept
WORK_SIDE = 512  # longest side of the image PDQ is computed from (docs/detect.md: why, and what it costs)
# The order pdqhash.compute_dihedral returns its eight hashes in.
DIHEDRAL = ("original", "rotate90", "rotate180", "rotate270", "flip-x", "flip-y", "flip-plus1", "flip-minus1")


class Unhashable(Exception):
    """This file has no PDQ hash; the message says why (one line)."""


@dataclass(frozen=True)
class PdqHash:
    """One image's PDQ: the hash (64 hex digits), quality 0-100, and the eight dihedral variants (DIHEDRAL order)."""

    hash: str
    quality: int
    dihedral: tuple[str, ...]
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "quality": self.quality,
            "dihedral": list(self.dihedral),
            "width": self.width,
            "height": self.height,
        }


def bits_to_hex(bits: Any) -> str:
    """pdqhash's 256-element 0/1 vector -> 64 hex digits, first element as the most significant bit (packbits'
    order; a Python loop over the bits cost a capture a few milliseconds: nine hashes an image)."""
    import numpy as np

    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Bits that differ between two 256-bit hashes given as hex."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


_warming: threading.Thread | None = None


def _import_hashing() -> None:
    try:
        import numpy  # noqa: F401
        import pdqhash  # noqa: F401
        from PIL import Image, PngImagePlugin  # noqa: F401
    except ImportError:  # reported where the hash is computed (pdq_of_image)
        pass


def warm_up() -> None:
    """Import pdqhash, numpy and Pillow in a background thread, once per process.

    They take about 0.4 s to import on a 2-core machine; a capture calls this when it starts, so its media
    hashing, seconds later, finds them loaded instead of waiting for them after the snapshots (the import runs
    while the browser loads the page). Python's import lock makes a caller that needs them earlier simply wait."""
    global _warming
    if _warming is None:
        _warming = threading.Thread(target=_import_hashing, name="evicap-warm-up", daemon=True)
        _warming.start()


@cache
def pdq_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("pdqhash")
    except Exception:
        return None


def _rgb_array(image: Any) -> Any:
    """As ThreatExchange's hasher feeds pdqhash: RGB bytes (alpha dropped, palettes expanded)."""
    import numpy as np

    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def pdq_of_image(image: Any) -> PdqHash:
    """PDQ of a loaded PIL image the caller owns (small enough: callers check the pixel count).

    An image larger than WORK_SIDE is reduced in place: copying it first, as this once did, cost a full page
    screenshot (1280 x 6000 px) about 65 ms of CPU, more than decoding it, for the same hash."""
    try:
        import pdqhash
    except ImportError as exc:  # pragma: no cover - a dependency; reported, not raised, by callers
        raise Unhashable(f"pdqhash is not installed ({exc})") from None
    width, height = image.size
    if max(width, height) > WORK_SIDE:
        image.thumbnail((WORK_SIDE, WORK_SIDE))
    array = _rgb_array(image)
    hashes, quality = pdqhash.compute_dihedral(array)
    hexes = tuple(bits_to_hex(h) for h in hashes)
    return PdqHash(hexes[0], int(quality), hexes, width, height)


def pdq_of_file(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PdqHash:
    """PDQ of an image file (first frame of an animation). Raises Unhashable for anything that is not a
    decodable image within max_pixels."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise Unhashable(f"image has no pixels ({width}x{height})")
                if width * height > max_pixels:
                    raise Unhashable(
                        f"{width}x{height} is {width * height:,} pixels, over the cap of {max_pixels:,}"
                    )
                if image.format == "JPEG":
                    image.draft("RGB", (WORK_SIDE, WORK_SIDE))
                image.load()
                return pdq_of_image(image)
        except Unhashable:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Unhashable(f"decompression bomb refused: {exc}") from None
        except UnidentifiedImageError:
            raise Unhashable("not an image format Pillow can decode") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise Unhashable(f"image cannot be decoded: {str(exc).strip() or type(exc).__name__}") from None


class _Remembered:
    """The PDQ of bodies this process hashed lately, by SHA-256 and pixel cap: the same avatar, logo or picture
    served on every page of a site is decoded and hashed once per batch, not once per capture. PDQ is a function of
    the file's bytes (Pillow's decoders and pdqhash are deterministic), so a remembered hash is the hash. Bounded:
    the least recently used are forgotten first. Thread-safe: captures hash their media in worker threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._hashes: OrderedDict[tuple[str, int], PdqHash] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> PdqHash | None:
        with self._lock:
            known = self._hashes.get(key)
            if known is not None:
                self._hashes.move_to_end(key)
            return known

    def put(self, key: tuple[str, int], value: PdqHash) -> None:
        with self._lock:
            self._hashes[key] = value
            self._hashes.move_to_end(key)
            while len(self._hashes) > self.size:
                self._hashes.popitem(last=False)


_REMEMBERED = _Remembered(1024)  # a PdqHash is about 1 KB


def pdq_of_body(path: Path, sha256: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PdqHash:
    """``pdq_of_file`` of a file whose SHA-256 the caller has just computed over all of its bytes, remembered
    (``_Remembered``); what cannot be hashed is not remembered, and raises ``Unhashable`` each time."""
    key = (sha256, max_pixels)
    known = _REMEMBERED.get(key)
    if known is None:
        known = pdq_of_file(path, max_pixels=max_pixels)
        _REMEMBERED.put(key, known)
    return known
