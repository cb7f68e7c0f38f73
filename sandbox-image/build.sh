#!/usr/bin/env bash
# Builds the sandbox image from a staged context: the Dockerfile, inside/ (the files of
# grader/sandbox/inside/, what runs in the sandbox), and a wheels/ folder (empty unless WHEELS_DIR
# names one). BASE_IMAGE picks the base; left unset, the Dockerfile's default (the CUDA PyTorch
# runtime image) is used.
#
#   sandbox-image/build.sh                          # GPU servers, pulls the CUDA base
#   BASE_IMAGE=... WHEELS_DIR=... sandbox-image/build.sh   # what build-offline.sh does
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
image="${GRADER_SANDBOX_IMAGE:-lab8-grader-sandbox:latest}"
context="${CONTEXT_DIR:-$repo/build/sandbox-image/context}"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"

# The image must hold the host's torch and torchvision, so that both backends agree.
read -r torch_version torchvision_version numpy_version < <(
  "$python" -c 'from importlib.metadata import version as v; print(*(v(p).split("+")[0] for p in ("torch", "torchvision", "numpy")))' \
    2>/dev/null || echo "2.14.1 0.29.1 2.4.6"
)

# Everything the image is made from; an image built from the same inputs is kept as it is,
# which saves sending a multi-gigabyte context to the engine again.
base_id="$(docker image inspect --format '{{.Id}}' "${BASE_IMAGE:-none}" 2>/dev/null || echo "${BASE_IMAGE:-default}")"
inputs="$( {
  cat "$here/Dockerfile" "$repo"/grader/sandbox/inside/*.py
  echo "$base_id $torch_version $torchvision_version $numpy_version"
  if [ -n "${WHEELS_DIR:-}" ]; then (cd "$WHEELS_DIR" && stat -c '%n %s' -- *.whl); fi
} | sha256sum | cut -c1-32)"
if [ "$(docker image inspect --format '{{index .Config.Labels "lab8-grader.inputs"}}' "$image" 2>/dev/null)" = "$inputs" ] \
   && [ -z "${FORCE:-}" ]; then
  echo "$image is up to date (inputs $inputs; FORCE=1 rebuilds)"
  exit 0
fi

rm -rf "$context"
mkdir -p "$context/wheels" "$context/inside"
cp "$here/Dockerfile" "$context/Dockerfile"
cp "$repo"/grader/sandbox/inside/*.py "$context/inside/"
if [ -n "${WHEELS_DIR:-}" ]; then
  # Hard links keep a multi-gigabyte context from being copied on the same filesystem.
  cp -al "$WHEELS_DIR"/. "$context/wheels/" 2>/dev/null || cp -a "$WHEELS_DIR"/. "$context/wheels/"
fi

build_args=(--build-arg "TORCH_VERSION=$torch_version" --build-arg "TORCHVISION_VERSION=$torchvision_version"
            --build-arg "NUMPY_VERSION=$numpy_version" --label "lab8-grader.inputs=$inputs")
[ -n "${BASE_IMAGE:-}" ] && build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")

echo "building $image (torch $torch_version, torchvision $torchvision_version, numpy $numpy_version)"
DOCKER_BUILDKIT=0 docker build "${build_args[@]}" --tag "$image" "$context"
rm -rf "$context"
docker image inspect --format 'built {{index .RepoTags 0}} {{.Id}} ({{.Size}} bytes)' "$image"
