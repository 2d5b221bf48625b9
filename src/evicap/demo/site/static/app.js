// Larkfield Commons demo: "See more" on long posts, and more posts fetched as the reader nears the end of the feed.
(function () {
  "use strict";

  function wireSeeMore(root) {
    root.querySelectorAll(".see-more").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = button.parentElement.querySelector(".post-text");
        text.classList.remove("clamped");
        button.remove();
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function count(n, noun) {
    return n + " " + noun + (n === 1 ? "" : "s");
  }

  function link(href, className, text) {
    var a = el("a", className, text);
    a.href = href;
    return a;
  }

  // Built with DOM calls and textContent only: post text is never parsed as HTML.
  function renderPost(post) {
    var article = el("article", "post");
    article.id = "post-" + post.id;
    article.dataset.postId = String(post.id);
    var head = el("header", "post-head");
    var avatar = el("img", "avatar");
    avatar.src = post.avatar; avatar.width = 48; avatar.height = 48; avatar.alt = "";
    var author = link("/u/" + post.handle, "author");
    author.append(el("span", "display-name", post.name), " ", el("span", "handle", "@" + post.handle));
    var permalink = link("/p/" + post.id, "permalink");
    var time = el("time", null, post.time_text);
    time.setAttribute("datetime", post.time);
    permalink.append(time);
    head.append(avatar, author, permalink);
    article.append(head, el("p", "post-text", post.text));
    if (post.image) {
      var image = el("img", "post-image");
      image.src = post.image; image.width = 640; image.height = 400; image.alt = post.alt;
      article.append(image);
    }
    var stats = el("footer", "post-stats");
    stats.append(el("span", "likes", count(post.likes, "like")), " · ",
                 el("span", "reposts", count(post.reposts, "repost")), " · ",
                 el("span", "comment-count", count(post.comments.length, "comment")));
    article.append(stats);
    if (post.comments.length) {
      var list = el("ul", "comments");
      post.comments.forEach(function (c) {
        var item = el("li", "comment");
        item.append(link("/u/" + c.handle, "comment-author", c.name), " ", el("span", "comment-text", c.text));
        list.append(item);
      });
      article.append(list);
    }
    return article;
  }

  function startFeed() {
    var feed = document.getElementById("feed");
    var end = document.getElementById("feed-end");
    if (!feed || !end) return;
    var loading = false;
    var observer = new IntersectionObserver(function (entries) {
      if (!entries.some(function (e) { return e.isIntersecting; }) || loading) return;
      var page = feed.dataset.nextPage;
      if (!page) return;
      loading = true;
      fetch("/api/feed?page=" + encodeURIComponent(page), { headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          data.posts.forEach(function (post) { feed.append(renderPost(post)); });
          if (data.next_page) {
            feed.dataset.nextPage = String(data.next_page);
          } else {
            delete feed.dataset.nextPage;
            end.textContent = "You're all caught up.";
            observer.disconnect();
          }
        })
        .catch(function (error) { end.textContent = "Could not load more posts (" + error.message + ")."; })
        .finally(function () {
          loading = false;
          // Still in view (tall window)? Ask again after the new posts have laid out.
          requestAnimationFrame(function () {
            observer.unobserve(end);
            if (feed.dataset.nextPage) observer.observe(end);
          });
        });
    }, { rootMargin: "200px" });
    observer.observe(end);
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireSeeMore(document);
    startFeed();
  });
})();
