#!/usr/bin/env bash
# Prepares the bootloader directory the ISO and raw-disk plugins fall back
# to when an image's rootfs carries no shim/GRUB (and where the BIOS disk's
# GRUB always comes from, as upstream's grub2-install uses AuroraBoot's
# own): GRUB images built from Debian's grub-pc-bin and grub-efi-amd64-bin,
# laid out per architecture.
#   <dir>/amd64/eltorito.img    BIOS El Torito image (cdboot + core, prefix /boot/grub2)
#   <dir>/amd64/boot_hybrid.img GRUB's hybrid MBR (USB-stick BIOS boot)
#   <dir>/amd64/grubx64.efi     UEFI GRUB (prefix /EFI/BOOT: reads EFI/BOOT/grub.cfg)
#   <dir>/amd64/boot.img        BIOS disk MBR code (grub-bios-setup's boot.img)
#   <dir>/amd64/core.img        BIOS disk core image for the bios_grub partition: finds
#                               the COS_RECOVERY file system, prefix ($root)/grub2
#   <dir>/amd64/i386-pc/        GRUB's BIOS modules, what grub2-install puts in grub2/
#   <dir>/amd64/systemd-boot/   systemd-boot and its UKI stub (linuxx64.efi.stub,
#                               systemd-bootx64.efi, VERSION) from Debian's
#                               systemd-boot-efi in bookworm-backports (254): bookworm's
#                               252 knows no `secure-boot-enroll if-safe` (upstream's
#                               default) and its stub measures neither .uname nor .sbat
#   <dir>/amd64/VERSION         what scripts/setup.sh compares to rebuild after changes
# Usage: scripts/bootloader.sh [DIR]   (default /usr/local/share/auroraboot/bootloader)
set -euo pipefail

dir=${1:-/usr/local/share/auroraboot/bootloader}
# What the live GRUB config, the stub configs and a Kairos /etc/cos/grub.cfg
# use, built in: the ISO and the ESP carry no module directory.
common="normal configfile search search_fs_file search_fs_uuid search_label test echo
    linux loadenv regexp gzio ls cat sleep true help minicmd halt reboot loopback
    part_msdos part_gpt iso9660 fat ext2 serial terminal font gfxterm all_video"
bios_modules="$common biosdisk vbe vga video_bochs video_cirrus"
efi_modules="$common efi_gop efi_uga chain"

mkdir -p "$dir/amd64"
tmp=$(mktemp -d "$dir/.amd64.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # module lists are word lists
grub-mkimage -O i386-pc-eltorito -p /boot/grub2 -o "$tmp/eltorito.img" $bios_modules
cp /usr/lib/grub/i386-pc/boot_hybrid.img "$tmp/boot_hybrid.img"
# shellcheck disable=SC2086
grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$tmp/grubx64.efi" $efi_modules
# The BIOS disk: what grub2-install --target=i386-pc writes, with the
# recovery partition found by label instead of by a UUID known only then.
cat > "$tmp/early.cfg" <<'CFG'
search --no-floppy --label --set=root COS_RECOVERY
set prefix=($root)/grub2
CFG
# shellcheck disable=SC2086
grub-mkimage -O i386-pc -c "$tmp/early.cfg" -p /grub2 -o "$tmp/core.img" $bios_modules
cp /usr/lib/grub/i386-pc/boot.img "$tmp/boot.img"
mkdir "$tmp/i386-pc"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$tmp/i386-pc/"
rm "$tmp/early.cfg"
# The UKI stub and systemd-boot, unpacked from the package (not installed:
# the machine's own systemd stays bookworm's).
mkdir "$tmp/deb" "$tmp/systemd-boot"
(cd "$tmp/deb" && apt-get download -q systemd-boot-efi/bookworm-backports >/dev/null 2>&1) || {
    echo "bootloader: cannot download systemd-boot-efi from bookworm-backports (run scripts/setup.sh, which adds it)" >&2
    exit 1
}
dpkg-deb -x "$tmp"/deb/systemd-boot-efi_*.deb "$tmp/deb/x"
cp "$tmp/deb/x/usr/lib/systemd/boot/efi/linuxx64.efi.stub" "$tmp/deb/x/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$tmp/systemd-boot/"
dpkg-deb -f "$tmp"/deb/systemd-boot-efi_*.deb Version > "$tmp/systemd-boot/VERSION"
rm -rf "$tmp/deb"
sha256sum "$0" | cut -d' ' -f1 > "$tmp/VERSION"
chmod -R a+rX "$tmp"
rm -rf "$dir/amd64/i386-pc" "$dir/amd64/systemd-boot"
for f in eltorito.img boot_hybrid.img grubx64.efi boot.img core.img i386-pc systemd-boot VERSION; do
    mv -f "$tmp/$f" "$dir/amd64/$f"
done
echo "bootloader: $dir/amd64 ($(cd "$dir/amd64" && ls | tr '\n' ' '))"
