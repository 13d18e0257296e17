#!/usr/bin/env bash
# Installs what building and testing auroraboot needs on Debian 12, as root:
# system packages, the Rust wasm32-wasip2 and x86_64-unknown-uefi targets
# (plugins, the Secure Boot key enroller). Safe to run again.
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
    ovmf busybox-static linux-image-cloud-amd64 cpio kmod xorriso squashfs-tools
    grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools gdisk e2fsprogs
    ipxe ipxe-qemu dnsmasq-base tftp-hpa iproute2 curl
    efitools sbsigntool openssl systemd-boot-efi binutils
    swtpm libtss2-esys-3.0.2-0 libtss2-rc0 libtss2-mu0 libtss2-tcti-swtpm0
)
# QEMU must match the qemu-utils 10.0 from bookworm-backports the machine
# ships (bookworm's 7.2 would replace it), so it comes from backports.
backports_packages=(qemu-system-x86 qemu-system-data)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
missing_backports=()
for p in "${backports_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_backports+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_backports[@]} -gt 0 ]; then
    need_root
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#missing_backports[@]} -gt 0 ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    apt-get update
    # --no-remove: never let a dependency change uninstall what the machine has.
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get install -y --no-install-recommends --no-remove "${missing[@]}"
    fi
    if [ ${#missing_backports[@]} -gt 0 ]; then
        apt-get install -y --no-install-recommends --no-remove -t bookworm-backports "${missing_backports[@]}"
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        echo "setup: installing the Rust toolchain with rustup" >&2
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    }
    export PATH="$HOME/.cargo/bin:$PATH"
fi

for target in wasm32-wasip2 x86_64-unknown-uefi; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done

# GRUB images for images whose rootfs has no bootloader of its own.
# Rebuilt when scripts/bootloader.sh changes.
bootloader_version=$(sha256sum "$(dirname "$0")/bootloader.sh" | cut -d' ' -f1)
if [ "$(cat /usr/local/share/auroraboot/bootloader/amd64/VERSION 2>/dev/null)" != "$bootloader_version" ]; then
    need_root
    bash "$(dirname "$0")/bootloader.sh" /usr/local/share/auroraboot/bootloader
fi
