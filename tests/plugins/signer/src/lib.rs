//! Signs with the host's keys, and looks for them. It signs the PE found in
//! its `signer.pe` asset (Authenticode, with `signer.sb_key`) and a fixed
//! digest (with `signer.pcr_key`), and writes `seen.txt`: every setting,
//! asset and environment variable it was given, the public keys and
//! certificate, what misuse of the keys answers, and what reading the key
//! files by path does. The test checks that the signatures verify and that
//! nothing in `seen.txt` is a private key or its path.

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, Setting, register_plugin,
};
use std::fmt::Write;

struct Signer;

/// The digest `signer.pcr_key` signs (the test verifies the signature).
const DIGEST: [u8; 32] = [7; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Plugin for Signer {
    fn info() -> PluginInfo {
        PluginInfo::new("signer", "0.0.1")
            .output(
                OutputInfo::new(
                    "signed",
                    "a signed PE and what the plugin saw",
                    "BOOTX64.EFI",
                )
                .in_directory("signed"),
            )
            .setting(Setting::private_key(
                "signer.sb_key",
                Some("signer.sb_cert"),
                "Secure Boot key",
            ))
            .setting(Setting::certificate("signer.sb_cert", "its certificate"))
            .setting(Setting::private_key(
                "signer.pcr_key",
                None,
                "PCR policy key",
            ))
            .setting(
                Setting::text("signer.look_at", "a host path to try to read").with_default("/"),
            )
            .setting(Setting::directory("signer.pe", "where BOOTX64.EFI is"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let mut seen = String::new();
        for (key, value) in request.settings.iter() {
            writeln!(seen, "setting {key}={value:?}")?;
        }
        for (key, value) in std::env::vars() {
            writeln!(seen, "env {key}={value}")?;
        }
        let look_at = request
            .settings
            .get_str("signer.look_at")
            .unwrap_or_else(|| "/".into());
        for path in [look_at.as_str(), "/", ".", "/etc/passwd"] {
            writeln!(
                seen,
                "read {path}: {:?}",
                std::fs::read(path).map(|b| b.len())
            )?;
            writeln!(
                seen,
                "list {path}: {:?}",
                std::fs::read_dir(path).map(|d| d.count())
            )?;
        }
        let sb = request
            .key("signer.sb_key")
            .ok_or("signer.sb_key was not given")?;
        let pcr = request
            .key("signer.pcr_key")
            .ok_or("signer.pcr_key was not given")?;
        writeln!(seen, "sb public {}", hex(&sb.public_key()))?;
        writeln!(
            seen,
            "sb certificate {}",
            hex(&sb.certificate().unwrap_or_default())
        )?;
        writeln!(seen, "pcr public {}", hex(&pcr.public_key()))?;
        writeln!(seen, "pcr certificate {:?}", pcr.certificate())?;
        writeln!(seen, "pcr signature {}", hex(&pcr.sign_digest(&DIGEST)?))?;
        writeln!(
            seen,
            "pcr authenticode: {:?}",
            pcr.authenticode(&DIGEST)
                .map(|s| s.len())
                .map_err(|e| e.message)
        )?;

        let pe_dir = request
            .asset("signer.pe")
            .ok_or("signer.pe was not given")?;
        let bytes = pe_dir.read("BOOTX64.EFI")?;
        let mut pe = auroraboot_pe::Pe::parse(bytes).map_err(|e| e.to_string())?;
        pe.prepare_for_signing().map_err(|e| e.to_string())?;
        let digest = pe.authenticode_sha256().map_err(|e| e.to_string())?;
        pe.embed_signature(&sb.authenticode(&digest)?)
            .map_err(|e| e.to_string())?;
        let out = request.create_output("signed", "BOOTX64.EFI")?;
        out.write_at(0, pe.bytes())?;
        let report = request.create_output("signed", "seen.txt")?;
        report.write_at(0, seen.as_bytes())?;
        Ok(Report::new("signed BOOTX64.EFI"))
    }
}

register_plugin!(Signer);
