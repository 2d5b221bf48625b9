"""Cross-border requests from real captures of the platform fixtures (real Chromium, through the CLI).

One module fixture captures each platform page once (its markup and the JSON it loads, served on 127.0.0.1);
the tests then draft requests from those bundles the way an investigator would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from html import escape
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from evicap.cli.main import cli
from evicap.requests.catalog import instrument, names, schema
from tests.platform_site import PLATFORMS, serve_platforms
from tests.servers import LocalServer
from tests.tsa import LocalTSA, tsa  # noqa: F401

EVICAP = str(Path(sys.executable).with_name("evicap"))
AUTHORITY = {
    "organisation": "Example National Police, Cybercrime Unit",
    "person": "Insp. Jane Roe",
    "email": "jane.roe@police.example",
    "phone": "+33 1 23 45 67 89",
    "address": "1 rue de l'Exemple, 75001 Paris, France",
    "time_zone": "Europe/Paris",
    "office_hours": "Mon-Fri 08:00-18:00",
}
# Everything any instrument asks for; each test removes or spoils what it is about.
COMPLETE: dict[str, Any] = {
    "case_reference": "OP-2026-0042",
    "offence": "Public provocation to commit a terrorist offence (Code pénal, art. 421-2-5)",
    "summary_of_facts": "On 5 March 2024 the account posted a message announcing a convoy near the bridge and "
                        "calling readers to join an attack planned for the following week.",
    "legal_basis": "Code de procédure pénale, art. 60-1 and 694 et seq.",
    "date_range": {"from": "2024-02-01", "to": "2024-03-31"},
    "data_categories": ["subscriber_data", "traffic_data"],
    "necessity": "The account holder may delete the post and the account once aware of the investigation.",
    "non_disclosure": True,
    "follow_up": "A mutual legal assistance request for disclosure will follow within 60 days.",
    "requested_authority": "24/7 Network point of contact of the requested Party",
    "preferred_channel": "e-mail",
    "prosecution_office": "Parquet national antiterroriste, Paris",
    "court_case_numbers": "PNAT 26/123",
    "previous_preservation": {"date": "2026-11-20", "reference": "REQ-20261120-0000abcd"},
    "issuing_state": "France",
    "receiving_authority": "Parquet national antiterroriste, Paris",
    "emergency": {"danger_to": "Visitors of the market named in the post", "nature": "An attack announced for the "
                  "coming days", "why_needed": "Subscriber and IP data to identify the author before the date"},
    "tco_reasons": ["incitement", "threat"],
    "reasons": "The post calls for an attack on a named public place and threatens its visitors.",
}
PROVIDER_PLATFORM = {"meta": "facebook", "x": "x", "tiktok": "tiktok", "google": "youtube", "telegram": "telegram",
                     "reddit": "reddit", "vk": "vk", "generic": "facebook"}
# platform -> (kind, value, the record's URI must contain this)
EXPECTED: dict[str, list[tuple[str, str, str]]] = {
    "facebook": [("account_id", "100064123456789", "/facebook"), ("account_id", "100012345678901", "/facebook"),
                 ("username", "examplecitycouncil", "/facebook"), ("post_id", "10160012345678901", "/facebook")],
    "x": [("account_id", "1447000000000000777", "/UserByScreenName"), ("username", "@janereporter", "/x"),
          ("post_id", "1765000000000000001", "/x")],
    "tiktok": [("account_id", "6800000000000000000", "/tiktok"), ("username", "@citywitness", "/tiktok"),
               ("video_id", "7340000000000000001", "/tiktok")],
    "youtube": [("channel_id", "UCabcdefghijklmnopqrstuv", "/youtube"), ("video_id", "dQw4w9WgXcQ", "/youtube"),
                ("username", "@riverwatch", "/youtube")],
    "telegram": [("username", "examplenews", "/telegram"), ("message_id", "1201", "/telegram"),
                 ("message_id", "1202", "/telegram")],
    "reddit": [("post_id", "t3_1abcde", "/reddit"), ("account_id", "t2_8xk2q9", "/reddit"),
               ("username", "u/rain_watcher", "/reddit"), ("community_id", "t5_2qh0u", "/reddit")],
    "vk": [("account_id", "-123456", "/vk"), ("post_id", "-123456_7890", "/vk"), ("username", "citynews", "/vk")],
}
FORMS = {("facebook", "100064123456789"): "https://www.facebook.com/profile.php?id=100064123456789",
         ("x", "1765000000000000001"): "https://x.com/janereporter/status/1765000000000000001",
         ("tiktok", "7340000000000000001"): "https://www.tiktok.com/@citywitness/video/7340000000000000001",
         ("youtube", "UCabcdefghijklmnopqrstuv"): "https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv",
         ("vk", "-123456"): "https://vk.com/club123456", ("telegram", "1201"): "https://t.me/examplenews/1201"}


class Case:
    def __init__(self, root: Path, config: Path, bundles: dict[str, Path]) -> None:
        self.root, self.config, self.bundles = root, config, bundles

    @property
    def env(self) -> dict[str, str]:
        return {"XDG_CONFIG_HOME": str(self.config)}

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def inputs(self, tmp: Path, **changes: Any) -> Path:
        data = {**COMPLETE, **changes}
        data = {k: v for k, v in data.items() if v is not None}
        path = tmp / f"from-{len(list(tmp.glob('from-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        return path


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTSA) -> Any:  # noqa: F811
    root = tmp_path_factory.mktemp("case")
    config = root / "xdg"
    (config / "evicap").mkdir(parents=True)
    (config / "evicap" / "config.yaml").write_text(
        yaml.safe_dump({"investigator": "Insp. Jane Roe", "requesting_authority": AUTHORITY}, allow_unicode=True))
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    bundles: dict[str, Path] = {}
    with LocalServer() as server:
        urls = serve_platforms(server)
        for name in PLATFORMS:
            out = root / "captures" / name
            done = subprocess.run([EVICAP, "capture", urls[name], "--profile", name, "-o", str(out), "--case",
                                   "OP-2026-0042", "--json",
                                   *(("--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem)) if name == "x" else
                                     ("--no-report", "--no-timestamp"))], env=env, capture_output=True,
                                  text=True, timeout=240)
            assert done.returncode == 0, done.stderr
            bundles[name] = Path(json.loads(done.stdout.splitlines()[-1])["bundle"])
    return Case(root, config, bundles)


def _record(bundle: Path, record_id: str) -> tuple[str, bytes]:
    with open(bundle / "artifacts" / "capture.warc.gz", "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_headers.get_header("WARC-Record-ID") == record_id:
                return record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read()
    raise AssertionError(f"no record {record_id}")


@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_identifiers_are_read_from_the_warc_with_their_record(case: Case, platform: str) -> None:
    bundle = case.bundles[platform]
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    found = {(i["kind"], i["value"]): i for i in manifest["identifiers"]}
    stored = json.loads((bundle / "artifacts" / "identifiers.json").read_text("utf-8"))["identifiers"]
    assert stored == manifest["identifiers"]
    for kind, value, uri_part in EXPECTED[platform]:
        ident = found.get((kind, value))
        assert ident is not None, f"{platform}: {kind} {value} not found in {sorted(found)}"
        uri, payload = _record(bundle, ident["record_id"])  # read back by warcio, not by our reader
        assert uri_part in uri
        assert value.lstrip("@").removeprefix("u/").split("_")[-1].encode() in payload
    for (plat, value), form in FORMS.items():
        if plat == platform:
            assert any(i["value"] == value and i.get("form") == form for i in manifest["identifiers"])
    if platform == "x":  # the capture also wrote its court report, which shows them with their records
        report = (bundle / "reports" / "report.en.html").read_text("utf-8")
        record_id = found[("account_id", "1447000000000000777")]["record_id"]
        assert "1447000000000000777" in report and escape(record_id) in report
    listed = next(a for a in manifest["artifacts"] if a["path"] == "artifacts/identifiers.json")
    assert listed["warc_record"].endswith(":identifiers.json")  # the WARC alone stays complete
    items = json.loads((bundle / "artifacts" / "items.json").read_text("utf-8"))
    carried = [i for item in items for i in item.get("identifiers", [])]
    assert carried and all(i["record_id"] and (i["kind"], i["value"]) in found for i in carried)


def _matrix() -> list[tuple[str, str, str]]:
    return [(inst, prov, kind) for inst in names("instruments") for prov in instrument(inst).providers
            for kind in instrument(inst).kinds]


@pytest.mark.parametrize(("inst", "prov", "kind"), _matrix())
def test_every_instrument_with_every_provider_it_applies_to(case: Case, tmp_path: Path, inst: str, prov: str,
                                                           kind: str) -> None:
    bundle = case.bundles[PROVIDER_PLATFORM[prov]]
    out = case.root / "requests" / f"{inst}-{prov}-{kind}"
    result = case.run("request", kind, str(bundle), "--instrument", inst, "--provider", prov, "--from",
                      str(case.inputs(tmp_path)), "-o", str(out), "--no-pdf", "--json")
    assert result.exit_code == 0, result.output
    request = json.loads((out / "request.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema("request")).validate(request)
    fields = request["fields"]
    assert request["instrument"]["id"] == inst and request["provider"]["id"] == prov and request["kind"] == kind
    assert fields["requesting_authority"]["value"]["organisation"] == AUTHORITY["organisation"]
    assert fields["requesting_authority"]["source"]["keys"]["organisation"] == {"from": "config"}
    assert fields["case_reference"]["source"]["from"] == "input"
    manifest_sha = fields["bundles"]["value"][0]["manifest_sha256"]
    for ident in fields["identifiers"]["value"]:
        assert ident["source"]["bundle"] == bundle.name and ident["source"]["manifest_sha256"] == manifest_sha
        _record(bundle, ident["source"]["record_id"])
    capture = fields["captures"]["value"][0]
    assert capture["started_at_utc"].endswith("Z") and capture["time_zone"] == "Europe/Paris"
    assert capture["started_at_local"].endswith(("+01:00", "+02:00"))
    html = (out / "request.html").read_text("utf-8")
    assert "<script" not in html and instrument(inst).title["en"].split(" (")[0][:30] in html
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"request.json", "request.html"}
    events = [json.loads(line) for line in (bundle / "custody.jsonl").read_text().splitlines()]
    assert any(e["action"] == "requested" and e["details"]["request_id"] == request["id"] for e in events)
    if kind == "preservation":
        assert fields["retention"]["value"]["days"] in (60, 90) or prov in ("telegram", "vk")
    if inst == "eu-epoc-pr":
        assert fields["retention"]["value"] == {**fields["retention"]["value"], "days": 60, "extension_days": 30}
    if inst == "eu-tco-removal":
        assert fields["deadline"]["value"]["hours"] == 1 and fields["content_location"]["value"]


def test_missing_fields_are_all_named_and_nothing_is_written(case: Case, tmp_path: Path) -> None:
    bundle = case.bundles["x"]
    before = (bundle / "custody.jsonl").read_bytes()
    out = tmp_path / "req"
    src = case.inputs(tmp_path, offence=None, necessity=None, follow_up=None, requested_authority=None)
    result = case.run("request", "preservation", str(bundle), "--instrument", "budapest-29", "--provider", "x",
                      "--from", str(src), "-o", str(out))
    assert result.exit_code == 2
    for key in ("offence", "necessity", "follow_up", "requested_authority"):
        assert f"missing {key}" in result.output
    assert not out.exists() and (bundle / "custody.jsonl").read_bytes() == before


@pytest.mark.parametrize(("changes", "message"), [
    ({"date_range": {"from": "2015-01-01", "to": "2024-03-31"}}, "too broad (at most 366)"),
    ({"date_range": {"from": "2024-03-31", "to": "2024-02-01"}}, "is after to"),
    ({"date_range": {"from": "2024-03-01", "to": "2099-01-01"}}, "in the future"),
    ({"data_categories": ["all data"]}, "data_categories 'all data': too broad"),
    ({"data_categories": ["emails"]}, "data_categories 'emails': unknown"),
    ({"data_categories": []}, "name at least one of subscriber_data"),
    ({"summary_of_facts": "Bad posts."}, "too vague to show how the data relate"),
    ({"status": "extension"}, "missing previous_reference"),
])
def test_vague_or_broad_requests_are_refused(case: Case, tmp_path: Path, changes: dict[str, Any],
                                             message: str) -> None:
    out = tmp_path / "req"
    result = case.run("request", "preservation", str(case.bundles["tiktok"]), "--instrument", "us-2703f",
                      "--provider", "tiktok", "--from", str(case.inputs(tmp_path, **changes)), "-o", str(out))
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["preservation", "x", "--instrument", "budapest-29", "--provider", "meta"], "no identifier meta acts on"),
    (["preservation", "vk", "--instrument", "us-2703f", "--provider", "vk"], "does not apply to provider vk"),
    (["disclosure", "x", "--instrument", "budapest-29", "--provider", "x"], "not disclosure"),
    (["emergency", "x", "--instrument", "provider-direct", "--provider", "x"], "missing emergency.danger_to"),
])
def test_wrong_provider_instrument_or_kind(case: Case, tmp_path: Path, args: list[str], message: str) -> None:
    kind, platform, *rest = args
    src = case.inputs(tmp_path, emergency=None) if kind == "emergency" else case.inputs(tmp_path)
    result = case.run("request", kind, str(case.bundles[platform]), *rest, "--from", str(src),
                      "-o", str(tmp_path / "req"))
    assert result.exit_code == 2 and message in result.output, result.output


def test_from_file_with_unknown_key_is_refused_by_its_schema(case: Case, tmp_path: Path) -> None:
    src = tmp_path / "bad.yaml"
    src.write_text("case_reference: X\noffense: typo\n")
    result = case.run("request", "preservation", str(case.bundles["x"]), "--instrument", "us-2703f",
                      "--provider", "x", "--from", str(src), "-o", str(tmp_path / "req"))
    assert result.exit_code == 2 and "'offense' was unexpected" in result.output


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize(("lang", "inst", "prov", "platform", "words"), [
    ("en", "budapest-29", "x", "x", ["Art. 29(2)(c)", "1447000000000000777", "@janereporter", "T-CY(2018)11"]),
    ("fr", "eu-epoc-pr", "tiktok", "tiktok", ["Section A", "Destinataire", "7340000000000000001", "60 jours",
                                                  "Règlement (UE) 2023/1543"]),
    ("ar", "us-2703f", "meta", "facebook", ["طلب تحفظ", "100064123456789", "السلطة", "مدونة قوانين الولايات المتحدة"]),
])
def test_pdf_text_and_pages(case: Case, tmp_path: Path, lang: str, inst: str, prov: str, platform: str,
                            words: list[str]) -> None:
    out = case.root / "requests" / f"pdf-{lang}"
    result = case.run("request", "preservation", str(case.bundles[platform]), "--instrument", inst, "--provider",
                      prov, "--from", str(case.inputs(tmp_path)), "--lang", lang, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = _pdf_text(out / "request.pdf")
    for word in words:
        assert word in text, f"{word!r} not in the PDF text"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(out / "request.pdf"), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages and all(p.stat().st_size > 5000 for p in pages)
    html = (out / "request.html").read_text("utf-8")
    assert f'lang="{lang}"' in html and ('dir="rtl"' in html) == (lang == "ar")


def test_requests_list_and_sent_give_expiry_and_renewal(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "case"
    out = folder / "requests" / "x-2703f"
    assert case.run("request", "preservation", str(case.bundles["x"]), "--instrument", "us-2703f", "--provider",
                    "x", "--from", str(case.inputs(tmp_path)), "-o", str(out), "--no-pdf").exit_code == 0
    request_id = json.loads((out / "request.json").read_text())["id"]
    listed = case.run("requests", "list", str(folder), "--json")
    row = json.loads(listed.output.splitlines()[0])
    assert row["id"] == request_id and row["provider"] == "x" and row["sent_on"] is None
    today = dt.datetime.now(dt.UTC).date()
    sent = case.run("requests", "sent", request_id, "--on", today.isoformat(), "--case-dir", str(folder))
    assert sent.exit_code == 0, sent.output
    row = json.loads(case.run("requests", "list", str(folder), "--json").output.splitlines()[0])
    assert row["sent_on"] == today.isoformat()
    assert row["expires_on"] == (today + dt.timedelta(days=90)).isoformat()
    assert row["renew_by"] == (today + dt.timedelta(days=83)).isoformat()
    table = case.run("requests", "list", str(folder))
    assert request_id in table.output and "us-2703f" in table.output
    assert row["state"] == "sent"
    long_ago = (today - dt.timedelta(days=85)).isoformat()
    (out / "request.json").write_text((out / "request.json").read_text().replace(
        '"drafted_at": "' + today.isoformat(), '"drafted_at": "' + long_ago))
    assert case.run("requests", "sent", request_id, "--on", long_ago, "--case-dir", str(folder)).exit_code == 0
    row = json.loads(case.run("requests", "list", str(folder), "--json").output.splitlines()[0])
    assert row["state"] == "renew now" and row["renew_by"] == (today - dt.timedelta(days=2)).isoformat()
    bad = case.run("requests", "sent", request_id, "--on", "2020-01-01", "--case-dir", str(folder))
    assert bad.exit_code == 2 and "cannot have been sent" in bad.output


# -- transfer packages ---------------------------------------------------------------------------------------


def _readme_commands(readme: str) -> list[str]:
    return [line for line in readme.splitlines() if line.startswith(("cd ", "openssl ", "sha256sum ", "grep "))]


def test_package_checked_with_the_readme_stock_commands(
    case: Case, tmp_path: Path, tsa: LocalTSA,  # noqa: F811
) -> None:
    bundle = case.bundles["x"]
    assert list((bundle / "reports").glob("report.en.*")), "the capture wrote its court report"
    request_dir = tmp_path / "case" / "requests" / "x-29"
    assert case.run("request", "preservation", str(bundle), "--instrument", "budapest-29", "--provider", "x",
                    "--from", str(case.inputs(tmp_path)), "-o", str(request_dir), "--no-pdf").exit_code == 0
    zip_path = tmp_path / "to-ccips.zip"
    result = case.run("package", str(bundle), "--request", str(request_dir), "--to", "US DOJ CCIPS", "-o",
                      str(zip_path), "--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem), "--lang", "fr", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["timestamped"] is True
    events = [json.loads(line) for line in (bundle / "custody.jsonl").read_text().splitlines()]
    assert events[-1]["action"] == "transferred" and events[-1]["details"]["recipient"] == "US DOJ CCIPS"

    unpacked = tmp_path / "received"
    unpacked.mkdir()
    subprocess.run(["unzip", "-q", str(zip_path)], cwd=unpacked, check=True)
    root = unpacked / "to-ccips"
    (unpacked / "TSA-CA.pem").write_bytes(tsa.ca_pem.read_bytes())
    readme = (root / "README.txt").read_text("utf-8")
    assert "Destinataire : US DOJ CCIPS" in readme
    commands = _readme_commands(readme)
    assert any(c.startswith("openssl ts -verify") for c in commands)
    script = "set -e\n" + "\n".join(commands) + "\n"
    done = subprocess.run(["bash", "-c", script], cwd=unpacked, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert out.count("Signature Verified Successfully") == 2  # package.json, then the bundle's manifest.json
    assert out.count("Verification: OK") == 2 and "FAILED" not in out  # package.tsr, the bundle's manifest.tsr
    package = json.loads((root / "package.json").read_text("utf-8"))
    sums_line = next(line for line in out.splitlines() if line.endswith("  SHA256SUMS"))
    assert sums_line.split()[0] == package["sha256sums"]
    assert f"{package['signer_fingerprint']}  -" in out
    copy_events = [json.loads(line) for line in
                   (root / "bundles" / bundle.name / "custody.jsonl").read_text().splitlines()]
    assert copy_events[-1]["action"] == "transferred"  # the copy carries the event
    assert (root / "request" / "request.json").is_file()
    assert any(f["path"].startswith(f"bundles/{bundle.name}/reports/") for f in package["files"])

    key = str(case.config / "evicap" / "signing-key.pem.pub")
    for target in (zip_path, root):
        verified = subprocess.run([EVICAP, "verify", str(target), "--trusted-key", key, "--tsa-ca", str(tsa.ca_pem),
                                   "--json"], env={**os.environ, **case.env}, capture_output=True, text=True)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        reports = [json.loads(line) for line in verified.stdout.splitlines()]
        assert len(reports) == 2 and all(r["ok"] for r in reports)
        assert {c["name"] for c in reports[0]["checks"] if c["status"] == "pass"} >= {
            "package-signature", "package-signer", "package-timestamp", "package-checksums", "package-files"}

    target = root / "bundles" / bundle.name / "artifacts" / "items.json"
    target.write_bytes(target.read_bytes().replace(b"janereporter", b"someoneelse"))
    tampered = subprocess.run([EVICAP, "verify", str(root), "--trusted-key", key, "--json"],
                              env={**os.environ, **case.env}, capture_output=True, text=True)
    assert tampered.returncode == 1
    failed = [c for line in tampered.stdout.splitlines() for c in json.loads(line)["checks"] if c["status"] == "fail"]
    assert any(c["subject"] == f"bundles/{bundle.name}/artifacts/items.json" for c in failed)
    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=root, capture_output=True, text=True)
    assert check.returncode == 1 and "items.json: FAILED" in check.stdout


def test_package_by_an_unknown_key_fails_signer_trust(case: Case, tmp_path: Path) -> None:
    zip_path = tmp_path / "p.zip"
    assert case.run("package", str(case.bundles["vk"]), "--to", "Recipient", "-o", str(zip_path),
                    "--no-timestamp").exit_code == 0
    result = CliRunner().invoke(cli, ["verify", str(zip_path)])  # this test's own config: no trusted key
    assert result.exit_code == 1 and "package-signer" in result.output
    again = case.run("package", str(case.bundles["vk"]), "--to", "Recipient", "-o", str(zip_path), "--no-timestamp")
    assert again.exit_code == 2 and "already exists" in again.output


def test_missing_text_fields_are_asked_for_at_a_terminal(case: Case, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import evicap.cli.request as request_cli

    monkeypatch.setattr(request_cli, "_interactive", lambda: True)
    out = tmp_path / "req"
    src = case.inputs(tmp_path, offence=None, necessity=None)
    result = CliRunner().invoke(cli, ["request", "preservation", str(case.bundles["reddit"]), "--instrument",
                                      "budapest-29", "--provider", "reddit", "--from", str(src), "-o", str(out),
                                      "--no-pdf"], env=case.env,
                                input="Incitement to violence\nThe post may be deleted at any time.\n")
    assert result.exit_code == 0, result.output
    assert "offence:" in result.output and "necessity:" in result.output
    request = json.loads((out / "request.json").read_text("utf-8"))
    prompt = {"from": "input", "file": "prompt"}
    assert request["fields"]["offence"] == {"value": "Incitement to violence", "source": prompt}
    assert request["fields"]["necessity"]["value"] == "The post may be deleted at any time."
    assert request["fields"]["case_reference"]["source"] == {"from": "input", "file": str(src)}


def test_a_request_changed_after_drafting_is_not_packaged(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "req"
    assert case.run("request", "preservation", str(case.bundles["youtube"]), "--instrument", "us-2703f",
                    "--provider", "google", "--from", str(case.inputs(tmp_path)), "-o", str(out),
                    "--no-pdf").exit_code == 0
    html = out / "request.html"
    html.write_text(html.read_text("utf-8").replace("OP-2026-0042", "OP-9999"), "utf-8")
    before = (case.bundles["youtube"] / "custody.jsonl").read_bytes()
    result = case.run("package", str(case.bundles["youtube"]), "--request", str(out), "--to", "Google LERS",
                      "-o", str(tmp_path / "p.zip"), "--no-timestamp")
    assert result.exit_code == 1 and "changed since the request was drafted" in result.output
    assert not (tmp_path / "p.zip").exists()
    assert (case.bundles["youtube"] / "custody.jsonl").read_bytes() == before
