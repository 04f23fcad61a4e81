#!/usr/bin/env bash
# Makes sure the memcached server binary is available for the test suite.
# Installs Debian's package when it is missing and we can (root + apt-get);
# otherwise explains what to do and fails.
set -euo pipefail

if command -v memcached >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "memcached not found: installing Debian's memcached package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq memcached >/dev/null
	# The package starts a system service on port 11211; the tests start
	# their own servers on free ports and do not need it.
	command -v memcached >/dev/null 2>&1 && exit 0
fi
cat >&2 <<'MSG'
memcached is required by the test suite but is not installed, and it could not
be installed automatically (this needs root and apt-get).
Install it with your package manager, for example:
    sudo apt-get install memcached      # Debian, Ubuntu
    brew install memcached              # macOS
then run `make test` again.
MSG
exit 1
