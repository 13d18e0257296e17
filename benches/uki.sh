#!/usr/bin/env bash
# UKI ISO benchmark: `auroraboot build-uki -t iso` against upstream's path
# done by hand with the reference tools on the same tree (Debian 12 has no
# ukify): cpio + zstd of the rootfs, objcopy --add-section of the UKI
# sections onto the same systemd stub, sbsign of the UKI and of
# systemd-boot, an ESP by mkfs.vfat + mcopy, and xorriso. Reports the median
# wall time of each, their ratio, the sizes, and ours made durable vs theirs
# + sync. Uses the release binary (`make bench` builds it). Writes only
# under target/bench-uki/.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/tree.sh

bin=$PWD/target/release/auroraboot
work=$PWD/target/bench-uki
runs=${RUNS:-3}
tree_mb=${TREE_MB:-256}
boot=/usr/local/share/auroraboot/bootloader/amd64/systemd-boot
rm -rf "$work"
mkdir -p "$work"
export XDG_DATA_HOME="$work/xdg" AURORABOOT_CACHE_DIR="$work/cache"

now() { date +%s%N; }
median_ms() {
    local times=()
    for _ in $(seq "$runs"); do
        local t0; t0=$(now)
        "$@" >/dev/null 2>&1
        times+=($(( ($(now) - t0) / 1000000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# The rootfs: the fixture's kernel and release files plus a rootfs-like tree.
tree="$work/rootfs"
mkdir -p "$tree/boot" "$tree/etc"
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 | sort | tail -1)
cp "$kernel" "$tree/boot/vmlinuz"
# Kairos images carry an initrd too (the UKI does not use it: its initrd is the rootfs).
echo initrd > "$tree/boot/initrd"
printf 'NAME="Kairos bench"\nID=kairos\n' > "$tree/etc/os-release"
printf 'KAIROS_FLAVOR="bench"\nKAIROS_FLAVOR_RELEASE="1"\nKAIROS_VARIANT="core"\nKAIROS_ARCH="amd64"\nKAIROS_MODEL="generic"\nKAIROS_VERSION="v1"\nKAIROS_RELEASE="v1"\n' > "$tree/etc/kairos-release"
fill_tree "$tree" "$tree_mb"
"$bin" genkey bench -o "$work/keys" --skip-microsoft-certs-I-KNOW-WHAT-IM-DOING >/dev/null 2>&1
keys=$work/keys
cmdline="console=ttyS0 console=tty1 net.ifnames=1 rd.immucore.oemlabel=COS_OEM rd.immucore.oemtimeout=2 rd.immucore.uki selinux=0 panic=5 rd.shell=0 systemd.crash_reboot=yes install-mode"

ours() {
    rm -rf "$work/out"
    "$bin" build-uki "dir:$tree" -t iso -d "$work/out" --public-keys "$keys" \
        --tpm-pcr-private-key "$keys/tpm2-pcr-private.pem" --sb-key "$keys/db.key" --sb-cert "$keys/db.pem"
}

theirs() {
    local t="$work/ref"
    rm -rf "$t" && mkdir -p "$t/esp/EFI/BOOT" "$t/esp/EFI/kairos" "$t/esp/loader/entries" "$t/esp/loader/keys/auto" "$t/iso"
    (cd "$tree" && find . -path ./boot -prune -o -print | cpio -o -H newc --quiet) | zstd -q -11 -T0 > "$t/initrd"
    printf '%s' "$cmdline" > "$t/cmdline"
    objcopy --add-section .osrel="$tree/etc/os-release" --change-section-vma .osrel=0x20000 \
        --add-section .cmdline="$t/cmdline" --change-section-vma .cmdline=0x30000 \
        --add-section .linux="$tree/boot/vmlinuz" --change-section-vma .linux=0x2000000 \
        --add-section .initrd="$t/initrd" --change-section-vma .initrd=0x3000000 \
        "$boot/linuxx64.efi.stub" "$t/norole.efi"
    sbsign --key "$keys/db.key" --cert "$keys/db.pem" --output "$t/esp/EFI/kairos/norole.efi" "$t/norole.efi"
    sbsign --key "$keys/db.key" --cert "$keys/db.pem" --output "$t/esp/EFI/BOOT/BOOTX64.EFI" "$boot/systemd-bootx64.efi"
    cp "$keys"/{PK,KEK,db}.auth "$t/esp/loader/keys/auto/"
    local mb=$(( $(du -sm "$t/esp" | cut -f1) + 2 ))
    truncate -s "${mb}M" "$t/iso/efiboot.img"
    mkfs.vfat -F 32 "$t/iso/efiboot.img" >/dev/null 2>&1 || mkfs.vfat "$t/iso/efiboot.img" >/dev/null
    mcopy -s -i "$t/iso/efiboot.img" "$t/esp/EFI" "$t/esp/loader" ::/
    xorriso -as mkisofs -V UKI_ISO_INSTALL -isohybrid-gpt-basdat -e efiboot.img -no-emul-boot -o "$t/uki.iso" "$t/iso"
}
theirs_durable() { theirs; sha256sum "$work/ref/uki.iso" >/dev/null; sync; }

ours >/dev/null 2>&1 || { echo "build-uki failed:"; ours; exit 1; }
theirs >/dev/null 2>&1 || { echo "reference pipeline failed:"; theirs; exit 1; }
o=$(median_ms ours)
r=$(median_ms theirs)
rd=$(median_ms theirs_durable)
osize=$(stat -c %s "$work"/out/*.iso)
rsize=$(stat -c %s "$work/ref/uki.iso")
printf '\n%-58s %10s %10s %8s\n' "UKI ISO (rootfs ${tree_mb} MiB, one entry)" "ours ms" "ref ms" "ratio"
printf '%-58s %10d %10d %8.2f\n' "build-uki -t iso vs cpio|zstd+objcopy+sbsign+mkfs+xorriso" "$o" "$r" "$(echo "$o / $r" | bc -l)"
printf '%-58s %10d %10d %8.2f\n' "same, reference made durable (sha256sum + sync)" "$o" "$rd" "$(echo "$o / $rd" | bc -l)"
printf '%-58s %10d %10d %8.2f\n' "ISO size (bytes)" "$osize" "$rsize" "$(echo "$osize / $rsize" | bc -l)"
