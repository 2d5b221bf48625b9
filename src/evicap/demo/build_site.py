"""Regenerate the demo site's pages, feed data and images: ``python -m evicap.demo.build_site``.

A maintainer's tool, not used at run time: the generated files are committed under ``site/`` and shipped as
package data. Keeping posts in one table here keeps the feed, the profile pages and the permalinks in step.
Everything is fictional: "Larkfield Commons" is an invented neighbourhood board with invented members.

Pages carry the placeholder ``{{ORIGIN}}``; the demo server replaces it with the origin it serves on, so the
canonical link and OpenGraph URLs are absolute, as on a real site.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

SITE = Path(__file__).with_name("site")
SITE_NAME = "Larkfield Commons"
FEED_PAGE_SIZE = 8  # posts rendered into the feed page; the rest come from /api/feed as the reader scrolls


@dataclass(frozen=True)
class Account:
    handle: str
    name: str
    bio: str
    colour: tuple[int, int, int]
    joined: str


@dataclass(frozen=True)
class Post:
    id: int
    handle: str
    time: str  # ISO 8601 UTC
    text: str
    likes: int
    reposts: int
    image: str | None = None  # file under static/img
    alt: str = ""
    comments: tuple[tuple[str, str], ...] = ()  # (handle, text)


ACCOUNTS = {
    a.handle: a
    for a in (
        Account(
            "larkfield_library",
            "Larkfield Library",
            "Opening hours, events and lost library cards.",
            (46, 110, 142),
            "2019-03-02",
        ),
        Account("juniper_vale", "Juniper Vale", "Allotment plot 14. Tomatoes, mostly.", (122, 158, 76), "2020-06-18"),
        Account(
            "tomas_brightwater", "Tomás Brightwater", "Runs the Saturday repair café.", (196, 120, 58), "2021-01-09"
        ),
        Account(
            "priya_fernhill",
            "Priya Fernhill",
            "Street rep for Orchard Row. Bins go out Tuesday.",
            (150, 84, 140),
            "2018-11-24",
        ),
    )
}

LONG_TEXT = (
    "Minutes from Tuesday's residents' meeting, for everyone who could not make it. "
    "1) The crossing outside the school: the council has agreed to a survey in the spring; we will post the date. "
    "2) Street lighting on Orchard Row: two lamps reported, one already fixed. "
    "3) The community fridge moves to the library porch from next month, same opening times. "
    "4) Volunteers wanted for the autumn litter pick; gloves and grabbers provided, tea afterwards. "
    "5) Next meeting is in the church hall at 7 pm on the first Tuesday of the month. Everyone welcome."
)

POSTS = (
    Post(
        101,
        "larkfield_library",
        "2024-05-14T08:12:00Z",
        "Story time is back on Saturday mornings at 10:30, children's corner. Bring a cushion!",
        42,
        7,
        "storytime.jpg",
        "Library children's corner with cushions on the floor",
        (("juniper_vale", "Lovely news, we'll be there."), ("priya_fernhill", "Shared on the Orchard Row list.")),
    ),
    Post(
        102,
        "juniper_vale",
        "2024-05-14T09:40:00Z",
        "First courgettes of the year on plot 14. Far too many already. Help yourselves at the gate.",
        31,
        3,
        "allotment.jpg",
        "Courgettes in a crate by the allotment gate",
        (("tomas_brightwater", "Courgette cake incoming."),),
    ),
    Post(
        103,
        "priya_fernhill",
        "2024-05-14T12:05:00Z",
        LONG_TEXT,
        58,
        19,
        None,
        "",
        (
            ("larkfield_library", "Happy to host the fridge."),
            ("juniper_vale", "Count me in for the litter pick."),
            ("tomas_brightwater", "Thanks for writing these up, Priya."),
        ),
    ),
    Post(
        104,
        "tomas_brightwater",
        "2024-05-15T07:55:00Z",
        "Repair café this Saturday: toasters, lamps, bikes, zips. 26 things fixed last month!",
        77,
        24,
        "repair.jpg",
        "Workbench with a lamp and tools at the repair café",
        (("priya_fernhill", "My radio says thank you."), ("juniper_vale", "Can you do secateurs?")),
    ),
    Post(
        105,
        "larkfield_library",
        "2024-05-15T10:20:00Z",
        "Reminder: the library is closed on Monday for the bank holiday. Book returns box stays open.",
        12,
        5,
        None,
        "",
        (("tomas_brightwater", "Noted, thanks."),),
    ),
    Post(
        106,
        "juniper_vale",
        "2024-05-15T16:45:00Z",
        "Has anyone lost a grey cat with one white paw? Sitting on my shed roof looking pleased with itself.",
        23,
        11,
        "cat.jpg",
        "A grey cat with one white paw on a shed roof",
        (
            ("priya_fernhill", "That's Biscuit from number 9, I'll let them know."),
            ("juniper_vale", "Biscuit has gone home."),
        ),
    ),
    Post(
        107,
        "priya_fernhill",
        "2024-05-16T08:30:00Z",
        "Bin collection moves to Wednesday next week only. Normal service the week after.",
        19,
        14,
        None,
        "",
        (("larkfield_library", "Thank you!"),),
    ),
    Post(
        108,
        "tomas_brightwater",
        "2024-05-16T13:10:00Z",
        "Spare seedlings on the wall outside 22 Mill Lane: tomatoes, beans and a mystery squash.",
        35,
        6,
        "seedlings.jpg",
        "Trays of seedlings on a garden wall",
        (("juniper_vale", "The mystery squash is mine, sorry."),),
    ),
    # Loaded by scrolling (the JSON feed):
    Post(
        109,
        "larkfield_library",
        "2024-05-16T17:00:00Z",
        "Knitting circle meets Thursdays, 2 pm. Beginners very welcome; we have spare needles.",
        16,
        2,
        None,
        "",
        (("priya_fernhill", "My gran will love this."),),
    ),
    Post(
        110,
        "juniper_vale",
        "2024-05-17T07:15:00Z",
        "Rain overnight, the water butts are full. Plot holders, no need to use the tap today.",
        9,
        1,
        None,
        "",
        (),
    ),
    Post(
        111,
        "priya_fernhill",
        "2024-05-17T11:30:00Z",
        "The new bench by the pond is in! Thanks to everyone who chipped in.",
        88,
        21,
        "bench.jpg",
        "A new wooden bench beside the pond",
        (("tomas_brightwater", "Looks great."), ("larkfield_library", "Perfect reading spot.")),
    ),
    Post(
        112,
        "tomas_brightwater",
        "2024-05-17T15:50:00Z",
        "Found: a set of keys with a blue fob on Station Road. Handed in at the library desk.",
        27,
        30,
        None,
        "",
        (("larkfield_library", "We have them safe."),),
    ),
    Post(
        113,
        "larkfield_library",
        "2024-05-18T09:00:00Z",
        "Local history talk next Friday: 'Larkfield's mills, 1850 to today'. Free, booking advised.",
        21,
        8,
        None,
        "",
        (),
    ),
    Post(
        114,
        "juniper_vale",
        "2024-05-18T12:40:00Z",
        "Plot 9 is up for grabs, ask at the hut on Sunday mornings.",
        14,
        4,
        None,
        "",
        (("priya_fernhill", "Passing this on."),),
    ),
)


def _avatar_url(handle: str) -> str:
    return f"/static/img/avatar-{handle}.png"


def _post_html(post: Post, *, permalink: bool = False) -> str:
    account = ACCOUNTS[post.handle]
    long = len(post.text) > 280 and not permalink
    text_class = "post-text clamped" if long else "post-text"
    parts = [
        f'<article class="post" id="post-{post.id}" data-post-id="{post.id}">',
        '  <header class="post-head">',
        f'    <img class="avatar" src="{_avatar_url(post.handle)}" width="48" height="48" alt="">',
        f'    <a class="author" href="/u/{post.handle}"><span class="display-name">{escape(account.name)}</span>'
        f' <span class="handle">@{post.handle}</span></a>',
        f'    <a class="permalink" href="/p/{post.id}"><time datetime="{post.time}">{_human_time(post.time)}'
        "</time></a>",
        "  </header>",
        f'  <p class="{text_class}">{escape(post.text)}</p>',
    ]
    if long:
        parts.append('  <button class="see-more" type="button">See more</button>')
    if post.image:
        parts.append(
            f'  <img class="post-image" src="/static/img/{post.image}" width="640" height="400" '
            f'alt="{escape(post.alt)}">'
        )
    parts.append(
        f'  <footer class="post-stats"><span class="likes">{_count(post.likes, "like")}</span>'
        f' · <span class="reposts">{_count(post.reposts, "repost")}</span>'
        f' · <span class="comment-count">{_count(len(post.comments), "comment")}</span></footer>'
    )
    if post.comments:
        parts.append('  <ul class="comments">')
        for handle, text in post.comments:
            name = escape(ACCOUNTS[handle].name)
            parts.append(
                f'    <li class="comment"><a class="comment-author" href="/u/{handle}">{name}</a> '
                f'<span class="comment-text">{escape(text)}</span></li>'
            )
        parts.append("  </ul>")
    parts.append("</article>")
    return "\n".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _human_time(iso: str) -> str:
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    date, clock = iso.rstrip("Z").split("T")
    year, month, day = date.split("-")
    return f"{int(day)} {months[int(month) - 1]} {year}, {clock[:5]} UTC"


def _page(path: str, title: str, description: str, body: str, *, og_image: str, og_type: str = "website") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<meta name="description" content="{escape(description)}">
<link rel="canonical" href="{{{{ORIGIN}}}}{path}">
<meta property="og:site_name" content="{SITE_NAME}">
<meta property="og:type" content="{og_type}">
<meta property="og:title" content="{escape(title)}">
<meta property="og:description" content="{escape(description)}">
<meta property="og:url" content="{{{{ORIGIN}}}}{path}">
<meta property="og:image" content="{{{{ORIGIN}}}}{og_image}">
<link rel="icon" href="/static/img/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header class="site-head">
  <a class="brand" href="/"><img src="/static/img/logo.svg" width="32" height="32" alt=""> {SITE_NAME}</a>
  <nav><a href="/">Feed</a> <a href="/u/larkfield_library">Library</a></nav>
</header>
<main>
{body}
</main>
<footer class="site-foot">A fictional neighbourhood board, served by evicap's demo server.</footer>
</body>
</html>
"""


def _feed_json(post: Post) -> dict[str, object]:
    account = ACCOUNTS[post.handle]
    return {
        "id": post.id,
        "handle": post.handle,
        "name": account.name,
        "avatar": _avatar_url(post.handle),
        "time": post.time,
        "time_text": _human_time(post.time),
        "text": post.text,
        "image": f"/static/img/{post.image}" if post.image else None,
        "alt": post.alt,
        "likes": post.likes,
        "reposts": post.reposts,
        "comments": [{"handle": h, "name": ACCOUNTS[h].name, "text": t} for h, t in post.comments],
    }


def build_pages(site: Path = SITE) -> None:
    feed = POSTS[:FEED_PAGE_SIZE]
    body = "\n".join(
        [
            '<h1 class="page-title">Neighbourhood feed</h1>',
            '<section id="feed" class="feed" data-next-page="1">',
            *(_post_html(p) for p in feed),
            "</section>",
            '<div id="feed-end" class="feed-end" aria-live="polite">Loading more posts…</div>',
        ]
    )
    description = "News, lost cats and spare courgettes from around Larkfield."
    _write(site / "index.html", _page("/", f"{SITE_NAME} · Feed", description, body, og_image="/static/img/logo.png"))

    for handle, account in ACCOUNTS.items():
        theirs = [p for p in POSTS if p.handle == handle]
        head = (
            f'<section class="profile" data-handle="{handle}">\n'
            f'  <img class="avatar large" src="{_avatar_url(handle)}" width="96" height="96" alt="">\n'
            f'  <h1 class="display-name">{escape(account.name)}</h1>\n'
            f'  <p class="handle">@{handle}</p>\n'
            f'  <p class="bio">{escape(account.bio)}</p>\n'
            f'  <p class="joined">Joined <time datetime="{account.joined}">{account.joined}</time> · '
            f"{_count(len(theirs), 'post')}</p>\n</section>"
        )
        body = "\n".join([head, '<section class="feed">', *(_post_html(p) for p in theirs), "</section>"])
        title = f"{account.name} (@{handle}) · {SITE_NAME}"
        _write(
            site / "u" / f"{handle}.html",
            _page(f"/u/{handle}", title, account.bio, body, og_image=_avatar_url(handle), og_type="profile"),
        )

    for post in POSTS:
        account = ACCOUNTS[post.handle]
        title = f"{account.name} on {SITE_NAME}: “{post.text[:60]}{'…' if len(post.text) > 60 else ''}”"
        og_image = f"/static/img/{post.image}" if post.image else _avatar_url(post.handle)
        _write(
            site / "p" / f"{post.id}.html",
            _page(
                f"/p/{post.id}",
                title,
                post.text[:200],
                _post_html(post, permalink=True),
                og_image=og_image,
                og_type="article",
            ),
        )

    more = [_feed_json(p) for p in POSTS[FEED_PAGE_SIZE:]]
    _write(site / "data" / "more-posts.json", json.dumps(more, ensure_ascii=False, indent=1) + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_images(site: Path = SITE) -> None:
    """Small real images: PNG avatars, JPEG 'photos' (drawn scenes), an SVG and PNG logo."""
    from PIL import Image, ImageDraw, ImageFont

    img_dir = site / "static" / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default(size=40)
    for handle, account in ACCOUNTS.items():
        avatar = Image.new("RGB", (96, 96), account.colour)
        draw = ImageDraw.Draw(avatar)
        draw.ellipse((8, 8, 88, 88), fill=tuple(min(255, c + 60) for c in account.colour))
        initials = "".join(word[0] for word in account.name.split()[:2])
        draw.text((48, 48), initials, fill=(255, 255, 255), font=font, anchor="mm")
        avatar.save(img_dir / f"avatar-{handle}.png", optimize=True)

    scenes = {
        "storytime.jpg": ((236, 214, 170), (180, 90, 60)),
        "allotment.jpg": ((150, 200, 235), (90, 150, 60)),
        "repair.jpg": ((200, 200, 205), (120, 90, 70)),
        "cat.jpg": ((170, 205, 240), (110, 110, 115)),
        "seedlings.jpg": ((225, 235, 210), (70, 130, 60)),
        "bench.jpg": ((160, 210, 240), (60, 120, 150)),
    }
    for index, (name, (sky, ground)) in enumerate(scenes.items()):
        photo = Image.new("RGB", (640, 400), sky)
        draw = ImageDraw.Draw(photo)
        for y in range(400):  # a soft vertical gradient so the JPEG is not a flat fill
            shade = tuple(int(c * (0.75 + 0.25 * y / 400)) for c in sky)
            draw.line((0, y, 640, y), fill=shade)
        draw.rectangle((0, 260, 640, 400), fill=ground)
        for k in range(5):
            x = 60 + k * 120 + index * 7
            draw.ellipse((x, 200 - k * 9, x + 70, 270 - k * 9), fill=tuple(255 - c // 2 for c in ground))
        draw.text((20, 330), name.removesuffix(".jpg"), fill=(255, 255, 255), font=font)
        photo.save(img_dir / name, quality=70, optimize=True)

    logo = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((4, 4, 60, 60), fill=(46, 110, 142, 255))
    logo.save(img_dir / "logo.png", optimize=True)
    (img_dir / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        '<title>Larkfield Commons</title><circle cx="32" cy="32" r="28" fill="#2e6e8e"/>'
        '<path d="M14 40 Q32 14 50 40 Z" fill="#9ec64c"/><circle cx="32" cy="24" r="5" fill="#fff"/></svg>\n',
        encoding="utf-8",
    )


if __name__ == "__main__":
    build_pages()
    build_images()
