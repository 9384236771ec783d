//! The embedded demo: an issuer with fresh keys and a JWKS on loopback, a
//! demo PKI on disk, an `order-processor` API key, and the commands to try.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tower_principal::Scopes;
use tower_principal_apikey::{
    AccountName, ApiKey, ApiKeyAuthenticator, KeyPrefix, MemoryStore, StoredKey,
};
use tower_principal_jwt::{IssuerSet, JwksCache, JwtValidator};
use tower_principal_mtls::{
    CertificateMapper, ClientAuth, MappingConfig, MappingRule, Matcher, TlsServerConfig,
};
use tower_principal_testing::pki::{ORDER_PROCESSOR, TestCa};
use tower_principal_testing::{KeyError, TestIssuer};

use crate::config::{DEFAULT_REPORTS_AUDIENCE, Mechanisms};

/// The audience of the orders API in demo mode.
const ORDERS_AUDIENCE: &str = "orders-api";
/// Lifetime of the printed demo tokens: 12 hours.
const TOKEN_LIFETIME_SECS: i64 = 12 * 3600;
/// The system account of the demo.
const ACCOUNT: &str = "order-processor";
/// Its scopes.
const ACCOUNT_SCOPES: &str = "orders:read orders:process";

const CA_FILE: &str = "ca.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server.key";
const CLIENT_CERT_FILE: &str = "order-processor.pem";
const CLIENT_KEY_FILE: &str = "order-processor.key";

pub(crate) struct Demo {
    issuer: TestIssuer,
    orders: JwtValidator,
    reports: JwtValidator,
    api_key: ApiKey,
    api_keys: MemoryStore,
    dir: PathBuf,
    /// Whether the PKI was written now (`Ok(true)`) or reused, or why it could not be.
    pki: Result<bool, String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Config(#[from] tower_principal_jwt::ConfigError),
    #[error("the demo JWKS could not be fetched: {0}")]
    Fetch(#[from] tower_principal_jwt::FetchError),
    #[error("demo files in {dir}: {source}")]
    Files { dir: String, source: std::io::Error },
    #[error("demo setup failed: {0}")]
    Setup(String),
}

fn setup(error: impl std::fmt::Display) -> DemoError {
    DemoError::Setup(error.to_string())
}

/// Starts the demo issuer and validators that trust it (keys fetched over
/// HTTP like from any external issuer), and makes sure the demo PKI exists.
pub(crate) async fn start(dir: &Path) -> Result<Demo, DemoError> {
    let issuer = TestIssuer::start().await?;
    let keys = JwksCache::builder(issuer.jwks_uri()).build()?;
    keys.refresh().await?;
    let orders = JwtValidator::builder(issuer.issuer())
        .audience(ORDERS_AUDIENCE)
        .jwks(keys)
        .build()?;
    let reports = orders.for_audiences([DEFAULT_REPORTS_AUDIENCE])?;

    let api_key = ApiKey::generate(&KeyPrefix::default()).map_err(setup)?;
    let scopes = Scopes::parse_space_delimited(ACCOUNT_SCOPES).map_err(setup)?;
    let account = AccountName::new(ACCOUNT).map_err(setup)?;
    let stored = StoredKey::new(api_key.id().clone(), account, scopes, api_key.secret_hash());
    let api_keys = MemoryStore::new([stored]).map_err(setup)?;

    // Without a writable directory the demo still serves plain HTTP.
    let pki = ensure_pki(dir).map_err(|error| format!("{}: {error}", dir.display()));
    Ok(Demo {
        issuer,
        orders,
        reports,
        api_key,
        api_keys,
        // Printed in the curl commands: absolute, so they work from any directory.
        dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
        pki,
    })
}

/// Writes a CA, a server and an `order-processor` client certificate into
/// `dir` unless they are there; returns whether it wrote them.
fn ensure_pki(dir: &Path) -> std::io::Result<bool> {
    let files = [
        CA_FILE,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
        CLIENT_CERT_FILE,
        CLIENT_KEY_FILE,
    ];
    if files.iter().all(|name| dir.join(name).is_file()) {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    restrict(dir, 0o700)?;
    let ca = TestCa::new("tower-principal demo CA");
    let server = ca.server();
    let client = ca.client(ORDER_PROCESSOR);
    std::fs::write(dir.join(CA_FILE), ca.cert_pem())?;
    std::fs::write(dir.join(SERVER_CERT_FILE), &server.cert)?;
    std::fs::write(dir.join(SERVER_KEY_FILE), &server.key)?;
    std::fs::write(dir.join(CLIENT_CERT_FILE), &client.cert)?;
    std::fs::write(dir.join(CLIENT_KEY_FILE), &client.key)?;
    for key in [SERVER_KEY_FILE, CLIENT_KEY_FILE] {
        restrict(&dir.join(key), 0o600)?;
    }
    Ok(true)
}

/// Private keys and the directory holding them are for the owner only.
#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

impl Demo {
    pub(crate) fn mechanisms(&self) -> Result<Mechanisms, DemoError> {
        let scopes: Vec<String> = ACCOUNT_SCOPES.split(' ').map(str::to_owned).collect();
        let rule = MappingRule::new(Matcher::UriSan(ORDER_PROCESSOR.to_owned()), ACCOUNT, scopes);
        let mapper = CertificateMapper::new(MappingConfig::new(vec![rule])).map_err(setup)?;
        let header = http::HeaderName::from_static("x-api-key");
        let orders = IssuerSet::builder().issuer(self.orders.clone()).build()?;
        let reports = IssuerSet::builder().issuer(self.reports.clone()).build()?;
        orders.start();
        Ok(Mechanisms {
            orders,
            reports,
            api_keys: Some((
                Arc::new(ApiKeyAuthenticator::new(self.api_keys.clone())),
                header,
            )),
            certificates: Some(Arc::new(mapper)),
        })
    }

    /// The TLS configuration from the demo PKI, if it could be written.
    pub(crate) fn tls_config(&self) -> Result<Arc<rustls::ServerConfig>, DemoError> {
        if let Err(error) = &self.pki {
            return Err(DemoError::Setup(format!("no demo PKI: {error}")));
        }
        let read = |name: &str| {
            std::fs::read(self.dir.join(name)).map_err(|source| DemoError::Files {
                dir: self.dir.display().to_string(),
                source,
            })
        };
        TlsServerConfig::builder()
            .server_cert_pem(read(SERVER_CERT_FILE)?)
            .server_key_pem(read(SERVER_KEY_FILE)?)
            .client_ca_pem(read(CA_FILE)?)
            .client_auth(ClientAuth::Optional)
            .build()
            .map_err(setup)
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

    /// Prints the credentials and the commands; TLS ones only with a TLS listener.
    /// The demo issuer's identifier.
    pub(crate) fn issuer(&self) -> &str {
        self.issuer.issuer()
    }

    pub(crate) fn print_instructions(&self, addr: SocketAddr, tls_addr: Option<SocketAddr>) {
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
        let dir = self.dir.display();
        let mtls = format!(
            "--cacert '{dir}/{CA_FILE}' --cert '{dir}/{CLIENT_CERT_FILE}' --key '{dir}/{CLIENT_KEY_FILE}'"
        );

        println!("tower-principal e-commerce demo");
        match tls_addr {
            Some(tls_addr) => println!(
                "  resource server : {base} and https://{tls_addr} (TLS, client certificates optional)"
            ),
            None => {
                println!("  resource server : {base} (no TLS listener: see the warning on stderr)")
            }
        }
        println!(
            "  demo issuer     : {} (JWKS: {})",
            self.issuer.issuer(),
            self.issuer.jwks_uri()
        );
        match &self.pki {
            Ok(created) => {
                let state = if *created { "created" } else { "reused" };
                println!(
                    "  demo PKI        : {dir} ({state}: CA, server and order-processor certificates)"
                );
            }
            Err(error) => println!("  demo PKI        : not available ({error})"),
        }
        println!();
        println!("Demo credentials; paste these into your shell (tokens valid for 12 hours,");
        println!("the API key until this process exits):");
        println!("export ALICE_TOKEN='{alice}'");
        println!("export WRITER_TOKEN='{writer}'");
        println!("export REPORTS_TOKEN='{reports}'");
        println!("export NO_SCOPE_TOKEN='{no_scope}'");
        println!(
            "export ORDER_PROCESSOR_KEY='{}'",
            self.api_key.expose_secret()
        );
        println!();
        println!("Then try (expected status at the end of each line):");
        let json = "-H 'content-type: application/json' -d '{\"item\":\"book\"}'";
        let lines = [
            format!("curl -i {base}/healthz  # 200"),
            format!("curl -i {base}/whoami  # 401 (no credentials)"),
            format!(
                "curl -i {base}/.well-known/oauth-protected-resource  # 200 (RFC 9728 metadata: issuer, scopes)"
            ),
            format!(
                "curl -i -H \"Authorization: Bearer $ALICE_TOKEN\" {base}/whoami  # 200 (kind user)"
            ),
            format!("curl -i -H \"Authorization: Bearer $ALICE_TOKEN\" {base}/orders  # 200"),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $ALICE_TOKEN\" {json} {base}/orders  # 403 (needs orders:write)"
            ),
            format!(
                "curl -i -X POST -H \"Authorization: Bearer $WRITER_TOKEN\" {json} {base}/orders  # 201"
            ),
            format!(
                "curl -i -H \"Authorization: Bearer $NO_SCOPE_TOKEN\" {base}/orders  # 403 (insufficient_scope)"
            ),
            format!(
                "curl -i -H \"Authorization: Bearer $ALICE_TOKEN\" '{base}/orders?status=pending'  # 403 (needs orders:process)"
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
            format!(
                "curl -i -H \"X-Api-Key: $ORDER_PROCESSOR_KEY\" {base}/whoami  # 200 (kind system)"
            ),
            format!(
                "curl -i -H \"Authorization: ApiKey $ORDER_PROCESSOR_KEY\" '{base}/orders?status=pending'  # 200"
            ),
            format!(
                "curl -i -X POST -H \"X-Api-Key: $ORDER_PROCESSOR_KEY\" {json} {base}/orders  # 403 (order-processor lacks orders:write)"
            ),
            format!(
                "curl -i -H \"X-Api-Key: tp_nosuchkey_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" {base}/whoami  # 401 (invalid_token)"
            ),
        ];
        for line in lines {
            println!("{line}");
        }
        if let Some(tls_addr) = tls_addr {
            let tls = format!("https://{tls_addr}");
            let lines = [
                format!("curl -i {mtls} {tls}/whoami  # 200 (kind system, over mTLS)"),
                format!("curl -i {mtls} '{tls}/orders?status=pending'  # 200"),
                format!(
                    "curl -i -X POST {mtls} {json} {tls}/orders  # 403 (order-processor lacks orders:write)"
                ),
                format!(
                    "curl -i --cacert '{dir}/{CA_FILE}' -H \"Authorization: Bearer $ALICE_TOKEN\" {tls}/whoami  # 200 (bearer over TLS without a client certificate)"
                ),
            ];
            for line in lines {
                println!("{line}");
            }
        }
        println!();
        println!("ready");
    }
}
