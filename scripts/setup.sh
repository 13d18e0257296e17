#!/usr/bin/env bash
# Installs what building and testing auroraboot needs on Debian 12, as root:
# system packages, the Rust wasm32-wasip2 target. Safe to run again.
set -euo pipefail

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup: run as root (or install the packages listed in scripts/setup.sh yourself)" >&2
        exit 1
    fi
}

packages=(
    ca-certificates curl git gcc make pkg-config
    tar gzip xz-utils zstd findutils coreutils diffutils
    docker-registry skopeo docker.io umoci python3
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    need_root
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # --no-remove: never let a dependency change uninstall what the machine has.
    apt-get install -y --no-install-recommends --no-remove "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        echo "setup: installing the Rust toolchain with rustup" >&2
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    }
    export PATH="$HOME/.cargo/bin:$PATH"
fi

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
