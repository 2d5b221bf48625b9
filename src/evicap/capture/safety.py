"""What protects the investigator in one capture, gathered in one place for ``session.capture_url``.

- the egress policy for this target (``egress.policy_for``), unless the caller brought its own gate;
- credentials from the URL (``http://user:pass@host``) go to the browser as HTTP credentials, never into a
  record; the manifest says that the URL carried some;
- proxy credentials go to the browser in Playwright's proxy settings;
- the secret scrubber of this capture (session values, token fields, URL and proxy credentials);
- afterwards: a warning when a secret is visible as page text (so in the screenshot and PDF, which are not
  rewritten), the manifest scrubbed and given its ``network.secrets`` section, a proxy error page made a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evicap.bundle.model import CaptureWarning
from evicap.capture.egress import policy_for
from evicap.capture.netid import network_identity, public_address
from evicap.capture.options import CaptureOptions
from evicap.capture.secrets import Scrubber, capture_scrubber, manifest_section
from evicap.capture.target import url_credentials
from evicap.capture.uris import evicap_uri
from evicap.errors import ConfigError

VISIBLE_TEXT_JS = "document.body ? document.body.innerText : ''"
EGRESS_CHECK_TIMEOUT = 15.0  # seconds
MAX_EGRESS_BODY = 4096  # bytes of the answer kept: an address, not a page


@dataclass
class CaptureSafety:
    options: CaptureOptions
    """The capture's options with its egress gate set."""
    scrubber: Scrubber
    url_credentials: tuple[str, str] | None = field(default=None, repr=False)
    warnings: list[CaptureWarning] = field(default_factory=list)
    target: str = ""
    egress_check: dict[str, Any] | None = None
    """The public egress address as the configured egress-check URL answered (None: not asked)."""


def prepare(url: str, target: str, options: CaptureOptions, storage_state: Path | None) -> CaptureSafety:
    """Everything decided before the browser context opens. ``url`` as given, ``target`` normalized."""
    if options.egress is None:
        gate = policy_for(target, options.allow_networks, options.egress_test_private, proxy=options.proxy)
        options = dataclasses.replace(options, egress=gate)
    found = url_credentials(url)
    credentials = (found.username, found.password) if found else None
    state: dict[str, Any] | None = None
    if storage_state is not None:
        try:
            state = json.loads(storage_state.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"session file {storage_state} is unreadable: {exc}") from None
    scrubber = capture_scrubber(state, url_credentials=credentials, proxy_credentials=options.proxy_auth,
                                keep=options.keep_secrets)
    warnings = []
    if found:
        warnings.append(CaptureWarning("url-credentials", "the URL carried user credentials: they were given to the "
                                       "browser as HTTP credentials and are not stored anywhere in the bundle"))
    if options.keep_secrets and scrubber.secret_names:
        warnings.append(CaptureWarning("secrets-kept", "--keep-secrets: the session's cookies, tokens and "
                                       "credentials are kept in the bundle"))
    return CaptureSafety(options, scrubber, credentials, warnings, target)


def context_options(safety: CaptureSafety) -> dict[str, Any]:
    """Extra ``browser.new_context`` arguments: the proxy with its credentials, the URL's HTTP credentials."""
    options = safety.options
    extra: dict[str, Any] = {}
    if options.proxy:
        proxy: dict[str, str] = {"server": options.proxy}
        if options.proxy_auth:
            proxy["username"], proxy["password"] = options.proxy_auth
        extra["proxy"] = proxy
    if safety.url_credentials:
        username, password = safety.url_credentials
        extra["http_credentials"] = {"username": username, "password": password}
    return extra


async def visible_secret_warnings(page: Any, scrubber: Scrubber) -> list[CaptureWarning]:
    """A warning naming each secret shown as page text: screenshots and the PDF show it and are not rewritten."""
    if not scrubber.secret_names or scrubber.keep:
        return []
    try:
        text = await asyncio.wait_for(page.evaluate(VISIBLE_TEXT_JS), timeout=5)
    except Exception:  # a crashed or frozen page: nothing more to read; the DOM and MHTML were scrubbed anyway
        return []
    names = scrubber.visible(str(text or ""))
    if not names:
        return []
    return [CaptureWarning("secret-visible", "a secret of the investigator is visible as page text, so also in the "
                           "screenshots and the PDF (not rewritten): " + ", ".join(names))]


async def check_egress(safety: CaptureSafety, context: Any, warc: Any, capture_id: str) -> list[CaptureWarning]:
    """Ask the configured egress-check URL for our public address, through the capture's own context (so its
    proxy), before the target is loaded; its answer goes into the WARC as a metadata record."""
    url = safety.options.egress_check_url
    if not url:
        return []
    uri = evicap_uri(capture_id, "egress-check")
    try:
        response = await context.request.get(url, timeout=EGRESS_CHECK_TIMEOUT * 1000, max_redirects=0)
        body = await response.body()
    except Exception as exc:  # unreachable, refused, timed out: recorded, the capture goes on
        safety.egress_check = {"url": url, "status": None, "public_address": None, "error": str(exc).split("\n")[0]}
        return [CaptureWarning("egress-check-failed", f"egress check {url} failed: {safety.egress_check['error']}")]
    text = body[:MAX_EGRESS_BODY].decode("utf-8", "replace")
    answer = {"url": url, "status": response.status, "headers": response.headers_array, "body": text}
    await warc.write_metadata(uri, "application/json", json.dumps(answer, ensure_ascii=False).encode("utf-8"))
    safety.egress_check = {"url": url, "status": response.status, "public_address": public_address(text),
                           "record": uri}
    return []


def finish_manifest(manifest: dict[str, Any], safety: CaptureSafety) -> dict[str, Any]:
    """The manifest scrubbed like every other file, then told what was scrubbed where, and given the machine's
    network identity."""
    gate = safety.options.egress
    resolved = sorted(str(a) for a in getattr(gate, "_target_addresses", None) or ())
    network = network_identity(safety.target, safety.options.proxy, resolved)
    network["egress_check"] = safety.egress_check
    manifest["environment"]["network"] = network
    scrubber = safety.scrubber
    if scrubber.active:
        manifest = scrubber.scrub_json(manifest, "manifest.json")
    manifest["network"]["secrets"] = manifest_section(scrubber, url_had_credentials=safety.url_credentials is not None)
    return manifest
