#!/usr/bin/env bash
# Builds, from Debian trixie's source packages, the two PKCS#11 clients whose bookworm versions cannot
# carry AES-GCM, into a cache directory; a second run only checks they are there.
#
#   p11-kit 0.25.5's client module (p11-kit-client.so): bookworm's 0.24.1 forwards no CK_GCM_PARAMS;
#     0.25 forwards AES-GCM (and AES-CBC, ECDSA-SHAxxx, the hashed PSS variants). Trixie's binary
#     package needs glibc 2.38 (__isoc23_strtol), bookworm has 2.36, and no bookworm-backports
#     package exists: so only the client module is built, with bookworm's compiler (meson/ninja).
#   OpenSC 0.26.1's pkcs11-tool: bookworm's (0.23.0) encrypts and decrypts with AES-ECB/CBC only.
#     Trixie's binary needs OpenSSL 3.2 (d2i_PUBKEY_ex_bio) and libopensc.so.12; the tool alone is
#     four C files, built against bookworm's OpenSSL 3.0 and its libopensc.so.8, whose functions the
#     tool calls have the same prototypes in 0.23.0 and 0.26.1 (the d2i_PUBKEY_ex_bio call is behind
#     an OpenSSL version check).
#
# Source check: each tarball's SHA-256 below is the one in its source package's .dsc
# (Checksums-Sha256, as Debian's signed trixie Sources index lists it: p11-kit 0.25.5-3,
# opensc 0.26.1-2); apt-helper refuses a download that does not match it. The archive is the one
# this machine's apt already uses (no host is named here).
#
# Needs: a C compiler, meson and ninja (the project's test extra puts them in .venv/bin), Debian's
# libssl-dev and opensc (make system-packages installs them).
# Usage: scripts/pkcs11-clients.sh [BIN_DIR_WITH_MESON_AND_NINJA]
# Output: $HSMNODE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/hsmnode)/p11-kit-0.25.5/p11-kit-client.so
#         and .../opensc-0.26.1/pkcs11-tool
set -euo pipefail

CACHE=${HSMNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hsmnode}
P11KIT=p11-kit_0.25.5.orig.tar.xz
P11KIT_SHA256=04d0a86450cdb1be018f26af6699857171a188ac6d5b8c90786a60854e1198e5
OPENSC=opensc_0.26.1.orig.tar.gz
OPENSC_SHA256=5c4928bac2786dcaff9b2dfa43cd3de301bd137193a57adfb1a7a555656691ce
MODULE=$CACHE/p11-kit-0.25.5/p11-kit-client.so
TOOL=$CACHE/opensc-0.26.1/pkcs11-tool
TOOLS=${1:-}

built() {  # built FILE SHA256: FILE exists and was built from the tarball with that checksum
  [ -f "$1" ] && [ "$(cat "$1.source" 2>/dev/null)" = "$2" ]
}
if built "$MODULE" "$P11KIT_SHA256" && built "$TOOL" "$OPENSC_SHA256"; then
  exit 0
fi
if [ -n "$TOOLS" ]; then PATH=$(cd "$TOOLS" && pwd):$PATH; fi
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch TARBALL SHA256 POOL_DIR: the checked tarball in $CACHE
  local tarball=$1 sha256=$2 pool=$3 codename archive
  if [ -f "$CACHE/$tarball" ] && echo "$sha256  $CACHE/$tarball" | sha256sum -c --quiet - 2>/dev/null; then
    return
  fi
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  archive=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'IDENTIFIER: Packages' \
    | awk -v c="$codename" '$2 == c && $3 == "main" { print $1; exit }')
  if [ -z "$archive" ]; then
    echo "pkcs11-clients: no Debian archive for '$codename' main in apt's sources; put $tarball (sha256 $sha256) in $CACHE" >&2
    exit 1
  fi
  /usr/lib/apt/apt-helper -qq -o APT::Sandbox::User="$(id -un)" \
    download-file "${archive}pool/main/$pool/$tarball" "$work/$tarball" "SHA256:$sha256" >/dev/null
  mv "$work/$tarball" "$CACHE/$tarball"
  echo "$sha256  $CACHE/$tarball" | sha256sum -c --quiet -
}

if ! built "$MODULE" "$P11KIT_SHA256"; then
  for tool in cc meson ninja; do
    command -v "$tool" >/dev/null || { echo "pkcs11-clients: $tool is missing (make test installs meson and ninja into .venv)" >&2; exit 1; }
  done
  fetch "$P11KIT" "$P11KIT_SHA256" p/p11-kit
  tar -xJf "$CACHE/$P11KIT" -C "$work"
  # Only the client module: no trust module, libffi, translations, docs or tests; unoptimized
  # (-O0 compiles in a third of the time, and the module only moves bytes to a socket).
  meson setup "$work/p11-kit" "$work/p11-kit-0.25.5" --buildtype=plain \
    -Dtrust_module=disabled -Dlibffi=disabled -Dnls=false -Dtest=false -Dgtk_doc=false -Dman=false \
    -Dbash_completion=disabled -Dsystemd=disabled >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
  ninja -C "$work/p11-kit" p11-kit/p11-kit-client.so >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
  mkdir -p "$(dirname "$MODULE")"
  install -m 0755 "$work/p11-kit/p11-kit/p11-kit-client.so" "$MODULE.new"
  mv "$MODULE.new" "$MODULE"
  echo "$P11KIT_SHA256" >"$MODULE.source"
fi

if ! built "$TOOL" "$OPENSC_SHA256"; then
  libopensc=$(ls /usr/lib/*/libopensc.so.8 2>/dev/null | head -1)
  if [ -z "$libopensc" ] || [ ! -f /usr/include/openssl/evp.h ]; then
    echo "pkcs11-clients: bookworm's libopensc.so.8 and OpenSSL headers are needed (make system-packages: opensc, libssl-dev)" >&2
    exit 1
  fi
  fetch "$OPENSC" "$OPENSC_SHA256" o/opensc
  src=$work/OpenSC-0.26.1/src
  tar -xzf "$CACHE/$OPENSC" -C "$work" OpenSC-0.26.1/src
  cat >"$work/config.h" <<'CONFIG'
/* what OpenSC's configure finds on bookworm, for pkcs11-tool alone */
#define ENABLE_OPENSSL 1
#define ENABLE_SHARED 1
#define HAVE_PTHREAD 1
#define HAVE_UNISTD_H 1
#define HAVE_DECL_STRLCPY 0
#define HAVE_DECL_STRLCAT 0
#define DEFAULT_PKCS11_PROVIDER "opensc-pkcs11.so"
#define PACKAGE_NAME "OpenSC"
#define PACKAGE_VERSION "0.26.1"
CONFIG
  mkdir -p "$(dirname "$TOOL")"
  cc -O1 -Werror=implicit-function-declaration -Werror=incompatible-pointer-types -DHAVE_CONFIG_H \
    -I"$work" -I"$src" -o "$TOOL.new" "$src/tools/pkcs11-tool.c" "$src/tools/util.c" \
    "$src/common/libpkcs11.c" "$src/common/libscdl.c" "$src/common/compat_strlcpy.c" \
    "$src/common/compat_strlcat.c" "$libopensc" -lcrypto -lpthread -ldl
  mv "$TOOL.new" "$TOOL"
  echo "$OPENSC_SHA256" >"$TOOL.source"
fi
