#!/usr/bin/env bash
# The kubectl plugin as krew installs it: one archive per platform holding a self-contained
# `kubectl-todo` (PyInstaller: no Python needed on the user's machine) and the licence.
# One folder, not one file: a one-file build unpacks itself at every start (1.8 s against
# 0.6 s here), and kubectl runs the plugin for every completion too.
#
#   scripts/build-kubectl-plugin.sh OS ARCH     writes dist/kubectl-todo_OS_ARCH.tar.gz
#
# Run on a machine of that OS and ARCH (PyInstaller does not cross-build), with the project
# and PyInstaller installed in the active Python; the release workflow's kubectl-plugin job
# does so for each platform that .krew.yaml lists (tests/manifests/test_krew.py holds the
# three together).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
os="${1:?usage: build-kubectl-plugin.sh OS ARCH}"
arch="${2:?usage: build-kubectl-plugin.sh OS ARCH}"
name="kubectl-todo_${os}_${arch}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The entry point as a script: PyInstaller starts from a file, not from a console-script name.
printf 'from todo_operator.plugin.commands import run\nrun()\n' > "$work/kubectl-todo.py"
python -m PyInstaller --onedir --name kubectl-todo --distpath "$work/dist" \
  --workpath "$work/build" --specpath "$work" --log-level WARN \
  --collect-data tzdata "$work/kubectl-todo.py"

mkdir -p "$root/dist"
cp "$root/LICENSE" "$work/dist/kubectl-todo/LICENSE"
# The archive holds the folder kubectl-todo/: the program, its _internal/ libraries, the licence.
tar -czf "$root/dist/$name.tar.gz" -C "$work/dist" kubectl-todo
echo "$root/dist/$name.tar.gz"
