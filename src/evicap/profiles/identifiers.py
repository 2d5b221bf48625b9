"""Exact platform identifiers read from a capture's WARC: the ids a provider acts on, each with its record.

A preservation or disclosure request fails when the identifier is wrong or in a form the provider does not
accept (SIRIUS reports). The ids are therefore read from what the servers sent during the capture (HTML and the
JSON the page loaded), never from a new request, and every identifier names the WARC record it came from so the
recipient can find the bytes. Each extractor is a few patterns over public markup or JSON; its limits are in
docs/requests.md ("Identifiers"). The platform is the capture's profile (``platform`` hint) or the record's host.

    from_warc(Path("bundle/artifacts/capture.warc.gz"), platform="x") -> [Identifier, ...]
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evicap.bundle.warcmembers import Member
from evicap.profiles.warcread import Response, text_responses

KINDS = ("account_id", "username", "post_id", "video_id", "channel_id", "message_id", "community_id",
         "canonical_url")
_HOSTS = {
    "facebook": ("facebook.com", "fb.com", "fb.watch"),
    "instagram": ("instagram.com",),
    "x": ("x.com", "twitter.com"),
    "tiktok": ("tiktok.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "telegram": ("t.me", "telegram.me", "telegram.org"),
    "reddit": ("reddit.com",),
    "vk": ("vk.com", "vk.ru", "vkontakte.ru"),
}


@dataclass(frozen=True)
class Identifier:
    """One identifier seen in a recorded response."""

    platform: str
    kind: str
    """One of KINDS."""
    value: str
    """The identifier as the platform writes it (``100064123456789``, ``janereporter``, ``t3_1abcde``)."""
    form: str | None
    """The form providers ask for, when it is a URL (``https://www.facebook.com/profile.php?id=...``)."""
    record_id: str
    """WARC-Record-ID of the response it was read from."""
    uri: str
    """That record's target URI."""
    source: str
    """Where in the response: the attribute, JSON key or pattern."""
    account: str | None = None
    """For a post, video or message: the account (username) it belongs to, when the same markup says so."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


Found = tuple[str, str, str | None, str, str | None]  # kind, value, form, source, account
Extractor = Callable[[Response], Iterator[Found]]


def _json_objects(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_docs(response: Response) -> Iterator[Any]:
    """The response body as JSON, or the JSON blocks a page embeds in <script> elements."""
    text = response.text.strip()
    if text[:1] in "{[":
        try:
            yield json.loads(text)
            return
        except ValueError:
            pass
    for match in re.finditer(r"<script[^>]*type=\"application/(?:ld\+)?json\"[^>]*>(.*?)</script>", text, re.S):
        try:
            yield json.loads(match.group(1))
        except ValueError:
            continue


def _canonical(response: Response) -> Iterator[Found]:
    text = response.text
    for pattern, source in ((r"<link[^>]+rel=\"canonical\"[^>]+href=\"([^\"]+)\"", "link rel=canonical"),
                            (r"<meta[^>]+property=\"og:url\"[^>]+content=\"([^\"]+)\"", "meta og:url")):
        for match in re.finditer(pattern, text):
            url = match.group(1).replace("&amp;", "&")
            if url.startswith("https://") or url.startswith("http://"):
                yield "canonical_url", url, url, source, None


def _facebook(r: Response) -> Iterator[Found]:
    form = "https://www.facebook.com/profile.php?id={}"
    for m in re.finditer(r"profile\.php\?id=(\d{5,20})", r.text):
        yield "account_id", m.group(1), form.format(m.group(1)), "profile.php?id= link", None
    for m in re.finditer(r"&quot;content_owner_id_new&quot;:&quot;(\d+)|\"content_owner_id_new\":\"(\d+)\"", r.text):
        value = m.group(1) or m.group(2)
        yield "account_id", value, form.format(value), "data-ft content_owner_id_new", None
    for m in re.finditer(r"\"(?:userID|pageID|actorID|owner_id)\":\"(\d{5,20})\"", r.text):
        yield "account_id", m.group(1), form.format(m.group(1)), "JSON " + m.group(0).split(":")[0].strip('"'), None
    post = r"https://www\.facebook\.com/([A-Za-z0-9.]{5,50})/(posts|videos)/(\w+)"
    for m in re.finditer(post, r.text):
        user, what, pid = m.groups()
        yield "username", user, f"https://www.facebook.com/{user}", "post link", None
        yield ("video_id" if what == "videos" else "post_id"), pid, m.group(0), "post link", user
    for m in re.finditer(r"top_level_post_id(?:&quot;|\"):(?:&quot;|\")(\d+)", r.text):
        yield "post_id", m.group(1), None, "data-ft top_level_post_id", None


def _x(r: Response) -> Iterator[Found]:
    for doc in _json_docs(r):
        for obj in _json_objects(doc):
            legacy: dict[str, Any] = obj["legacy"] if isinstance(obj.get("legacy"), dict) else {}
            rest_id = obj.get("rest_id") or obj.get("id_str")
            name = legacy.get("screen_name") or obj.get("screen_name")
            if isinstance(rest_id, str) and rest_id.isdigit() and isinstance(name, str):
                yield "account_id", rest_id, f"https://x.com/i/user/{rest_id}", "JSON rest_id + screen_name", None
                yield "username", "@" + name, f"https://x.com/{name}", "JSON screen_name", None
            elif isinstance(rest_id, str) and rest_id.isdigit() and "full_text" in legacy:
                yield "post_id", rest_id, None, "JSON tweet rest_id", None
    for m in re.finditer(r"href=\"(?:https://(?:x|twitter)\.com)?/(\w{1,15})/status/(\d{5,20})\"", r.text):
        user, pid = m.groups()
        yield "username", "@" + user, f"https://x.com/{user}", "status link", None
        yield "post_id", pid, f"https://x.com/{user}/status/{pid}", "status link", "@" + user


def _tiktok(r: Response) -> Iterator[Found]:
    for doc in _json_docs(r):
        for obj in _json_objects(doc):
            if isinstance(obj.get("uniqueId"), str) and isinstance(obj.get("id"), str) and obj["id"].isdigit():
                user = obj["uniqueId"]
                yield "account_id", obj["id"], None, "JSON author.id (User ID)", "@" + user
                yield "username", "@" + user, f"https://www.tiktok.com/@{user}", "JSON author.uniqueId", None
            author = obj.get("author")
            if isinstance(author, dict) and isinstance(obj.get("id"), str) and obj["id"].isdigit() and "video" in obj:
                user = author.get("uniqueId")
                form = f"https://www.tiktok.com/@{user}/video/{obj['id']}" if user else None
                yield "video_id", obj["id"], form, "JSON itemStruct.id (Video ID)", ("@" + user) if user else None


def _youtube(r: Response) -> Iterator[Found]:
    channel = r"(UC[\w-]{22})"
    patterns = ((rf"itemprop=\"channelId\" content=\"{channel}\"", "meta itemprop=channelId"),
                (rf"\"(?:channelId|externalId|browseId)\":\"{channel}\"", "JSON channelId"),
                (rf"youtube\.com/channel/{channel}", "channel link"))
    for pattern, source in patterns:
        for m in re.finditer(pattern, r.text):
            yield "channel_id", m.group(1), f"https://www.youtube.com/channel/{m.group(1)}", source, None
    for pattern, source in ((r"itemprop=\"videoId\" content=\"([\w-]{11})\"", "meta itemprop=videoId"),
                            (r"\"videoId\":\"([\w-]{11})\"", "JSON videoId"),
                            (r"video-id=\"([\w-]{11})\"", "ytd-watch video-id")):
        for m in re.finditer(pattern, r.text):
            yield "video_id", m.group(1), f"https://www.youtube.com/watch?v={m.group(1)}", source, None
    for m in re.finditer(r"\"canonicalBaseUrl\":\"/@([\w.-]{3,30})\"|<ytd-channel-name><a href=\"/@([\w.-]{3,30})\"",
                         r.text):
        handle = m.group(1) or m.group(2)
        yield "username", "@" + handle, f"https://www.youtube.com/@{handle}", "channel handle", None


def _telegram(r: Response) -> Iterator[Found]:
    for m in re.finditer(r"data-post=\"(\w{4,32})/(\d+)\"", r.text):
        name, mid = m.groups()
        yield "username", name, f"https://t.me/{name}", "data-post", None
        yield "message_id", mid, f"https://t.me/{name}/{mid}", "data-post", name
    for m in re.finditer(r"\"(?:channel_id|peer_id)\":\"?(-?\d{5,20})", r.text):
        yield "channel_id", m.group(1), None, "JSON channel_id", None


def _reddit(r: Response) -> Iterator[Found]:
    for m in re.finditer(r"<shreddit-post\b([^>]*)>", r.text, re.S):
        attrs = dict(re.findall(r"([\w-]+)=\"([^\"]*)\"", m.group(1)))
        author = attrs.get("author")
        if attrs.get("id", "").startswith("t3_"):
            link = attrs.get("permalink")
            form = "https://www.reddit.com" + link if link else None
            yield "post_id", attrs["id"], form, "shreddit-post id", ("u/" + author) if author else None
        if attrs.get("author-id", "").startswith("t2_"):
            yield "account_id", attrs["author-id"], None, "shreddit-post author-id", ("u/" + author) if author else None
        if author:
            yield "username", "u/" + author, f"https://www.reddit.com/user/{author}", "shreddit-post author", None
        if attrs.get("subreddit-id", "").startswith("t5_"):
            yield "community_id", attrs["subreddit-id"], None, "shreddit-post subreddit-id", None
    for doc in _json_docs(r):
        for obj in _json_objects(doc):
            name = obj.get("name")
            if isinstance(name, str) and name.startswith("t3_"):
                link = obj.get("permalink")
                form = "https://www.reddit.com" + link if isinstance(link, str) else None
                author = obj.get("author") if isinstance(obj.get("author"), str) else None
                yield "post_id", name, form, "JSON name (t3_)", ("u/" + author) if author else None
                if isinstance(obj.get("author_fullname"), str):
                    yield "account_id", obj["author_fullname"], None, "JSON author_fullname", (
                        ("u/" + author) if author else None)
                if author:
                    yield "username", "u/" + author, f"https://www.reddit.com/user/{author}", "JSON author", None
                if isinstance(obj.get("subreddit_id"), str):
                    yield "community_id", obj["subreddit_id"], None, "JSON subreddit_id", None


def _vk_owner(owner: str) -> str:
    return f"https://vk.com/club{owner[1:]}" if owner.startswith("-") else f"https://vk.com/id{owner}"


def _vk(r: Response) -> Iterator[Found]:
    for m in re.finditer(r"data-post-id=\"(-?\d+)_(\d+)\"", r.text):
        owner, pid = m.groups()
        yield "account_id", owner, _vk_owner(owner), "data-post-id owner", None
        yield "post_id", f"{owner}_{pid}", f"https://vk.com/wall{owner}_{pid}", "data-post-id", owner
    for m in re.finditer(r"<a class=\"author\" href=\"/([A-Za-z][\w.]{2,31})\" data-from-id=\"(-?\d+)\"", r.text):
        name, owner = m.groups()
        yield "username", name, f"https://vk.com/{name}", "post author link", None
        yield "account_id", owner, _vk_owner(owner), "data-from-id", name
    for doc in _json_docs(r):
        for obj in _json_objects(doc):
            if isinstance(obj.get("owner_id"), int) and isinstance(obj.get("id"), int) and "text" in obj:
                owner, pid = str(obj["owner_id"]), obj["id"]
                yield "post_id", f"{owner}_{pid}", f"https://vk.com/wall{owner}_{pid}", "JSON owner_id + id", owner
            if isinstance(obj.get("screen_name"), str) and isinstance(obj.get("id"), int):
                owner = str(-obj["id"]) if obj.get("type") in ("group", "page", "event") else str(obj["id"])
                yield "account_id", owner, _vk_owner(owner), "JSON id + screen_name", obj["screen_name"]
                yield "username", obj["screen_name"], f"https://vk.com/{obj['screen_name']}", "JSON screen_name", None


def _instagram(r: Response) -> Iterator[Found]:
    for m in re.finditer(r"\"(?:profile_id|owner_id|pk)\":\"?(\d{5,20})", r.text):
        yield "account_id", m.group(1), None, "JSON " + m.group(0).split(":")[0].strip('"'), None
    for m in re.finditer(r"instagram\.com/(?:p|reel)/([\w-]{5,20})", r.text):
        yield "post_id", m.group(1), f"https://www.instagram.com/p/{m.group(1)}/", "post link", None


EXTRACTORS: dict[str, Extractor] = {
    "facebook": _facebook, "instagram": _instagram, "x": _x, "tiktok": _tiktok, "youtube": _youtube,
    "telegram": _telegram, "reddit": _reddit, "vk": _vk,
}


def platform_of(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower()
    for name, hosts in _HOSTS.items():
        if any(host == h or host.endswith("." + h) for h in hosts):
            return name
    return None


def from_warc(path: Path, platform: str | None = None, *, growing: bool = False,
              members: Sequence[Member] | None = None) -> list[Identifier]:
    """Every distinct identifier in the WARC's text responses; the first record that showed it is named.

    ``platform`` (the capture's profile) applies that extractor to every response; without it (or for a
    profile with no extractor here) each record is read by the extractor of its host, if any. ``growing``: the
    WARC is still open, ``members`` where its records lie (see warcread.text_responses).
    """
    seen: dict[tuple[str, str, str], Identifier] = {}
    for response in text_responses(path, growing, members):
        if not 200 <= response.status < 300:
            continue
        name = platform if platform in EXTRACTORS else platform_of(response.uri)
        finders: list[Extractor] = [_canonical]
        if name in EXTRACTORS:
            finders.append(EXTRACTORS[name])
        for finder in finders:
            for kind, value, form, source, account in finder(response):
                key = (name or "web", kind, value)
                if key not in seen:
                    seen[key] = Identifier(name or "web", kind, value, form, response.record_id, response.uri,
                                           source, account)
                elif account and seen[key].account is None:
                    old = seen[key]
                    seen[key] = Identifier(old.platform, old.kind, old.value, old.form or form, old.record_id,
                                           old.uri, old.source, account)
    return sorted(seen.values(), key=lambda i: (KINDS.index(i.kind), i.value))



def attach_to_items(items: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item with the WARC identifiers that name the same post, account or URL (``identifiers`` key).

    Items come from the rendered page (DOM), identifiers from the recorded responses; the match is by value
    (post id, author id, handle with or without its @ / u/ prefix, URL), so a reader can go from an item to the
    record the platform sent.
    """
    def bare(value: Any) -> str:
        return str(value).removeprefix("@").removeprefix("u/") if value is not None else ""

    out = []
    for item in items:
        wanted = {bare(item.get(k)) for k in ("post_id", "author_id", "handle", "url")} - {""}
        matches = [i for i in found if bare(i["value"]) in wanted or (i.get("form") and i["form"] in wanted)]
        out.append({**item, "identifiers": matches} if matches else item)
    return out
