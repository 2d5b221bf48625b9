#!/usr/bin/env bash
# Make sure evicap can find a Chromium. Usage: scripts/install-browser.sh PATH/TO/venv/python
set -u
py="${1:-python3}"
found() { "$py" -c 'from evicap.capture.browser import find_browser; print(find_browser().path)' 2>/dev/null; }

if path=$(found); then
  echo "browser: $path"
  exit 0
fi
echo "no browser found; trying Playwright's Chromium download"
if timeout 300 "$py" -m playwright install chromium >/tmp/evicap-playwright-install.log 2>&1 && path=$(found); then
  echo "browser: $path (Playwright)"
  exit 0
fi
echo "Playwright's download is not reachable; installing the system chromium package"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
if command -v apt-get >/dev/null; then
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium-browser
fi
if path=$(found); then
  echo "browser: $path (system package)"
  exit 0
fi
echo "could not install a browser: install Chromium or Chrome and set EVICAP_BROWSER=/path/to/it" >&2
exit 2
