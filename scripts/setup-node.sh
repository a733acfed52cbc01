#!/usr/bin/env bash
# Install the npm packages of the TypeScript sandboxes (package.json +
# package-lock.json) once per lockfile into a shared cache, and link
# node_modules to it. better-sqlite3 compiles from source (about 2 minutes),
# so a fresh clone reuses the cached build whenever the lockfile matches.
# Idempotent and safe to run from several checkouts at once (flock).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "error: Node.js 20+ is needed for the TypeScript sandboxes (no 'node' on PATH)" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is needed to install the TypeScript sandboxes' packages" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "error: Node.js $(node --version) is too old; the TypeScript sandboxes need 20+" >&2
  exit 1
fi

lock_hash="$(cat package.json package-lock.json | sha256sum | cut -c1-16)"
cache_root="${STACKGYM_NODE_CACHE:-${STACKGYM_CACHE:-$HOME/.cache/stackgym}/node}"
target="$cache_root/$lock_hash"
marker="$target/node_modules/.stackgym-complete"
mkdir -p "$cache_root"

(
  flock 9
  if [ ! -f "$marker" ]; then
    echo "installing npm packages for the TypeScript sandboxes into $target (first time: ~2 min)"
    rm -rf "$target"
    mkdir -p "$target"
    cp package.json package-lock.json "$target/"
    (cd "$target" && npm ci --no-audit --no-fund --loglevel=error)
    node -e "require('$target/node_modules/better-sqlite3')(':memory:').close()"
    touch "$marker"
  fi
) 9>"$target.lock"

if [ "$(readlink node_modules 2>/dev/null || true)" != "$target/node_modules" ]; then
  rm -rf node_modules
  ln -s "$target/node_modules" node_modules
fi
