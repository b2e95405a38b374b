//! `meshguard-ratelimit serve` runs the service; `meshguard-ratelimit check FILE` validates a
//! limits file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use meshguard_ratelimit::config::{self, ConfigError};
use meshguard_ratelimit::redis_url::RedisUrl;
use meshguard_ratelimit::server::{self, ServeOptions, StoreOptions};
use meshguard_ratelimit::store::redis::RedisOptions;

#[derive(Parser)]
#[command(
    name = "meshguard-ratelimit",
    version,
    about = "Rate-limit service for the Envoy RLS v3 gRPC API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Validate a limits file and print every problem with its field path.
    Check {
        /// Limits file (YAML).
        file: PathBuf,
    },
}

#[derive(Parser)]
struct ServeArgs {
    /// Limits file (YAML); re-read every --reload-interval-ms.
    #[arg(long, env = "MESHGUARD_RL_CONFIG")]
    config: PathBuf,
    /// Address of the gRPC listener (RLS v3 and grpc.health.v1).
    #[arg(long, env = "MESHGUARD_RL_GRPC_ADDR", default_value = "127.0.0.1:8081")]
    grpc_addr: SocketAddr,
    /// Address of the HTTP listener (/healthz, /metrics).
    #[arg(long, env = "MESHGUARD_RL_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    http_addr: SocketAddr,
    /// Redis URL: redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster://
    /// or rediss+cluster://. Without it counters live in this process's memory.
    #[arg(long, env = "MESHGUARD_RL_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Deadline in milliseconds for one Redis script call; keep it below the caller's RLS
    /// timeout (Envoy's rate-limit filter defaults to 20 ms).
    #[arg(long, env = "MESHGUARD_RL_REDIS_TIMEOUT_MS", default_value_t = 10)]
    redis_timeout_ms: u64,
    /// Deadline in milliseconds for opening one Redis connection.
    #[arg(
        long,
        env = "MESHGUARD_RL_REDIS_CONNECT_TIMEOUT_MS",
        default_value_t = 1000
    )]
    redis_connect_timeout_ms: u64,
    /// PEM file of root certificates for TLS to Redis, in place of the system trust store.
    #[arg(long, env = "MESHGUARD_RL_REDIS_CA_FILE")]
    redis_ca_file: Option<PathBuf>,
    /// Milliseconds between checks of the limits file for changes.
    #[arg(long, env = "MESHGUARD_RL_RELOAD_INTERVAL_MS", default_value_t = 1000)]
    reload_interval_ms: u64,
    /// Log line format.
    #[arg(long, env = "MESHGUARD_RL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Serve(args) => {
            init_logging(args.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: failed to start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "service failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match config::load_file(file) {
        Ok(config) => {
            let limits: usize = config.rules.iter().map(|rule| rule.limits.len()).sum();
            println!(
                "{}: valid (domain {:?}, {} descriptors, {limits} limits)",
                file.display(),
                config.domain,
                config.rules.len()
            );
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid(errors)) => {
            for error in &errors {
                eprintln!("{}: {error}", file.display());
            }
            let noun = if errors.len() == 1 {
                "problem"
            } else {
                "problems"
            };
            eprintln!("{}: {} {noun} found", file.display(), errors.len());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = match &args.redis_url {
        None => StoreOptions::Memory,
        Some(text) => {
            let ca_pem = match &args.redis_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|error| {
                    anyhow::anyhow!("failed to read --redis-ca-file {}: {error}", path.display())
                })?),
                None => None,
            };
            StoreOptions::Redis(RedisOptions {
                url: RedisUrl::parse(text)?,
                command_timeout: Duration::from_millis(args.redis_timeout_ms),
                connect_timeout: Duration::from_millis(args.redis_connect_timeout_ms),
                ca_pem,
            })
        }
    };
    let running = server::start(ServeOptions {
        config_path: args.config,
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        store,
        reload_interval: Duration::from_millis(args.reload_interval_ms.max(1)),
    })
    .await?;
    wait_for_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
