#!/usr/bin/env bash
# Install (as root) or name (otherwise) the Debian packages the lab and the tests need:
# real Ceph for both sites, its python3 bindings for the Nexus simulator, chromium for the browser
# test of the Prefect UI (tests/browser, driven by Playwright: no browser is downloaded), and kubectl.
set -euo pipefail
need=()
for bin in ceph-mon ceph-osd ceph-mgr rbd-mirror rbd ceph ceph-authtool monmaptool; do
  command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! /usr/bin/python3 -c 'import rbd, rados' >/dev/null 2>&1; then need+=(python3-rbd); fi
pkgs="ceph-mon ceph-osd ceph-mgr rbd-mirror ceph-common python3-rbd python3-rados chromium"
if ((${#need[@]})); then
  echo "sysdeps: missing ${need[*]}" >&2
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    echo "sysdeps: installed $pkgs" >&2
  else
    echo "sysdeps: run as root: apt-get update && apt-get install -y --no-install-recommends $pkgs" >&2
    exit 1
  fi
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "sysdeps: kubectl is missing; the kubectl contract tests need a kubectl 1.30 or newer on PATH" >&2
  exit 1
fi
