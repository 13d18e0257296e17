//! Host-side bindings generated from `wit/v0.1.0`; resources map to the
//! capability types in `capabilities`.

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
