#!/usr/bin/env sh
# Print the path of a Python >= 3.12 found on this machine: PATH first, then
# pyenv's versions folder (pyenv shims on PATH may name versions that are not
# active, so every candidate is actually run before it is chosen).
set -eu
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for name in python3.13 python3.12 python3; do
  if command -v "$name" >/dev/null 2>&1 && ok "$name"; then command -v "$name"; exit 0; fi
done
root=${PYENV_ROOT:-$HOME/.pyenv}
for candidate in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
  if [ -x "$candidate/bin/python3" ] && ok "$candidate/bin/python3"; then echo "$candidate/bin/python3"; exit 0; fi
done
echo "find-python: no Python >= 3.12 on PATH or under $root/versions" >&2
exit 1
