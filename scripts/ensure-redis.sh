#!/usr/bin/env bash
# Makes sure the Redis server and CLI binaries are available for the test
# suite of stores/redisstore (redis-cli creates the test clusters).
# Installs Debian's package when they are missing and we can (root +
# apt-get); otherwise explains what to do and fails.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "redis-server not found: installing Debian's redis-server package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq redis-server >/dev/null
	# The package may start a system service on port 6379; the tests
	# start their own servers on free ports and do not need it.
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && exit 0
fi
cat >&2 <<'MSG'
redis-server and redis-cli are required by the test suite of stores/redisstore
but are not installed, and they could not be installed automatically (this
needs root and apt-get).
Install them with your package manager, for example:
    sudo apt-get install redis-server   # Debian, Ubuntu
    brew install redis                  # macOS
then run `make test` again.
MSG
exit 1
