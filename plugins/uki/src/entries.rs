//! The boot entries of a UKI build, as upstream names and titles them
//! (`pkg/uki/uki.go` `GetUkiCmdline`, `GetUkiSingleCmdlines`,
//! `NameFromCmdline`, `createConfFiles`, `createSystemdConf`): one UKI per
//! command line, each with a systemd-boot entry file.

/// Kairos's UKI command line (upstream `constants.UkiCmdline`).
pub const CMDLINE: &str = "console=ttyS0 console=tty1 net.ifnames=1 rd.immucore.oemlabel=COS_OEM rd.immucore.oemtimeout=2 rd.immucore.uki selinux=0 panic=5 rd.shell=0 systemd.crash_reboot=yes";
/// What the install medium adds (upstream `constants.UkiCmdlineInstall`).
pub const INSTALL: &str = "install-mode";
/// The default entries' file name (upstream `constants.ArtifactBaseName`).
pub const BASE_NAME: &str = "norole";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub title: String,
    pub cmdline: String,
    /// `EFI/kairos/<file_name>.efi`, `loader/entries/<file_name>.conf`.
    pub file_name: String,
}

fn default_cmdline() -> String {
    format!("{CMDLINE} {INSTALL}")
}

/// `basename_<the cmdline's own part, cleaned>`, lowercase.
pub fn name_from_cmdline(basename: &str, cmdline: &str) -> String {
    let mut own = cmdline.strip_prefix(CMDLINE).unwrap_or(cmdline).trim();
    if own == INSTALL {
        own = "";
    }
    let mut clean = String::new();
    let mut in_run = false;
    for c in own.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            clean.push(c);
            in_run = false;
        } else if !in_run {
            clean.push('_');
            in_run = true;
        }
    }
    let name = format!("{basename}_{clean}");
    name.strip_suffix('_').unwrap_or(&name).to_lowercase()
}

/// The entries of `--extend-cmdline`/`--extra-cmdline` (exclusive) and of
/// each `--single-efi-cmdline "Title: args"`.
pub fn entries(branding: &str, extend: &str, extra: &[String], single: &[String]) -> Vec<Entry> {
    let base = default_cmdline();
    let mut out = Vec::new();
    if !extend.is_empty() {
        out.push(Entry {
            title: branding.into(),
            cmdline: format!("{base} {extend}"),
            file_name: BASE_NAME.into(),
        });
    } else {
        out.push(Entry {
            title: branding.into(),
            cmdline: base.clone(),
            file_name: BASE_NAME.into(),
        });
        for e in extra {
            let cmdline = format!("{base} {e}");
            out.push(Entry {
                title: branding.into(),
                file_name: name_from_cmdline(BASE_NAME, &cmdline),
                cmdline,
            });
        }
    }
    for value in single {
        out.push(match value.split_once(':') {
            Some((title, args)) => Entry {
                title: format!("{branding} ({title})"),
                cmdline: format!("{base} {args}"),
                file_name: title.replace(' ', "_").to_lowercase(),
            },
            None => Entry {
                title: branding.into(),
                cmdline: format!("{base} {value}"),
                file_name: name_from_cmdline("single_entry", value),
            },
        });
    }
    out
}

/// The systemd-boot version that reads an entry's `uki` key (255); older
/// ones ignore it, so their entries name the UKI with `efi` instead.
pub const UKI_KEY_SINCE: u32 = 255;

/// `loader/entries/<file_name>.conf` (profile 0), for a systemd-boot of
/// `boot_version`.
pub fn conf(
    entry: &Entry,
    version: &str,
    include_version: bool,
    include_cmdline: bool,
    boot_version: u32,
) -> String {
    let mut own = entry
        .cmdline
        .strip_prefix(CMDLINE)
        .unwrap_or(&entry.cmdline)
        .trim();
    if own == INSTALL {
        own = "";
    }
    let name = &entry.file_name;
    let key = if boot_version >= UKI_KEY_SINCE {
        "uki"
    } else {
        "efi"
    };
    let mut text = format!(
        "title {}\nsort-key {name}-0\n{key} /EFI/kairos/{name}.efi\nprofile 0\n",
        entry.title
    );
    if include_version {
        text += &format!("version {version}\n");
    }
    if include_cmdline {
        text += &format!("cmdline {}\n", own.trim_matches(' '));
    }
    text
}

/// `loader/loader.conf`.
pub fn loader_conf(secure_boot_enroll: &str) -> String {
    format!("timeout 5\nconsole-mode max\neditor no\nsecure-boot-enroll {secure_boot_enroll}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstreams_cleaning() {
        assert_eq!(name_from_cmdline(BASE_NAME, &default_cmdline()), "norole");
        assert_eq!(
            name_from_cmdline(
                BASE_NAME,
                &format!("{} rd.debug foo=Bar,baz", default_cmdline())
            ),
            "norole_install-mode_rd.debug_foo_bar_baz"
        );
        assert_eq!(
            name_from_cmdline("single_entry", "quiet splash"),
            "single_entry_quiet_splash"
        );
    }

    #[test]
    fn entries_as_upstream_makes_them() {
        let base = default_cmdline();
        assert_eq!(
            entries("Kairos", "", &[], &[]),
            [Entry {
                title: "Kairos".into(),
                cmdline: base.clone(),
                file_name: "norole".into()
            }]
        );
        let e = entries(
            "Kairos",
            "",
            &["rd.debug".into()],
            &["My Entry: quiet".into(), "nomodeset".into()],
        );
        assert_eq!(e.len(), 4);
        assert_eq!(e[1].file_name, "norole_install-mode_rd.debug");
        assert_eq!(
            e[2],
            Entry {
                title: "Kairos (My Entry)".into(),
                cmdline: format!("{base}  quiet"),
                file_name: "my_entry".into()
            }
        );
        assert_eq!(e[3].file_name, "single_entry_nomodeset");
        let extended = entries("Acme", "rd.x", &["ignored".into()], &[]);
        assert_eq!(
            extended,
            [Entry {
                title: "Acme".into(),
                cmdline: format!("{base} rd.x"),
                file_name: "norole".into()
            }]
        );
    }

    #[test]
    fn conf_files() {
        let e = &entries("Kairos", "rd.x", &[], &[])[0];
        assert_eq!(
            conf(e, "v3.2.1", false, false, 257),
            "title Kairos\nsort-key norole-0\nuki /EFI/kairos/norole.efi\nprofile 0\n"
        );
        assert!(
            conf(e, "v3.2.1", true, true, 257)
                .ends_with("version v3.2.1\ncmdline install-mode rd.x\n")
        );
        assert!(
            conf(e, "v3.2.1", false, false, 254).contains("\nefi /EFI/kairos/norole.efi\n"),
            "254 reads no uki key"
        );
        assert_eq!(
            loader_conf("if-safe"),
            "timeout 5\nconsole-mode max\neditor no\nsecure-boot-enroll if-safe\n"
        );
    }
}
