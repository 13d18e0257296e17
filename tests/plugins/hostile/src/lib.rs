//! A test plugin that misbehaves on purpose, one output id per attack. Each
//! attack that the sandbox stops ends in an error whose text the tests
//! check; an attack that succeeded would instead write what it obtained to
//! its output and report success, which the tests treat as a failure.

use auroraboot_sdk::bindings::auroraboot::plugin::fs as raw;
use auroraboot_sdk::{
    BuildError, BuildRequest, Create, OutputInfo, Plugin, PluginInfo, Report, Role, Setting,
    register_plugin,
};

struct Hostile;

const ATTACKS: &[&str] = &[
    "read-host-file",
    "escape-dotdot",
    "escape-absolute",
    "escape-symlink",
    "escape-relative-symlink",
    "loop-forever",
    "alloc-past-cap",
    "write-past-limit",
    "stale-handle",
    "undeclared-role",
    "setuid-mode",
    "no-output",
    "partial-then-fail",
    "panic",
    "environment",
    "stdio",
    "many-handles",
    "sparse-huge",
    "hole-copy",
    "forge-text",
    "codec-batches",
];

/// Attacks whose files go to `state_dir` itself (to try the host's files
/// and other plugins' artifacts).
const TOP_LEVEL: &[&str] = &["create-named"];

/// A log line, error and stdout text that try to forge a log line and
/// clear the screen.
const FORGED: &str =
    "innocent\n2026-01-01T00:00:00Z ERROR forged line\r\u{1b}[2J\u{1b}]0;pwned\u{7}";

impl Plugin for Hostile {
    fn info() -> PluginInfo {
        let info = ATTACKS
            .iter()
            .fold(PluginInfo::new("hostile", "0.0.1"), |info, id| {
                info.output(OutputInfo::new(id, "misbehaves", "loot.txt").in_directory("hostile"))
            });
        TOP_LEVEL
            .iter()
            .fold(info, |info, id| {
                info.output(OutputInfo::new(id, "misbehaves", "*"))
            })
            .setting(Setting::text(
                "hostile.name",
                "the file create-named creates",
            ))
            .setting(Setting::integer(
                "hostile.offset",
                0,
                i64::MAX,
                "where sparse-huge writes its byte",
            ))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let id = request.outputs[0].clone();
        let loot = match id.as_str() {
            "read-host-file" => std::fs::read_to_string("/etc/passwd")
                .map_err(|e| format!("sandbox held: /etc/passwd: {e}"))?,
            "escape-dotdot" => read(&request, "../outside.txt")?,
            "escape-absolute" => read(&request, "/etc/passwd")?,
            "escape-symlink" => read(&request, "abs-link/passwd")?,
            "escape-relative-symlink" => read(&request, "sub/up-link/outside.txt")?,
            "loop-forever" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc-past-cap" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 16 << 20];
                    chunk[0] = 1;
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "write-past-limit" => {
                let out = request
                    .create_output(&id, "loot.txt")
                    .map_err(|e| e.to_string())?;
                let block = vec![0xAAu8; 1 << 20];
                for i in 0..64u64 {
                    out.write_at(i << 20, &block)
                        .map_err(|e| format!("sandbox held: {e}"))?;
                }
                return Ok(Report::new("wrote 64 MiB"));
            }
            "stale-handle" => {
                let out = request
                    .create_output(&id, "loot.txt")
                    .map_err(|e| e.to_string())?;
                out.write_at(0, b"first").map_err(|e| e.to_string())?;
                let index = out.as_raw().handle();
                drop(out);
                // SAFETY: deliberately unsound, that is the attack: re-wrap
                // the index of the handle just dropped. The host must trap.
                let ghost = unsafe { raw::Output::from_handle(index) };
                ghost.write_at(0, b"ghost").map_err(|e| e.to_string())?;
                std::mem::forget(ghost);
                return Ok(Report::new("used a dropped handle"));
            }
            "undeclared-role" => {
                // Claims to be the netboot kernel, which its output never declared.
                let how = Create::new().role(Role::NetbootKernel);
                let out = request
                    .create_output_with(&id, "loot.txt", how)
                    .map_err(|e| format!("sandbox held: {e}"))?;
                out.write_at(0, b"x")?;
                return Ok(Report::new("claimed a role"));
            }
            "setuid-mode" => {
                let how = Create::new().mode(0o4755);
                let out = request
                    .create_output_with(&id, "loot.txt", how)
                    .map_err(|e| format!("sandbox held: {e}"))?;
                out.write_at(0, b"x")?;
                return Ok(Report::new("made a setuid artifact"));
            }
            "no-output" => return Ok(Report::new("made nothing")),
            "partial-then-fail" => {
                let out = request
                    .create_output(&id, "loot.txt")
                    .map_err(|e| e.to_string())?;
                out.write_at(0, &vec![1u8; 1 << 20])
                    .map_err(|e| e.to_string())?;
                return Err("failing after writing 1 MiB on purpose".into());
            }
            "panic" => panic!("deliberate panic inside the plugin"),
            "environment" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                let cwd_listing = std::fs::read_dir(".").map(|d| d.count());
                if vars.is_empty() && args.is_empty() && cwd_listing.is_err() {
                    return Err("sandbox held: no environment, no arguments, no directories".into());
                }
                format!("env={vars:?} args={args:?} cwd={cwd_listing:?}")
            }
            "stdio" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                return Err("printed two lines".into());
            }
            "create-named" => {
                let name = request
                    .settings
                    .get_str("hostile.name")
                    .ok_or("set hostile.name")?;
                let out = request
                    .create_output(&id, &name)
                    .map_err(|e| format!("sandbox held: {e}"))?;
                out.write_at(0, b"pwned").map_err(|e| e.to_string())?;
                return Ok(Report::new("created the named file"));
            }
            "many-handles" => {
                let mut held = Vec::new();
                for _ in 0..20_000 {
                    match request.rootfs.open_dir(".") {
                        Ok(dir) => held.push(dir),
                        Err(e) => {
                            return Err(
                                format!("sandbox held after {} handles: {e}", held.len()).into()
                            );
                        }
                    }
                }
                format!("held {} handles", held.len())
            }
            "sparse-huge" => {
                let offset = request
                    .settings
                    .get_int("hostile.offset")
                    .map(|o| o as u64)
                    .unwrap_or((1 << 40) - 1);
                let out = request
                    .create_output(&id, "loot.txt")
                    .map_err(|e| e.to_string())?;
                out.write_at(offset, b"x")
                    .map_err(|e| format!("sandbox held: {e}"))?;
                return Ok(Report::new("one byte far away"));
            }
            "hole-copy" => {
                let holes = request
                    .create_output(&id, "holes.img")
                    .map_err(|e| e.to_string())?;
                holes.set_len(1 << 30).map_err(|e| e.to_string())?;
                let copy = request
                    .create_output(&id, "copy.img")
                    .map_err(|e| e.to_string())?;
                copy.copy_from_output(&holes, 0, 0, 1 << 30)
                    .map_err(|e| e.to_string())?;
                return Ok(Report::new("copied 1 GiB of holes"));
            }
            "forge-text" => {
                auroraboot_sdk::log::warn(FORGED);
                println!("{FORGED}");
                return Err(FORGED.into());
            }
            "codec-batches" => {
                // Three in flight, a batch finished twice, a 65 MiB batch:
                // each refused; a dropped batch frees its slot.
                use auroraboot_sdk::codec::{self, Algorithm};
                let blocks = vec![vec![7u8; 1 << 20]; 4];
                let a = codec::start(Algorithm::Zstd, None, &blocks)?;
                let b = codec::start(Algorithm::Zstd, None, &blocks)?;
                let third = codec::start(Algorithm::Zstd, None, &blocks).err();
                let first = a.finish()?;
                let again = a.finish().err();
                drop(b);
                let c = codec::start(Algorithm::Zstd, None, &blocks)?;
                let same = c.finish()? == codec::compress(Algorithm::Zstd, None, &blocks)?;
                let huge = codec::start(Algorithm::Zstd, None, &vec![vec![0u8; 1 << 20]; 65]).err();
                return Err(format!(
                    "sandbox held: third: {third:?}; again: {again:?}; huge: {huge:?}; \
                     first: {} blocks; restarted after a drop, same as compress: {same}",
                    first.len()
                )
                .into());
            }
            other => return Err(format!("unknown attack {other}").into()),
        };
        let out = request
            .create_output(&id, "loot.txt")
            .map_err(|e| e.to_string())?;
        out.write_at(0, loot.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(Report::new("the attack worked"))
    }
}

fn read(request: &BuildRequest, path: &str) -> Result<String, String> {
    let file = request
        .rootfs
        .open_file(path)
        .map_err(|e| format!("sandbox held: {:?}: {e}", e.code))?;
    let bytes = file.read_at(0, 1 << 16).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

register_plugin!(Hostile);
