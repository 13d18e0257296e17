#!/usr/bin/env bash
# The built-in demo: makes a small Kairos-shaped image (an OCI image
# layout, with the host's Debian cloud kernel when installed), then runs
# auroraboot on it with a templated cloud-config: the live ISO (built-in
# `iso` plugin), a raw EFI disk (built-in `raw` plugin) and a rootfs
# tarball (the example third-party plugin), and shows the result. Everything lands under target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=target/demo
rm -rf "$demo"
mkdir -p "$demo/rootfs" "$demo/plugins"
root="$demo/rootfs"

mkdir -p "$root"/{boot,etc/cos,etc/ssh,usr/bin,usr/lib,var/log,tmp,root}
chmod 1777 "$root/tmp"; chmod 700 "$root/root"
cat > "$root/etc/kairos-release" <<'REL'
KAIROS_NAME="kairos-demo"
KAIROS_FLAVOR="demo"
KAIROS_FLAVOR_RELEASE="1"
KAIROS_VARIANT="core"
KAIROS_ARCH="amd64"
KAIROS_MODEL="generic"
KAIROS_VERSION="v0.0.1"
REL
echo "kairos-demo" > "$root/etc/hostname"
# What a raw disk's recovery partition boots with (Kairos ships one).
cat > "$root/etc/cos/grub.cfg" <<'GRUB'
search --no-floppy --label --set=root COS_RECOVERY
menuentry "Kairos recovery" --id recovery {
    loopback loop0 ($root)/cOS/recovery.img
    linux (loop0)/boot/vmlinuz console=ttyS0 root=LABEL=COS_SYSTEM
    initrd (loop0)/boot/initrd
}
GRUB
printf '#!/bin/sh\necho "hello from the demo rootfs"\n' > "$root/usr/bin/hello"
chmod 755 "$root/usr/bin/hello"
ln -s usr/bin "$root/bin"
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | head -n 1 || true)
if [ -n "$kernel" ]; then cp "$kernel" "$root/boot/vmlinuz-6.1.0-demo"; else head -c 4194304 /dev/urandom > "$root/boot/vmlinuz-6.1.0-demo"; fi
ln -s vmlinuz-6.1.0-demo "$root/boot/vmlinuz"
head -c 2097152 /dev/zero > "$root/boot/initrd-6.1.0-demo"
ln -s initrd-6.1.0-demo "$root/boot/initrd"

cat > "$demo/cloud-config.yaml" <<'CC'
#cloud-config
users:
  - name: kairos
    passwd: "[[ .kairos.password ]]"
    ssh_authorized_keys:
      - github:[[ .github.user ]]
stages:
  boot:
    - commands:
        - if [[ -f /etc/hostname ]]; then echo "hostname ok"; fi
CC

cp target/wasm32-wasip2/release/rootfs_tarball.wasm "$demo/plugins/"

# Package the rootfs as an OCI image layout (one gzip layer), as `skopeo copy`
# would leave it: the demo then goes through digest checks and safe
# extraction like a registry image does.
image="$demo/image"
mkdir -p "$image/blobs/sha256"
add_blob() { # file -> "sha256:<hex> <size>"
    local d; d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$image/blobs/sha256/$d"
    echo "sha256:$d $(stat -c %s "$1")"
}
tar --numeric-owner -C "$root" -cf "$demo/layer.tar" .
diff_id=$(sha256sum "$demo/layer.tar" | cut -d' ' -f1)
gzip -1 -c "$demo/layer.tar" > "$demo/layer.tar.gz"
read -r layer layer_size <<<"$(add_blob "$demo/layer.tar.gz")"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id" > "$demo/config.json"
read -r config config_size <<<"$(add_blob "$demo/config.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" > "$demo/manifest.json"
read -r manifest manifest_size <<<"$(add_blob "$demo/manifest.json")"
echo '{"imageLayoutVersion":"1.0.0"}' > "$image/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest" "$manifest_size" > "$image/index.json"

bin=target/debug/auroraboot
set -x
"$bin" --plugin-dir "$demo/plugins" plugins list
"$bin" --plugin-dir "$demo/plugins" \
    --set container_image="oci-layout://$PWD/$image:latest" \
    --set state_dir="$PWD/$demo/state" \
    --set disable_netboot=true --set disable_http_server=true \
    --set github.user=mudler --set kairos.password=kairos \
    --set rootfs_tarball.mtime=0 \
    --cloud-config "$demo/cloud-config.yaml" \
    --output iso,raw-efi,rootfs-tarball
set +x
echo
echo "== $demo/state:"
find "$demo/state" -maxdepth 2 -type f -not -path "*/rootfs/*" | sort
echo "== embedded cloud-config ($demo/state/config.yaml):"
cat "$demo/state/config.yaml"
echo "== the ISO's boot records (xorriso):"
xorriso -indev "$demo/state/iso/kairos-demo-1-core-amd64-generic-v0.0.1.iso" -report_el_torito plain 2>/dev/null | grep -E "El Torito (boot img|img path)"
echo "== the raw disk's partitions (sgdisk), apparent and allocated size:"
raw="$demo/state/kairos-demo-1-core-amd64-generic-v0.0.1.raw"
sgdisk -p "$raw" | sed -n '/^Number/,$p'
du -h --apparent-size "$raw"; du -h "$raw"
echo "== archive listing:"
tar -tzvf "$demo/state/rootfs-tarball/rootfs.tar.gz"
(cd "$demo/state/rootfs-tarball" && sha256sum -c rootfs.tar.gz.sha256)
