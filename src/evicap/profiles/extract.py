# ruff: noqa: E501  (this module is mostly JavaScript run in the page; its lines follow JS, not PEP 8)
"""Pull the facts of posts out of the page: who, which id, when, what was said, counts, media, comments.

Platforms act on exact identifiers (post id, handle, time), so a preservation request is written from these
items. Each extractor reads the platform's public markup as served to a logged-out browser; when a field is
not on the page it is left out rather than guessed. Every item has the same keys (see ``ITEM_KEYS``), and
``source`` says which markup it came from so a reader can check it against the DOM snapshot.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

ITEM_KEYS = (
    "platform",
    "post_id",
    "url",
    "author",
    "handle",
    "published",
    "text",
    "counts",
    "media",
    "comments",
    "source",
)

# Shared helpers, prepended to every extractor.
_HELPERS = """
const T = (root, q) => { const e = q ? root.querySelector(q) : root; return e ? (e.innerText || e.textContent || '').trim() : null; };
const A = (root, q, a) => { const e = root.querySelector(q); return e ? e.getAttribute(a) : null; };
const abs = u => { try { return u ? new URL(u, location.href).href : null; } catch (e) { return null; } };
const num = s => {
  if (s === null || s === undefined) return null;
  if (typeof s === 'number') return s;
  const m = String(s).replace(/[\\s,\\u00a0]/g, '').match(/([0-9]+(?:\\.[0-9]+)?)([KkMmBb])?/);
  if (!m) return null;
  const mult = {k: 1e3, m: 1e6, b: 1e9}[(m[2] || '').toLowerCase()] || 1;
  return Math.round(parseFloat(m[1]) * mult);
};
const iso = v => {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  const d = isNaN(n) ? new Date(v) : new Date(n < 1e12 ? n * 1000 : n);
  return isNaN(d.getTime()) ? String(v) : d.toISOString();
};
const meta = p => A(document, `meta[property="${p}"], meta[name="${p}"], meta[itemprop="${p}"]`, 'content');
const ldjson = () => Array.from(document.querySelectorAll('script[type="application/ld+json"]')).flatMap(s => {
  try { const v = JSON.parse(s.textContent); return Array.isArray(v) ? v : (v['@graph'] || [v]); } catch (e) { return []; }
});
const stat = (obj, kind) => {
  const list = [].concat((obj && obj.interactionStatistic) || []);
  const hit = list.find(s => String(s.interactionType && (s.interactionType['@type'] || s.interactionType)).includes(kind));
  return hit ? num(hit.userInteractionCount) : null;
};
const media = (root, q) => Array.from(new Set(Array.from(root.querySelectorAll(q || 'img[src], video[src], video source[src]'))
  .map(e => abs(e.currentSrc || e.src || e.getAttribute('src'))).filter(u => u && !u.startsWith('data:'))));
const bg = root => Array.from(root.querySelectorAll('[style*="background-image"]')).map(e => {
  const m = (e.getAttribute('style') || '').match(/url\\(['"]?([^'")]+)['"]?\\)/); return m ? abs(m[1]) : null; }).filter(Boolean);
const clean = o => Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== null && v !== undefined && v !== '' &&
  !(Array.isArray(v) && !v.length) && !(typeof v === 'object' && !Array.isArray(v) && !Object.values(v).some(x => x !== null))));
"""

EXTRACTORS: dict[str, str] = {
    "telegram": """
return Array.from(document.querySelectorAll('.tgme_widget_message[data-post]')).map(m => {
  const post = m.getAttribute('data-post');
  return clean({post_id: post, url: abs(A(m, 'a.tgme_widget_message_date', 'href')) || 'https://t.me/' + post,
    author: T(m, '.tgme_widget_message_owner_name'), handle: post.split('/')[0],
    published: iso(A(m, '.tgme_widget_message_date time', 'datetime')), text: T(m, '.tgme_widget_message_text'),
    counts: {views: num(T(m, '.tgme_widget_message_views'))},
    media: [...bg(m),
            ...media(m, 'video[src], .tgme_widget_message_video_player video, img.tgme_widget_message_photo')],
    source: 'tgme_widget_message'});
});""",
    "reddit": """
const comments = Array.from(document.querySelectorAll('shreddit-comment')).map(c => clean({
  id: c.getAttribute('thingid'), author: c.getAttribute('author'), published: iso(c.getAttribute('created')),
  text: T(c, '[slot="comment"]'), score: num(c.getAttribute('score')), depth: num(c.getAttribute('depth'))}));
return Array.from(document.querySelectorAll('shreddit-post')).map(p => clean({
  post_id: p.getAttribute('id'), url: abs(p.getAttribute('permalink')), author: p.getAttribute('author'),
  handle: p.getAttribute('author') ? 'u/' + p.getAttribute('author') : null,
  community: p.getAttribute('subreddit-prefixed-name'), title: p.getAttribute('post-title'),
  published: iso(p.getAttribute('created-timestamp')), text: T(p, '[slot="text-body"]'),
  counts: {score: num(p.getAttribute('score')), comments: num(p.getAttribute('comment-count'))},
  media: [abs(p.getAttribute('content-href')), ...media(p)].filter((u, i, a) => u && a.indexOf(u) === i),
  comments, source: 'shreddit-post'}));""",
    "x": """
return Array.from(document.querySelectorAll('article[data-testid="tweet"]')).map(a => {
  const time = a.querySelector('a[href*="/status/"] time') || a.querySelector('time');
  const link = time ? time.closest('a') : a.querySelector('a[href*="/status/"]');
  const href = link ? link.getAttribute('href') : '';
  const m = href.match(/\\/([^/]+)\\/status\\/(\\d+)/);
  const names = Array.from(a.querySelectorAll('[data-testid="User-Name"] span')).map(s => s.innerText.trim());
  const count = id => { const e = a.querySelector(`[data-testid="${id}"]`); return e ? num(e.getAttribute('aria-label') || e.innerText) : null; };
  return clean({post_id: m ? m[2] : null, url: abs(href), author: names.find(n => n && !n.startsWith('@')) || null,
    handle: names.find(n => n.startsWith('@')) || (m ? '@' + m[1] : null), published: iso(time && time.getAttribute('datetime')),
    text: T(a, '[data-testid="tweetText"]'),
    counts: {replies: count('reply'), reposts: count('retweet'), likes: count('like'), views: num(T(a, 'a[href$="/analytics"]'))},
    media: media(a, '[data-testid="tweetPhoto"] img, video[src], video source[src], video[poster]'), source: 'article[data-testid=tweet]'});
});""",
    "facebook": """
return Array.from(document.querySelectorAll('[role="article"]')).filter(a => !a.parentElement.closest('[role="article"]')).map(a => {
  let ft = {}; try { ft = JSON.parse(a.getAttribute('data-ft') || '{}'); } catch (e) {}
  const link = a.querySelector('a[href*="/posts/"], a[href*="story_fbid"], a[href*="/permalink/"], a[href*="/videos/"]');
  const href = link ? link.getAttribute('href') : null;
  const idm = href ? href.match(/(?:posts|videos|permalink)\\/(\\w+)|story_fbid=(\\w+)/) : null;
  const utime = A(a, 'abbr[data-utime]', 'data-utime');
  const comments = Array.from(a.querySelectorAll('[role="article"]')).map(c => clean({
    author: T(c, 'a[role="link"] span, h3 a, a'), text: T(c, '[dir="auto"]:not(a [dir="auto"])')}));
  const authorLink = a.querySelector('h2 a, h3 a, h4 a, strong a');
  return clean({post_id: ft.top_level_post_id || (idm ? idm[1] || idm[2] : null), url: abs(href),
    author: authorLink ? authorLink.innerText.trim() : null, author_id: ft.content_owner_id_new || null,
    handle: authorLink ? (new URL(authorLink.href, location.href).pathname.split('/')[1] || null) : null,
    published: iso(utime) || iso(A(a, 'time[datetime]', 'datetime')),
    text: T(a, '[data-ad-preview="message"], [data-testid="post_message"], [data-ad-comet-preview="message"]'),
    counts: {reactions: num(T(a, '[data-testid="UFI2ReactionsCount/root"], [aria-label*="reaction" i] span')),
             comments: num(T(a, '[data-testid="UFI2CommentsCount/root"]')), shares: num(T(a, '[data-testid="UFI2SharesCount/root"]'))},
    media: media(a, 'img[src*="scontent"], video[src], a[href*="/photos/"] img'), comments, source: 'role=article data-ft'});
});""",
    "instagram": """
const ld = ldjson().find(o => /SocialMediaPosting|ImageObject|VideoObject/.test(String(o['@type'])));
const url = meta('og:url') || location.href;
const sc = (url.match(/\\/(?:p|reel|tv)\\/([\\w-]+)/) || [])[1] || null;
const author = ld && ld.author ? [].concat(ld.author)[0] : null;
const comments = ld ? [].concat(ld.comment || []).map(c => clean({author: c.author && (c.author.alternateName || c.author.name),
  text: c.text, published: iso(c.dateCreated)})) : [];
const title = meta('og:title') || '';
const handleFromTitle = (title.match(/\\(@([\\w.]+)\\)|^@?([\\w.]+) on Instagram/) || []).slice(1).find(Boolean);
const item = clean({post_id: sc, url: abs(url), author: author ? author.name : (title.split(' on Instagram')[0].split(' (@')[0] || null),
  handle: author && author.alternateName ? author.alternateName : (handleFromTitle ? '@' + handleFromTitle : null),
  published: iso((ld && (ld.uploadDate || ld.dateCreated || ld.datePublished)) || A(document, 'article time[datetime], time[datetime]', 'datetime')),
  text: (ld && (ld.articleBody || ld.caption || ld.description)) || meta('og:description'),
  counts: {likes: stat(ld, 'Like'), comments: (ld && num(ld.commentCount)) || stat(ld, 'Comment')},
  media: [meta('og:video'), meta('og:video:secure_url'), meta('og:image'), ...(ld ? [].concat(ld.image || [], ld.contentUrl || [], ld.video ? [].concat(ld.video).map(v => v.contentUrl) : []) : [])]
    .map(u => typeof u === 'object' && u ? u.url : u).map(abs).filter((u, i, a) => u && a.indexOf(u) === i),
  comments, source: ld ? 'ld+json ' + ld['@type'] + ' + og:' : 'og:'});
return item.post_id || item.text ? [item] : [];""",
    "youtube": """
const ld = ldjson().find(o => String(o['@type']) === 'VideoObject') || null;
const flexy = document.querySelector('ytd-watch-flexy[video-id], ytd-watch[video-id]');
const id = (flexy && flexy.getAttribute('video-id')) || meta('videoId') || (location.search.match(/[?&]v=([\\w-]+)/) || [])[1] || null;
const author = ld && ld.author ? (typeof ld.author === 'string' ? {name: ld.author} : [].concat(ld.author)[0]) : null;
const comments = Array.from(document.querySelectorAll('ytd-comment-thread-renderer, ytd-comment-view-model')).map(c => clean({
  author: T(c, '#author-text'), text: T(c, '#content-text'), published: T(c, '#published-time-text, .published-time-text'),
  likes: num(T(c, '#vote-count-middle'))}));
const item = clean({post_id: id, url: abs(meta('og:url') || (id ? 'https://www.youtube.com/watch?v=' + id : location.href)),
  title: (ld && ld.name) || meta('og:title') || meta('name'),
  author: (author && author.name) || T(document, 'ytd-channel-name a') || meta('author'),
  handle: (A(document, 'span[itemprop="author"] link[itemprop="url"], ytd-channel-name a', 'href') || '').split('/').pop() || null,
  author_id: meta('channelId'), published: iso((ld && (ld.uploadDate || ld.datePublished)) || meta('uploadDate') || meta('datePublished')),
  text: (ld && ld.description) || T(document, '#description-inline-expander, #description') || meta('og:description'),
  duration: (ld && ld.duration) || meta('duration'),
  counts: {views: stat(ld, 'Watch') || num(meta('interactionCount')), likes: stat(ld, 'Like'), comments: stat(ld, 'Comment')},
  media: [ld && ld.contentUrl, ld && ld.embedUrl, meta('og:video:url'), ...[].concat((ld && ld.thumbnailUrl) || []), meta('og:image')]
    .map(abs).filter((u, i, a) => u && a.indexOf(u) === i),
  comments, source: ld ? 'ld+json VideoObject + ytd-watch' : 'og: + ytd-watch'});
return item.post_id ? [item] : [];""",
    "tiktok": """
const read = id => { const s = document.getElementById(id); try { return s ? JSON.parse(s.textContent) : null; } catch (e) { return null; } };
const found = [];
const uni = read('__UNIVERSAL_DATA_FOR_REHYDRATION__');
const detail = uni && uni.__DEFAULT_SCOPE__ && uni.__DEFAULT_SCOPE__['webapp.video-detail'];
if (detail && detail.itemInfo && detail.itemInfo.itemStruct) found.push([detail.itemInfo.itemStruct, '__UNIVERSAL_DATA_FOR_REHYDRATION__']);
const sigi = read('SIGI_STATE') || window.SIGI_STATE;
if (sigi && sigi.ItemModule) for (const v of Object.values(sigi.ItemModule)) found.push([v, 'SIGI_STATE']);
return found.map(([it, src]) => {
  const au = typeof it.author === 'object' && it.author ? it.author : {uniqueId: it.author, nickname: it.nickname};
  const st = it.stats || it.statsV2 || {};
  const v = it.video || {};
  return clean({post_id: String(it.id), url: abs('https://www.tiktok.com/@' + au.uniqueId + '/video/' + it.id),
    author: au.nickname || null, handle: au.uniqueId ? '@' + au.uniqueId : null, author_id: au.id || it.authorId || null,
    published: iso(it.createTime), text: it.desc || null,
    counts: {likes: num(st.diggCount), comments: num(st.commentCount), shares: num(st.shareCount), views: num(st.playCount)},
    media: [v.playAddr, v.downloadAddr, v.cover].filter(Boolean).map(abs).filter((u, i, a) => a.indexOf(u) === i),
    music: it.music && it.music.title ? it.music.title : null, source: src});
}).filter((x, i, a) => a.findIndex(y => y.post_id === x.post_id) === i);""",
    "vk": """
return Array.from(document.querySelectorAll('.wall_post, .post[data-post-id], [data-post-id]')).filter(p => !p.parentElement.closest('[data-post-id]')).map(p => {
  const id = p.getAttribute('data-post-id') || (p.id || '').replace(/^post/, '') || null;
  const author = p.querySelector('.post_author a.author, .PostHeaderTitle__authorName, a.author');
  const dateEl = p.querySelector('.post_date time, time[datetime], .rel_date[time], .rel_date');
  const count = q => num(T(p, q));
  const replies = Array.from(p.querySelectorAll('.reply')).map(r => clean({author: T(r, '.reply_author a, .author'), text: T(r, '.reply_text, .wall_reply_text'),
    published: iso(A(r, '.rel_date', 'time') || A(r, 'time', 'datetime'))}));
  return clean({post_id: id, url: id ? 'https://vk.com/wall' + id : null, author: author ? author.innerText.trim() : null,
    handle: author ? (author.getAttribute('href') || '').replace(/^\\//, '') || null : null,
    author_id: author ? author.getAttribute('data-from-id') : null,
    published: dateEl ? iso(dateEl.getAttribute('datetime') || dateEl.getAttribute('time')) || T(dateEl) : null,
    text: T(p, '.wall_post_text, .wall_text .wall_post_text'),
    counts: {likes: count('.like_button_count, [data-reaction-counts] .PostBottomAction__count, .PostButtonReactions__title'),
             comments: count('.comment .like_button_count, .PostBottomActionContainer--comment .PostBottomAction__count'),
             reposts: count('.share .like_button_count, .PostBottomActionContainer--share .PostBottomAction__count'), views: count('.like_views, ._views')},
    media: [...media(p, '.page_post_sized_thumbs img, .wall_post_cont img[src], video[src], video source[src]'), ...bg(p)].filter((u, i, a) => a.indexOf(u) === i),
    comments: replies, source: '.wall_post[data-post-id]'});
});""",
    "generic": """
const ld = ldjson().filter(o => /Posting|Article|VideoObject|NewsArticle/.test(String(o['@type'])));
const items = ld.map(o => clean({post_id: o.identifier || o['@id'] || null, url: abs(o.url || location.href),
  author: o.author ? [].concat(o.author).map(a => typeof a === 'string' ? a : a.name)[0] : null,
  published: iso(o.datePublished || o.uploadDate || o.dateCreated), text: o.articleBody || o.description || o.headline || null,
  media: [].concat(o.image || [], o.contentUrl || []).map(u => abs(typeof u === 'object' ? u.url : u)).filter(Boolean),
  source: 'ld+json ' + o['@type']}));
if (!items.length && (meta('og:title') || meta('og:description'))) items.push(clean({url: abs(meta('og:url') || location.href),
  author: meta('author') || meta('article:author'), published: iso(meta('article:published_time')),
  text: [meta('og:title'), meta('og:description')].filter(Boolean).join('\\n'), media: [meta('og:image'), meta('og:video')].map(abs).filter(Boolean),
  source: 'og:'}));
return items;""",
}

_FIELDS_JS = """
([selector, fields]) => Array.from(document.querySelectorAll(selector)).map(root => {
  const out = {};
  for (const [name, spec] of Object.entries(fields)) {
    const s = typeof spec === 'string' ? {selector: spec} : spec;
    const value = e => s.attr ? e.getAttribute(s.attr) : (e.innerText || e.textContent || '').trim();
    const els = s.selector === ':scope' ? [root] : Array.from(root.querySelectorAll(s.selector));
    out[name] = s.all ? els.map(value) : (els.length ? value(els[0]) : null);
  }
  return out;
})
"""


async def run_extractor(page: Page, name: str, platform: str | None = None) -> list[dict[str, Any]]:
    """Run a named extractor in the page; every item gets ``platform`` set."""
    body = _HELPERS + EXTRACTORS[name]
    items: list[dict[str, Any]] = await page.evaluate(f"() => {{ {body} }}")
    return [{"platform": platform or name, **item} for item in items]


async def extract_fields(page: Page, selector: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile's own selector map: one item per element matching ``selector``."""
    items: list[dict[str, Any]] = await page.evaluate(_FIELDS_JS, [selector, fields])
    return items
