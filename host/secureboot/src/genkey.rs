//! `genkey`: a Secure Boot key set as upstream writes it. For each of PK,
//! KEK and db: `.key` (PKCS#8 PEM, unencrypted), `.pem`, `.der`, `.esl` (the
//! variable's signature list) and `.auth` (a time-based authenticated update
//! signed by its parent: PK signs PK and KEK, KEK signs db); and
//! `tpm2-pcr-private.pem`, the key that signs UKI PCR policies.
//!
//! Everything is made in memory first and written all-or-nothing; existing
//! key files are never replaced (they may be enrolled in machines).

use crate::auth::{self, Variable};
use crate::cert;
use crate::esl::{CERT_SHA256, CERT_X509, SignatureDatabase};
use crate::microsoft;
use crate::signer::{FileKey, Signer};
use der::{Decode, Encode, EncodePem};
use pkcs8::{EncodePrivateKey, LineEnding};
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use uguid::{Guid, guid};

/// The owner GUID sbctl (and so upstream) gives `--custom-cert-dir` entries.
pub const CUSTOM_OWNER: Guid = guid!("88a69775-5ad7-45d9-9f34-cec43e1f1989");

#[derive(Debug, Clone)]
pub struct Options {
    /// Certificates are `CN=<name>-PK`, `-KEK`, `-db`.
    pub name: String,
    pub expiration_days: u32,
    /// Add Microsoft's certificates to KEK and db (upstream's default).
    pub microsoft: bool,
    /// A directory with `db` and `KEK` signature lists exported from a
    /// machine's firmware, whose certificates join ours.
    pub custom_cert_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenkeyError {
    #[error("the key set needs a name (certificates are CN=<name>-PK, -KEK, -db)")]
    NoName,
    #[error("the expiration must be at least one day")]
    NoDays,
    #[error("custom cert directory {0} does not exist or is not a directory")]
    NoCustomDir(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Esl {
        path: PathBuf,
        source: crate::esl::EslError,
    },
    #[error(
        "{dir} already holds {files}: genkey never replaces keys (they may be enrolled); remove them or choose another --output"
    )]
    Exists { dir: PathBuf, files: String },
    #[error(transparent)]
    Cert(#[from] cert::CertError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("encoding {what}: {reason}")]
    Encode { what: String, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenkeyError + '_ {
    move |source| GenkeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn encode(what: &str) -> impl FnOnce(String) -> GenkeyError + '_ {
    move |reason| GenkeyError::Encode {
        what: what.to_string(),
        reason,
    }
}

/// One file of the set.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// Certificates from `--custom-cert-dir`, DER, in file order.
#[derive(Debug, Default)]
pub struct CustomCertificates {
    pub kek: Vec<Vec<u8>>,
    pub db: Vec<Vec<u8>>,
}

impl CustomCertificates {
    fn of(&self, variable: Variable) -> &[Vec<u8>] {
        match variable {
            Variable::Pk => &[],
            Variable::Kek => &self.kek,
            Variable::Db => &self.db,
        }
    }
}

/// Reads `<dir>/db` and `<dir>/KEK` (raw signature lists, as firmware
/// exports its variables). Certificates are kept; other entries are
/// skipped with a warning, as upstream does.
pub fn read_custom_certificates(dir: &Path) -> Result<CustomCertificates, GenkeyError> {
    if !dir.is_dir() {
        return Err(GenkeyError::NoCustomDir(dir.to_path_buf()));
    }
    let mut custom = CustomCertificates::default();
    for (name, into) in [("db", &mut custom.db), ("KEK", &mut custom.kek)] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let db = SignatureDatabase::parse(&bytes).map_err(|source| GenkeyError::Esl {
            path: path.clone(),
            source,
        })?;
        for list in &db.lists {
            if list.kind != CERT_X509 {
                let what = if list.kind == CERT_SHA256 {
                    "SHA-256 hash"
                } else {
                    "unsupported"
                };
                tracing::warn!(
                    "{}: skipping {} {what} entries (only certificates are carried over)",
                    path.display(),
                    list.signatures.len()
                );
                continue;
            }
            for s in &list.signatures {
                match x509_cert::Certificate::from_der(&s.data) {
                    Ok(_) => into.push(s.data.clone()),
                    Err(e) => tracing::warn!(
                        "{}: skipping an entry of owner {} that is not a certificate: {e}",
                        path.display(),
                        s.owner
                    ),
                }
            }
        }
        tracing::info!(
            "{}: {} certificate(s) to enroll with {name}",
            path.display(),
            into.len()
        );
    }
    Ok(custom)
}

fn random_owner() -> Guid {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    Guid::from_random_bytes(bytes)
}

/// The value of `variable`: its own certificate, then Microsoft's and the
/// custom ones (not for PK).
fn database(
    variable: Variable,
    own: &[u8],
    owner: Guid,
    options: &Options,
    custom: &CustomCertificates,
) -> Result<SignatureDatabase, GenkeyError> {
    let mut db = SignatureDatabase::new();
    let esl = |e| encode("a signature list")(format!("{e}"));
    db.append(CERT_X509, owner, own).map_err(esl)?;
    if variable != Variable::Pk && options.microsoft {
        let certs: &[(&str, &[u8])] = if variable == Variable::Kek {
            &microsoft::KEK
        } else {
            &microsoft::DB
        };
        for (_, der) in certs {
            db.append(CERT_X509, microsoft::OWNER, der).map_err(esl)?;
        }
    }
    for der in custom.of(variable) {
        db.append(CERT_X509, CUSTOM_OWNER, der).map_err(esl)?;
    }
    Ok(db)
}

/// Makes the whole set in memory.
pub fn generate(options: &Options, now: SystemTime) -> Result<Vec<KeyFile>, GenkeyError> {
    if options.name.is_empty() {
        return Err(GenkeyError::NoName);
    }
    if options.expiration_days == 0 {
        return Err(GenkeyError::NoDays);
    }
    let custom = match &options.custom_cert_dir {
        Some(dir) => read_custom_certificates(dir)?,
        None => CustomCertificates::default(),
    };
    let owner = random_owner();
    let time = auth::efi_time(now)?;
    let mut keys = Vec::new();
    for variable in Variable::ALL {
        tracing::info!(
            "generating {} (CN={}-{})",
            variable.name(),
            options.name,
            variable.name()
        );
        keys.push(cert::self_signed(
            &format!("{}-{}", options.name, variable.name()),
            options.expiration_days,
            now,
        )?);
    }
    let key_of = |v: Variable| &keys[Variable::ALL.iter().position(|x| *x == v).unwrap_or(0)];
    let mut files = Vec::new();
    for (variable, key) in Variable::ALL.into_iter().zip(&keys) {
        let der = key
            .certificate()
            .ok_or_else(|| encode("a certificate")("missing".into()))?
            .to_der()
            .map_err(|e| encode("a certificate")(e.to_string()))?;
        let db = database(variable, &der, owner, options, &custom)?;
        let esl = db.to_bytes();
        let update =
            auth::authenticated_update(variable, &esl, &time, key_of(variable.signed_by()))?;
        files.extend(key_files(variable.name(), key, &der, custom.of(variable))?);
        files.push(KeyFile {
            name: format!("{}.esl", variable.name()),
            bytes: esl,
            mode: 0o644,
        });
        files.push(KeyFile {
            name: format!("{}.auth", variable.name()),
            bytes: update,
            mode: 0o644,
        });
    }
    tracing::info!("generating the TPM PCR policy key");
    let pcr = cert::generate_key()?;
    files.push(KeyFile {
        name: "tpm2-pcr-private.pem".into(),
        bytes: private_pem(&pcr)?,
        mode: 0o600,
    });
    Ok(files)
}

fn private_pem(key: &rsa::RsaPrivateKey) -> Result<Vec<u8>, GenkeyError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| encode("a private key")(e.to_string()))?;
    Ok(pem.as_bytes().to_vec())
}

/// `.key`, `.pem` and `.der`; custom certificates are appended to the
/// `.der`, as upstream does.
fn key_files(
    stem: &str,
    key: &FileKey,
    der: &[u8],
    custom: &[Vec<u8>],
) -> Result<Vec<KeyFile>, GenkeyError> {
    let pem = key
        .certificate()
        .ok_or_else(|| encode("a certificate")("missing".into()))?
        .to_pem(LineEnding::LF)
        .map_err(|e| encode("a certificate")(e.to_string()))?;
    let mut der_file = der.to_vec();
    for c in custom {
        der_file.extend_from_slice(c);
    }
    Ok(vec![
        KeyFile {
            name: format!("{stem}.key"),
            bytes: private_pem(key.private_key())?,
            mode: 0o600,
        },
        KeyFile {
            name: format!("{stem}.pem"),
            bytes: pem.into_bytes(),
            mode: 0o644,
        },
        KeyFile {
            name: format!("{stem}.der"),
            bytes: der_file,
            mode: 0o644,
        },
    ])
}

/// Writes the set into `dir` (created 0700 if missing): every file is
/// written and synced under a temporary name first, then all are renamed
/// into place; a failure leaves none of them.
pub fn write(files: &[KeyFile], dir: &Path) -> Result<(), GenkeyError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let existing: Vec<&str> = files
        .iter()
        .filter(|f| dir.join(&f.name).symlink_metadata().is_ok())
        .map(|f| f.name.as_str())
        .collect();
    if !existing.is_empty() {
        return Err(GenkeyError::Exists {
            dir: dir.to_path_buf(),
            files: existing.join(", "),
        });
    }
    let mut staged = Vec::new();
    for file in files {
        staged.push((stage(file, dir)?, dir.join(&file.name)));
    }
    let mut placed = Vec::new();
    for (temp, target) in staged {
        // `persist_noclobber` refuses a file that appeared meanwhile.
        match temp.persist_noclobber(&target) {
            Ok(_) => placed.push(target),
            Err(e) => {
                for p in &placed {
                    let _ = std::fs::remove_file(p);
                }
                return Err(GenkeyError::Io {
                    path: target,
                    source: e.error,
                });
            }
        }
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

fn stage(file: &KeyFile, dir: &Path) -> Result<tempfile::NamedTempFile, GenkeyError> {
    let path = dir.join(&file.name);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .permissions(std::fs::Permissions::from_mode(file.mode))
        .tempfile_in(dir)
        .map_err(io(&path))?;
    temp.write_all(&file.bytes).map_err(io(&path))?;
    temp.as_file().sync_all().map_err(io(&path))?;
    Ok(temp)
}
