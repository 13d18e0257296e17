//! The SDK's native test host keeps the real host's rules: handles stay
//! beneath their root, artifacts get plain names, granted modes and
//! declared roles only, a failed build keeps nothing, settings are checked
//! against their declarations and their defaults filled in.

use auroraboot_sdk::testing::Build;
use auroraboot_sdk::{
    BuildError, BuildRequest, Create, ErrorCode, InputKind, OutputInfo, Plugin, PluginInfo, Report,
    Role, Setting,
};
use std::io::Write;

/// Does what `probe.action` says, then writes `probe.txt`.
struct Probe;

impl Plugin for Probe {
    fn info() -> PluginInfo {
        PluginInfo::new("probe", "1.0.0")
            .output(
                OutputInfo::new("probe", "what the test asks", "probe.txt")
                    .in_directory("probe")
                    .role(Role::NetbootKernel),
            )
            .output(
                OutputInfo::new("from-release", "release only", "r.txt")
                    .only_from(InputKind::ReleaseIso),
            )
            .setting(Setting::text("probe.action", "what to do").with_default("write"))
            .setting(Setting::integer("probe.level", 1, 3, "a level").with_default(2))
            .setting(Setting::boolean("probe.flag", "a flag"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let action = request.settings.get_str("probe.action").unwrap_or_default();
        let open = |path: &str| {
            request
                .rootfs
                .open_file(path)
                .map(|_| ())
                .map_err(|e| e.code)
        };
        let result = match action.as_str() {
            "write" => Ok(()),
            "dotdot" => open("../outside.txt"),
            "absolute" => open("/etc/hostname"),
            "link-out" => open("escape"),
            "link-in" => open("inside"),
            "slash-name" => create(&request, "a/b", Create::new()),
            "sha-name" => create(&request, "x.sha256", Create::new()),
            "setuid" => create(&request, "su", Create::new().mode(0o4755)),
            "role-undeclared" => create(&request, "iso", Create::new().role(Role::BootableIso)),
            "role-twice" => create(&request, "k1", Create::new().role(Role::NetbootKernel))
                .and_then(|_| create(&request, "k2", Create::new().role(Role::NetbootKernel))),
            "fail-after-writing" => {
                create(&request, "partial", Create::new()).map_err(|e| format!("{e:?}"))?;
                return Err("failed on purpose".into());
            }
            other => return Err(format!("unknown action {other}").into()),
        };
        if let Err(code) = result {
            return Err(format!("code {code:?}").into());
        }
        let out = request.create_output_with("probe", "probe.txt", Create::new().mode(0o600))?;
        let mut writer = out.writer();
        for (key, value) in request.settings.iter() {
            writeln!(writer, "{key}={value:?}")?;
        }
        writer.flush()?;
        auroraboot_sdk::log::info("probe written");
        auroraboot_sdk::progress(1, 1);
        Ok(Report::new("probe.txt"))
    }
}

fn create(request: &BuildRequest, name: &str, how: Create) -> Result<(), ErrorCode> {
    request
        .create_output_with("probe", name, how)
        .map(|_| ())
        .map_err(|e| e.code)
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
        std::fs::write(rootfs.join("file"), "inside").unwrap();
        std::os::unix::fs::symlink("../outside.txt", rootfs.join("escape")).unwrap();
        std::os::unix::fs::symlink("file", rootfs.join("inside")).unwrap();
        Lab { dir }
    }

    fn build(&self, action: &str) -> Build {
        Build::new(
            self.dir.path().join("rootfs"),
            self.dir.path().join("state"),
        )
        .output("probe")
        .setting("probe.action", action)
    }

    fn error(&self, action: &str) -> String {
        self.build(action).run::<Probe>().unwrap_err().message
    }
}

#[test]
fn a_build_gets_the_declared_defaults_and_reports_its_artifacts() {
    let lab = Lab::new();
    let built = lab
        .build("write")
        .setting("probe.flag", true)
        .run::<Probe>()
        .unwrap();
    let probe = built.file("probe.txt").expect("probe.txt");
    assert_eq!(probe.path, lab.dir.path().join("state/probe/probe.txt"));
    assert_eq!(probe.mode, 0o600);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&probe.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600);
    let text = std::fs::read_to_string(&probe.path).unwrap();
    assert!(text.contains("probe.level=Int(2)"), "{text}");
    assert!(text.contains("probe.flag=Bool(true)"), "{text}");
    assert!(text.contains("probe.action=Text(\"write\")"), "{text}");
    assert_eq!(built.report.summary, "probe.txt");
    assert!(built.log.iter().any(|(_, l)| l == "probe written"));
    assert_eq!(built.progress, Some((1, 1)));
}

#[test]
fn paths_stay_beneath_their_handle() {
    let lab = Lab::new();
    assert_eq!(lab.error("dotdot"), "code ErrorCode::OutsideHandle");
    assert_eq!(lab.error("absolute"), "code ErrorCode::OutsideHandle");
    assert_eq!(lab.error("link-out"), "code ErrorCode::OutsideHandle");
    lab.build("link-in")
        .run::<Probe>()
        .expect("a link inside the rootfs is followed");
}

#[test]
fn artifacts_follow_the_hosts_rules() {
    let lab = Lab::new();
    assert_eq!(lab.error("slash-name"), "code ErrorCode::InvalidPath");
    assert_eq!(lab.error("sha-name"), "code ErrorCode::InvalidPath");
    assert_eq!(lab.error("setuid"), "code ErrorCode::InvalidArgument");
    assert_eq!(
        lab.error("role-undeclared"),
        "code ErrorCode::InvalidArgument"
    );
    assert_eq!(lab.error("role-twice"), "code ErrorCode::InvalidArgument");
}

#[test]
fn a_failed_build_keeps_no_artifact() {
    let lab = Lab::new();
    assert_eq!(lab.error("fail-after-writing"), "failed on purpose");
    let left: Vec<_> = std::fs::read_dir(lab.dir.path().join("state/probe"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn settings_are_checked_against_their_declarations() {
    let lab = Lab::new();
    let err = |build: Build| build.run::<Probe>().unwrap_err().message;
    assert!(err(lab.build("write").setting("probe.level", 7)).contains("probe.level"));
    assert!(err(lab.build("write").setting("probe.level", "two")).contains("probe.level"));
    assert!(err(lab.build("write").setting("probe.nope", 1)).contains("declares no such setting"));
}

#[test]
fn outputs_must_be_declared_and_accept_the_input() {
    let lab = Lab::new();
    let err = lab
        .build("write")
        .output("nope")
        .run::<Probe>()
        .unwrap_err();
    assert!(err.message.contains("declares no output 'nope'"), "{err}");
    let err = Build::new(lab.dir.path().join("rootfs"), lab.dir.path().join("state"))
        .output("from-release")
        .run::<Probe>()
        .unwrap_err();
    assert!(err.message.contains("does not build from"), "{err}");
}

#[test]
fn codec_batches_match_compress_and_are_bounded_as_on_the_host() {
    use auroraboot_sdk::codec::{self, Algorithm};
    let blocks = vec![b"squash me ".repeat(1000), vec![0u8; 4096]];
    let a = codec::start(Algorithm::Zlib, Some(9), &blocks).unwrap();
    let b = codec::start(Algorithm::Zlib, Some(9), &blocks).unwrap();
    let third = codec::start(Algorithm::Zlib, Some(9), &blocks)
        .err()
        .unwrap();
    assert!(third.contains("2 batches are in flight"), "{third}");
    assert_eq!(
        a.finish().unwrap(),
        codec::compress(Algorithm::Zlib, Some(9), &blocks).unwrap()
    );
    assert!(a.finish().unwrap_err().contains("already finished"));
    drop(b);
    let c = codec::start(Algorithm::Zlib, Some(9), &blocks).unwrap();
    assert_eq!(c.finish().unwrap().len(), 2);
    assert!(codec::start(Algorithm::Zstd, Some(99), &blocks).is_err());
}

/// Signs a fixed digest with `s.key` (and, with `s.pe`, Authenticode).
struct Signs;

impl Plugin for Signs {
    fn info() -> PluginInfo {
        PluginInfo::new("signs", "1.0.0")
            .output(OutputInfo::new("sig", "a signature", "sig.bin"))
            .setting(Setting::private_key("s.key", Some("s.cert"), "a key"))
            .setting(Setting::certificate("s.cert", "its certificate"))
            .setting(Setting::private_key("s.bare", None, "a key without one"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let key = request
            .key("s.key")
            .or(request.key("s.bare"))
            .ok_or("no key")?;
        let mut out = key.public_key();
        out.extend(key.sign_digest(&[1; 32])?);
        out.extend(key.authenticode(&[2; 32])?);
        request.create_output("sig", "sig.bin")?.write_at(0, &out)?;
        Ok(Report::new("signed"))
    }
}

/// A key that "signs" by echoing the digest after a tag.
#[derive(Debug)]
struct FakeKey {
    cert: Option<Vec<u8>>,
}

impl auroraboot_sdk::testing::TestKey for FakeKey {
    fn public_key(&self) -> Vec<u8> {
        b"PUB".to_vec()
    }
    fn certificate(&self) -> Option<Vec<u8>> {
        self.cert.clone()
    }
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
        Ok([b"SIG".as_slice(), digest].concat())
    }
    fn authenticode(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
        Ok([b"P7".as_slice(), digest].concat())
    }
}

#[test]
fn signing_keys_are_served_as_the_host_serves_them() {
    let lab = Lab::new();
    let build = || Build::new(lab.dir.path().join("rootfs"), lab.dir.path().join("state"));
    let built = build()
        .key(
            "s.key",
            FakeKey {
                cert: Some(b"CERT".to_vec()),
            },
        )
        .run::<Signs>()
        .unwrap();
    let bytes = std::fs::read(&built.files[0].path).unwrap();
    assert_eq!(
        bytes,
        [b"PUB".as_slice(), b"SIG", &[1; 32], b"P7", &[2; 32]].concat()
    );
    let err = |b: Build| b.run::<Signs>().unwrap_err().message;
    // A key with no certificate cannot make Authenticode signatures.
    assert!(err(build().key("s.bare", FakeKey { cert: None })).contains("no certificate"));
    // Paired keys need their certificate; keys must be declared; the value
    // of a key setting never travels as a setting.
    assert!(
        err(build().key("s.key", FakeKey { cert: None }))
            .contains("s.cert (its certificate) is not")
    );
    assert!(
        err(build().key("s.other", FakeKey { cert: None }))
            .contains("not a declared private-key setting")
    );
    assert!(err(build().setting("s.key", "/keys/db.key")).contains("use Build::key"));
}
