#!/usr/bin/env bash
# Prepares the bootloader directory the ISO (and disk) plugins fall back to
# when an image's rootfs carries no shim/GRUB: GRUB images built from
# Debian's grub-pc-bin and grub-efi-amd64-bin, laid out per architecture.
#   <dir>/amd64/eltorito.img    BIOS El Torito image (cdboot + core, prefix /boot/grub2)
#   <dir>/amd64/boot_hybrid.img GRUB's hybrid MBR (USB-stick BIOS boot)
#   <dir>/amd64/grubx64.efi     UEFI GRUB (prefix /EFI/BOOT: reads EFI/BOOT/grub.cfg)
# Usage: scripts/bootloader.sh [DIR]   (default /usr/local/share/auroraboot/bootloader)
set -euo pipefail

dir=${1:-/usr/local/share/auroraboot/bootloader}
# What the live GRUB config and the stub configs use, built in: the ISO
# carries no module directory.
common="normal configfile search search_fs_file search_fs_uuid search_label test echo
    linux loadenv regexp gzio ls cat sleep true help minicmd halt reboot
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
chmod 0644 "$tmp"/*
for f in eltorito.img boot_hybrid.img grubx64.efi; do mv -f "$tmp/$f" "$dir/amd64/$f"; done
echo "bootloader: $dir/amd64 ($(cd "$dir/amd64" && ls | tr '\n' ' '))"
