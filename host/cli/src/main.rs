//! `auroraboot`: the command-line entry point.

mod builtins {
    include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
}
mod build_uki;
mod cli;
mod efi_tree;
mod inputs;
mod netboot;
mod plugins_cmd;
mod progress;
mod uki_pxe;

use anyhow::Result;
use auroraboot_pipeline::{Mode, StateLock, settings};
use auroraboot_plugins::{Discovery, Runtime, SearchPath};
use clap::Parser;
use cli::{Cli, Command, PluginsCommand};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

fn init_logging(debug: bool, level: Option<&str>) {
    let debug = debug || std::env::var_os("AURORA_DEBUG").is_some();
    let filter = match level {
        Some(level) => format!("{level},wasmtime=info,cranelift=info"),
        None if debug => "debug,wasmtime=info,cranelift=info".into(),
        None => "info".into(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AURORABOOT_LOG")
                .unwrap_or_else(|_| filter.as_str().into()),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn discover(common: &cli::Common) -> Result<(Runtime, Discovery)> {
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let discovery = Discovery::discover(
        &runtime,
        &SearchPath::standard(&common.plugin_dirs, builtins::BUILTINS),
    )
    .await;
    for entry in &discovery.entries {
        if let auroraboot_plugins::PluginStatus::Broken { reason } = &entry.status {
            tracing::debug!("plugin {} is broken: {reason}", entry.path.display());
        }
    }
    Ok((runtime, discovery))
}

/// Warns about keys nothing reads; lists, at debug level, those kept only
/// for templating.
fn report_keys(resolved: &auroraboot_config::Resolved, discovery: &Discovery) {
    let plugin_keys: Vec<String> = discovery
        .active()
        .flat_map(|p| p.info.namespaces.clone())
        .collect();
    // Keys under a namespace a plugin declares are checked by `settings`.
    let declared = |key: &str| {
        let namespace = key.split('.').next().unwrap_or_default();
        discovery
            .active()
            .any(|p| p.info.settings.iter().any(|s| s.namespace() == namespace))
    };
    for (key, source, why) in resolved.unread_keys() {
        if !declared(&key) {
            tracing::warn!(
                "{key} ({source}) is ignored: {why} (see `auroraboot --help` for the keys)"
            );
        }
    }
    let unknown = resolved.unknown_keys(&plugin_keys);
    if !unknown.is_empty() {
        tracing::debug!(
            "keys no component uses (kept for templating): {}",
            unknown.join(", ")
        );
    }
}

fn genkey(args: cli::GenkeyArgs) -> Result<()> {
    use anyhow::Context;
    use auroraboot_secureboot::genkey;
    let options = genkey::Options {
        name: args.name,
        expiration_days: args.expiration_days,
        microsoft: !args.skip_microsoft_certs,
        custom_cert_dir: args.custom_cert_dir,
    };
    if !options.microsoft {
        tracing::warn!(
            "Microsoft's certificates are left out of KEK and db: firmware that needs Microsoft-signed option ROMs will not boot with these keys"
        );
    }
    let files = genkey::generate(&options, std::time::SystemTime::now()).context("genkey")?;
    genkey::write(&files, &args.output).context("genkey")?;
    tracing::info!("wrote {} files to {}", files.len(), args.output.display());
    Ok(())
}

/// Builds `outputs` from `inputs`, then serves what the configuration says
/// (netboot, the artifact server) until a signal; returns the artifacts.
pub(crate) async fn build(
    inputs: &cli::Inputs,
    outputs: &[String],
    common: &cli::Common,
) -> Result<Vec<auroraboot_plugins::Artifact>> {
    let resolved = inputs::resolve(inputs).await?;
    let (runtime, discovery) = discover(common).await?;
    settings::check(&resolved, &discovery)?;
    report_keys(&resolved, &discovery);
    // One listener for the whole run: a signal between the build and
    // the servers must not be lost.
    let signals = Signals::listen(runtime.cancel_flag());
    let request = auroraboot_pipeline::Request {
        runtime: &runtime,
        discovery: &discovery,
        resolved: &resolved,
        outputs,
        wait_lock: common.wait_lock,
        observer: Arc::new(progress::Progress::new()),
    };
    let serve = tokio::select! {
        result = auroraboot_pipeline::run(request) => result.map_err(anyhow::Error::from),
        signal = signals.received() => Err(Interrupted(signal).into()),
    };
    // A plugin stopped by the signal reports that; say which signal.
    let serve = match (serve, signals.already()) {
        (Ok(serve), None) => serve,
        (Err(e), Some(signal)) if e.downcast_ref::<Interrupted>().is_none() => {
            tracing::debug!("{e:#}");
            return Err(Interrupted(signal).into());
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Some(signal)) => return Err(Interrupted(signal).into()),
    };
    let artifacts = serve.artifacts.clone();
    if !serve.nothing_to_serve() {
        serve.lock.downgrade("serving").await?;
    }
    let stop = signals.received();
    netboot::serve_all(&resolved, serve, async move {
        stop.await;
    })
    .await?;
    Ok(artifacts)
}

async fn main_inner(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Genkey(args)) => genkey(args),
        Some(Command::Version) => {
            println!(
                "auroraboot {} (plugin API {}; also loads {})",
                env!("CARGO_PKG_VERSION"),
                auroraboot_plugins::API_VERSION,
                auroraboot_plugins::LEGACY_API_VERSION
            );
            Ok(())
        }
        Some(Command::Plugins { command }) => {
            let (_runtime, discovery) = discover(&cli.common).await?;
            match command {
                PluginsCommand::List { json } => plugins_cmd::list(&discovery, json),
                PluginsCommand::Inspect { name, json } => {
                    plugins_cmd::inspect(&discovery, &name, json)
                }
            }
        }
        Some(Command::Config { inputs, json }) => {
            let mut resolved = inputs::resolve(&inputs).await?;
            resolved.config()?;
            let (_runtime, discovery) = discover(&cli.common).await?;
            settings::check(&resolved, &discovery)?;
            settings::add_defaults(&mut resolved, &discovery);
            if json {
                println!("{}", serde_json::to_string_pretty(&resolved.to_json())?);
            } else {
                print!("{}", resolved.to_annotated_yaml());
                match resolved.cloud_config() {
                    Some(cc) => print!(
                        "--- # cloud-config ({}), exactly as embedded:\n{}",
                        cc.source, cc.text
                    ),
                    None => println!("--- # no cloud-config"),
                }
            }
            Ok(())
        }
        Some(Command::Unpack {
            image,
            dest,
            mut sets,
        }) => {
            sets.push(format!("container_image={image}"));
            let resolved = auroraboot_config::resolve(None, &sets, None)?;
            let config = resolved.config()?;
            let _lock = tokio::select! {
                lock = StateLock::acquire(&config.state_dir, Mode::Exclusive, cli.common.wait_lock, "unpack") => lock?,
                _ = shutdown_signal() => anyhow::bail!("interrupted while waiting for state_dir"),
            };
            tokio::select! {
                result = auroraboot_pipeline::unpack(&config, &dest, Arc::new(progress::Progress::new())) => Ok(result?),
                _ = shutdown_signal() => anyhow::bail!("interrupted; the partial extraction was removed"),
            }
        }
        Some(Command::BuildUki(args)) => build_uki::run(*args, &cli.common).await,
        Some(Command::UkiPxe(args)) => uki_pxe::run(args, shutdown_signal()).await,
        None => build(&cli.inputs, &cli.output, &cli.common)
            .await
            .map(|_| ()),
    }
}

/// The run was stopped by a signal (its number); partial outputs were
/// removed. The process exits with 128 + the signal, as shells expect.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}; partial outputs were removed", signal_name(*.0))]
struct Interrupted(i32);

fn signal_name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// Ctrl-C and SIGTERM for the whole run, listened to by a task of its own:
/// the first one raises the plugin runtime's cancel flag at once (so a
/// build stuck in a long host call stops within a chunk) and wakes every
/// `received()`.
struct Signals {
    rx: tokio::sync::watch::Receiver<Option<i32>>,
}

impl Signals {
    fn listen(cancel: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, rx) = tokio::sync::watch::channel(None);
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        tokio::spawn(async move {
            let got = match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => 15,
                    _ = int.recv() => 2,
                },
                _ => return,
            };
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send(Some(got));
        });
        Signals { rx }
    }

    /// The signal received so far, if any.
    fn already(&self) -> Option<i32> {
        *self.rx.borrow()
    }

    /// Resolves with the first signal.
    fn received(&self) -> impl std::future::Future<Output = i32> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            let received = rx.wait_for(|s| s.is_some()).await.map(|s| s.unwrap_or(15));
            match received {
                Ok(signal) => signal,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Ctrl-C or SIGTERM; listening starts at the call, not at the first poll.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

/// `--plugin-dir` values of the raw arguments (for `--help`, which clap
/// answers before the arguments are parsed).
fn plugin_dirs_of(args: &[String]) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--plugin-dir" {
            dirs.extend(it.next().map(Into::into));
        } else if let Some(dir) = arg.strip_prefix("--plugin-dir=") {
            dirs.push(dir.into());
        }
    }
    dirs
}

/// The command line; `--help` also lists the installed plugins' settings.
fn parse(runtime: &tokio::runtime::Runtime) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().skip(1).any(|a| a == "--help") {
        return Cli::parse();
    }
    let common = cli::Common {
        plugin_dirs: plugin_dirs_of(&args),
        debug: false,
        wait_lock: false,
    };
    let plugins = match runtime.block_on(discover(&common)) {
        Ok((_, discovery)) => settings::help_text(&discovery),
        Err(e) => format!("\n(plugins could not be listed: {e:#})\n"),
    };
    let help = format!("{}{plugins}", auroraboot_config::help_text());
    let matches = Cli::command().after_long_help(help).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = parse(&runtime);
    let level = match &cli.command {
        Some(Command::UkiPxe(args)) => args.log_level.clone(),
        _ => None,
    };
    init_logging(cli.common.debug, level.as_deref());
    match runtime.block_on(main_inner(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            match e.downcast_ref::<Interrupted>() {
                Some(Interrupted(signal)) => ExitCode::from(128 + *signal as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}
