//! The GRUB configurations of a live ISO, as upstream writes them: the live
//! menu in `/boot/grub2/grub.cfg` and the stub that EFI GRUBs (whose prefix
//! is elsewhere) read first to find it.

/// Volume id the live kernel command line finds the medium by.
pub const VOLUME_ID: &str = "COS_LIVE";

/// What varies in the live menu.
pub struct Live<'a> {
    /// `iso.live_console` (upstream: `console=ttyS0 console=tty1`).
    pub console: &'a str,
    /// `iso.extend-live-cmdline`, appended to every entry.
    pub extra: &'a str,
    /// `nomodeset` is only added on x86.
    pub x86: bool,
}

/// The kernel's command-line limit on x86 and arm64 (`COMMAND_LINE_SIZE`,
/// with its terminating NUL): a longer line is cut by the kernel.
pub const MAX_CMDLINE: usize = 2048;

/// What GRUB puts for `$thor_options` at most (on that one machine).
const THOR_OPTIONS: &str = "iommu.passthrough=1 rd.driver.blacklist=nouveau";

/// How every menu entry starts its kernel's command line.
const LINUX: &str = "linux ($root)/boot/kernel ";

impl Live<'_> {
    /// Refuses settings that make an entry's command line longer than the
    /// kernel takes, naming the setting and the length: every `linux`
    /// line of [`Live::config`] is measured, with `$thor_options` at its
    /// longest.
    pub fn check(&self) -> Result<(), String> {
        let longest = self
            .config()
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix(LINUX))
            .map(|args| args.replace("$thor_options", THOR_OPTIONS).len())
            .max()
            .unwrap_or(0);
        if longest < MAX_CMDLINE {
            return Ok(());
        }
        Err(format!(
            "iso.extend-live-cmdline ({} bytes) and iso.live_console ({} bytes) make a live kernel \
             command line of {longest} bytes; the kernel takes at most {} (COMMAND_LINE_SIZE)",
            self.extra.len(),
            self.console.len(),
            MAX_CMDLINE - 1
        ))
    }

    /// The kernel arguments of the default entry.
    pub fn cmdline(&self, mode: &str) -> String {
        let mut args = vec![
            "cdroot",
            "root=live:CDLABEL=COS_LIVE",
            "rd.live.dir=/",
            "rd.live.squashimg=rootfs.squashfs",
            "net.ifnames=1",
        ];
        args.extend(self.console.split_whitespace());
        args.extend(["rd.cos.disable", "vga=795"]);
        if self.x86 {
            args.push("nomodeset");
        }
        args.extend(mode.split_whitespace());
        args.extend(["selinux=0", "$thor_options", "rd.live.overlay.overlayfs"]);
        args.extend(self.extra.split_whitespace());
        args.join(" ")
    }

    /// `/boot/grub2/grub.cfg`.
    pub fn config(&self) -> String {
        let entry = |title: &str, class: &str, mode: &str| {
            format!(
                "menuentry \"{title}\" --class {class} --unrestricted {{\n    echo Loading kernel...\n    linux ($root)/boot/kernel {}\n    echo Loading initrd...\n    initrd ($root)/boot/initrd\n}}\n\n",
                self.cmdline(mode)
            )
        };
        let mut cfg = String::from(
            "search --no-floppy --file --set=root /boot/kernel\n\
             set default=0\n\
             set timeout=10\n\
             set timeout_style=menu\n\
             set thor_options=\"\"\n\
             if [ \"${grub_platform}\" = \"efi\" ]; then\n    \
                 smbios --type 1 --get-string 5 --set product_name\n    \
                 if [ \"${product_name}\" = \"Thor\" ]; then\n        \
                     set thor_options=\"iommu.passthrough=1 rd.driver.blacklist=nouveau\"\n    \
                 fi\n\
             fi\n\
             if [ -f ${prefix}/fonts/unicode.pf2 ]; then\n    \
                 loadfont ${prefix}/fonts/unicode.pf2\n\
             fi\n\n",
        );
        cfg += &entry("Kairos", "os", "install-mode");
        cfg += &entry("Kairos (manual)", "os", "");
        cfg += &entry(
            "Kairos (interactive install)",
            "os",
            "install-mode-interactive",
        );
        cfg += &entry(
            "Kairos (remote recovery mode)",
            "os",
            "kairos.remote_recovery_mode",
        );
        cfg += &entry(
            "Kairos (boot local node from livecd)",
            "os",
            "kairos.boot_live_mode",
        );
        cfg += &format!(
            "menuentry \"Kairos (debug)\" --class os --unrestricted {{\n    echo Loading kernel...\n    linux ($root)/boot/kernel {} console=tty0 rd.debug rd.shell rd.immucore.debug\n    echo Loading initrd...\n    initrd ($root)/boot/initrd\n}}\n\n",
            self.cmdline("install-mode")
        );
        cfg += "submenu \"Kairos boot to RAM\" {\n";
        for (title, mode) in [
            (
                "Kairos (boot to RAM)",
                "install-mode kairos.ram kairos.ram.create_partitions",
            ),
            (
                "Kairos (manual, boot to RAM)",
                "kairos.ram kairos.ram.create_partitions",
            ),
        ] {
            cfg += entry(title, "os", mode).replace('\n', "\n    ").trim_end();
            cfg += "\n";
        }
        cfg += "}\n\n";
        cfg += &format!(
            "if [ \"${{grub_platform}}\" = \"efi\" ]; then\n    \
             menuentry \"Kairos (text mode)\" --hotkey t --hidden --class os --unrestricted {{\n        \
             linux ($root)/boot/kernel {} nomodeset\n        \
             initrd ($root)/boot/initrd\n    }}\nfi\n",
            self.cmdline("install-mode")
        );
        cfg
    }
}

/// The stub an EFI GRUB reads from its own prefix (`EFI/BOOT/grub.cfg`,
/// `boot/grub/grub.cfg`): find the medium by its kernel, load the live menu.
pub const STUB: &str = "search --no-floppy --file --set=root /boot/kernel\n\
set prefix=($root)/boot/grub2\n\
configfile ($root)/boot/grub2/grub.cfg\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_command_lines_are_refused() {
        let long = "x".repeat(130 * 1024);
        let live = Live {
            console: "console=ttyS0",
            extra: &long,
            x86: true,
        };
        let e = live.check().unwrap_err();
        assert!(e.contains("iso.extend-live-cmdline (133120 bytes)"), "{e}");
        assert!(e.contains("at most 2047"), "{e}");
        let fits = "y".repeat(1700);
        assert!(
            Live {
                console: "console=ttyS0",
                extra: &fits,
                x86: true
            }
            .check()
            .is_ok()
        );
        // An extra that fits every plain entry but not the debug one (48
        // bytes longer): the whole menu is measured.
        let plain = Live {
            console: "console=ttyS0",
            extra: "",
            x86: true,
        }
        .cmdline("kairos.remote_recovery_mode")
        .replace("$thor_options", THOR_OPTIONS)
        .len();
        let edge = "y".repeat(MAX_CMDLINE - 1 - plain - 1 - 10);
        let live = Live {
            console: "console=ttyS0",
            extra: &edge,
            x86: true,
        };
        assert!(
            live.cmdline("kairos.remote_recovery_mode")
                .replace("$thor_options", THOR_OPTIONS)
                .len()
                < MAX_CMDLINE
        );
        assert!(live.check().is_err());
    }

    #[test]
    fn default_entry_matches_upstream() {
        let live = Live {
            console: "console=ttyS0 console=tty1",
            extra: "",
            x86: true,
        };
        assert_eq!(
            live.cmdline("install-mode"),
            "cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs \
             net.ifnames=1 console=ttyS0 console=tty1 rd.cos.disable vga=795 nomodeset install-mode \
             selinux=0 $thor_options rd.live.overlay.overlayfs"
        );
        let arm = Live {
            console: "console=ttyS0",
            extra: "quiet  foo=bar",
            x86: false,
        };
        assert!(
            arm.cmdline("")
                .ends_with("rd.live.overlay.overlayfs quiet foo=bar")
        );
        assert!(!arm.cmdline("").contains("nomodeset"));
    }

    #[test]
    fn config_has_every_entry_and_balanced_braces() {
        let cfg = Live {
            console: "console=ttyS0",
            extra: "x=1",
            x86: true,
        }
        .config();
        for title in [
            "\"Kairos\"",
            "(manual)",
            "(interactive install)",
            "remote recovery",
            "boot local node",
            "(debug)",
            "boot to RAM",
            "text mode",
        ] {
            assert!(cfg.contains(title), "{title} missing:\n{cfg}");
        }
        assert_eq!(cfg.matches('{').count(), cfg.matches('}').count());
        assert!(cfg.starts_with("search --no-floppy --file --set=root /boot/kernel"));
    }
}
