//! Microsoft's Secure Boot certificates, which genkey adds to KEK and db
//! as upstream does (without them, option ROMs signed by Microsoft, such
//! as many GPUs' and NICs', stop loading). The source is the
//! `virtfw-libefi` crate's `sbdata` (Red Hat's virt-firmware), so it works
//! offline; the files are byte-identical to the ones upstream embeds from
//! `foxboron/sbctl`'s `certs/microsoft` (checked by SHA-256 in the tests).

use uguid::{Guid, guid};
use virtfw_libefi::sb::certs as sb;

/// The owner GUID sbctl (and so upstream) gives Microsoft's entries.
pub const OWNER: Guid = guid!("77fa9abd-0359-4d32-bd60-28f4e78f784b");

/// KEK entries, in upstream's order (sbctl's file names, sorted).
pub const KEK: [(&str, &[u8]); 2] = [
    ("Microsoft Corporation KEK CA 2011", sb::MICROSOFT_KEK_2011),
    (
        "Microsoft Corporation KEK 2K CA 2023",
        sb::MICROSOFT_KEK_2023,
    ),
];

/// db entries, in upstream's order.
pub const DB: [(&str, &[u8]); 5] = [
    (
        "Microsoft Corporation UEFI CA 2011",
        sb::MICROSOFT_DB_UEFI_2011,
    ),
    (
        "Microsoft Windows Production PCA 2011",
        sb::MICROSOFT_DB_WINDOWS_2011,
    ),
    (
        "Microsoft Option ROM UEFI CA 2023",
        sb::MICROSOFT_DB_UEFI_ROM_2023,
    ),
    ("Microsoft UEFI CA 2023", sb::MICROSOFT_DB_UEFI_2023),
    ("Windows UEFI CA 2023", sb::MICROSOFT_DB_WINDOWS_2023),
];

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use sha2::{Digest, Sha256};

    /// SHA-256 of sbctl's files (upstream's source), recorded from
    /// foxboron/sbctl `certs/microsoft/{KEK,db}/*.der`.
    const SBCTL: [&str; 7] = [
        "a1117f516a32cefcba3f2d1ace10a87972fd6bbe8fe0d0b996e09e65d802a503",
        "3cd3f0309edae228767a976dd40d9f4affc4fbd5218f2e8cc3c9dd97e8ac6f9d",
        "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507",
        "e8e95f0733a55e8bad7be0a1413ee23c51fcea64b3c8fa6a786935fddcc71961",
        "e5be3e64c6e66a281457ecdece0d6d0787577aad2a3a0144262c10c14ba8d8f1",
        "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901",
        "076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330",
    ];

    #[test]
    fn the_certificates_are_upstreams_and_named_by_their_subjects() {
        let all: Vec<_> = KEK.iter().chain(DB.iter()).collect();
        for ((name, der), sum) in all.iter().zip(SBCTL) {
            assert_eq!(hex::encode(Sha256::digest(der)), sum, "{name}");
            let cert = x509_cert::Certificate::from_der(der).unwrap();
            let subject = cert.tbs_certificate.subject.to_string();
            assert!(subject.contains(&format!("CN={name}")), "{name}: {subject}");
        }
    }
}
