#!/usr/bin/env bash
# Raw disk benchmarks, printed as a table with ratios, on a Kairos-shaped
# tree padded to >= 1 GiB (the test fixture's kernel/initrd/grub.cfg plus
# rootfs-like data):
#   - raw EFI disk vs the classic shell pipeline that makes the same
#     layout as root without loop devices (truncate + sgdisk + mkfs.vfat +
#     mtools + mkfs.ext2 -d for the system image and the OEM and recovery
#     file systems + dd conv=sparse);
#   - what VHD and GCE cost on top (VHD alone = the raw written as .vhd
#     plus its footer; VHD next to the raw = a copy; GCE vs `tar -Sczf`
#     of the raw file);
#   - bytes allocated vs apparent size.
# Uses the release binary (`make bench` builds it). Writes only under
# target/bench-disk/ (about 10 GB apparent, far less allocated).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/tree.sh

bin=$PWD/target/release/auroraboot
work=$PWD/target/bench-disk
runs=${RUNS:-3}
pad_mb=${PAD_MB:-1024}
fixture=$PWD/target/fixture/rootfs
[ -d "$fixture" ] || { echo "run the tests once first (target/fixture/rootfs)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
export XDG_DATA_HOME="$work/xdg"
export AURORABOOT_CACHE_DIR="$work/cache"

now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The tree: the fixture plus many small files and large binaries (half
# random, half compressible).
tree="$work/rootfs"
cp -a "$fixture" "$tree"
fill_tree "$tree" "$pad_mb"
sync
tree_mib=$(( $(du -sb "$tree" | cut -f1) >> 20 ))

ours() { # outputs... -> wall ms of one run into state dir $work/state
    rm -rf "$work/state"
    local sets=()
    for o in "$@"; do sets+=(--set "disk.$o=true"); done
    local t0; t0=$(now)
    "$bin" --set container_image="dir://$tree" --set state_dir="$work/state" \
        --set disable_netboot=true --set disable_http_server=true "${sets[@]}" >/dev/null 2>&1
    sync
    ms_since "$t0"
}
median_of() { for _ in $(seq "$runs"); do ours "$@"; done | median; }

ours efi >/dev/null # compiles and caches the plugin
raw_ms=$(median_of efi)
raw=$(ls "$work"/state/*.raw)
raw_bytes=$(stat -c %s "$raw")
raw_alloc=$(( $(stat -c %b "$raw") * 512 ))
vhd_only_ms=$(median_of vhd)
raw_vhd_ms=$(median_of efi vhd)
raw_gce_ms=$(median_of efi gce)
gce_bytes=$(stat -c %s "$work"/state/*.gce.tar.gz)
# Keep one raw image for the tar reference.
ours efi >/dev/null
mv "$raw" "$work/ours.raw"

# The reference pipeline: the same partitions, labels and files.
reference() { # -> wall ms; the tools' chatter goes to /dev/null
    local t0; t0=$(now)
    reference_steps >/dev/null 2>&1
    ms_since "$t0"
}
reference_steps() {
    local r="$work/ref"
    rm -rf "$r" && mkdir -p "$r/oem" "$r/recovery/cOS" "$r/recovery/etc/cos"
    local size_mib=$(( raw_bytes >> 20 ))
    local image_mib=$(( ($(du -sb "$tree" | cut -f1) + (1 << 20) - 1) / (1 << 20) + 300 ))
    local rp_mib=$(( image_mib * 2 + 150 ))
    truncate -s "${size_mib}M" "$r/disk.raw"
    sgdisk -n1:2048:+64M -t1:ef00 -c1:efi -n2:0:+64M -t2:8300 -c2:oem \
        -n3:0:+${rp_mib}M -t3:8300 -c3:recovery "$r/disk.raw" >/dev/null
    truncate -s 64M "$r/efi.img"
    mkfs.vfat -n COS_GRUB "$r/efi.img" >/dev/null
    mmd -i "$r/efi.img" ::EFI ::EFI/BOOT
    mcopy -i "$r/efi.img" /usr/local/share/auroraboot/bootloader/amd64/grubx64.efi ::EFI/BOOT/bootx64.efi
    echo "search --no-floppy --label --set=root COS_RECOVERY" > "$r/grub.cfg"
    mcopy -i "$r/efi.img" "$r/grub.cfg" ::EFI/BOOT/grub.cfg
    echo "#cloud-config" > "$r/oem/90_custom.yaml"
    printf '# GRUB Environment Block\nnext_entry=recovery\n' > "$r/oem/grubenv"
    mkfs.ext2 -q -L COS_OEM -d "$r/oem" "$r/oem.img" 64M
    mkfs.ext2 -q -L COS_SYSTEM -d "$tree" "$r/recovery/cOS/recovery.img" "${image_mib}M"
    cp "$tree/etc/cos/grub.cfg" "$r/recovery/etc/cos/grub.cfg"
    mkfs.ext2 -q -L COS_RECOVERY -d "$r/recovery" "$r/recovery.img" "${rp_mib}M"
    dd if="$r/efi.img" of="$r/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$r/oem.img" of="$r/disk.raw" bs=1M seek=65 conv=notrunc,sparse status=none
    dd if="$r/recovery.img" of="$r/disk.raw" bs=1M seek=129 conv=notrunc,sparse status=none
    rm -f "$r/efi.img" "$r/oem.img" "$r/recovery.img" "$r/recovery/cOS/recovery.img"
    sync
}
ref_ms=$(for _ in $(seq "$runs"); do reference; done | median)
ref_alloc=$(( $(stat -c %b "$work/ref/disk.raw") * 512 ))

tar_ms=$(for _ in $(seq "$runs"); do
    t0=$(now)
    tar -Sczf "$work/ref.tar.gz" -C "$work" ours.raw
    ms_since "$t0"
done | median)
tar_bytes=$(stat -c %s "$work/ref.tar.gz")
tar1_ms=$(for _ in $(seq "$runs"); do
    t0=$(now)
    tar -Scf - -C "$work" ours.raw | gzip -1 > "$work/ref1.tar.gz"
    ms_since "$t0"
done | median)
tar1_bytes=$(stat -c %s "$work/ref1.tar.gz")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { echo $(( $1 >> 20 )); }

echo
echo "raw disk from a ${tree_mib} MiB tree ($runs runs, medians; 2 cores)"
echo
echo "| measure | auroraboot | reference | ratio |"
echo "|---|---|---|---|"
echo "| raw EFI disk vs truncate+sgdisk+mkfs.vfat+mkfs.ext2 -d+dd | ${raw_ms} ms | ${ref_ms} ms | $(ratio "$raw_ms" "$ref_ms") |"
echo "| VHD alone vs raw alone (extra: footer) | ${vhd_only_ms} ms | ${raw_ms} ms | $(ratio "$vhd_only_ms" "$raw_ms") |"
echo "| raw + VHD copy vs raw alone | ${raw_vhd_ms} ms | ${raw_ms} ms | $(ratio "$raw_vhd_ms" "$raw_ms") |"
echo "| GCE on top of raw vs tar -Sczf of the raw | $((raw_gce_ms - raw_ms)) ms | ${tar_ms} ms | $(ratio "$((raw_gce_ms - raw_ms))" "$tar_ms") |"
echo "| GCE on top of raw vs tar -Sc \| gzip -1 (upstream's level) | $((raw_gce_ms - raw_ms)) ms | ${tar1_ms} ms | $(ratio "$((raw_gce_ms - raw_ms))" "$tar1_ms") |"
echo "| GCE archive size vs tar -Sc \| gzip -1 | $(mib "$gce_bytes") MiB | $(mib "$tar1_bytes") MiB | $(ratio "$gce_bytes" "$tar1_bytes") |"
echo "| GCE archive size vs tar -Sczf (gzip -6) | $(mib "$gce_bytes") MiB | $(mib "$tar_bytes") MiB | $(ratio "$gce_bytes" "$tar_bytes") |"
echo "| allocated / apparent size, raw | $(mib "$raw_alloc") MiB / $(mib "$raw_bytes") MiB | $(mib "$ref_alloc") MiB (reference) | $(ratio "$raw_alloc" "$raw_bytes") |"
