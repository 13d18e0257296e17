//! The OEM partition's files as upstream writes them: the cloud-config
//! (`90_custom.yaml`, else a default user), `grubenv` booting the recovery
//! entry once, and `01_reset.yaml`, which on that first boot lays out
//! COS_STATE and COS_PERSISTENT and resets into the installed system.

/// Upstream's default cloud-config (user kairos/kairos in group admin).
pub const DEFAULT_CLOUD_CONFIG: &str = "#cloud-config
stages:
  initramfs:
    - name: \"Set user and password\"
      users:
        kairos:
          passwd: \"kairos\"
          groups:
            - \"admin\"";

pub const CLOUD_CONFIG_FILE: &str = "90_custom.yaml";
pub const RESET_FILE: &str = "01_reset.yaml";
pub const GRUBENV_FILE: &str = "grubenv";

/// `90_custom.yaml`'s content: the cloud-config, else the default unless
/// `no_default_cloud_config`; `None` = no file.
pub fn cloud_config(given: &str, no_default: bool) -> Option<String> {
    if !given.is_empty() {
        Some(given.to_string())
    } else if no_default {
        None
    } else {
        Some(DEFAULT_CLOUD_CONFIG.to_string())
    }
}

/// A GRUB environment block (1024 bytes, `#`-padded) with `vars`.
pub fn grubenv(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut env = b"# GRUB Environment Block\n".to_vec();
    for (k, v) in vars {
        env.extend_from_slice(format!("{k}={v}\n").as_bytes());
    }
    env.resize(1024.max(env.len()), b'#');
    env
}

/// Upstream's first-boot layout and auto-reset stages.
pub fn reset_config(state_mib: u64) -> String {
    format!(
        r#"name: Expand disk layout and autoreset
stages:
    after-reset:
        - commands:
            - rm /oem/{RESET_FILE}
          if: '[ -f "/oem/{RESET_FILE}" ]'
          name: Auto remove this file
    network:
        - commands:
            - udevadm trigger
          name: Trigger udevadm
        - commands:
            - kairos-agent --debug reset --unattended --reboot
          if: '[ -f "/run/cos/recovery_mode" ] && [ ! -f "/oem/.autoreset.skip" ]'
          name: Run auto reset
    rootfs.before:
        - name: Add state partition
          layout:
            device:
                label: COS_RECOVERY
            add_partitions:
                - fsLabel: COS_STATE
                  size: {state_mib}
                  pLabel: state
                  filesystem: ext2
                - fsLabel: COS_PERSISTENT
                  pLabel: persistent
                  filesystem: ext2
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oem_files() {
        assert_eq!(cloud_config("x", true).as_deref(), Some("x"));
        assert_eq!(cloud_config("", true), None);
        assert!(
            cloud_config("", false)
                .unwrap()
                .contains("passwd: \"kairos\"")
        );
        let env = grubenv(&[("next_entry", "recovery")]);
        assert_eq!(env.len(), 1024);
        assert!(env.starts_with(b"# GRUB Environment Block\nnext_entry=recovery\n#"));
        let reset = reset_config(1234);
        assert!(reset.contains("size: 1234\n"));
        assert!(reset.contains("rm /oem/01_reset.yaml"));
    }
}
