#!/usr/bin/env bash
# The version a release tag stands for, checked against what the repository says.
#
#   scripts/release-version.sh v1.2.0     prints 1.2.0, or says what disagrees and exits 1
#
# The release workflow (.github/workflows/release.yml) runs it first: the image tag, the
# chart's version and appVersion all come from its answer, so they cannot drift apart.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:?usage: release-version.sh vX.Y.Z}"

if [[ ! "$tag" =~ ^v([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$ ]]; then
  echo "release tag '$tag' is not vX.Y.Z (optionally -suffix)" >&2
  exit 1
fi
version="${BASH_REMATCH[1]}"

project="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)"
if [[ "$project" != "$version" ]]; then
  echo "tag $tag says $version but pyproject.toml says version = \"$project\"" >&2
  exit 1
fi
if ! grep -Eq "^## \[$version\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$" "$root/CHANGELOG.md"; then
  echo "CHANGELOG.md has no section '## [$version] - YYYY-MM-DD' (rename [Unreleased] when releasing)" >&2
  exit 1
fi
echo "$version"
