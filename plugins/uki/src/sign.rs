//! Signed EFI binaries: a UKI per entry (stub + sections + `.pcrsig`, then
//! Authenticode) and systemd-boot, all signed by the host with the user's
//! keys (`uki.sb_key`, `uki.tpm_pcr_private_key`): this plugin computes the
//! digests, the host signs them.

use auroraboot_pe::Pe;
use auroraboot_sdk::signing::Key;
use auroraboot_uki::{Parts, measure};

/// The keys a build signs with.
pub struct Keys<'a> {
    /// Secure Boot (Authenticode) key with its certificate.
    pub secure_boot: &'a Key,
    /// TPM PCR policy key.
    pub pcr: &'a Key,
}

/// `pe` signed with the Secure Boot key.
pub fn authenticode(mut pe: Pe, keys: &Keys<'_>, what: &str) -> Result<Vec<u8>, String> {
    pe.prepare_for_signing()
        .map_err(|e| format!("{what}: {e}"))?;
    let digest = pe
        .authenticode_sha256()
        .map_err(|e| format!("{what}: {e}"))?;
    let signature = keys
        .secure_boot
        .authenticode(&digest)
        .map_err(|e| format!("{what}: {e}"))?;
    pe.embed_signature(&signature)
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(pe.into_bytes())
}

/// The PEM of a DER public key (what `.pcrpkey` holds).
fn public_pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem.into_bytes()
}

/// One signed UKI of `parts` (its `.pcrpkey` is set here) on `stub`.
pub fn uki(stub: &[u8], parts: Parts<'_>, keys: &Keys<'_>, what: &str) -> Result<Vec<u8>, String> {
    let public = keys.pcr.public_key();
    let pem = public_pem(&public);
    let parts = Parts {
        pcrpkey: Some(&pem),
        ..parts
    };
    let stub_pe = Pe::parse(stub.to_vec()).map_err(|e| format!("the EFI stub: {e}"))?;
    let version = stub_pe
        .section_data(".sdmagic")
        .and_then(measure::stub_version)
        .ok_or("the EFI stub names no systemd-stub version in .sdmagic")?;
    let mut sections = parts.sections();
    if let Some(sbat) = stub_pe.section_data(".sbat") {
        sections.push((".sbat", sbat));
    }
    let values = measure::phases(measure::after_stub(&sections, version));
    let pkcs1 = measure::pkcs1_of_spki(&public)
        .ok_or_else(|| format!("{what}: uki.tpm_pcr_private_key is not an RSA key"))?;
    let pcrsig = measure::pcrsig(&values, pkcs1, |digest| {
        keys.pcr.sign_digest(digest).map_err(|e| e.message)
    })
    .map_err(|e| format!("{what}: signing its PCR policy: {e}"))?;
    let pe = auroraboot_uki::assemble(stub.to_vec(), &parts, Some(&pcrsig))
        .map_err(|e| format!("{what}: {e}"))?;
    authenticode(pe, keys, what)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_is_base64_in_64_column_lines() {
        let pem = String::from_utf8(super::public_pem(&[0xff; 100])).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[1], "/".repeat(64));
        assert_eq!(lines[2].len(), 64);
        assert!(lines[3].ends_with("/w=="), "{}", lines[3]);
        assert_eq!(*lines.last().unwrap(), "-----END PUBLIC KEY-----");
    }
}
