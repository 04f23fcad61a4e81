#!/usr/bin/env bash
# Makes sure Chromium is available for the browser tests (make e2e), at the
# path the tests use. Installs Debian's package when it is missing and we
# can (root + apt-get); otherwise explains what to do and fails.
set -euo pipefail

chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "$chromium not found: installing Debian's chromium package (about 480 MB)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq chromium >/dev/null
	[ -x "$chromium" ] && exit 0
fi
cat >&2 <<MSG
Chromium is required by the browser tests (make e2e) at $chromium but is not
installed, and it could not be installed automatically (this needs root and
apt-get). Install it with your package manager, for example:
    sudo apt-get install chromium       # Debian, Ubuntu (chromium-browser)
then run \`make e2e\` again. No chromedriver is needed.
MSG
exit 1
