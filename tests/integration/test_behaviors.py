"""Generic behavior, dismissal, hiding, walls and deadlines, against real Chromium and local pages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from evicap.capture.options import CaptureOptions
from evicap.profiles import detect_wall, load_profile, run_profile
from evicap.profiles.loader import parse_profile
from tests.integration.capture_helpers import capture_sealed, make_sealing, manifest_of, warc_records

FIXTURES = Path(__file__).parent.parent / "fixtures"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cf"
    "c0f01f0005000201d0b0a9a80000000049454e44ae426082"
)
PAGES, PER_PAGE = 4, 3
POSTS = PAGES * PER_PAGE


def _json(handler: Any, data: Any) -> None:
    body = json.dumps(data).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve_feed(server: Any) -> str:
    """The generic-feed fixture: posts come PER_PAGE at a time from /api/posts as the reader scrolls."""

    def posts(handler: Any) -> None:
        page = int(parse_qs(urlsplit(handler.path).query)["page"][0])
        ids = range((page - 1) * PER_PAGE + 1, page * PER_PAGE + 1)
        items = [{"id": i, "teaser": f"Teaser {i}", "img": f"/img/{i}.png"} for i in ids]
        _json(handler, {"posts": items, "next": page + 1 if page < PAGES else None})

    def full(handler: Any) -> None:
        post = parse_qs(urlsplit(handler.path).query)["id"][0]
        _json(handler, {"text": f"Full text of post {post}, no longer cut."})

    server.route_fn("/api/posts", posts)
    server.route_fn("/api/full", full)
    for i in range(1, POSTS + 1):
        server.route(f"/img/{i}.png", PNG_1PX, content_type="image/png")
    return str(server.route("/", (FIXTURES / "generic_feed" / "index.html").read_bytes()))


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("EVICAP_PROFILES_DIR", "EVICAP_SESSIONS_DIR", "EVICAP_CONFIG"):
        monkeypatch.delenv(name, raising=False)


async def _on_page(browser: Any, url: str, fn: Any) -> Any:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(url)
        return await fn(page)
    finally:
        await context.close()


def test_generic_behavior_dismisses_consent_scrolls_the_feed_loads_images_and_expands_text(
    run: Any, browser: Any, http_server: Any, tmp_path: Path
) -> None:
    url = serve_feed(http_server)
    profile = load_profile("generic")

    async def go(page: Any) -> tuple[Any, str]:
        result = await run_profile(page, profile, deadline=time.monotonic() + 60, artifacts_dir=tmp_path)
        return result, await page.content()

    result, html = run(_on_page(browser, url, go))
    assert 'id="consent"' not in html  # the consent overlay was accepted and removed by the page itself
    for i in range(1, POSTS + 1):
        assert f'id="post-{i}"' in html
        assert f"Full text of post {i}, no longer cut." in html
        assert http_server.requests_for(f"/img/{i}.png"), f"image {i} never loaded"
    assert len(http_server.requests_for("/api/posts")) == PAGES
    kinds = {s.kind: s for s in reversed(result.steps)}  # the first step of each kind
    assert "accept all" in kinds["dismiss"].detail.lower()
    assert kinds["scroll"].outcome == "ok" and "no new content" in kinds["scroll"].detail
    assert f"clicked {POSTS}×" in kinds["click"].detail
    assert result.wall is None
    assert all(s.started_at.endswith("Z") and s.started_at <= s.ended_at for s in result.steps)


def test_generic_feed_capture_has_every_post_and_image_in_the_dom_snapshot_and_the_warc(
    run: Any, browser: Any, browser_info: Any, http_server: Any, tmp_output: Path, tmp_path: Path
) -> None:
    url = serve_feed(http_server)
    options = CaptureOptions(timeout=60.0, profile="generic")
    sealing = make_sealing(tmp_path)
    result = run(capture_sealed(browser, url, options, tmp_output, browser_info=browser_info, sealing=sealing))
    assert result.status == "complete", (result.error, result.warnings)
    dom = (Path(result.bundle) / "artifacts" / "dom.html").read_text("utf-8")
    responses = {r["uri"]: r for r in warc_records(result.bundle) if r["type"] == "response"}
    for i in range(1, POSTS + 1):
        assert f"Full text of post {i}, no longer cut." in dom
        image = http_server.url(f"/img/{i}.png")
        assert f'src="/img/{i}.png"' in dom
        assert responses[image]["payload"] == PNG_1PX
    for page in range(1, PAGES + 1):
        assert json.loads(responses[http_server.url(f"/api/posts?page={page}")]["payload"])["posts"]
    profile = manifest_of(result.bundle)["profile"]
    assert profile["name"] == "generic" and len(profile["sha256"]) == 64
    assert [s["kind"] for s in profile["steps"]][:3] == ["dismiss", "scroll", "click"]


CONSENT = {
    "fr": "Tout accepter",
    "ar": "قبول الكل",
    "es": "Aceptar todo",
    "ru": "Принять все",
    "tr": "Tümünü kabul et",
    "id": "Terima semua",
    "vi": "Chấp nhận tất cả",
    "pt": "Aceitar tudo",
    "de": "Alle akzeptieren",
    "ur": "قبول کریں",
    "fa": "پذیرش همه",
}


@pytest.mark.parametrize("lang", sorted(CONSENT))
def test_dismiss_accepts_consent_banners_by_their_button_text(
    lang: str, run: Any, browser: Any, http_server: Any
) -> None:
    page_html = f"""<!doctype html><html lang="{lang}"><meta charset="utf-8"><body>
    <article><p>Story</p><a href="#">Plus</a></article>
    <div class="banner" style="position:fixed;bottom:0;left:0;right:0">
      <button onclick="document.title='refused'">X-{lang}</button>
      <button onclick="document.title='accepted';this.parentElement.remove()">{CONSENT[lang]}</button></div>"""
    url = http_server.route(f"/{lang}", page_html)
    profile = parse_profile("name: d\nsteps:\n  - dismiss:\n", Path("inline.yaml"))

    async def go(page: Any) -> tuple[Any, str]:
        result = await run_profile(page, profile, deadline=time.monotonic() + 10, artifacts_dir=Path("."))
        return result, await page.title()

    result, title = run(_on_page(browser, url, go))
    assert title == "accepted"
    assert result.steps[0].outcome == "ok" and CONSENT[lang].lower() in result.steps[0].detail


def test_dismiss_reaches_a_consent_banner_inside_a_shadow_root(run: Any, browser: Any, http_server: Any) -> None:
    """A banner built as a web component (as Usercentrics ships it): its buttons live in an open shadow root."""
    url = http_server.route(
        "/shadow",
        """<!doctype html><meta charset="utf-8"><title>post</title><article><p>The post</p></article>
        <div id="cmp-root"></div><script>
          const root = document.getElementById('cmp-root').attachShadow({mode: 'open'});
          root.innerHTML = '<div style="position:fixed;bottom:0;left:0;right:0;background:#eee">' +
            '<p>We use cookies</p><button id="more">Settings</button><button id="ok">Accept all</button></div>';
          root.getElementById('ok').onclick = () => { document.title = 'accepted'; root.innerHTML = ''; };
        </script>""",
    )
    profile = parse_profile("name: d\nsteps:\n  - dismiss:\n", Path("inline.yaml"))

    async def go(page: Any) -> tuple[Any, str]:
        result = await run_profile(page, profile, deadline=time.monotonic() + 10, artifacts_dir=Path("."))
        return result, await page.title()

    result, title = run(_on_page(browser, url, go))
    assert title == "accepted"
    assert result.steps[0].outcome == "ok" and "accept all" in result.steps[0].detail


def test_dismiss_closes_a_login_prompt_but_never_clicks_inside_the_content(
    run: Any, browser: Any, http_server: Any
) -> None:
    url = http_server.route(
        "/prompt",
        """<!doctype html><meta charset="utf-8"><title>post</title>
        <article><button onclick="document.title='content clicked'">Close</button><p>The post</p></article>
        <div role="dialog" aria-modal="true" style="position:fixed;inset:0;background:#fff">
          <p>Sign up to see more</p><button onclick="this.closest('[role=dialog]').remove()">Not now</button></div>""",
    )
    profile = parse_profile("name: d\nsteps:\n  - dismiss:\n", Path("inline.yaml"))

    async def go(page: Any) -> tuple[str, int]:
        await run_profile(page, profile, deadline=time.monotonic() + 10, artifacts_dir=Path("."))
        return await page.title(), await page.locator("[role=dialog]").count()

    assert run(_on_page(browser, url, go)) == ("post", 0)


def test_hide_removes_fixed_overlays_that_have_no_button(run: Any, browser: Any, http_server: Any) -> None:
    url = http_server.route(
        "/overlay",
        """<!doctype html><body style="overflow:hidden"><h1>Post</h1>
        <div id="wall" style="position:fixed;inset:0;background:#000;color:#fff">Get the app</div>""",
    )
    profile = parse_profile("name: h\nsteps:\n  - hide:\n", Path("inline.yaml"))

    async def go(page: Any) -> tuple[Any, str, str]:
        result = await run_profile(page, profile, deadline=time.monotonic() + 10, artifacts_dir=Path("."))
        shown = await page.evaluate("getComputedStyle(document.getElementById('wall')).visibility")
        topmost = await page.evaluate(
            "(() => { const r = document.querySelector('h1').getBoundingClientRect();"
            " return document.elementFromPoint(r.left + 5, r.top + r.height / 2).tagName; })()"
        )
        return result, shown, topmost

    result, shown, topmost = run(_on_page(browser, url, go))
    assert shown == "hidden" and topmost == "H1"
    assert "div#wall" in result.steps[0].detail


WALLS = [
    ("login.html", 200, "login", "log in to continue"),
    ("challenge.html", 200, "challenge", "#challenge"),
    ("captcha_fr.html", 200, "challenge", "vérifiez que vous êtes humain"),
    ("unavailable_ru.html", 200, "unavailable", "запись удалена"),
    ("unavailable_en.html", 200, "unavailable", "this page isn't available"),
    ("ratelimit_tr.html", 200, "rate-limit", "çok fazla istek"),
    ("article.html", 429, "rate-limit", "429"),
    ("article.html", 200, None, None),  # an article that only mentions the words is not a wall
]


@pytest.mark.parametrize(("fixture", "status", "kind", "evidence"), WALLS)
def test_walls_are_recognised_with_the_evidence(
    fixture: str, status: int, kind: str | None, evidence: str | None, run: Any, browser: Any, http_server: Any
) -> None:
    url = http_server.route(f"/{status}/{fixture}", (FIXTURES / "walls" / fixture).read_bytes(), status=status)
    wall = run(_on_page(browser, url, detect_wall))
    if kind is None:
        assert wall is None
        return
    assert wall is not None and wall.kind == kind
    assert evidence is not None and evidence in wall.evidence.lower()


def test_a_login_wall_makes_the_capture_partial_with_the_reason(
    run: Any, browser: Any, browser_info: Any, http_server: Any, tmp_output: Path, tmp_path: Path
) -> None:
    url = http_server.route("/post/1", (FIXTURES / "walls" / "login.html").read_bytes())
    options = CaptureOptions(timeout=30.0, profile="generic")
    result = run(
        capture_sealed(browser, url, options, tmp_output, browser_info=browser_info, sealing=make_sealing(tmp_path))
    )
    assert result.status == "partial"
    assert "login" in (result.error or "")
    wall = manifest_of(result.bundle)["profile"]["wall"]
    assert wall["kind"] == "login" and "password" in wall["evidence"]  # the form, still there under the hidden dialog


def test_steps_stop_at_the_deadline_and_say_so(run: Any, browser: Any, http_server: Any) -> None:
    url = http_server.route("/slow", "<p>nothing here</p>")
    profile = parse_profile(
        "name: slow\nsteps:\n  - wait: {seconds: 30}\n  - dismiss:\n  - extract: {extractor: generic}\n",
        Path("slow.yaml"),
    )

    async def go(page: Any) -> tuple[Any, float]:
        start = time.monotonic()
        result = await run_profile(page, profile, deadline=start + 1.5, artifacts_dir=Path("."))
        return result, time.monotonic() - start

    result, elapsed = run(_on_page(browser, url, go))
    assert elapsed < 5
    assert [s.outcome for s in result.steps[:3]] == ["timeout", "timeout", "timeout"]
    assert "time was up" in result.steps[0].detail and "not run" in result.steps[1].detail
    assert result.items is None  # the extract step never ran
    assert any(w.code == "step-timeout" for w in result.warnings)


SECRET = "sid-5ecret-7f3a91"


def serve_login_site(server: Any) -> str:
    """A sign-in form that sets a session cookie, and an account page that needs it."""

    def login(handler: Any) -> None:
        if handler.command == "POST":
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            handler.send_response(303)
            handler.send_header("Set-Cookie", f"sid={SECRET}; Path=/; HttpOnly")
            handler.send_header("Location", "/account")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = (
            b'<form method="post" action="/login"><input name="u">'
            b'<input type="password" name="p"><button>Go</button></form>'
        )
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def account(handler: Any) -> None:
        signed_in = f"sid={SECRET}" in (handler.headers.get("Cookie") or "")
        body = b"<h1>Welcome back, investigator</h1>" if signed_in else b"<h2>Log in to continue</h2>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server.route_fn("/login", login)
    server.route_fn("/account", account)
    return str(server.url("/login"))


def test_login_saves_a_private_session_that_a_capture_uses_without_bundling_it(
    run: Any,
    browser: Any,
    browser_info: Any,
    http_server: Any,
    tmp_output: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evicap.sessions import record_login, session_path

    monkeypatch.setenv("EVICAP_SESSIONS_DIR", str(tmp_path / "sessions"))
    login_url = serve_login_site(http_server)

    async def sign_in(page: Any) -> None:  # what the investigator does by hand in the visible window
        await page.fill("input[name=u]", "analyst")
        await page.fill("input[name=p]", "pw")
        await page.click("button")
        await page.wait_for_selector("text=Welcome back")

    saved = run(record_login(browser_info, "case-7", login_url, headless=True, done=sign_in))
    assert saved == session_path("case-7")
    assert oct(saved.stat().st_mode & 0o777) == "0o600" and oct(saved.parent.stat().st_mode & 0o777) == "0o700"
    assert SECRET in saved.read_text()

    options = CaptureOptions(timeout=30.0, profile="generic", session="case-7")
    url = http_server.url("/account")
    result = run(
        capture_sealed(browser, url, options, tmp_output, browser_info=browser_info, sealing=make_sealing(tmp_path))
    )
    assert result.status == "complete", (result.error, result.warnings)
    bundle = Path(result.bundle)
    assert "Welcome back" in (bundle / "artifacts" / "dom.html").read_text("utf-8")
    for path in bundle.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                import gzip

                data = gzip.decompress(data)
            assert SECRET.encode() not in data, f"session secret leaked into {path.relative_to(bundle)}"
