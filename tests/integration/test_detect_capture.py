"""Hash lists against real captures: `evicap capture --match-list` (matches in the manifest), then later
`evicap match` (a signed `matched` custody event; the bundle still verifies), and `evicap hashes` to share.

A real Chromium loads a local page with a rotated, resized JPEG copy of a "known" image, an unrelated PNG whose MD5
is on a list, a corrupt image, and a short video made by ffmpeg.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from evicap.cli.main import cli
from evicap.detect.pdq import pdq_of_file
from tests.servers import LocalServer
from tests.test_detect import claimed_png, scene
from tests.tsa import isolated_config  # noqa: F401

pytestmark = pytest.mark.timeout(600)


def _jpeg_rotated_small(source: Path) -> bytes:
    with Image.open(source) as image:
        out = io.BytesIO()
        image.rotate(90, expand=True).resize((240, 320)).save(out, "JPEG", quality=75)
        return out.getvalue()


def _video(tmp: Path) -> bytes:
    path = tmp / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=10",
         "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path.read_bytes()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def site(http_server: LocalServer, tmp_path: Path) -> dict:
    known = scene(tmp_path / "known.png", seed=7)
    innocent = scene(tmp_path / "innocent.png", seed=3)
    http_server.route("/img/copy.jpg", _jpeg_rotated_small(known), content_type="image/jpeg")
    http_server.route("/img/other.png", innocent.read_bytes(), content_type="image/png")
    http_server.route("/img/broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png")
    video = shutil.which("ffmpeg") and _video(tmp_path)
    body = "<!doctype html><title>posts</title><h1>Channel</h1><img src=/img/copy.jpg><img src=/img/other.png>"
    body += "<img src=/img/broken.png><img src=/img/huge.png>"
    http_server.route("/img/huge.png", claimed_png(tmp_path / "huge.png", 30000).read_bytes(), content_type="image/png")
    if video:
        http_server.route("/media/clip.mp4", video, content_type="video/mp4")
        body += "<video src=/media/clip.mp4 preload=auto muted></video>"
    url = http_server.route("/channel", body)
    import hashlib

    known_pdq = pdq_of_file(known)
    at_capture = tmp_path / "gifct-sample.csv"
    at_capture.write_text(
        "signal_type,signal_value,label\n"
        f"pdq,{known_pdq.hash},entity-X logo\n"
        f"md5,{hashlib.md5(innocent.read_bytes()).hexdigest()},entity-Y banner\n",
        encoding="utf-8",
    )
    return {"url": url, "list": at_capture, "known_pdq": known_pdq.hash, "video": bool(video), "tmp": tmp_path}


def _bundle(out: Path) -> Path:
    found = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    assert len(found) == 1
    return found[0]


def _verify(bundle: Path, config: Path) -> tuple[int, str]:
    code, stdout, stderr = invoke("verify", str(bundle), "--trusted-key", str(config / "signing-key.pem.pub"))
    return code, stdout + stderr


def test_known_image_matched_at_capture_and_later_and_the_bundle_still_verifies(
    site: dict, isolated_config: Path, tmp_path: Path  # noqa: F811
) -> None:
    out = tmp_path / "evidence"
    code, stdout, stderr = invoke("capture", site["url"], "-o", str(out), "--no-timestamp",
                                  "--match-list", str(site["list"]))  # fmt: skip
    assert code == 0, stderr
    assert "hash-list match: gifct-sample: entity-X logo (pdq" in " ".join(stderr.split())  # told at once
    bundle = _bundle(out)
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    detection = manifest["detection"]
    assert detection["lists"] == [{"name": "gifct-sample", "sha256": detection["lists"][0]["sha256"], "entries": 2}]
    labels = {(m["label"], m["signal_type"]) for m in detection["matches"]}
    assert labels == {("entity-X logo", "pdq"), ("entity-Y banner", "md5")}
    pdq_match = next(m for m in detection["matches"] if m["signal_type"] == "pdq")
    assert pdq_match["target_uri"].endswith("/img/copy.jpg") and pdq_match["distance"] <= 31
    assert pdq_match["transform"] != "original"  # found through a rotation

    # The match names a WARC record that is really there, holding that image (read back with warcio).
    with open(bundle / "artifacts" / "capture.warc.gz", "rb") as stream:
        ids = {r.rec_headers.get_header("WARC-Record-ID"): r.rec_headers.get_header("WARC-Target-URI")
               for r in ArchiveIterator(stream)}  # fmt: skip
    assert ids[pdq_match["warc_record_id"]] == pdq_match["target_uri"]

    hashes = json.loads((bundle / "artifacts" / "media-hashes.json").read_text("utf-8"))
    by_uri = {m.get("target_uri") or m.get("artifact"): m for m in hashes["media"]}
    assert "decode" in by_uri[site["url"].replace("/channel", "/img/broken.png")]["problem"]
    huge = by_uri[site["url"].replace("/channel", "/img/huge.png")]
    assert re.search("over the cap|decompression bomb", huge["problem"])  # refused before decoding ...
    assert huge["md5"] and huge["sha256"]  # ... and still identified
    assert any(m.get("artifact") == "artifacts/screenshot-full.png" and m.get("pdq") for m in hashes["media"])
    if site["video"]:
        clip = by_uri[site["url"].replace("/channel", "/media/clip.mp4")]
        assert clip["kind"] == "video" and len(clip["frames"]) == 3
    assert any(a["path"] == "artifacts/media-hashes.json" for a in manifest["artifacts"])

    # The list's own entries never reach the bundle: neither its PDQ value nor the file.
    for path in bundle.rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            assert site["known_pdq"] not in path.read_text("utf-8", errors="replace"), path
    assert _verify(bundle, isolated_config)[0] == 0

    # Later: a new list arrives. `evicap match` records a `matched` custody event; nothing else changes.
    later = tmp_path / "partner-list.json"
    later.write_text(json.dumps({"name": "partner", "signals": [
        {"signal_type": "pdq", "signal_value": site["known_pdq"], "label": "entity-X logo (partner)"}]}))  # fmt: skip
    before = (bundle / "manifest.json").read_bytes()
    code, stdout, stderr = invoke("match", str(out), "--list", str(later), "--json")
    assert code == 0, stderr
    report = json.loads(stdout.splitlines()[0])
    assert [m["label"] for m in report["matches"]] == ["entity-X logo (partner)"] and report["custody_seq"] >= 1
    events = [json.loads(line) for line in (bundle / "custody.jsonl").read_text().splitlines()]
    assert events[-1]["action"] == "matched"
    assert events[-1]["details"]["lists"][0]["name"] == "partner"
    assert events[-1]["details"]["matches"][0]["warc_record_id"] == pdq_match["warc_record_id"]
    assert (bundle / "manifest.json").read_bytes() == before
    code, text = _verify(bundle, isolated_config)
    assert code == 0, text

    # Sharing: the export is hashes only and reads back as a list that matches the capture.
    code, stdout, stderr = invoke("hashes", str(out), "--format", "csv", "--no-sources", "--label", "unit-7")
    assert code == 0, stderr
    assert stdout.splitlines()[0].startswith("signal_type,signal_value,label")
    assert site["url"] not in stdout and "urn:uuid" not in stdout
    shared = tmp_path / "shared.csv"
    shared.write_text(stdout)
    code, stdout, _ = invoke("match", str(bundle), "--list", str(shared), "--no-record", "--json")
    assert code == 0 and json.loads(stdout)["matches"]

    # A copy whose media-hashes.json was altered is refused by name; the intact bundle is still matched.
    altered = out / (bundle.name + "-altered")
    shutil.copytree(bundle, altered)
    media = altered / "artifacts" / "media-hashes.json"
    media.write_text(media.read_text().replace(site["known_pdq"][:8], "00000000"))
    code, stdout, stderr = invoke("match", str(out), "--list", str(later), "--no-record", "--json")
    assert code == 1 and "media-hashes.json" in stderr and "evicap verify" in stderr
    assert [json.loads(line)["bundle"] for line in stdout.splitlines()] == [str(bundle)]
    shutil.rmtree(altered)

    # A bundle from before media hashing (no media-hashes.json in its manifest): hashed from its WARC on the fly,
    # into a temporary directory; a WARC that is not the sealed one is refused by name, not a traceback.
    old = tmp_path / "old" / bundle.name
    shutil.copytree(bundle, old)
    manifest_path = old / "manifest.json"
    data = json.loads(manifest_path.read_text())
    data["artifacts"] = [a for a in data["artifacts"] if a["role"] != "media-hashes"]
    manifest_path.write_text(json.dumps(data))
    (old / "artifacts" / "media-hashes.json").unlink()
    listing = sorted(p.name for p in old.rglob("*"))
    code, stdout, stderr = invoke("match", str(old), "--list", str(later), "--no-record", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["hashes"] == "computed from the WARC" and report["matches"][0]["label"] == "entity-X logo (partner)"
    assert sorted(p.name for p in old.rglob("*")) == listing  # nothing written into the bundle
    warc = old / "artifacts" / "capture.warc.gz"
    warc.write_bytes(warc.read_bytes()[:200] + b"\x00garbage" * 50)
    code, stdout, stderr = invoke("match", str(old), "--list", str(later), "--no-record")
    flat = " ".join(stderr.split())
    assert code == 1 and "not the sealed WARC" in flat and "Traceback" not in stderr


def test_batch_matches_every_capture_against_the_list(
    site: dict, isolated_config: Path, tmp_path: Path  # noqa: F811
) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(site["url"] + "\n" + site["url"] + "?again\n")
    out = tmp_path / "case"
    code, _, stderr = invoke("batch", str(targets), "-o", str(out), "--case", "OP-9", "--no-timestamp",
                             "--match-list", str(site["list"]))  # fmt: skip
    assert code == 0, stderr
    made = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    assert len(made) == 2
    for bundle in made:
        detection = json.loads((bundle / "manifest.json").read_text())["detection"]
        assert {m["label"] for m in detection["matches"]} == {"entity-X logo", "entity-Y banner"}


def test_bad_match_list_stops_before_capture_with_file_and_line(
    site: dict, isolated_config: Path, tmp_path: Path  # noqa: F811
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("signal_type,signal_value,label\npdq,0000,too short\n")
    code, _, stderr = invoke("capture", site["url"], "-o", str(tmp_path / "o"), "--match-list", str(bad))
    assert code == 2 and f"{bad}: line 2:" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    code, _, stderr = invoke("match", str(tmp_path), "--list", str(bad))
    assert code == 2 and "line 2" in stderr
