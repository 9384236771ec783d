//! The embedded demo issuer: fresh keys, a JWKS on loopback, demo tokens.

use std::net::SocketAddr;

use axum::Router;
use serde_json::json;
use tower_principal_jwt::{JwksCache, JwtValidator};
use tower_principal_testing::{KeyError, TestIssuer};

use crate::app;
use crate::config::DEFAULT_REPORTS_AUDIENCE;

/// The audience of the orders API in demo mode.
const ORDERS_AUDIENCE: &str = "orders-api";
/// Lifetime of the printed demo tokens: 12 hours.
const TOKEN_LIFETIME_SECS: i64 = 12 * 3600;

pub(crate) struct Demo {
    issuer: TestIssuer,
    orders: JwtValidator,
    reports: JwtValidator,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Config(#[from] tower_principal_jwt::ConfigError),
    #[error("the demo JWKS could not be fetched: {0}")]
    Fetch(#[from] tower_principal_jwt::FetchError),
}

/// Starts the demo issuer and validators that trust it, keys already fetched
/// over HTTP like from any external issuer.
pub(crate) async fn start() -> Result<Demo, DemoError> {
    let issuer = TestIssuer::start().await?;
    let keys = JwksCache::builder(issuer.jwks_uri()).build()?;
    keys.refresh().await?;
    let orders = JwtValidator::builder(issuer.issuer())
        .audience(ORDERS_AUDIENCE)
        .jwks(keys)
        .build()?;
    let reports = orders.for_audiences([DEFAULT_REPORTS_AUDIENCE])?;
    Ok(Demo {
        issuer,
        orders,
        reports,
    })
}

impl Demo {
    pub(crate) fn router(&self) -> Router {
        app::router(self.orders.clone(), self.reports.clone())
    }

    fn mint(
        &self,
        subject: &str,
        audience: &str,
        scope: &str,
    ) -> tower_principal_testing::TokenBuilder {
        self.issuer
            .token()
            .signed_by(self.issuer.key("ec-1").expect("the demo issuer has ec-1"))
            .subject(subject)
            .audience(&[audience])
            .scope(scope)
            .expires_in(TOKEN_LIFETIME_SECS)
    }

    pub(crate) fn print_instructions(&self, addr: SocketAddr) {
        let alice = self.mint("alice", ORDERS_AUDIENCE, "orders:read").sign();
        let writer = self
            .mint("bob", ORDERS_AUDIENCE, "orders:read orders:write")
            .sign();
        let reports = self
            .mint("alice", DEFAULT_REPORTS_AUDIENCE, "reports:generate")
            .claim("client_id", json!("reporting-service"))
            .claim("act", json!({ "sub": "reporting-service" }))
            .sign();
        let no_scope = self.mint("carol", ORDERS_AUDIENCE, "profile").sign();
        let base = format!("http://{addr}");

        println!("tower-principal e-commerce demo");
        println!("  resource server : {base}");
        println!(
            "  demo issuer     : {} (JWKS: {})",
            self.issuer.issuer(),
            self.issuer.jwks_uri()
        );
        println!();
        println!("Demo tokens, valid for 12 hours; paste these into your shell:");
        println!("export ALICE_TOKEN='{alice}'");
        println!("export WRITER_TOKEN='{writer}'");
        println!("export REPORTS_TOKEN='{reports}'");
        println!("export NO_SCOPE_TOKEN='{no_scope}'");
        println!();
        println!("Then try (expected status at the end of each line):");
        let lines = [
            format!("curl -i {base}/healthz  # 200"),
            format!("curl -i {base}/whoami  # 401 (no credentials)"),
            format!("curl -i -H \"Authorization: Bearer $ALICE_TOKEN\" {base}/whoami  # 200"),
            format!("curl -i -H \"Authorization: Bearer $ALICE_TOKEN\" {base}/orders  # 200"),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $ALICE_TOKEN\" -H 'content-type: application/json' -d '{{\"item\":\"book\"}}' {base}/orders  # 403 (needs orders:write)"
            ),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $WRITER_TOKEN\" -H 'content-type: application/json' -d '{{\"item\":\"book\"}}' {base}/orders  # 201"
            ),
            format!(
                "curl -i -H \"Authorization: Bearer $NO_SCOPE_TOKEN\" {base}/orders  # 403 (insufficient_scope)"
            ),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $REPORTS_TOKEN\" {base}/reports  # 202 (audit log line on stderr)"
            ),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $ALICE_TOKEN\" {base}/reports  # 401 (token not for reporting-service)"
            ),
            format!(
                "curl -i -H \"Authorization: Bearer not.a.token\" {base}/whoami  # 401 (invalid_token)"
            ),
        ];
        for line in lines {
            println!("{line}");
        }
        println!();
        println!("ready");
    }
}
