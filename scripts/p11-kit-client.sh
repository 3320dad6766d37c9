#!/usr/bin/env bash
# Builds p11-kit 0.25.5's client module (p11-kit-client.so) from Debian's source package into a
# cache directory and prints its path; a second run only prints the path.
#
# Why: Debian bookworm's p11-kit-client.so (0.24.1) forwards no CK_GCM_PARAMS, so AES-GCM never
# reaches the bridge through it. p11-kit 0.25 forwards AES-GCM (and AES-CBC, ECDSA-SHAxxx, the
# hashed PSS variants). Trixie's binary package needs glibc 2.38 (__isoc23_strtol), which bookworm
# (2.36) lacks, and no bookworm-backports package exists: so build only the client module, with
# bookworm's compiler, from the upstream tarball of Debian's trixie source package p11-kit 0.25.5-3.
#
# Source check: the tarball's SHA-256 below is the one in that source package's .dsc
# (Checksums-Sha256, as Debian's signed trixie Sources index lists it); apt-helper refuses a
# download that does not match it. The archive is the one this machine's apt already uses.
#
# Needs: a C compiler, and meson and ninja (the project's test extra puts them in .venv/bin).
# Usage: scripts/p11-kit-client.sh [BIN_DIR_WITH_MESON_AND_NINJA]
# Output dir: $HSMNODE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/hsmnode)/p11-kit-0.25.5/
set -euo pipefail

VERSION=0.25.5
TARBALL=p11-kit_${VERSION}.orig.tar.xz
SHA256=04d0a86450cdb1be018f26af6699857171a188ac6d5b8c90786a60854e1198e5
CACHE=${HSMNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hsmnode}
OUT=$CACHE/p11-kit-$VERSION
MODULE=$OUT/p11-kit-client.so
TOOLS=${1:-}

if [ -f "$MODULE" ] && [ "$(cat "$OUT/source.sha256" 2>/dev/null)" = "$SHA256" ]; then
  echo "$MODULE"
  exit 0
fi
if [ -n "$TOOLS" ]; then PATH=$(cd "$TOOLS" && pwd):$PATH; fi
for tool in cc meson ninja; do
  command -v "$tool" >/dev/null || { echo "p11-kit-client: $tool is missing (make test installs meson and ninja into .venv)" >&2; exit 1; }
done

mkdir -p "$OUT"
work=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt-helper downloads as the _apt user when run as root

if [ ! -f "$CACHE/$TARBALL" ] || ! echo "$SHA256  $CACHE/$TARBALL" | sha256sum -c --quiet - 2>/dev/null; then
  # The Debian archive this machine's apt uses for its own release (no host is named here).
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  archive=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'IDENTIFIER: Packages' \
    | awk -v c="$codename" '$2 == c && $3 == "main" { print $1; exit }')
  if [ -z "$archive" ]; then
    echo "p11-kit-client: no Debian archive for '$codename' main in apt's sources; put $TARBALL (sha256 $SHA256) in $CACHE" >&2
    exit 1
  fi
  /usr/lib/apt/apt-helper -qq -o APT::Sandbox::User="$(id -un)" download-file "${archive}pool/main/p/p11-kit/$TARBALL" "$work/$TARBALL" "SHA256:$SHA256" >/dev/null
  mv "$work/$TARBALL" "$CACHE/$TARBALL"
fi
echo "$SHA256  $CACHE/$TARBALL" | sha256sum -c --quiet -

tar -xJf "$CACHE/$TARBALL" -C "$work"
# Only the client module: no trust module, libffi, translations, docs or tests; unoptimized
# (-O0 compiles in a third of the time, and the module only moves bytes to a socket).
meson setup "$work/build" "$work/p11-kit-$VERSION" --buildtype=plain \
  -Dtrust_module=disabled -Dlibffi=disabled -Dnls=false -Dtest=false -Dgtk_doc=false -Dman=false \
  -Dbash_completion=disabled -Dsystemd=disabled >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
ninja -C "$work/build" p11-kit/p11-kit-client.so >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
install -m 0755 "$work/build/p11-kit/p11-kit-client.so" "$MODULE.new"
mv "$MODULE.new" "$MODULE"
echo "$SHA256" >"$OUT/source.sha256"
echo "$MODULE"
