//! `auroraboot plugins list|inspect`.

use anyhow::{Result, bail};
use auroraboot_plugins::text::escape;
use auroraboot_plugins::{Discovery, PluginEntry, PluginStatus};

fn outputs(entry: &PluginEntry) -> String {
    entry
        .info()
        .map(|i| {
            i.outputs
                .iter()
                .map(|o| o.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "-".into())
}

fn status(entry: &PluginEntry) -> String {
    let status = match &entry.status {
        PluginStatus::Active => String::new(),
        PluginStatus::Shadowed { by } => format!("shadowed by {by}"),
        PluginStatus::Broken { reason } => format!("broken: {reason}"),
    };
    let outputs: Vec<String> = entry
        .shadowed_outputs
        .iter()
        .map(|s| format!("output {} shadowed by {}", s.id, s.by))
        .collect();
    escape([status, outputs.join("; ")].join(" ").trim()).into_owned()
}

/// Where a plugin is from, printable.
fn source(entry: &PluginEntry) -> String {
    escape(&format!("{} ({})", entry.source, entry.path.display())).into_owned()
}

fn name_of(entry: &PluginEntry) -> String {
    entry.info().map(|i| i.name.clone()).unwrap_or_else(|| {
        entry
            .path
            .file_stem()
            .map(|s| escape(&s.to_string_lossy()).into_owned())
            .unwrap_or_default()
    })
}

/// One plugin as `--json` shows it: its declarations (outputs with roles,
/// inputs and modes; settings with types, defaults and docs) and state.
fn json_row(e: &PluginEntry) -> serde_json::Value {
    serde_json::json!({
        "name": name_of(e),
        "info": e.info(),
        "source": e.source,
        "path": e.path,
        "state": e.status,
        "shadowed_outputs": e.shadowed_outputs,
    })
}

pub fn list(discovery: &Discovery, json: bool) -> Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = discovery.entries.iter().map(json_row).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if discovery.entries.is_empty() {
        println!("no plugins found (see --plugin-dir, AURORABOOT_PLUGIN_PATH)");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = discovery
        .entries
        .iter()
        .map(|e| {
            let info = e.info();
            [
                name_of(e),
                info.map(|i| i.version.clone())
                    .unwrap_or_else(|| "-".into()),
                info.map(|i| i.api_version.clone())
                    .unwrap_or_else(|| "-".into()),
                outputs(e),
                source(e),
                status(e),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "API", "OUTPUTS", "SOURCE", "STATUS"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i < 5 {
                s.push_str(&format!("{cell:w$}  ", w = widths[i]));
            } else {
                s.push_str(cell);
            }
        }
        println!("{}", s.trim_end());
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    Ok(())
}

/// What an output declares, in one line.
fn declared(o: &auroraboot_plugins::OutputInfo) -> String {
    let join = |items: Vec<String>| items.join(", ");
    let mut parts = vec![
        format!(
            "from {}",
            join(o.inputs.iter().map(|i| i.to_string()).collect())
        ),
        format!("mode {:o}", o.mode),
    ];
    if !o.roles.is_empty() {
        parts.push(format!(
            "roles {}",
            join(o.roles.iter().map(|r| r.to_string()).collect())
        ));
    }
    if !o.enabled_by.is_empty() {
        parts.push(format!("enabled by {}", o.enabled_by.join(" or ")));
    }
    if o.default {
        parts.push("built by default".into());
    }
    format!("({})", parts.join("; "))
}

pub fn inspect(discovery: &Discovery, name: &str, json: bool) -> Result<()> {
    let matches: Vec<&PluginEntry> = discovery
        .entries
        .iter()
        .filter(|e| name_of(e) == name)
        .collect();
    if matches.is_empty() {
        bail!("no plugin named '{name}' (see `auroraboot plugins list`)");
    }
    if json {
        let rows: Vec<serde_json::Value> = matches.into_iter().map(json_row).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for entry in matches {
        println!("path:     {}", escape(&entry.path.display().to_string()));
        println!("source:   {}", entry.source);
        let state = status(entry);
        println!(
            "status:   {}",
            if state.is_empty() { "active" } else { &state }
        );
        if let Some(info) = entry.info() {
            println!("name:     {}", info.name);
            println!("version:  {}", info.version);
            println!("api:      {}", info.api_version);
            println!(
                "settings: {}",
                if info.namespaces.is_empty() {
                    "-".to_string()
                } else {
                    info.namespaces
                        .iter()
                        .map(|n| format!("{n}.*"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            for s in &info.settings {
                let default = s
                    .default
                    .as_ref()
                    .map(|d| format!(" (default {d})"))
                    .unwrap_or_default();
                println!("  {:28} {}{default}: {}", s.key, s.kind, s.doc);
            }
            println!("outputs:");
            for o in &info.outputs {
                let dir = if o.directory.is_empty() {
                    String::new()
                } else {
                    format!("{}/", o.directory)
                };
                println!(
                    "  {:14} {}  ->  <state_dir>/{dir}{}",
                    o.id, o.description, o.file_name
                );
                println!("  {:14} {}", "", declared(o));
            }
        }
    }
    Ok(())
}
