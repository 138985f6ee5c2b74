#!/usr/bin/env bash
# What the test suite needs outside Python: Debian's chromium for the real-browser test of the HTML
# report (tests/test_report_browser.py). Idempotent: does nothing when chromium is already there.
# Needs root and Debian's package mirror (CI runs `make test` as root with that network access);
# elsewhere it only says what is missing, and the browser test is skipped with the reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: chromium is missing (apt-get install chromium as root); the browser test will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
