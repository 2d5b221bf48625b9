"""Recognise pages that stand in front of the content: login walls, bot challenges, removed content, rate limits.

A wall captured as if it were the post is worse than no capture: the bundle would look complete. Detection
looks at the main document's HTTP status, the URL, challenge widgets (Cloudflare, reCAPTCHA, hCaptcha,
Turnstile), and texts in many languages; texts are only read from the places a wall speaks (title, headings,
dialogs, and the whole body when the page is short), so an article that merely mentions "log in" is not a wall.
Every result carries the evidence: which status, selector or text matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from playwright.async_api import Page

WallKind = Literal["login", "challenge", "unavailable", "rate-limit"]


@dataclass(frozen=True)
class Wall:
    """What stood in front of the content, and why evicap thinks so."""

    kind: WallKind
    reason: str  # one line for the output and the manifest
    evidence: str  # the status, selector, URL or text that matched

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "evidence": self.evidence}


CHALLENGE_SELECTORS = (
    "#challenge-form",
    "#challenge-stage",
    "#challenge-running",
    "#cf-challenge-running",
    ".cf-browser-verification",
    "#cf-please-wait",
    "iframe[src*='challenges.cloudflare.com']",
    "iframe[src*='recaptcha/api2/anchor']",
    "iframe[src*='recaptcha/enterprise/anchor']",
    "iframe[src*='hcaptcha.com']",
    "iframe[title*='hCaptcha']",
    ".g-recaptcha",
    ".h-captcha",
    ".cf-turnstile",
    "#px-captcha",
    "#captcha-form",
    "form#captcha",
    "iframe[src*='captcha-delivery.com']",
    "iframe[src*='arkoselabs.com']",
    "#sec-if-cpt-container",
)
LOGIN_SELECTORS = (
    "form[action*='login' i] input[type=password]",
    "form[action*='signin' i] input[type=password]",
    "[role=dialog] input[type=password]",
    "[aria-modal=true] input[type=password]",
)
LOGIN_URL = re.compile(
    r"/(login|log-in|signin|sign-in|accounts/login|i/flow/login|auth/login|checkpoint|authwall|uas/login)(\b|/|\?|$)",
    re.I,
)

# Texts, compared lower-cased; a sign matches when it appears within the inspected text.
CHALLENGE_TEXTS = (
    "verify you are human",
    "verifying you are human",
    "are you a robot",
    "i'm not a robot",
    "checking your browser",
    "just a moment...",
    "please complete the security check",
    "prove you're not a robot",
    "unusual traffic",
    "vérifiez que vous êtes humain",
    "vérification que vous êtes un humain",
    "je ne suis pas un robot",
    "تحقق من أنك إنسان",
    "أنا لست برنامج روبوت",
    "verifique que es humano",
    "no soy un robot",
    "подтвердите, что вы человек",
    "я не робот",
    "проверка браузера",
    "insan olduğunuzu doğrulayın",
    "ben robot değilim",
    "verifikasi bahwa anda manusia",
    "saya bukan robot",
    "xác minh bạn là con người",
    "tôi không phải là người máy",
    "verifique se você é humano",
    "não sou um robô",
    "bestätigen sie, dass sie ein mensch sind",
    "ich bin kein roboter",
    "تصدیق کریں کہ آپ انسان ہیں",
    "تأیید کنید که انسان هستید",
    "من ربات نیستم",
)
LOGIN_TEXTS = (
    "log in to continue",
    "sign in to continue",
    "log in to see",
    "sign in to see",
    "log in to view",
    "you must log in",
    "you must be logged in",
    "login required",
    "sign in to view",
    "log into facebook",
    "log in to facebook",
    "join to see",
    "sign up to see",
    "create an account to continue",
    "see more on instagram",
    "connectez-vous pour continuer",
    "connectez-vous pour voir",
    "vous devez vous connecter",
    "سجّل الدخول للمتابعة",
    "سجل الدخول للمتابعة",
    "يجب عليك تسجيل الدخول",
    "inicia sesión para continuar",
    "inicia sesión para ver",
    "debes iniciar sesión",
    "войдите, чтобы продолжить",
    "войдите, чтобы увидеть",
    "необходимо войти",
    "вы должны войти",
    "devam etmek için giriş yapın",
    "görmek için giriş yapın",
    "masuk untuk melanjutkan",
    "masuk untuk melihat",
    "đăng nhập để tiếp tục",
    "đăng nhập để xem",
    "faça login para continuar",
    "entre para continuar",
    "inicie sessão para continuar",
    "melde dich an, um fortzufahren",
    "anmelden, um fortzufahren",
    "جاری رکھنے کے لیے لاگ ان کریں",
    "برای ادامه وارد شوید",
)
UNAVAILABLE_TEXTS = (
    "this content isn't available",
    "this content is not available",
    "content unavailable",
    "this page isn't available",
    "sorry, this page isn't available",
    "this post was deleted",
    "this post has been removed",
    "this tweet was deleted",
    "this post is unavailable",
    "this account doesn't exist",
    "account suspended",
    "video unavailable",
    "this video is unavailable",
    "this video has been removed",
    "page not found",
    "has been removed",
    "this channel is private",
    "post not found",
    "ce contenu n'est pas disponible",
    "ce contenu n’est pas disponible",
    "cette page n'est pas disponible",
    "page introuvable",
    "publication supprimée",
    "هذا المحتوى غير متاح",
    "الصفحة غير موجودة",
    "تمت إزالة",
    "este contenido no está disponible",
    "página no encontrada",
    "publicación eliminada",
    "контент недоступен",
    "материал недоступен",
    "страница не найдена",
    "запись удалена",
    "пост удалён",
    "видео недоступно",
    "bu içerik şu anda mevcut değil",
    "bu içerik mevcut değil",
    "sayfa bulunamadı",
    "konten ini tidak tersedia",
    "halaman tidak ditemukan",
    "nội dung này hiện không khả dụng",
    "không tìm thấy trang",
    "este conteúdo não está disponível",
    "página não encontrada",
    "dieser inhalt ist nicht verfügbar",
    "seite nicht gefunden",
    "یہ مواد دستیاب نہیں ہے",
    "این محتوا در دسترس نیست",
)
RATE_LIMIT_TEXTS = (
    "too many requests",
    "rate limit exceeded",
    "rate limited",
    "you are being rate limited",
    "try again later",
    "slow down",
    "trop de requêtes",
    "réessayez plus tard",
    "طلبات كثيرة جدًا",
    "حاول مرة أخرى لاحقًا",
    "demasiadas solicitudes",
    "inténtalo de nuevo más tarde",
    "слишком много запросов",
    "повторите попытку позже",
    "çok fazla istek",
    "daha sonra tekrar deneyin",
    "terlalu banyak permintaan",
    "coba lagi nanti",
    "quá nhiều yêu cầu",
    "vui lòng thử lại sau",
    "muitas solicitações",
    "tente novamente mais tarde",
    "zu viele anfragen",
    "versuche es später erneut",
    "بہت زیادہ درخواستیں",
    "درخواست‌های بیش از حد",
)
STATUS_WALLS: dict[int, WallKind] = {
    429: "rate-limit",
    404: "unavailable",
    410: "unavailable",
    451: "unavailable",
    401: "login",
    403: "challenge",
}

# Collects what the checks need in one round trip: status, title, the texts a wall would speak in.
_FACTS_JS = """
(selectors) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const pick = q => Array.from(document.querySelectorAll(q)).filter(visible).map(e => e.innerText || '').join('\\n');
  const hits = {};
  for (const [kind, list] of Object.entries(selectors)) {
    hits[kind] = list.find(s => { try { return !!document.querySelector(s); } catch (e) { return false; } }) || null;
  }
  const body = document.body ? document.body.innerText || '' : '';
  return {
    status: nav && nav.responseStatus ? nav.responseStatus : null,
    url: location.href,
    title: document.title || '',
    prominent: pick('h1, h2, [role=dialog], [aria-modal=true], dialog[open], [role=alert], [role=alertdialog]'),
    body: body.length <= 1500 ? body : '',
    bodyLength: body.length,
    hits,
  };
}
"""


def _signs(kind: str, extra: dict[str, dict[str, list[str]]], key: str) -> list[str]:
    return list(extra.get(kind, {}).get(key, []))


def _text_hit(text: str, signs: tuple[str, ...] | list[str]) -> str | None:
    folded = " ".join(text.lower().replace("’", "'").split())
    for sign in signs:
        if sign.lower().replace("’", "'") in folded:
            return sign
    return None


async def detect_wall(
    page: Page, extra: dict[str, dict[str, list[str]]] | None = None, status: int | None = None
) -> Wall | None:
    """Look at the page as it is now; return the wall it shows, or None when it looks like content."""
    extra = extra or {}
    selectors = {
        "challenge": [*_signs("challenge", extra, "selectors"), *CHALLENGE_SELECTORS],
        "login": [*_signs("login", extra, "selectors"), *LOGIN_SELECTORS],
        "unavailable": _signs("unavailable", extra, "selectors"),
        "rate-limit": _signs("rate-limit", extra, "selectors"),
    }
    facts: dict[str, Any] = await page.evaluate(_FACTS_JS, selectors)
    status = status or facts.get("status")
    url = str(facts.get("url") or page.url)
    hits: dict[str, str | None] = facts["hits"]
    text = "\n".join([facts["title"], facts["prominent"], facts["body"]])

    if status == 429:
        return Wall("rate-limit", "the server answered 429 Too Many Requests", "HTTP status 429")
    if hits["challenge"]:
        return Wall(
            "challenge",
            "a bot check (captcha or browser challenge) is in front of the page",
            f"selector {hits['challenge']}",
        )
    order: tuple[tuple[WallKind, tuple[str, ...]], ...] = (
        ("challenge", CHALLENGE_TEXTS),
        ("rate-limit", RATE_LIMIT_TEXTS),
        ("unavailable", UNAVAILABLE_TEXTS),
        ("login", LOGIN_TEXTS),
    )
    for kind, texts in order:
        if hits.get(kind) and kind != "login":
            return Wall(kind, _REASONS[kind], f"selector {hits[kind]}")
        found = _text_hit(text, [*_signs(kind, extra, "texts"), *texts])
        if found:
            return Wall(kind, _REASONS[kind], f'text "{found}"')
    if hits["login"]:
        return Wall("login", _REASONS["login"], f"selector {hits['login']}")
    login_urls = [re.compile(p, re.I) for p in _signs("login", extra, "url")]
    if LOGIN_URL.search(url) or any(p.search(url) for p in login_urls):
        return Wall("login", "the site redirected to its sign-in page", f"URL {url}")
    if status in STATUS_WALLS and status is not None:
        kind = STATUS_WALLS[status]
        return Wall(kind, f"the server answered HTTP {status}", f"HTTP status {status}")
    return None


_REASONS: dict[WallKind, str] = {
    "login": "the site asks to sign in before showing the content",
    "challenge": "a bot check (captcha or browser challenge) is in front of the page",
    "unavailable": "the page says the content is unavailable or removed",
    "rate-limit": "the site says it is rate-limiting this client",
}
