#!/usr/bin/env bash
# Make sure evicap can find a Chromium, preferably with Chromium's headless shell (about a third of the CPU per
# captured page; see docs/architecture.md). Usage: scripts/install-browser.sh PATH/TO/venv/python
set -u
py="${1:-python3}"
found() { "$py" -c 'from evicap.capture.browser import find_browser; print(find_browser().path)' 2>/dev/null; }
shell_found() {
  "$py" -c 'import sys; from evicap.capture.browser import find_browser
sys.exit(0 if find_browser().headless_only else 1)' 2>/dev/null
}
done_with() { echo "browser: $(found) ($1)"; exit 0; }

if shell_found; then done_with "headless shell already installed"; fi
if [ -n "${EVICAP_BROWSER:-}" ] && path=$(found); then done_with "EVICAP_BROWSER"; fi

echo "no headless shell found; trying Playwright's download (Chromium and its headless shell)"
if timeout 300 "$py" -m playwright install chromium >/tmp/evicap-playwright-install.log 2>&1 && shell_found; then
  done_with "Playwright"
fi

echo "Playwright's download is not reachable; installing the system packages"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium chromium-headless-shell \
    || $sudo apt-get install -y -qq chromium \
    || $sudo apt-get install -y -qq chromium-browser
fi
if shell_found; then done_with "system headless shell"; fi
if path=$(found); then
  echo "browser: $path (full browser: no headless shell package here, captures cost more CPU)"
  exit 0
fi
echo "could not install a browser: install Chromium or Chrome and set EVICAP_BROWSER=/path/to/it" >&2
exit 2
