#!/usr/bin/env bash
# The unprivileged account evicap runs the browser as when evicap itself runs as root (docs/safety.md), so that
# Chromium's sandbox can start. Needs setpriv (util-linux). Run as an ordinary user it does nothing: Chromium's
# own sandbox is used directly.
set -u
ACCOUNT="${EVICAP_BROWSER_ACCOUNT:-evicap-browser}"
if [ "$(id -u)" -ne 0 ]; then
  exit 0
fi
if ! command -v setpriv >/dev/null; then
  echo "installing util-linux (setpriv)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux
fi
if ! id -u "$ACCOUNT" >/dev/null 2>&1; then
  echo "creating the system account $ACCOUNT (the browser runs as it when evicap runs as root)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --user-group "$ACCOUNT" 2>/dev/null \
    || adduser --system --no-create-home --group --shell /usr/sbin/nologin "$ACCOUNT" \
    || echo "could not create $ACCOUNT: evicap will run the browser as nobody (see docs/safety.md)"
fi
