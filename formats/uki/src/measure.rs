//! PCR 11 as a UKI leaves it: systemd-stub extends it with each known
//! section, in the spec's canonical order, as SHA-256 of the section name
//! (with its NUL) then of its contents; systemd-pcrphase then extends it
//! with the boot phase words. `systemd-measure` (and go-ukify) sign a TPM2
//! PolicyPCR digest for each phase's value; the stub hands `.pcrsig` and
//! `.pcrpkey` to the OS, which unlocks TPM-sealed secrets with them.
//!
//! Which sections the stub measures depends on its version: `.uname` since
//! systemd 253, `.sbat` since 254 (the stub already carries `.sbat`).

use sha2::{Digest, Sha256};

/// The phases upstream signs for, each the path of words to its point.
pub const PHASES: [&[&str]; 4] = [
    &["enter-initrd"],
    &["enter-initrd", "leave-initrd"],
    &["enter-initrd", "leave-initrd", "sysinit"],
    &["enter-initrd", "leave-initrd", "sysinit", "ready"],
];

/// `TPM2_CC_PolicyPCR`.
const TPM2_CC_POLICY_PCR: u32 = 0x0000_017f;
/// `TPM2_ALG_SHA256`.
const TPM2_ALG_SHA256: u16 = 0x000b;
pub const PCR: u32 = 11;

/// The systemd version a stub reports in its `.sdmagic` section
/// (`#### LoaderInfo: systemd-stub 254.26-1~bpo12+1 ####`).
pub fn stub_version(sdmagic: &[u8]) -> Option<u32> {
    sdmagic_version(sdmagic, "systemd-stub")
}

/// The version `program` (`systemd-stub`, `systemd-boot`) reports in an
/// `.sdmagic` section.
pub fn sdmagic_version(sdmagic: &[u8], program: &str) -> Option<u32> {
    let text = std::str::from_utf8(sdmagic).ok()?;
    let rest = text.split(&format!("{program} ")).nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The sections a stub of `version` measures, in its order.
pub fn measured_sections(version: u32) -> Vec<&'static str> {
    let mut names = vec![".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb"];
    if version >= 253 {
        names.push(".uname");
    }
    if version >= 254 {
        names.push(".sbat");
    }
    names.push(".pcrpkey");
    names
}

fn extend(pcr: &mut [u8; 32], data: &[u8]) {
    let mut h = Sha256::new();
    h.update(*pcr);
    h.update(Sha256::digest(data));
    *pcr = h.finalize().into();
}

/// PCR 11 after the stub: `sections` are (name, contents) of the UKI, in
/// any order; those the stub does not know are ignored.
pub fn after_stub(sections: &[(&str, &[u8])], version: u32) -> [u8; 32] {
    let mut pcr = [0u8; 32];
    for name in measured_sections(version) {
        if let Some((_, data)) = sections.iter().find(|(n, _)| *n == name) {
            let mut with_nul = name.as_bytes().to_vec();
            with_nul.push(0);
            extend(&mut pcr, &with_nul);
            extend(&mut pcr, data);
        }
    }
    pcr
}

/// PCR 11 after each of [`PHASES`], as ("enter-initrd:leave-initrd", value).
pub fn phases(after_stub: [u8; 32]) -> Vec<(String, [u8; 32])> {
    PHASES
        .iter()
        .map(|words| {
            let mut pcr = after_stub;
            for w in *words {
                extend(&mut pcr, w.as_bytes());
            }
            (words.join(":"), pcr)
        })
        .collect()
}

/// The TPM2 policy digest of `PolicyPCR(sha256:11 = value)` from an empty
/// policy: what the signature in `.pcrsig` covers.
pub fn policy_digest(value: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(TPM2_CC_POLICY_PCR.to_be_bytes());
    // TPML_PCR_SELECTION: one selection, SHA-256, 3 bytes of bitmap.
    h.update(1u32.to_be_bytes());
    h.update(TPM2_ALG_SHA256.to_be_bytes());
    let mut bitmap = [0u8; 3];
    bitmap[(PCR / 8) as usize] |= 1 << (PCR % 8);
    h.update([3u8]);
    h.update(bitmap);
    h.update(Sha256::digest(value));
    h.finalize().into()
}

/// `.pcrsig`'s JSON as `systemd-measure sign --json=short` writes it: one
/// entry per phase with the policy digest (`pol`), the signature (`sig`,
/// base64) and the SHA-256 of the signing key as PKCS#1 `RSAPublicKey` DER
/// (`pkfp`, what systemd's `pubkey_fingerprint` hashes). `sign` signs a
/// SHA-256 digest (RSASSA-PKCS1-v1_5): the digest of the policy digest,
/// which is what a TPM checks for `TPM2_PolicyAuthorize` (its aHash over
/// the approved policy and an empty policyRef). Checked byte for byte
/// against `systemd-measure sign` (host/secureboot/tests/pcrsig.rs).
pub fn pcrsig<E>(
    values: &[(String, [u8; 32])],
    rsa_public_key: &[u8],
    mut sign: impl FnMut(&[u8; 32]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    let pkfp = hex(&Sha256::digest(rsa_public_key));
    let mut entries = Vec::new();
    for (_, value) in values {
        let pol = policy_digest(value);
        let sig = sign(&Sha256::digest(pol).into())?;
        entries.push(serde_json::json!({
            "pcrs": [PCR],
            "pkfp": pkfp,
            "pol": hex(&pol),
            "sig": base64(&sig),
        }));
    }
    Ok(serde_json::json!({ "sha256": entries })
        .to_string()
        .into_bytes())
}

/// The PKCS#1 `RSAPublicKey` DER inside a DER SubjectPublicKeyInfo (the
/// key `pkfp` names), or `None` when `spki` is not one.
pub fn pkcs1_of_spki(spki: &[u8]) -> Option<&[u8]> {
    use spki::der::Decode;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    info.subject_public_key.as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (what systemd writes).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_the_standard_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_stub_version_comes_from_sdmagic() {
        assert_eq!(
            stub_version(b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####"),
            Some(252)
        );
        assert_eq!(
            stub_version(b"#### LoaderInfo: systemd-stub 254.26-1~bpo12+1 ####\0"),
            Some(254)
        );
        assert_eq!(stub_version(b"garbage"), None);
        assert_eq!(
            sdmagic_version(
                b"#### LoaderInfo: systemd-boot 257.9-1 ####",
                "systemd-boot"
            ),
            Some(257)
        );
        assert!(!measured_sections(252).contains(&".uname"));
        assert!(measured_sections(254).contains(&".sbat"));
    }
}
