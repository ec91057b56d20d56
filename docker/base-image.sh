#!/usr/bin/env bash
# Builds the local base image `strata-base:bookworm` without any registry: a Debian bookworm
# minbase root filesystem made with debootstrap from the host's Debian mirror, imported with
# `docker import`. Idempotent: does nothing when the image exists; the rootfs tarball is cached
# under ${XDG_CACHE_HOME:-$HOME/.cache}/strata/ so a re-import (after `docker rmi`) takes seconds.
#
# Usage: docker/base-image.sh [--force]     (--force: re-import even if the image exists)
#   STRATA_BASE_IMAGE      image name (default strata-base:bookworm)
#   STRATA_DEBIAN_MIRROR   mirror URL (default: the first bookworm URI in /etc/apt/sources.list*)
#   STRATA_BASE_TIMEOUT    bound on debootstrap in seconds (default 1200)
set -euo pipefail

image="${STRATA_BASE_IMAGE:-strata-base:bookworm}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/strata"
tarball="$cache/rootfs-bookworm-minbase.tar.gz"
timeout_s="${STRATA_BASE_TIMEOUT:-1200}"
force=0
[ "${1:-}" = "--force" ] && force=1

log() { echo "base-image: $*" >&2; }
sudo_cmd() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi

# The Debian mirror the host itself uses (deb822 `URIs:` or one-line `deb URL bookworm`).
mirror() {
    if [ -n "${STRATA_DEBIAN_MIRROR:-}" ]; then echo "$STRATA_DEBIAN_MIRROR"; return; fi
    local found
    found="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '/^[[:space:]]*#/ {next}
             /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }
             $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /security/ && $(i+1) == "bookworm") { print $i; exit } }' |
        head -n1)"
    echo "${found:-http://deb.debian.org/debian}"
}

if [ ! -s "$tarball" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        sudo_cmd apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq debootstrap >/dev/null
    fi
    url="$(mirror)"
    mkdir -p "$cache"
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'sudo_cmd rm -rf "$rootfs" "$tarball.tmp"' EXIT
    log "debootstrap --variant=minbase bookworm from $url (first run only, a few minutes)"
    if ! sudo_cmd timeout "$timeout_s" debootstrap --variant=minbase bookworm "$rootfs" "$url" \
        >"$cache/debootstrap.log" 2>&1; then
        log "debootstrap failed; last lines of $cache/debootstrap.log:"
        tail -n 20 "$cache/debootstrap.log" >&2
        exit 1
    fi
    # Strata speaks plain HTTP between its own containers: no ca-certificates needed.
    # Drop the package caches and lists to keep the image small.
    sudo_cmd rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
    sudo_cmd tar --numeric-owner -C "$rootfs" -czf "$tarball.tmp" .
    sudo_cmd chown "$(id -u):$(id -g)" "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    sudo_cmd rm -rf "$rootfs"
    trap - EXIT
fi

log "importing $tarball as $image"
timeout 300 docker import --message "debootstrap minbase bookworm" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
