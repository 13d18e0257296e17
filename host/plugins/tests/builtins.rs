//! Built-in plugins (component bytes embedded in the binary) are found
//! after every directory, so a user's copy of a plugin shadows the shipped
//! one; broken bytes are reported, not fatal.

use auroraboot_plugins::{Discovery, PluginSource, PluginStatus, Runtime, SearchPath};

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

#[tokio::test]
async fn builtins_come_last_and_can_be_shadowed() {
    let tarball = leak(std::fs::read(auroraboot_tests::wasm("rootfs-tarball")).unwrap());
    let runtime = Runtime::new(None).unwrap();

    let only_builtins = SearchPath {
        dirs: Vec::new(),
        builtins: vec![
            ("rootfs_tarball.wasm", tarball),
            ("broken.wasm", b"\0asm\x01\0\0\0"),
        ],
    };
    let discovery = Discovery::discover(&runtime, &only_builtins).await;
    assert_eq!(discovery.entries.len(), 2);
    let builtin = &discovery.entries[0];
    assert_eq!(builtin.source, PluginSource::Builtin);
    assert_eq!(builtin.path.to_str(), Some("builtin:rootfs_tarball.wasm"));
    assert!(matches!(builtin.status, PluginStatus::Active));
    assert!(discovery.provider("rootfs-tarball").is_some());
    assert!(
        matches!(&discovery.entries[1].status, PluginStatus::Broken { reason } if reason.contains("core WebAssembly module"))
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.wasm"), tarball).unwrap();
    let with_user_copy = SearchPath {
        dirs: vec![(PluginSource::PluginDir, dir.path().to_path_buf())],
        builtins: vec![("rootfs_tarball.wasm", tarball)],
    };
    let discovery = Discovery::discover(&runtime, &with_user_copy).await;
    assert!(matches!(discovery.entries[0].status, PluginStatus::Active));
    assert_eq!(discovery.entries[1].source, PluginSource::Builtin);
    assert!(
        matches!(&discovery.entries[1].status, PluginStatus::Shadowed { by } if by.contains("mine.wasm"))
    );
}
