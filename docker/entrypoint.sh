#!/bin/sh
# Entrypoint of the pfnforge images. Caches go to a writable place for whoever runs the container: the
# image's non-root user under Docker, or the calling user under Apptainer and Enroot, where the image is
# read-only. Then `pfnforge ARGS...`; a first argument that is a program on PATH (bash, python) runs instead:
#   docker run pfnforge-trainer train trainer=gpu        -> pfnforge train trainer=gpu
#   docker run -it pfnforge-trainer bash                 -> bash
set -eu
cache=${PFNFORGE_CACHE_DIR:-${TMPDIR:-/tmp}/pfnforge-$(id -u)}
: "${NUMBA_CACHE_DIR:=$cache/numba}"
: "${MPLCONFIGDIR:=$cache/matplotlib}"
export NUMBA_CACHE_DIR MPLCONFIGDIR
mkdir -p "$NUMBA_CACHE_DIR" "$MPLCONFIGDIR"
if [ "$#" -gt 0 ] && [ "$1" != pfnforge ] && command -v "$1" >/dev/null 2>&1; then
  exec "$@"
fi
[ "${1:-}" = pfnforge ] && shift
exec pfnforge "$@"
