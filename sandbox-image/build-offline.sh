#!/usr/bin/env bash
# Builds the sandbox image where no container registry is reachable: a Debian bookworm
# rootfs made with debootstrap becomes the base (docker import), and the wheels come from
# the Python package index through pip download. Every step is skipped when its result is
# already there, so a second run only re-runs `docker build` (which is cached too).
#
# Needs: root, debootstrap, a running Docker engine, a Python 3.11 with pip (the host's).
# Cache: $SANDBOX_CACHE (default /var/cache/lab8-grader when writable, else build/sandbox-image).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
default_cache=/var/cache/lab8-grader
mkdir -p "$default_cache" 2>/dev/null || default_cache="$repo/build/sandbox-image"
cache="${SANDBOX_CACHE:-$default_cache}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base_image="lab8-grader-base:$suite"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
mkdir -p "$cache"

for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y debootstrap docker.io" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer: start dockerd first" >&2; exit 1; }

# 1. The base: a minimal Debian with Python 3.11 (the same minor version as the host's wheels).
rootfs_tar="$cache/rootfs-$suite.tar"
if [ ! -s "$rootfs_tar" ]; then
  rootfs="$cache/rootfs-$suite"
  rm -rf "$rootfs"
  echo "debootstrap $suite into $rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$rootfs"
fi
if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  echo "importing $rootfs_tar as $base_image"
  docker import --change 'CMD ["/usr/bin/python3"]' "$rootfs_tar" "$base_image"
fi

# 2. The wheels: the host's torch, torchvision and numpy versions, for CPython 3.11 on x86-64.
"$python" -c 'import platform, sys; sys.exit(not (sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64"))' || {
  echo "build-offline.sh downloads wheels for this host's Python, which must be CPython 3.11 on x86-64 like" \
       "the bookworm image's: set PYTHON=/path/to/python3.11" >&2; exit 1; }
read -r torch_version torchvision_version numpy_version < <(
  "$python" -c 'from importlib.metadata import version as v; print(*(v(p).split("+")[0] for p in ("torch", "torchvision", "numpy")))' \
    2>/dev/null || echo "2.14.1 0.29.1 2.4.6"
)
wheels="$cache/wheels-torch$torch_version-tv$torchvision_version-np$numpy_version"
if [ ! -f "$wheels/.complete" ]; then
  echo "downloading wheels into $wheels"
  mkdir -p "$wheels"
  # Downloaded for this host's interpreter, which must match the image's (bookworm: CPython 3.11, glibc 2.36).
  "$python" -m pip download --only-binary=:all: --dest "$wheels" \
    "torch==$torch_version" "torchvision==$torchvision_version" "numpy==$numpy_version"
  touch "$wheels/.complete"
fi

# 3. The image itself, from the imported base and the downloaded wheels.
BASE_IMAGE="$base_image" WHEELS_DIR="$wheels" PYTHON="$python" "$here/build.sh"
