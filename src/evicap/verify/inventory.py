"""Everything in a bundle directory besides what the manifest lists: strict by default.

A bundle is the manifest's files, the seal files beside it, and files evicap added after sealing that a custody
event names with their SHA-256 (``details.files``, e.g. a court report under ``reports/``). Anything else fails:
an unlisted file, a symbolic link, a hard link (another name elsewhere can change the bytes), a FIFO or device, a
name not in Unicode NFC (two byte sequences that display the same), or a name confusable with a listed one
(``artifacts/dоm.html`` with a Cyrillic о beside ``artifacts/dom.html``). ``lenient`` turns only the plain
"unlisted file" into not-checked; the rest always fails.

One streamed walk of the directory tree, without following links; at most ``MAX_REPORTED`` checks of each kind are
named, the rest counted, so a directory of a million planted files costs a walk and one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from evicap.bundle import layout
from evicap.verify.paths import PathProblem, open_inside, sparse_problem
from evicap.verify.report import Check, failed, not_checked, passed

MAX_REPORTED = 20
MAX_CUSTODY_LINE = 1024 * 1024
MAX_CUSTODY_FILES = 100_000
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PostSealFile:
    """A file a custody event says evicap added after sealing."""

    sha256: str
    size: int | None
    seq: int
    """The custody event's sequence number."""


def custody_files(root: Path, limit: int) -> dict[str, list[PostSealFile]]:
    """Files named by custody events' ``details.files``. Reading stops at the first line that is not an event
    (the custody check reports that line); the log is read line by line, each line at most MAX_CUSTODY_LINE bytes."""
    found: dict[str, list[PostSealFile]] = {}
    try:
        fd, info = open_inside(root, layout.CUSTODY)
    except PathProblem:
        return found
    if info.st_size > limit:
        os.close(fd)
        return found
    count = 0
    with os.fdopen(fd, "rb") as handle:
        while line := handle.readline(MAX_CUSTODY_LINE + 1):
            event = _event_files(line)
            if event is None:
                break
            seq, files = event
            for entry in files:
                count += 1
                if count > MAX_CUSTODY_FILES:
                    return found
                found.setdefault(entry[0], []).append(PostSealFile(entry[1], entry[2], seq))
    return found


def _event_files(line: bytes) -> tuple[int, list[tuple[str, str, int | None]]] | None:
    if len(line) > MAX_CUSTODY_LINE or not line.endswith(b"\n"):
        return None
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or not isinstance(data.get("details"), dict):
        return None
    files = data["details"].get("files", [])
    if not isinstance(files, list):
        return data["seq"], []
    out = []
    for entry in files:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str):
            size = entry.get("size")
            out.append((entry["path"], entry["sha256"].lower(), size if isinstance(size, int) else None))
    return data["seq"], out


@lru_cache(maxsize=1)
def _prototypes() -> Mapping[str, str]:
    """Character -> the representative of its confusable set (Unicode's confusables data, as shipped by the
    confusable-homoglyphs package): an ASCII spelling when the set has one, the longest such (``m`` -> ``rn``)."""
    from importlib import resources

    data: dict[str, list[dict[str, str]]] = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    table: dict[str, str] = {}
    for char, glyphs in data.items():
        group = [char, *(g["c"] for g in glyphs if isinstance(g.get("c"), str))]
        table[char] = min(group, key=lambda text: (not text.isascii(), -len(text), text))
    return table


def skeleton(name: str) -> str:
    """A name's look: NFKD, each character replaced by its confusable set's representative (after UTS #39)."""
    table = _prototypes()
    mapped = "".join(table.get(char, char) for char in unicodedata.normalize("NFKD", name))
    return unicodedata.normalize("NFKD", mapped)


def _sha256(root: Path, rel: str) -> tuple[str, int] | str:
    try:
        fd, info = open_inside(root, rel)
    except PathProblem as problem:
        return str(problem)
    sparse = sparse_problem(fd, info.st_size)
    if sparse:
        os.close(fd)
        return sparse
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class _Looks:
    """Skeletons of the known names, built on the first name that needs comparing (most bundles have none)."""

    def __init__(self, known: set[str]) -> None:
        self._known = known
        self._table: dict[str, str] | None = None

    def twin(self, name: str) -> str | None:
        """The known name ``name`` looks like, if any."""
        if self._table is None:
            self._table = {skeleton(known): known for known in self._known}
        return self._table.get(skeleton(name))


class _Findings:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.hidden: dict[str, int] = {}
        self._shown: dict[str, int] = {}

    def add(self, check: Check) -> None:
        key = f"{check.name}/{check.status}"
        if self._shown.get(key, 0) < MAX_REPORTED:
            self._shown[key] = self._shown.get(key, 0) + 1
            self.checks.append(check)
        else:
            self.hidden[key] = self.hidden.get(key, 0) + 1

    def result(self) -> list[Check]:
        for key, count in sorted(self.hidden.items()):
            name, status = key.split("/")
            reason = f"and {count} more like the ones above"
            self.checks.append(failed(name, reason) if status == "fail" else not_checked(name, reason))
        return self.checks


def bundle_inventory(root: Path, listed: Iterable[str], custody_limit: int, *, lenient: bool = False,
                     seal_files: Iterable[str] = layout.SEAL_FILES) -> list[Check]:
    """One check per file that is not plainly a listed artifact or a seal file (and one per hard link)."""
    root_real = os.path.realpath(root)
    known = set(listed) | set(seal_files)
    looks = _Looks(known)
    post_seal = custody_files(root, custody_limit)
    findings = _Findings()
    # Directory entries are streamed (scandir, an explicit stack, no sorting): a directory of a million planted names
    # costs a walk, not a list of a million names; the order of the named checks is the file system's.
    stack = [(root_real, ".")]
    while stack:
        dirpath, rel_dir = stack.pop()
        try:
            entries = os.scandir(dirpath)
        except OSError as error:
            findings.add(failed("unlisted", f"directory cannot be listed: {error.strerror or error}", rel_dir))
            continue
        with entries:
            for entry in entries:
                rel = _rel(rel_dir, entry.name)
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as error:
                    findings.add(failed("unlisted", f"cannot be examined: {error.strerror or error}", rel))
                    continue
                if stat.S_ISDIR(info.st_mode):
                    if not unicodedata.is_normalized("NFC", entry.name):
                        findings.add(failed("names", "directory name is not in Unicode NFC form", rel))
                    stack.append((entry.path, rel))
                    continue
                _findings_for(findings, rel, entry.name, info, known, looks, post_seal, root, lenient)
    return findings.result()


def _findings_for(findings: _Findings, rel: str, name: str, info: os.stat_result, known: set[str],
                 looks: _Looks, post_seal: Mapping[str, list[PostSealFile]], root: Path,
                 lenient: bool) -> None:
    if not unicodedata.is_normalized("NFC", name):
        findings.add(failed("names", f"file name {name!a} is not in Unicode NFC form (it can display like another)",
                            rel))
    if stat.S_ISLNK(info.st_mode):
        findings.add(failed("unlisted", "a symbolic link (never followed): not part of a bundle", rel))
        return
    if not stat.S_ISREG(info.st_mode):
        findings.add(failed("unlisted", "not a regular file (FIFO, socket or device)", rel))
        return
    if info.st_nlink > 1:
        findings.add(failed("hard-link", f"a hard link ({info.st_nlink} names share these bytes: a change through "
                                         "another name changes them here); copy the bundle without hard links", rel))
    if rel in known:
        return
    twin = looks.twin(rel)
    if twin is not None:
        findings.add(failed("names", f"{rel!a} looks like the listed {twin!r} (Unicode confusable) but is another "
                                     "name", rel))
        return
    if rel in post_seal:
        findings.add(_post_seal_check(root, rel, post_seal[rel]))
        return
    reason = "present but listed neither in the manifest nor in a custody event (details.files)"
    findings.add(not_checked("unlisted", reason + "; --lenient", rel) if lenient else failed("unlisted", reason, rel))


def _post_seal_check(root: Path, rel: str, events: list[PostSealFile]) -> Check:
    seqs = ", ".join(str(e.seq) for e in events)
    if rel.split("/", 1)[0] == layout.ARTIFACTS_DIR:
        return failed("post-seal", f"custody event {seqs} adds it inside {layout.ARTIFACTS_DIR}/, the sealed set", rel)
    measured = _sha256(root, rel)
    if isinstance(measured, str):
        return failed("post-seal", measured, rel)
    sha256, size = measured
    for event in events:
        if event.sha256 == sha256 and event.size in (None, size):
            return passed("post-seal", f"added after sealing; custody event {event.seq} lists this SHA-256", rel)
    return failed("post-seal", f"SHA-256 differs from what custody event {seqs} recorded (changed since)", rel)


def _rel(rel_dir: str, name: str) -> str:
    return name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")


def root_checks(given: Path) -> list[Check]:
    """The bundle directory itself: a symlink to it would let the bundle be swapped under its name."""
    text = str(given).rstrip("/") or "/"
    if os.path.islink(text):
        return [failed("bundle-root", f"{text} is a symbolic link (to {os.readlink(text)}): give the real directory")]
    return []

