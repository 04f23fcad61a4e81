#!/usr/bin/env bash
# Makes sure redis-sentinel is available for the load runs (make load),
# which start three Sentinels to fail a Redis master over. Installs
# Debian's package when it is missing and we can (root + apt-get);
# otherwise explains what to do and fails.
set -euo pipefail

if command -v redis-sentinel >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "redis-sentinel not found: installing Debian's redis-sentinel package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq redis-sentinel >/dev/null
	# The package may start a system Sentinel on port 26379; the load
	# runs start their own on free ports and do not need it.
	command -v redis-sentinel >/dev/null 2>&1 && exit 0
fi
cat >&2 <<'MSG'
redis-sentinel is required by the load runs (make load) but is not installed,
and it could not be installed automatically (this needs root and apt-get).
Install it with your package manager, for example:
    sudo apt-get install redis-sentinel   # Debian, Ubuntu
    brew install redis                    # macOS (redis-sentinel comes with it)
then run `make load` again.
MSG
exit 1
