//! The Kairos-shaped test image. No real Kairos image can be downloaded
//! here, so this builds a small one from Debian packages: the cloud kernel
//! (`linux-image-cloud-amd64`) and a busybox initramfs whose `/init` loads
//! the virtio/SCSI/ISO/squashfs modules, prints a marker and its kernel
//! command line, finds the cloud-config (`config_url=` on the command
//! line, else `config.yaml` / `90_custom.yaml` at the root of any block
//! device or partition, a UEFI HTTP boot RAM disk included), prints it
//! between markers and powers off.
//!
//! Built once into `target/fixture/` (under a lock: test processes run in
//! parallel) as a rootfs directory with `/boot/vmlinuz` and `/boot/initrd`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BOOTED: &str = "AURORABOOT-FIXTURE-BOOTED";
pub const DONE: &str = "AURORABOOT-FIXTURE-DONE";
pub const CONFIG_BEGIN: &str = "AURORABOOT-CLOUD-CONFIG-BEGIN";
pub const CONFIG_END: &str = "AURORABOOT-CLOUD-CONFIG-END";

/// Modules the init loads, dependencies first (resolved by modprobe).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sr_mod",
    "isofs",
    "squashfs",
    "loop",
    "overlay",
    "virtio_net",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "ata_piix",
    "ext4",
    "efivarfs",
    // A UEFI HTTP-booted ISO is a firmware RAM disk, which Linux sees as a
    // persistent-memory block device (/dev/pmem0) through the NFIT.
    "nfit",
    "nd_pmem",
];

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
# A UKI's initrd (the whole rootfs) has no /proc, /sys, /dev, /mnt, /tmp.
mkdir -p /proc /sys /dev /mnt /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# A live ISO's console= list ends with tty1: report on the serial port too.
[ -c /dev/ttyS0 ] && exec >/dev/ttyS0 2>&1
for m in $(cat /etc/modules-order); do insmod "/lib/modules/$m" 2>/dev/null; done
echo "AURORABOOT-FIXTURE-BOOTED"
echo "CMDLINE: $(cat /proc/cmdline)"
if [ -d /sys/firmware/efi ]; then
    mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
    # Four bytes of attributes, then the value.
    set -- $(od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null)
    echo "SecureBoot=${5:-unknown}"
    # The ISO's URL, recorded by the Secure Boot key enroller.
    pxeboot=/sys/firmware/efi/efivars/PXEBoot-3c909ff1-80a9-5970-94f1-fefb255c88bd
    [ -f $pxeboot ] && echo "PXEBoot=$(tail -c +5 $pxeboot)"
fi
show() {
    echo "CLOUD-CONFIG-SOURCE: $2"
    echo "AURORABOOT-CLOUD-CONFIG-BEGIN"
    cat "$1"
    echo "AURORABOOT-CLOUD-CONFIG-END"
}
found=""
url=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^config_url=//p' | head -n 1)
if [ -n "$url" ]; then
    ip link set eth0 up 2>/dev/null
    udhcpc -i eth0 -q -n -t 10 -s /etc/udhcpc.script >/dev/null 2>&1
    if wget -q -O /tmp/config.yaml "$url"; then show /tmp/config.yaml "$url"; found=1; fi
fi
tries=0
while [ -z "$found" ] && [ $tries -lt 10 ]; do
    mdev -s
    for dev in /dev/sr* /dev/vd* /dev/sd* /dev/pmem*; do
        [ -b "$dev" ] || continue
        mount -o ro "$dev" /mnt 2>/dev/null || continue
        for f in config.yaml 90_custom.yaml; do
            if [ -z "$found" ] && [ -f "/mnt/$f" ]; then show "/mnt/$f" "$dev:/$f"; found=1; fi
        done
        umount /mnt
        [ -n "$found" ] && break
    done
    [ -n "$found" ] && break
    tries=$((tries + 1))
    sleep 1
done
[ -n "$found" ] || echo "CLOUD-CONFIG-SOURCE: none"
echo "AURORABOOT-FIXTURE-DONE"
poweroff -f
"#;

/// The fixture's `/etc/kairos-release`.
const KAIROS_RELEASE: &str = "KAIROS_NAME=\"kairos-fixture\"\nKAIROS_FLAVOR=\"fixture\"\nKAIROS_FLAVOR_RELEASE=\"1\"\nKAIROS_VARIANT=\"core\"\n\
     KAIROS_ARCH=\"amd64\"\nKAIROS_MODEL=\"generic\"\nKAIROS_VERSION=\"v0.0.1\"\nKAIROS_RELEASE=\"v0.0.1\"\n";

/// Marker on the command line of the recovery entry of `/etc/cos/grub.cfg`.
pub const RECOVERY_ENTRY: &str = "fixture.entry=recovery";

/// The fixture's `/etc/cos/grub.cfg`, shaped like Kairos's: `next_entry`
/// from the OEM partition's grubenv picks the entry; the recovery entry
/// boots the kernel and initrd inside `cOS/recovery.img` of COS_RECOVERY
/// through a loop device. The active entry (COS_STATE, made by the first
/// boot's reset) is there to be not taken.
const COS_GRUB_CFG: &str = r#"set timeout=1
search --no-floppy --label --set=oem_blk COS_OEM
if [ -n "${oem_blk}" ]; then
    load_env -f (${oem_blk})/grubenv
fi
if [ -n "${next_entry}" ]; then
    set default="${next_entry}"
fi
menuentry "Kairos" --id active {
    search --no-floppy --label --set=root COS_STATE
    loopback loop0 ($root)/cOS/active.img
    linux (loop0)/boot/vmlinuz console=ttyS0 root=LABEL=COS_ACTIVE fixture.entry=active
    initrd (loop0)/boot/initrd
}
menuentry "Kairos recovery" --id recovery {
    search --no-floppy --label --set=root COS_RECOVERY
    loopback loop0 ($root)/cOS/recovery.img
    linux (loop0)/boot/vmlinuz console=ttyS0 root=LABEL=COS_SYSTEM fixture.entry=recovery
    initrd (loop0)/boot/initrd
}
"#;

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
[ -n "$router" ] && ip route add default via "$router"
exit 0
"#;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The installed cloud kernel's version (e.g. `6.1.0-56-cloud-amd64`).
fn kernel_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/boot")
        .expect("/boot")
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("vmlinuz-")
                .map(str::to_string)
        })
        .filter(|v| v.ends_with("-cloud-amd64"))
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("linux-image-cloud-amd64 must be installed (scripts/setup.sh)")
}

fn build_initrd(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join("initramfs");
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "mnt",
        "tmp",
        "etc",
        "lib/modules",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static must be installed");
    let out = Command::new("modprobe")
        .args(["-S", version, "-a", "--show-depends"])
        .args(MODULES)
        .output()
        .expect("modprobe");
    let mut order = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(path) = line
            .strip_prefix("insmod ")
            .map(|l| l.split_whitespace().next().unwrap_or_default())
        else {
            continue;
        };
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !order.contains(&name) {
            std::fs::copy(path, root.join("lib/modules").join(&name)).unwrap();
            order.push(name);
        }
    }
    assert!(
        order.iter().any(|m| m == "isofs.ko"),
        "kernel modules not found for {version}"
    );
    std::fs::write(root.join("etc/modules-order"), order.join("\n") + "\n").unwrap();
    std::fs::write(root.join("init"), INIT).unwrap();
    std::fs::write(root.join("etc/udhcpc.script"), UDHCPC_SCRIPT).unwrap();
    run(Command::new("chmod")
        .args(["755"])
        .arg(root.join("init"))
        .arg(root.join("etc/udhcpc.script"))
        .arg(root.join("bin/busybox")));
    let initrd = dir.join("initrd.cpio.gz");
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
        root.display(),
        initrd.display()
    )));
    initrd
}

/// The fixture rootfs: `/boot/vmlinuz` and `/boot/initrd` (symlinks to
/// versioned files), `/etc/kairos-release`, busybox. Built once.
pub fn rootfs() -> PathBuf {
    let dir = crate::workspace().join("target/fixture");
    let rootfs = dir.join("rootfs");
    let done = dir.join("rootfs.complete");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // Rebuilt whenever what goes into it changes.
    let stamp = format!("{}\n{:x}", kernel_version(), {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (INIT, MODULES, COS_GRUB_CFG, KAIROS_RELEASE).hash(&mut h);
        h.finish()
    });
    if std::fs::read_to_string(&done).is_ok_and(|s| s == stamp) {
        return rootfs;
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    let version = kernel_version();
    let initrd = build_initrd(&dir, &version);
    for d in ["boot", "bin", "etc", "usr/bin", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(
        format!("/boot/vmlinuz-{version}"),
        rootfs.join(format!("boot/vmlinuz-{version}")),
    )
    .unwrap();
    std::fs::copy(&initrd, rootfs.join(format!("boot/initrd-{version}"))).unwrap();
    symlink(format!("vmlinuz-{version}"), rootfs.join("boot/vmlinuz")).unwrap();
    symlink(format!("initrd-{version}"), rootfs.join("boot/initrd")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::write(rootfs.join("etc/kairos-release"), KAIROS_RELEASE).unwrap();
    // What a Kairos image runs as the init of its UKI (the whole rootfs is
    // the initrd): the fixture's init, with what it loads.
    let initramfs = dir.join("initramfs");
    std::fs::copy(initramfs.join("init"), rootfs.join("usr/bin/immucore")).unwrap();
    for f in ["etc/modules-order", "etc/udhcpc.script"] {
        std::fs::copy(initramfs.join(f), rootfs.join(f)).unwrap();
    }
    run(Command::new("cp")
        .arg("-r")
        .arg(initramfs.join("lib"))
        .arg(rootfs.join("lib")));
    std::fs::create_dir_all(rootfs.join("etc/cos")).unwrap();
    std::fs::write(rootfs.join("etc/cos/grub.cfg"), COS_GRUB_CFG).unwrap();
    std::fs::write(
        rootfs.join("etc/os-release"),
        "NAME=\"Kairos fixture\"\nID=kairos\n",
    )
    .unwrap();
    std::fs::write(&done, stamp).unwrap();
    rootfs
}

/// A copy of the fixture rootfs at `dest`, for tests that change it.
pub fn rootfs_copy(dest: &Path) {
    run(Command::new("cp").arg("-a").arg(rootfs()).arg(dest));
}

/// Direct kernel boot of the fixture with the given command line.
pub fn kernel_boot(append: &str) -> crate::qemu::Medium {
    let boot = rootfs().join("boot");
    let resolve =
        |link: &str| boot.join(std::fs::read_link(boot.join(link)).expect("fixture boot symlink"));
    crate::qemu::Medium::Kernel {
        kernel: resolve("vmlinuz"),
        initrd: resolve("initrd"),
        append: append.to_string(),
    }
}

/// Marker on the kernel command line of the release-style ISO's menu.
pub const RELEASE_MARKER: &str = "release.fixture=1";

/// A release-style ISO of the fixture, made the way upstream's release ISOs
/// are (xorriso with GRUB's El Torito image and hybrid MBR, partition
/// offset 16, the EFI image as appended GPT partition 2). Built once.
pub fn release_iso() -> PathBuf {
    let root = rootfs();
    let dir = crate::workspace().join("target/fixture");
    let iso = dir.join("release.iso");
    let lock = std::fs::File::create(dir.join(".release-lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    if iso.exists() {
        return iso;
    }
    let tree = dir.join("release-tree");
    let _ = std::fs::remove_dir_all(&tree);
    for d in ["boot/grub2", "boot/grub", "EFI/BOOT", "efi/EFI/BOOT"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    let boot = root.join("boot");
    let resolve = |link: &str| boot.join(std::fs::read_link(boot.join(link)).unwrap());
    std::fs::copy(resolve("vmlinuz"), tree.join("boot/kernel")).unwrap();
    std::fs::copy(resolve("initrd"), tree.join("boot/initrd")).unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("mksquashfs")
        .arg(&root)
        .arg(tree.join("rootfs.squashfs"))
        .args(["-b", "1024k", "-noappend", "-quiet"]));
    std::fs::write(
        tree.join("boot/grub2/grub.cfg"),
        format!(
            "search --no-floppy --file --set=root /boot/kernel\nset timeout=1\nmenuentry \"Kairos\" {{\n    linux ($root)/boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs console=tty1 console=ttyS0 {RELEASE_MARKER}\n    initrd ($root)/boot/initrd\n}}\n"
        ),
    )
    .unwrap();
    let stub = "search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile ($root)/boot/grub2/grub.cfg\n";
    std::fs::write(tree.join("boot/grub/grub.cfg"), stub).unwrap();
    std::fs::write(tree.join("EFI/BOOT/grub.cfg"), stub).unwrap();
    let bootloader = Path::new("/usr/local/share/auroraboot/bootloader/amd64");
    std::fs::copy(
        bootloader.join("eltorito.img"),
        tree.join("boot/eltorito.img"),
    )
    .unwrap();
    std::fs::copy(
        bootloader.join("boot_hybrid.img"),
        tree.join("boot/boot_hybrid.img"),
    )
    .unwrap();
    std::fs::copy(
        bootloader.join("grubx64.efi"),
        tree.join("efi/EFI/BOOT/bootx64.efi"),
    )
    .unwrap();
    std::fs::write(tree.join("efi/EFI/BOOT/grub.cfg"), stub).unwrap();
    let uefi = tree.join("boot/uefi.img");
    run(Command::new("truncate").args(["-s", "4M"]).arg(&uefi));
    run(Command::new("mkfs.vfat")
        .args(["-n", "EFI_LIVE"])
        .arg(&uefi));
    run(Command::new("mcopy")
        .args(["-s", "-i"])
        .arg(&uefi)
        .arg(tree.join("efi/EFI"))
        .arg("::"));
    std::fs::remove_dir_all(tree.join("efi")).unwrap();
    let partial = dir.join("release.iso.partial");
    let _ = std::fs::remove_file(&partial);
    let hybrid = tree.join("boot/boot_hybrid.img");
    run(Command::new("xorriso")
        .args([
            "-volid", "COS_LIVE", "-joliet", "on", "-padding", "0", "-outdev",
        ])
        .arg(&partial)
        .arg("-map")
        .arg(&tree)
        .args(["/", "-chmod", "0755", "--"])
        .args(["-boot_image", "grub", "bin_path=/boot/eltorito.img"])
        .args(["-boot_image", "grub"])
        .arg(format!("grub2_mbr={}", hybrid.display()))
        .args(["-boot_image", "grub", "grub2_boot_info=on"])
        .args(["-boot_image", "any", "partition_offset=16"])
        .args(["-boot_image", "any", "cat_path=/boot/boot.catalog"])
        .args(["-boot_image", "any", "cat_hidden=on"])
        .args(["-boot_image", "any", "boot_info_table=on"])
        .args(["-boot_image", "any", "platform_id=0x00"])
        .args(["-boot_image", "any", "emul_type=no_emulation"])
        .args(["-boot_image", "any", "load_size=2048"])
        .args(["-append_partition", "2", "0xef"])
        .arg(&uefi)
        .args(["-boot_image", "any", "next"])
        .args([
            "-boot_image",
            "any",
            "efi_path=--interval:appended_partition_2:all::",
        ])
        .args(["-boot_image", "any", "platform_id=0xef"])
        .args(["-boot_image", "any", "emul_type=no_emulation"])
        .args(["-boot_image", "any", "appended_part_as=gpt"])
        .args(["-boot_image", "any", "mbr_force_bootable=on"]));
    std::fs::rename(&partial, &iso).unwrap();
    iso
}
