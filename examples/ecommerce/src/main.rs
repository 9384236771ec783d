//! The e-commerce example: an orders API and a reports endpoint protected by
//! tower-principal.
//!
//! With no arguments it starts an embedded demo issuer on loopback and prints
//! ready-to-paste curl commands; with `--config FILE` it trusts an external
//! issuer. See README.md.
#![forbid(unsafe_code)]

mod app;
mod config;
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::config::{Config, DEFAULT_LISTEN};

/// Orders and reports resource server protected by tower-principal.
#[derive(Debug, Parser)]
#[command(name = "ecommerce", version)]
struct Cli {
    /// TOML configuration with an external issuer; without it, a demo issuer is embedded.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on; overrides `listen` of the configuration.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// Exit code for a configuration the server refuses to start with.
const EXIT_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();

    let (router, listen, banner) = match &cli.config {
        Some(path) => match from_config(path).await {
            Ok((router, listen)) => (router, cli.listen.unwrap_or(listen), None),
            Err(problem) => {
                eprintln!("error: {problem}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => match demo::start().await {
            Ok(demo) => {
                let listen = cli
                    .listen
                    .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
                (demo.router(), listen, Some(demo))
            }
            Err(error) => {
                eprintln!("error: demo issuer failed to start: {error}");
                return ExitCode::FAILURE;
            }
        },
    };

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    match &banner {
        Some(demo) => demo.print_instructions(addr),
        None => println!("listening on http://{addr}"),
    }

    let serve = axum::serve(listener, router).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    if let Err(error) = serve.await {
        eprintln!("error: server failed: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn from_config(
    path: &std::path::Path,
) -> Result<(axum::Router, SocketAddr), config::ConfigProblem> {
    let config = Config::load(path)?;
    let validators = config.jwt.validators(&config.reports.audience)?;

    // Start even if the issuer is down: requests get 503 until keys arrive.
    if let Some(keys) = validators.orders.jwks() {
        match tokio::time::timeout(Duration::from_secs(10), keys.refresh()).await {
            Ok(Ok(count)) => tracing::info!(keys = count, uri = keys.uri(), "signing keys loaded"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "signing keys unavailable; answering 503 until they load")
            }
            Err(_) => {
                tracing::warn!("signing keys not loaded within 10 s; answering 503 until they load")
            }
        }
    }
    Ok((
        app::router(validators.orders, validators.reports),
        config.listen,
    ))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
