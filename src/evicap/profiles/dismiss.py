"""Close consent banners and login / sign-up pop-ups that cover the content.

Two kinds of signs: selectors of the common consent platforms, and button texts in the languages of the
regions investigators watch. A text only counts inside something that looks like an overlay (a dialog, a
fixed or sticky box, an element named cookie/consent/modal), so a "Close" link in an article is never clicked.
Every click is reported back (what was clicked, by which sign) so the manifest says what the tool did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Frame, Page

# Buttons of widespread consent platforms (OneTrust, Cookiebot, Didomi, Quantcast, TrustArc, Usercentrics,
# Sourcepoint, Osano, CookieYes, Complianz, Klaro) and the platforms' own banners.
CONSENT_ACCEPT_SELECTORS = (
    "#onetrust-accept-btn-handler",
    "#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll",
    "#CybotCookiebotDialogBodyButtonAccept",
    "#didomi-notice-agree-button",
    ".qc-cmp2-summary-buttons button[mode=primary]",
    "#truste-consent-button",
    "button[data-testid=uc-accept-all-button]",
    "button[title='Accept all' i].sp_choice_type_11",
    ".osano-cm-accept-all",
    ".cky-btn-accept",
    ".cmplz-accept",
    ".klaro .cm-btn-accept-all",
    "[data-cookiebanner=accept_button]",
    "[data-testid=cookie-policy-manage-dialog-accept-button]",
    "button[aria-label='Accept all' i]",
    "form[action*='consent'] button[aria-label*='Accept' i]",
)
CONSENT_REJECT_SELECTORS = (
    "#onetrust-reject-all-handler",
    "#CybotCookiebotDialogBodyButtonDecline",
    "#didomi-notice-disagree-button",
    "button[data-testid=uc-deny-all-button]",
    ".osano-cm-denyAll",
    ".cky-btn-reject",
    ".cmplz-deny",
    "[data-cookiebanner=accept_only_essential_button]",
    "button[aria-label='Reject all' i]",
)
# Close buttons of login / sign-up / app-install pop-ups.
CLOSE_SELECTORS = (
    "[role=dialog] [aria-label='Close' i]",
    "[role=dialog] [aria-label='Dismiss' i]",
    "[aria-modal=true] [aria-label='Close' i]",
    "[role=dialog] button.close",
    "[role=dialog] [data-dismiss=modal]",
    "[data-testid=xMigrationBottomBar] [role=button]",
    "[data-testid=app-bar-close]",
)

# Accept-consent texts. Matched whole (case and spacing folded), so "Accept" does not match "Accept and pay".
ACCEPT_TEXTS = (
    # English
    "accept",
    "accept all",
    "accept all cookies",
    "accept cookies",
    "allow all",
    "allow all cookies",
    "allow cookies",
    "i accept",
    "i agree",
    "agree",
    "agree and continue",
    "ok",
    "got it",
    "okay",
    "allow essential and optional cookies",
    "accept and continue",
    "yes, i agree",
    "consent",
    # French
    "accepter",
    "tout accepter",
    "accepter tout",
    "accepter et continuer",
    "j'accepte",
    "j’accepte",
    "autoriser tous les cookies",
    "d'accord",
    "j'ai compris",
    "accepter les cookies",
    # Arabic
    "قبول",
    "قبول الكل",
    "موافق",
    "أوافق",
    "قبول جميع ملفات تعريف الارتباط",
    "السماح بالكل",
    # Spanish
    "aceptar",
    "aceptar todo",
    "aceptar todas",
    "aceptar cookies",
    "acepto",
    "permitir todas las cookies",
    "de acuerdo",
    "entendido",
    # Russian
    "принять",
    "принять все",
    "принимаю",
    "согласен",
    "согласна",
    "разрешить все",
    "хорошо",
    "понятно",
    # Turkish
    "kabul et",
    "tümünü kabul et",
    "kabul ediyorum",
    "tamam",
    "anladım",
    "tüm çerezlere izin ver",
    # Indonesian
    "terima",
    "terima semua",
    "setuju",
    "saya setuju",
    "izinkan semua",
    "izinkan semua cookie",
    "oke",
    # Vietnamese
    "chấp nhận",
    "chấp nhận tất cả",
    "đồng ý",
    "tôi đồng ý",
    "cho phép tất cả",
    # Portuguese
    "aceitar",
    "aceitar tudo",
    "aceitar todos",
    "aceito",
    "concordo",
    "permitir todos os cookies",
    # German
    "akzeptieren",
    "alle akzeptieren",
    "alle cookies akzeptieren",
    "zustimmen",
    "ich stimme zu",
    "einverstanden",
    "alle zulassen",
    "verstanden",
    # Urdu
    "قبول کریں",
    "سب قبول کریں",
    "متفق",
    # Persian
    "پذیرفتن",
    "پذیرش",
    "قبول همه",
    "موافقم",
    "پذیرش همه",
    # Ukrainian, Italian, Dutch, Polish (common in the same feeds)
    "прийняти",
    "прийняти все",
    "accetta",
    "accetta tutto",
    "accetto",
    "accepteren",
    "alles accepteren",
    "akceptuję",
    "zaakceptuj wszystko",
)
REJECT_TEXTS = (
    "reject",
    "reject all",
    "decline",
    "decline optional cookies",
    "only allow essential cookies",
    "necessary cookies only",
    "refuser",
    "tout refuser",
    "continuer sans accepter",
    "رفض",
    "رفض الكل",
    "rechazar",
    "rechazar todo",
    "отклонить",
    "отклонить все",
    "reddet",
    "tümünü reddet",
    "tolak",
    "tolak semua",
    "từ chối",
    "rejeitar",
    "rejeitar tudo",
    "ablehnen",
    "alle ablehnen",
    "رد کریں",
    "رد کردن",
)
# Texts that close a login / sign-up / app prompt without signing in.
CLOSE_TEXTS = (
    "not now",
    "maybe later",
    "no thanks",
    "close",
    "dismiss",
    "continue as guest",
    "skip",
    "×",
    "✕",
    "pas maintenant",
    "plus tard",
    "non merci",
    "fermer",
    "ليس الآن",
    "لاحقًا",
    "لاحقا",
    "إغلاق",
    "ahora no",
    "más tarde",
    "cerrar",
    "no, gracias",
    "не сейчас",
    "позже",
    "закрыть",
    "нет, спасибо",
    "şimdi değil",
    "daha sonra",
    "kapat",
    "hayır, teşekkürler",
    "lain kali",
    "nanti saja",
    "tutup",
    "tidak sekarang",
    "để sau",
    "không phải bây giờ",
    "đóng",
    "agora não",
    "mais tarde",
    "fechar",
    "jetzt nicht",
    "später",
    "schließen",
    "nein danke",
    "ابھی نہیں",
    "بند کریں",
    "بعداً",
    "بستن",
    "الان نه",
)

# Runs in the page: candidate elements inside overlays whose text, value or aria-label matches.
_FIND_JS = """
([selectors, texts]) => {
  const norm = s => (s || '').replace(/[\\s\\u00a0]+/g, ' ').trim().toLowerCase().replace(/[.!]+$/, '');
  const wanted = new Set(texts.map(norm));
  const visible = el => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && cs.opacity !== '0';
  };
  const overlayWord =
    /(cookie|consent|gdpr|privacy|cmp|modal|dialog|overlay|popup|banner|login|signup|sign-up|interstitial)/i;
  // Up one level, leaving a shadow root for its host: banners built as web components (Usercentrics and
  // others) keep their buttons in an open shadow root, where parentElement stops.
  const up = n => n.parentElement || (n.parentNode && n.parentNode.host) || null;
  const inOverlay = el => {
    for (let n = el; n && n !== document.documentElement; n = up(n)) {
      const role = n.getAttribute && n.getAttribute('role');
      if (role === 'dialog' || role === 'alertdialog' || n.getAttribute('aria-modal') === 'true') return true;
      if (n.tagName === 'DIALOG') return true;
      const pos = getComputedStyle(n).position;
      if (pos === 'fixed' || pos === 'sticky') return true;
      if (overlayWord.test((n.id || '') + ' ' + (typeof n.className === 'string' ? n.className : ''))) return true;
    }
    return false;
  };
  // The document and every open shadow root in it (closed ones are out of any script's reach), capped.
  const roots = [document];
  for (let i = 0; i < roots.length && roots.length < 500; i++) {
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  }
  const found = [];
  const seen = new Set();
  for (const sel of selectors) {
    for (const root of roots) {
      let list = [];
      try { list = root.querySelectorAll(sel); } catch (e) { break; }
      for (const el of list) {
        if (!seen.has(el) && visible(el)) { seen.add(el); found.push([el, 'selector ' + sel]); }
      }
    }
  }
  const clickable = 'button, [role=button], a[href], input[type=button], input[type=submit], [tabindex]';
  for (const root of roots) {
    for (const el of root.querySelectorAll(clickable)) {
      if (seen.has(el) || !visible(el)) continue;
      const label = [el.innerText, el.value, el.getAttribute('aria-label'), el.getAttribute('title')]
        .map(norm).find(t => t && wanted.has(t));
      if (label && inOverlay(el)) { seen.add(el); found.push([el, 'text "' + label + '"']); }
    }
  }
  return found;
}
"""


@dataclass(frozen=True)
class Dismissal:
    """One click the tool made to clear the view: which frame, which sign matched."""

    frame_url: str
    reason: str


def patterns(
    consent: str = "accept", extra_selectors: tuple[str, ...] = (), extra_texts: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """Selectors and texts to try, in order: the profile's own, then consent, then pop-up close."""
    consent_selectors = CONSENT_ACCEPT_SELECTORS if consent == "accept" else CONSENT_REJECT_SELECTORS
    consent_texts = ACCEPT_TEXTS if consent == "accept" else REJECT_TEXTS
    selectors = [*extra_selectors, *consent_selectors, *CLOSE_SELECTORS]
    texts = [*extra_texts, *consent_texts, *CLOSE_TEXTS]
    return selectors, texts


def _find_expression(selectors: list[str], texts: list[str]) -> str:
    """_FIND_JS applied to the selectors and texts written into the expression as a JSON literal: Playwright's
    Python client serialises and validates an argument string by string, which for these ~170 strings cost about
    2 ms of CPU per frame and round, more than the rest of the call."""
    return f"() => ({_FIND_JS})({json.dumps([selectors, texts])})"


async def _dismiss_in_frame(frame: Frame, expression: str, timeout_ms: float) -> list[Dismissal]:
    done: list[Dismissal] = []
    try:
        handle = await frame.evaluate_handle(expression)
    except Exception:  # detached or cross-process frame: nothing to do there
        return done
    try:
        pairs = await handle.get_properties()
        for pair in pairs.values():
            element = await pair.get_property("0")
            reason: Any = await (await pair.get_property("1")).json_value()
            node = element.as_element()
            if node is None:
                continue
            try:
                await node.click(timeout=timeout_ms)
            except Exception:
                try:  # covered or animating: a DOM click still fires the page's own handler
                    await node.evaluate("el => el.click()")
                except Exception:
                    continue
            done.append(Dismissal(frame.url, str(reason)))
            break  # one click per frame per round: the click usually removes the rest
    finally:
        await handle.dispose()
    return done


async def dismiss_overlays(
    page: Page,
    *,
    consent: str = "accept",
    extra_selectors: tuple[str, ...] = (),
    extra_texts: tuple[str, ...] = (),
    rounds: int = 3,
    timeout_ms: float = 2000,
) -> list[Dismissal]:
    """Click consent / close buttons in the page and its frames, a few rounds (banners come in layers)."""
    expression = _find_expression(*patterns(consent, extra_selectors, extra_texts))
    done: list[Dismissal] = []
    for _ in range(rounds):
        this_round: list[Dismissal] = []
        for frame in page.frames:
            this_round += await _dismiss_in_frame(frame, expression, timeout_ms)
        if not this_round:
            break
        done += this_round
        await page.wait_for_timeout(300)
    return done
