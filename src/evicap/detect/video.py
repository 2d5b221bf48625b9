"""PDQ of video frames sampled at one per second, decoded by the ``ffmpeg`` program in a bounded subprocess.

This is how vPDQ (ThreatExchange) hashes a video: a PDQ hash per sampled frame, matched frame by frame. The ``vpdq``
package itself is not used: on Debian it builds only against FFmpeg's development headers, and it decodes inside
our process, where a hostile file could not be stopped. ffmpeg runs here as a child with a wall-clock limit, a
memory limit (``ulimit -v``), one thread, and a cap on the frames it may write; frames are scaled down by ffmpeg
before they reach Python.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.detect.pdq import PdqHash, Unhashable, pdq_of_file

DEFAULT_TIMEOUT = 120.0  # seconds of ffmpeg per video
DEFAULT_MAX_FRAMES = 900  # 15 minutes at one frame per second
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for the ffmpeg child
FRAME_SIDE = 512


@dataclass(frozen=True)
class FrameHash:
    """PDQ of the frame shown at ``time`` seconds."""

    time: float
    pdq: PdqHash

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "hash": self.pdq.hash, "quality": self.pdq.quality,
                "dihedral": list(self.pdq.dihedral)}  # fmt: skip


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def ffmpeg_version() -> str | None:
    """The first line of ``ffmpeg -version``, asked once per process and executable (0.1 s each time)."""
    path = ffmpeg_path()
    return None if path is None else _version_of(path)


_warming: threading.Thread | None = None


def warm_up() -> None:
    """Ask ffmpeg its version in a background thread, once per process, so that the media-hashes document has it
    at once."""
    global _warming
    if _warming is None:
        _warming = threading.Thread(target=ffmpeg_version, name="evicap-ffmpeg-version", daemon=True)
        _warming.start()


@functools.lru_cache(maxsize=4)
def _version_of(path: str) -> str | None:
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20,
                             env=_child_environment()).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.splitlines()[0] if out else ""
    return first.split(" Copyright")[0].strip() or None


def _bounded(command: list[str]) -> list[str]:
    """The command under an address-space limit, set by a shell that then becomes the command (same pid, so
    the timeout kills ffmpeg itself). A shell rather than ``preexec_fn``: this process has other threads."""
    return ["/bin/sh", "-c", f'ulimit -v {MEMORY_LIMIT // 1024} && exec "$0" "$@"', *command]


def frame_hashes(
    path: Path, *, timeout: float = DEFAULT_TIMEOUT, max_frames: int = DEFAULT_MAX_FRAMES
) -> tuple[list[FrameHash], str | None]:
    """PDQ of one frame per second. Returns the frames hashed and, when not all could be, the reason.

    Raises Unhashable when no frame at all could be had (no ffmpeg, not a video, timed out before any frame).
    """
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise Unhashable("ffmpeg is not installed (apt-get install ffmpeg): video frames not hashed")
    with tempfile.TemporaryDirectory(prefix="evicap-frames-") as tmp:
        pattern = str(Path(tmp) / "f%06d.png")
        scale = f"scale=w={FRAME_SIDE}:h={FRAME_SIDE}:force_original_aspect_ratio=decrease"
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
            "-i", str(path), "-map", "0:v:0", "-vf", f"fps=1,{scale}", "-frames:v", str(max_frames), pattern,
        ]  # fmt: skip
        problem: str | None = None
        try:
            done = subprocess.run(_bounded(command), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  env=_child_environment())
            if done.returncode != 0:
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()
                problem = f"ffmpeg exited {done.returncode}: {tail[-1][:200] if tail else 'no message'}"
        except subprocess.TimeoutExpired:
            problem = f"ffmpeg stopped after {timeout:.0f} s"
        except OSError as exc:
            raise Unhashable(f"ffmpeg could not run: {exc.strerror or exc}") from None
        frames: list[FrameHash] = []
        files = sorted(Path(tmp).glob("f*.png"))
        for index, frame in enumerate(files):
            try:
                frames.append(FrameHash(float(index), pdq_of_file(frame)))
            except Unhashable as exc:
                problem = problem or f"frame at {index} s: {exc}"
        if len(files) >= max_frames:
            problem = problem or f"only the first {max_frames} seconds hashed (frame cap)"
    if not frames:
        raise Unhashable(problem or "no video frame could be decoded")
    return frames, problem


def _child_environment() -> dict[str, str]:
    """ffmpeg decodes untrusted files: it gets a bare environment, nothing of ours (no EVICAP_*, no credentials,
    no proxy settings), as the browser does (docs/safety.md)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
