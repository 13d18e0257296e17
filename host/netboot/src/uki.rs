//! What `uki-pxe` serves over HTTP, and its key directory. Two forms, as
//! the reference tool had them:
//! - two-stage ([`Stage::Enroll`], v0.8.0): `/booter.efi` is the Secure Boot
//!   key enroller, `/kairos.iso` the ISO, any other bare name a key file of
//!   the key directory matched case-insensitively (`DB.auth` is `db.auth`);
//! - ISO only ([`Stage::IsoOnly`], current): the ISO for every path.
//!
//! Unlike upstream, only public key material (`.auth`, `.esl`, `.der`) of
//! the key directory is served: `genkey` writes the private keys (`.key`,
//! `tpm2-pcr-private.pem`) beside it, and they must never leave the host.

use crate::Error;
use crate::dhcp::{ENROLLER_FILE, ISO_FILE};
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files the enroller fetches.
pub const REQUIRED_KEYS: [&str; 3] = ["PK.auth", "KEK.auth", "db.auth"];

/// Extensions of the key directory's files that are served.
const PUBLIC_EXTENSIONS: [&str; 3] = ["auth", "esl", "der"];

/// The largest key file served (the enroller accepts up to 1 MiB).
const MAX_KEY_BYTES: u64 = 1 << 20;

/// The key directory's public files, read once at start-up (what is served
/// cannot change under a running enrollment).
#[derive(Clone, Debug)]
pub struct KeyDir {
    dir: PathBuf,
    /// (lower-case name, contents).
    files: Vec<(String, Bytes)>,
}

impl KeyDir {
    /// Reads `dir`; fails listing every required file that is missing, and on
    /// two files whose names differ only by case.
    pub fn open(dir: &Path) -> Result<KeyDir, Error> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::Missing(format!("key directory {}: {e}", dir.display())))?;
        let mut files: Vec<(String, Bytes)> = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_public(&name) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if files.iter().any(|(n, _)| *n == lower) {
                return Err(Error::Missing(format!(
                    "key directory {}: two files are named {name} when case is ignored (clients ask without regard to case)",
                    dir.display()
                )));
            }
            files.push((lower, read_key(&entry.path())?));
        }
        let missing: Vec<&str> = REQUIRED_KEYS
            .into_iter()
            .filter(|k| !files.iter().any(|(n, _)| *n == k.to_ascii_lowercase()))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Missing(format!(
                "key directory {} lacks {} (the enroller fetches PK.auth, KEK.auth and db.auth; `auroraboot genkey` writes them)",
                dir.display(),
                missing.join(", ")
            )));
        }
        Ok(KeyDir {
            dir: dir.to_path_buf(),
            files,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a client asks for by `name`, ignoring case.
    pub fn get(&self, name: &str) -> Option<Bytes> {
        let lower = name.to_ascii_lowercase();
        self.files
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, b)| b.clone())
    }
}

fn is_public(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && PUBLIC_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    })
}

/// A regular file (symlinks followed) of at most [`MAX_KEY_BYTES`].
fn read_key(path: &Path) -> Result<Bytes, Error> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_KEY_BYTES {
        return Err(Error::Missing(format!(
            "key file {} is not a regular file of at most 1 MiB",
            path.display()
        )));
    }
    Ok(Bytes::from(std::fs::read(path)?))
}

/// What a `uki-pxe` server hands out over HTTP.
pub enum Stage {
    Enroll { enroller: Bytes, keys: KeyDir },
    IsoOnly,
}

pub struct UkiBoot {
    pub iso: PathBuf,
    pub stage: Stage,
}

/// What a request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    Iso,
    Enroller,
    Key(Bytes),
    NotFound,
}

impl UkiBoot {
    /// The decision for `path` (pure: the handler only carries it out).
    pub fn serve(&self, path: &str) -> Served {
        let Stage::Enroll { keys, .. } = &self.stage else {
            return Served::Iso;
        };
        let name = path.strip_prefix('/').unwrap_or(path);
        if name == ISO_FILE {
            return Served::Iso;
        }
        if name == ENROLLER_FILE {
            return Served::Enroller;
        }
        if name.contains('/') || name.contains('\\') {
            return Served::NotFound;
        }
        keys.get(name).map_or(Served::NotFound, Served::Key)
    }
}

pub fn router(boot: Arc<UkiBoot>) -> Router {
    Router::new().fallback(handle).with_state(boot)
}

async fn handle(
    State(boot): State<Arc<UkiBoot>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request<axum::body::Body>,
) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = request.uri().path().to_string();
    let send = |what: &str, kind: &'static str, bytes: Bytes| {
        tracing::info!("HTTP: Sent file \"{what}\" to {addr}");
        ([(header::CONTENT_TYPE, kind)], bytes).into_response()
    };
    match boot.serve(&path) {
        Served::Iso => {
            let mut response = crate::http::send_file(&boot.iso, ISO_FILE, addr, request).await;
            // UEFI HTTP boot takes this type (or a path ending in .iso, which
            // the ISO-only form does not require) as "a CD image to boot
            // from a RAM disk".
            if response.status().is_success() {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/vnd.efi-iso"),
                );
            }
            response
        }
        Served::Enroller => match &boot.stage {
            Stage::Enroll { enroller, .. } => {
                send(ENROLLER_FILE, "application/efi", enroller.clone())
            }
            Stage::IsoOnly => StatusCode::NOT_FOUND.into_response(),
        },
        Served::Key(bytes) => send(
            path.trim_start_matches('/'),
            "application/octet-stream",
            bytes,
        ),
        Served::NotFound => {
            tracing::info!("HTTP: no file \"{path}\" for {addr}");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    fn genkey_set() -> tempfile::TempDir {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for key in ["PK", "KEK", "db"] {
            for ext in ["key", "pem", "der", "esl", "auth"] {
                files.push((format!("{key}.{ext}"), format!("{key} {ext}").into_bytes()));
            }
        }
        files.push(("tpm2-pcr-private.pem".into(), b"private".to_vec()));
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        key_dir(&refs)
    }

    fn boot(keys: KeyDir) -> UkiBoot {
        UkiBoot {
            iso: "/nonexistent.iso".into(),
            stage: Stage::Enroll {
                enroller: Bytes::from_static(b"MZ"),
                keys,
            },
        }
    }

    #[test]
    fn keys_are_served_ignoring_case_and_private_keys_never() {
        let dir = genkey_set();
        let boot = boot(KeyDir::open(dir.path()).unwrap());
        assert_eq!(boot.serve("/DB.auth"), Served::Key(Bytes::from("db auth")));
        assert_eq!(boot.serve("/pk.AUTH"), Served::Key(Bytes::from("PK auth")));
        assert_eq!(boot.serve("/KEK.esl"), Served::Key(Bytes::from("KEK esl")));
        assert_eq!(boot.serve("/kairos.iso"), Served::Iso);
        assert_eq!(boot.serve("/booter.efi"), Served::Enroller);
        for secret in ["/PK.key", "/db.key", "/tpm2-pcr-private.pem", "/db.pem"] {
            assert_eq!(boot.serve(secret), Served::NotFound, "{secret}");
        }
        for hostile in [
            "/../db.auth",
            "/x/db.auth",
            "/",
            "",
            "/..%2fdb.auth",
            "/a\\db.auth",
        ] {
            assert_eq!(boot.serve(hostile), Served::NotFound, "{hostile}");
        }
    }

    #[test]
    fn the_iso_only_form_serves_the_iso_everywhere() {
        let boot = UkiBoot {
            iso: "/x.iso".into(),
            stage: Stage::IsoOnly,
        };
        for path in ["/", "/kairos.iso", "/booter.efi", "/PK.auth", "/a/b"] {
            assert_eq!(boot.serve(path), Served::Iso);
        }
    }

    #[test]
    fn a_key_dir_missing_files_lists_them() {
        let dir = key_dir(&[("KEK.auth", b"k"), ("PK.key", b"secret")]);
        let err = KeyDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("lacks PK.auth, db.auth"), "{err}");
        let err = KeyDir::open(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn a_key_dir_with_names_differing_by_case_is_refused() {
        let dir = key_dir(&[
            ("PK.auth", b"1"),
            ("KEK.auth", b"2"),
            ("db.auth", b"3"),
            ("DB.auth", b"4"),
        ]);
        let err = KeyDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("case is ignored"), "{err}");
    }

    #[test]
    fn a_key_file_that_is_not_a_small_regular_file_is_refused() {
        let dir = key_dir(&[("PK.auth", b"1"), ("KEK.auth", b"2")]);
        std::fs::create_dir(dir.path().join("db.auth")).unwrap();
        let err = KeyDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("db.auth"), "{err}");
        std::fs::remove_dir(dir.path().join("db.auth")).unwrap();
        let big = std::fs::File::create(dir.path().join("db.auth")).unwrap();
        big.set_len(MAX_KEY_BYTES + 1).unwrap();
        assert!(KeyDir::open(dir.path()).is_err());
    }
}
