#!/usr/bin/env bash
# Installs Debian's `chromium` for tests/test_graphiql_browser.py (a prerequisite of `make test`).
# Playwright drives this binary; it never downloads a browser of its own. Best effort: where
# apt-get is missing or we are neither root nor passwordless sudo, the browser test skips and
# says why.
set -u
# Already there: the configured binary, Debian's chromium, or a Chrome (as on CI runners); the
# test looks for the same ones in the same order.
if [ -n "${DONOR_MATCH_CHROMIUM:-}" ]; then
  [ -x "$DONOR_MATCH_CHROMIUM" ] && exit 0
elif command -v chromium google-chrome google-chrome-stable >/dev/null; then
  exit 0
fi
chromium=/usr/bin/chromium
if ! command -v apt-get >/dev/null; then
  echo "chromium: no apt-get here, the GraphiQL browser test will skip"; exit 0
fi
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "chromium: not root and no passwordless sudo, the GraphiQL browser test will skip"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
then
  echo "chromium: installed $("$chromium" --version 2>/dev/null)"
else
  echo "chromium: apt-get could not install it, the GraphiQL browser test will skip"
fi
