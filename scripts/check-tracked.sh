#!/usr/bin/env bash
# Fails when git tracks a binary file larger than 1 MB (test binaries,
# profiles, build output): only source belongs in the repository. Binary
# means what git itself treats as binary (a NUL byte in the first 8 KB).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
text=$(mktemp)
trap 'rm -f "$text"' EXIT
git grep --cached -I -l -e '' >"$text" || true
bad=0
while IFS= read -r f; do
	[ -f "$f" ] || continue
	size=$(stat -c %s "$f")
	[ "$size" -gt "$limit" ] || continue
	if ! grep -qxF -- "$f" "$text"; then
		echo "tracked binary over 1 MB: $f ($size bytes); remove it and extend .gitignore" >&2
		bad=1
	fi
done < <(git ls-files)
exit "$bad"
