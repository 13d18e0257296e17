//! Times the configuration merge on large inputs (for the closing notes of
//! the bounds work): `cargo run --release -p auroraboot-config --example
//! merge_timing`. Prints one line per case.

use auroraboot_config::{Input, Source, resolve};
use std::time::Instant;

fn yaml_with_keys(n: usize) -> String {
    let mut text = String::from("extra:\n");
    for i in 0..n {
        text += &format!("  key{i}: value{i}\n");
    }
    text
}

fn time(label: &str, f: impl FnOnce() -> usize) {
    let started = Instant::now();
    let n = f();
    println!(
        "{label}: {:.3} s ({n} entries)",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    for n in [50_000, 100_000] {
        let text = yaml_with_keys(n);
        time(&format!("{n} keys from a file"), || {
            let file = Input {
                text,
                source: Source::File("big.yaml".into()),
            };
            resolve(Some(file), &[], None)
                .map(|r| r.entries().len())
                .unwrap_or(0)
        });
    }
    let sets: Vec<String> = (0..20_000).map(|i| format!("extra.k{i}=v")).collect();
    time("20000 --set flags", || {
        resolve(None, &sets, None)
            .map(|r| r.entries().len())
            .unwrap_or(0)
    });
    let deep = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    time("100000-deep flow list", || {
        let file = Input {
            text: deep,
            source: Source::File("deep.yaml".into()),
        };
        match resolve(Some(file), &[], None) {
            Ok(r) => r.entries().len(),
            Err(e) => {
                println!(
                    "  error: {}",
                    &e.to_string()[..e.to_string().len().min(200)]
                );
                0
            }
        }
    });
}
