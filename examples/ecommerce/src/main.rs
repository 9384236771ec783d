//! The e-commerce example: an orders API and a reports endpoint protected by
//! tower-principal.
//!
//! With no arguments it starts an embedded demo issuer on loopback, writes a
//! demo PKI, serves plain HTTP and TLS, and prints ready-to-paste curl
//! commands; with `--config FILE` it trusts an external issuer. See README.md.
#![forbid(unsafe_code)]

mod app;
mod config;
mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tower_principal_mtls::ClientCertHeaderLayer;

use crate::app::{App, Published};

use crate::config::{
    Config, ConfigProblem, DEFAULT_LISTEN, DEFAULT_TLS_LISTEN, Mechanisms, StartupSetting,
};

/// Orders and reports resource server protected by tower-principal.
#[derive(Debug, Parser)]
#[command(name = "ecommerce", version)]
struct Cli {
    /// TOML configuration with an external issuer; without it, a demo issuer is embedded.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address of the plain HTTP listener; overrides `listen` of the configuration.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Address of the TLS listener; overrides `[tls] listen` (demo default 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,

    /// Demo mode: where the demo CA and certificates are kept (created on first run).
    #[arg(long, value_name = "DIR", default_value = "demo-data")]
    demo_dir: PathBuf,
}

/// Exit code for a configuration the server refuses to start with.
const EXIT_CONFIG: u8 = 2;

/// The RFC 9728 document each listener publishes.
enum Resource {
    /// No `[resource]` section: nothing published.
    Unpublished,
    /// The configured identifier, the same on every listener.
    Configured(Published),
    /// The demo: each listener is its own resource identifier (its URL),
    /// naming the demo issuer. Served only: the demo's challenges stay as
    /// they were before the document existed.
    PerListener { issuer: String },
}

impl Resource {
    fn for_listener(&self, addr: SocketAddr, tls: bool) -> Option<Published> {
        let issuer = match self {
            Self::Unpublished => return None,
            Self::Configured(published) => return Some(published.clone()),
            Self::PerListener { issuer } => issuer,
        };
        let url = format!("{}://{addr}", if tls { "https" } else { "http" });
        // An unspecified address (0.0.0.0) names no resource, and plain HTTP
        // is one only on loopback: the demo runs on, without the document.
        if addr.ip().is_unspecified() {
            eprintln!("warning: no resource metadata on {url}: not a resource's address");
            return None;
        }
        app::metadata(&url)
            .authorization_server(issuer)
            .certificate_bound_tokens(tls)
            .build()
            .inspect_err(|e| eprintln!("warning: no resource metadata on {url}: {e}"))
            .ok()
            .map(|metadata| Published {
                metadata,
                in_challenges: false,
            })
    }
}

/// What to serve, and where.
struct Plan {
    app: App,
    resource: Resource,
    listen: SocketAddr,
    tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    proxy: Option<ClientCertHeaderLayer>,
    demo: Option<demo::Demo>,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();

    let plan = match &cli.config {
        Some(path) => match from_config(path, &cli).await {
            Ok(plan) => plan,
            Err(problem) => {
                eprintln!("error: {problem}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => match from_demo(&cli).await {
            Ok(plan) => plan,
            Err(error) => {
                eprintln!("error: demo failed to start: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    match run(plan).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: Plan) -> Result<(), String> {
    let listener = bind(plan.listen).await?;
    let addr = listener.local_addr().unwrap_or(plan.listen);
    let tls = match plan.tls {
        Some((tls_addr, config)) => match bind(tls_addr).await {
            Ok(listener) => {
                let addr = listener.local_addr().unwrap_or(tls_addr);
                Some((listener, addr, config))
            }
            // The demo still works over plain HTTP; a configured listener must start.
            Err(error) if plan.demo.is_some() => {
                eprintln!("warning: {error}; the demo runs without its TLS listener");
                None
            }
            Err(error) => return Err(error),
        },
        None => None,
    };

    match &plan.demo {
        Some(demo) => demo.print_instructions(addr, tls.as_ref().map(|(_, addr, _)| *addr)),
        None => {
            println!("listening on http://{addr}");
            if let Some((_, tls_addr, _)) = &tls {
                println!("listening on https://{tls_addr}");
            }
        }
    }

    let metadata = plan.resource.for_listener(addr, false);
    let router = plan.app.router(metadata.as_ref());
    let plain_router = match plan.proxy {
        Some(layer) => router.layer(layer),
        None => router,
    };
    // Not `axum::serve`: this one cuts off clients that send nothing or trickle
    // their request head (the header read timeout), like the TLS listener.
    let plain = tower_principal_mtls::serve_plain(listener, plain_router)
        .with_graceful_shutdown(shutdown_signal());
    let plain = async move { plain.await.map_err(|e| format!("http server failed: {e}")) };

    match tls {
        Some((listener, tls_addr, config)) => {
            let metadata = plan.resource.for_listener(tls_addr, true);
            let router = plan.app.router(metadata.as_ref());
            let secure = tower_principal_mtls::serve(listener, config, router)
                .with_graceful_shutdown(shutdown_signal());
            let secure = async move { secure.await.map_err(|e| format!("tls server failed: {e}")) };
            tokio::try_join!(plain, secure).map(|_| ())
        }
        None => plain.await,
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn from_demo(cli: &Cli) -> Result<Plan, demo::DemoError> {
    let demo = demo::start(&cli.demo_dir).await?;
    let listen = cli
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let tls_listen = cli
        .tls_listen
        .unwrap_or_else(|| DEFAULT_TLS_LISTEN.parse().expect("valid default"));
    let tls = match demo.tls_config() {
        Ok(config) => Some((tls_listen, config)),
        Err(error) => {
            eprintln!("warning: {error}; the demo runs without its TLS listener");
            None
        }
    };
    Ok(Plan {
        app: App::new(demo.mechanisms()?),
        resource: Resource::PerListener {
            issuer: demo.issuer().to_owned(),
        },
        listen,
        tls,
        proxy: None,
        demo: Some(demo),
    })
}

async fn from_config(path: &Path, cli: &Cli) -> Result<Plan, ConfigProblem> {
    let config = Config::load(path)?;
    let (orders, reports) = config.jwt.issuer_sets(&config.reports.audience)?;
    let api_keys = config
        .api_keys
        .as_ref()
        .map(|s| s.authenticator())
        .transpose()?;
    let (tls, certificates) = match &config.tls {
        Some(section) => {
            let listen = cli.tls_listen.unwrap_or(section.listen);
            (
                Some((listen, section.server_config()?)),
                Some(section.mapper()?),
            )
        }
        None => {
            if cli.tls_listen.is_some() {
                tracing::warn!("--tls-listen is ignored: the configuration has no [tls] section");
            }
            (None, None)
        }
    };
    let proxy = config.proxy.clone().map(ClientCertHeaderLayer::from);
    let resource = match config.resource_metadata()? {
        Some(published) => Resource::Configured(published),
        None => Resource::Unpublished,
    };

    // Either way the server starts; issuers without keys answer 503 until
    // their keys arrive, and /ready says which.
    match config.jwt.startup {
        StartupSetting::Wait => {
            let timeout = Duration::from_secs(config.jwt.startup_timeout_secs);
            let readiness = orders.wait_until_ready(timeout).await;
            for status in readiness.issuers().iter().filter(|status| !status.ready) {
                tracing::warn!(
                    issuer = %status.issuer,
                    "signing keys not loaded at start-up; answering 503 for this issuer until they load"
                );
            }
        }
        StartupSetting::Background => orders.start(),
    }

    let mechanisms = Mechanisms {
        orders,
        reports,
        api_keys,
        certificates,
    };
    Ok(Plan {
        app: App::new(mechanisms),
        resource,
        listen: cli.listen.unwrap_or(config.listen),
        tls,
        proxy,
        demo: None,
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person watching, not for a log file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
