//! Host-side bindings generated from each contract version the host loads:
//! `wit/v0.2.0` (current) and `wit/v0.1.0` (frozen; adapted in `legacy`).
//! Both map their resources to the same capability types in
//! `capabilities`, so a handle means the same thing in either version.

/// The current contract, `auroraboot:plugin@0.2.0`.
pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "output-plugin",
        exports: { default: async },
        with: {
            "auroraboot:plugin/fs.dir": crate::capabilities::DirHandle,
            "auroraboot:plugin/fs.file": crate::capabilities::FileHandle,
            "auroraboot:plugin/fs.output": crate::capabilities::OutputHandle,
            "auroraboot:plugin/fs.output-dir": crate::capabilities::OutputDirHandle,
            "auroraboot:plugin/codec.batch": crate::codec::BatchHandle,
            "auroraboot:plugin/codec.compressor": crate::codec::StreamHandle,
            "auroraboot:plugin/signing.key": crate::signing::KeyHandle,
        },
    });
}

/// The first contract, `auroraboot:plugin@0.1.0`.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "output-plugin",
        exports: { default: async },
        with: {
            "auroraboot:plugin/fs.dir": crate::capabilities::DirHandle,
            "auroraboot:plugin/fs.file": crate::capabilities::FileHandle,
            "auroraboot:plugin/fs.output": crate::capabilities::OutputHandle,
            "auroraboot:plugin/fs.output-dir": crate::capabilities::OutputDirHandle,
        },
    });
}
