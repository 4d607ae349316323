#!/usr/bin/env bash
# Makes a Docker engine and the images docker-compose.yml and the Dockerfile
# start from available on a machine that reaches Debian's packages and
# crates.io but no image registry (CI):
#
#   1. installs Debian's docker.io and docker-compose when missing, starts
#      dockerd when it is not running, and waits for it;
#   2. builds local stand-ins for the official images from Debian's packages
#      (names and tags in docker/stand-ins.env):
#        local/debian:bookworm-slim    debootstrap --variant=minbase, slimmed as the official image
#        local/rust:1.95-slim-bookworm that, gcc, and this machine's Rust toolchain and trust store
#        local/postgres:15-bookworm    Debian's PostgreSQL 15 (users pull postgres:16)
#        local/nginx:bookworm          Debian's nginx
#        local/mailpit:stand-in        a Mailpit stand-in on Debian's python3-aiosmtpd
#
# An image already present is reused when its label `stand-in.digest` still
# matches what it was built from (its files here, its base image, and for
# the Rust image the toolchain and the trust store); otherwise it is rebuilt.
# Safe to run again.
#
#   scripts/docker-images.sh          # everything
#   scripts/docker-images.sh engine   # only install and start the engine
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/docker-lib.sh
. scripts/docker-lib.sh

stand_ins=docker/stand-ins
set -a
# shellcheck source=docker/stand-ins.env
. docker/stand-ins.env
set +a

engine() {
    local missing=()
    [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    [ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        debian_docker_first
    fi
    if ! docker info >/dev/null 2>&1; then
        step "starting dockerd (log: /var/log/dockerd.log)"
        # Its own session, so it outlives this script as a service would.
        setsid /usr/sbin/dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
        docker_answers() { docker info >/dev/null 2>&1; }
        if ! until_true 60 docker_answers; then
            tail -n 40 /var/log/dockerd.log >&2
            die "dockerd did not answer within 60s"
        fi
    fi
    echo "$(docker version --format 'Docker engine {{.Server.Version}}'), $(docker-compose version --short | sed 's/^/docker-compose /'), storage $(docker info --format '{{.Driver}}')"
}

# sha256 of the given files (sorted by path) and extra words.
digest_of() {
    local dir=$1; shift
    { (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum); printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

current_digest() {
    docker image inspect --format '{{index .Config.Labels "stand-in.digest"}}' "$1" 2>/dev/null || true
}

image_id() { docker image inspect --format '{{.Id}}' "$1"; }

# The URI this machine's apt uses for SUITE (deb822 or one-line sources).
apt_uri() {
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        awk -v suite="$1" '/^URIs:/ { uri = $2 } /^Suites:/ && uri { for (i = 2; i <= NF; i++) if ($i == suite) { print uri; exit } }'
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
        awk -v suite="$1" '$1 == "deb" && $3 == suite { print $2; exit }'
}

# The Debian mirror this machine's apt uses, and the image's apt sources:
# the same mirrors, with updates and security.
debian_mirror() {
    local mirror=${DEBIAN_MIRROR:-$(apt_uri bookworm | sed -n 1p)}
    [ -n "$mirror" ] || die "no Debian bookworm mirror in this machine's apt sources; set DEBIAN_MIRROR"
    echo "$mirror"
}
image_sources() {
    local mirror security
    mirror=$(debian_mirror)
    security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri bookworm-security | sed -n 1p)}
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror"
    if [ -n "$security" ]; then printf 'deb %s bookworm-security main\n' "$security"; fi
}

debian_base() {
    local digest
    digest=$(digest_of "$stand_ins/debian" "bookworm minbase" "$(image_sources)")
    if [ "$(current_digest "$DEBIAN_IMAGE")" = "$digest" ]; then
        echo "$DEBIAN_IMAGE: present"
        return
    fi
    step "$DEBIAN_IMAGE: debootstrap --variant=minbase bookworm from $(debian_mirror)"
    local rootfs
    rootfs=$(mktemp -d /var/tmp/debian-rootfs.XXXXXX)
    debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$rootfs.log" 2>&1 ||
        { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed"; }
    # Slim as the official image: no documentation or translations now or
    # in later installs; apt keeps no caches; no service starts on install.
    install -m 0644 "$stand_ins/debian/dpkg-slim" "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
    install -m 0644 "$stand_ins/debian/apt-docker" "$rootfs/etc/apt/apt.conf.d/docker"
    install -m 0755 "$stand_ins/debian/policy-rc.d" "$rootfs/usr/sbin/policy-rc.d"
    (
        cd "$rootfs"
        find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
        find usr/share/doc -mindepth 1 -type d -empty -delete
        rm -rf usr/share/info/* usr/share/man/* usr/share/locale/* usr/share/groff/* usr/share/lintian/*
        rm -rf var/cache/apt/* var/lib/apt/lists/* var/log/* tmp/* "var/cache/debconf/"*-old
        rm -f etc/hostname etc/resolv.conf
        : >etc/machine-id
    )
    # Sources as this machine's (with updates and security), for packages
    # installed in later builds.
    image_sources >"$rootfs/etc/apt/sources.list"
    tar --numeric-owner -C "$rootfs" -c . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            --change "LABEL stand-in.digest=$digest" \
            - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

rust_image() {
    local version sysroot digest context
    version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
    [ -n "$version" ] || die "no ARG RUST_VERSION in the Dockerfile"
    case "$RUST_IMAGE" in *":$version-"*) ;; *) die "RUST_IMAGE ($RUST_IMAGE) does not carry the Dockerfile's RUST_VERSION $version" ;; esac
    rustc -V | grep -E "^rustc $version(\.| )" >/dev/null ||
        die "this machine's toolchain is $(rustc -V), the Dockerfile's RUST_VERSION is $version: no other toolchain can be fetched here"
    sysroot=$(rustc --print sysroot)
    digest=$(digest_of "$stand_ins/rust" "$(image_id "$DEBIAN_IMAGE")" "$(rustc -vV)" "$(sha256sum /etc/ssl/certs/ca-certificates.crt)")
    if [ "$(current_digest "$RUST_IMAGE")" = "$digest" ]; then
        echo "$RUST_IMAGE: present"
        return
    fi
    step "$RUST_IMAGE: $DEBIAN_IMAGE with gcc and this machine's $(rustc -V | cut -d' ' -f1-2)"
    # The context: the Dockerfile, the toolchain without its documentation,
    # and the trust store, streamed as one tar (nothing copied on disk).
    context=$(mktemp -d)
    cp "$stand_ins/rust/Dockerfile" "$context/Dockerfile"
    cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
    ln -s "$sysroot" "$context/toolchain"
    tar -C "$context" --dereference --exclude='toolchain/share' -c Dockerfile ca-certificates.crt toolchain |
        docker build --quiet --label "stand-in.digest=$digest" \
            --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --build-arg "RUST_VERSION=$version" \
            -t "$RUST_IMAGE" - >/dev/null
    rm -rf "$context"
}

# A stand-in built from docker/stand-ins/NAME on the Debian base.
from_debian() {
    local name=$1 tag=$2 digest
    digest=$(digest_of "$stand_ins/$name" "$(image_id "$DEBIAN_IMAGE")")
    if [ "$(current_digest "$tag")" = "$digest" ]; then
        echo "$tag: present"
        return
    fi
    step "$tag: from $stand_ins/$name"
    docker build --quiet --label "stand-in.digest=$digest" \
        --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$tag" "$stand_ins/$name" >/dev/null
}

timed engine
[ "${1:-}" = engine ] && exit 0
timed debian_base
timed rust_image
timed from_debian postgres "$POSTGRES_IMAGE"
timed from_debian nginx "$WEB_IMAGE"
timed from_debian mail "$MAIL_IMAGE"
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^local/' | sort
# Stand-ins replaced by a rebuild, now untagged.
docker image prune -f --filter label=stand-in.digest >/dev/null
