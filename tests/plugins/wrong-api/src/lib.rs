//! A component built against a newer, incompatible plugin contract
//! (`auroraboot:plugin@0.3.0`): the host must list it as broken, naming
//! the version, and keep working.

wit_bindgen::generate!({
    inline: "
        package auroraboot:plugin@0.3.0;
        interface plugin {
            describe: func() -> string;
        }
        world output-plugin {
            export plugin;
        }
    ",
});

struct Future;

impl exports::auroraboot::plugin::plugin::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Future);
