//! An ordinary WASI command component: valid WebAssembly, but it exports no
//! plugin interface at all. The host must list it as broken.

fn main() {
    println!("not a plugin");
}
