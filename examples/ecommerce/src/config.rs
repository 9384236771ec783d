//! The TOML configuration of the example (see README.md for every key).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::app::Published;
use tower_principal_apikey::{ApiKeyAuthenticator, FileStore, KeyPrefix, MemoryStore};
use tower_principal_jwt::{Algorithm, IssuerSet, JwksCache, JwtValidator, TypPolicy};
use tower_principal_mtls::{
    CertificateMapper, ClientAuth, ClientCertHeaderConfig, MappingConfig, TlsServerConfig,
};

/// Where the resource server listens unless told otherwise.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where the TLS listener of the demo listens unless told otherwise.
pub(crate) const DEFAULT_TLS_LISTEN: &str = "127.0.0.1:8443";
/// The audience the reports router accepts unless told otherwise.
pub(crate) const DEFAULT_REPORTS_AUDIENCE: &str = "reporting-service";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
    pub(crate) jwt: JwtSection,
    #[serde(default)]
    pub(crate) reports: ReportsSection,
    pub(crate) api_keys: Option<ApiKeySection>,
    pub(crate) tls: Option<TlsSection>,
    pub(crate) proxy: Option<ClientCertHeaderConfig>,
    pub(crate) resource: Option<ResourceSection>,
}

/// `[resource]`: the RFC 9728 protected resource metadata, served at
/// `/.well-known/oauth-protected-resource` (plus the identifier's path) and,
/// unless `challenges = false`, named in every challenge. Without this
/// section nothing is published.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceSection {
    /// The URL clients use for this resource server: `https`, no query.
    pub(crate) identifier: String,
    /// The issuers to name; every trusted issuer when absent.
    pub(crate) authorization_servers: Option<Vec<String>>,
    pub(crate) name: Option<String>,
    pub(crate) documentation: Option<String>,
    /// Whether every challenge names the document (`resource_metadata="…"`).
    #[serde(default = "default_true")]
    pub(crate) challenges: bool,
}

/// `[jwt]`: one trusted issuer inline (`issuer`, `audiences`, `jwks_uri` or
/// discovery), and/or several as `[[jwt.issuers]]`; the other keys apply to all.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtSection {
    pub(crate) issuer: Option<String>,
    pub(crate) audiences: Option<Vec<String>>,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    #[serde(default)]
    pub(crate) issuers: Vec<IssuerEntry>,
    #[serde(default = "default_leeway")]
    pub(crate) leeway_secs: u64,
    #[serde(default)]
    pub(crate) typ: TypSetting,
    #[serde(default = "default_max_token_bytes")]
    pub(crate) max_token_bytes: usize,
    #[serde(default = "default_ttl")]
    pub(crate) jwks_ttl_secs: u64,
    #[serde(default = "default_min_ttl")]
    pub(crate) jwks_min_ttl_secs: u64,
    #[serde(default = "default_max_ttl")]
    pub(crate) jwks_max_ttl_secs: u64,
    #[serde(default = "default_cooldown")]
    pub(crate) jwks_refresh_cooldown_secs: u64,
    #[serde(default = "default_retry_ms")]
    pub(crate) jwks_retry_interval_ms: u64,
    #[serde(default = "default_max_retry")]
    pub(crate) jwks_max_retry_interval_secs: u64,
    #[serde(default = "default_timeout")]
    pub(crate) jwks_fetch_timeout_ms: u64,
    #[serde(default = "default_max_body")]
    pub(crate) jwks_max_body_bytes: usize,
    #[serde(default = "default_max_staleness")]
    pub(crate) jwks_max_staleness_secs: u64,
    #[serde(default = "default_true")]
    pub(crate) background_refresh: bool,
    #[serde(default)]
    pub(crate) startup: StartupSetting,
    #[serde(default = "default_startup_timeout")]
    pub(crate) startup_timeout_secs: u64,
}

/// One `[[jwt.issuers]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerEntry {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    /// Without it, keys are found through discovery from `issuer`.
    pub(crate) jwks_uri: Option<String>,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
}

/// What to do at start-up until keys are loaded.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StartupSetting {
    /// Wait up to `startup_timeout_secs` for every issuer's keys, then serve
    /// (answering 503 for issuers still without keys).
    #[default]
    Wait,
    /// Serve at once; requests answer 503 until keys arrive.
    Background,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TypSetting {
    #[default]
    Lenient,
    Strict,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportsSection {
    #[serde(default = "default_reports_audience")]
    pub(crate) audience: String,
}

impl Default for ReportsSection {
    fn default() -> Self {
        Self {
            audience: default_reports_audience(),
        }
    }
}

/// `[api_keys]`: where system-account API keys come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeySection {
    /// A TOML key store, reloaded on change and on SIGHUP.
    pub(crate) file: Option<PathBuf>,
    /// An environment variable holding the same TOML (used when `file` is absent).
    pub(crate) env: Option<String>,
    #[serde(default = "default_prefix")]
    pub(crate) prefix: String,
    /// The header carrying a key besides `Authorization: ApiKey`.
    #[serde(default = "default_api_key_header")]
    pub(crate) header: String,
    #[serde(default = "default_poll")]
    pub(crate) poll_interval_secs: u64,
}

/// `[tls]`: the TLS listener, client certificate verification and mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    pub(crate) listen: SocketAddr,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client_ca: PathBuf,
    #[serde(default)]
    pub(crate) client_auth: ClientAuthSetting,
    #[serde(default)]
    pub(crate) crls: Vec<PathBuf>,
    #[serde(default)]
    pub(crate) mapping: MappingConfig,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientAuthSetting {
    #[default]
    Optional,
    Required,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default address is valid")
}
fn default_leeway() -> u64 {
    tower_principal_jwt::DEFAULT_LEEWAY.as_secs()
}
fn default_max_token_bytes() -> usize {
    tower_principal_jwt::DEFAULT_MAX_TOKEN_BYTES
}
fn default_ttl() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_TTL.as_secs()
}
fn default_cooldown() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_REFRESH_COOLDOWN.as_secs()
}
fn default_timeout() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_FETCH_TIMEOUT.as_millis() as u64
}
fn default_max_body() -> usize {
    tower_principal_jwt::jwks::DEFAULT_MAX_BODY_BYTES
}
fn default_min_ttl() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_MIN_TTL.as_secs()
}
fn default_max_ttl() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_MAX_TTL.as_secs()
}
fn default_retry_ms() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_RETRY_INTERVAL.as_millis() as u64
}
fn default_max_retry() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_MAX_RETRY_INTERVAL.as_secs()
}
fn default_max_staleness() -> u64 {
    tower_principal_jwt::jwks::DEFAULT_MAX_STALENESS.as_secs()
}
fn default_true() -> bool {
    true
}
fn default_startup_timeout() -> u64 {
    10
}
fn default_reports_audience() -> String {
    DEFAULT_REPORTS_AUDIENCE.to_owned()
}
fn default_prefix() -> String {
    "tp".to_owned()
}
fn default_api_key_header() -> String {
    "x-api-key".to_owned()
}
fn default_poll() -> u64 {
    10
}

/// A configuration problem, reported before anything starts (exit code 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigProblem {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid [jwt] settings: {0}")]
    Jwt(#[from] tower_principal_jwt::ConfigError),
    #[error("invalid [jwt] settings: {0}")]
    JwtShape(&'static str),
    #[error("invalid [api_keys] settings: {0}")]
    ApiKeys(String),
    #[error("invalid [tls] settings: {0}")]
    Tls(String),
    #[error("invalid [resource] settings: {0}")]
    Resource(#[from] tower_principal::MetadataError),
}

pub(crate) fn read_file(path: &Path) -> Result<String, ConfigProblem> {
    std::fs::read_to_string(path).map_err(|source| ConfigProblem::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigProblem> {
        let text = read_file(path)?;
        toml::from_str(&text).map_err(|error| ConfigProblem::Parse {
            path: path.display().to_string(),
            message: error.to_string(),
        })
    }
}

/// Everything that authenticates, built from configuration.
#[derive(Clone)]
pub(crate) struct Mechanisms {
    pub(crate) orders: IssuerSet,
    pub(crate) reports: IssuerSet,
    pub(crate) api_keys: Option<(Arc<ApiKeyAuthenticator>, http::HeaderName)>,
    pub(crate) certificates: Option<Arc<CertificateMapper>>,
}

impl JwtSection {
    /// The inline issuer (if any) followed by the `[[jwt.issuers]]` entries.
    fn entries(&self) -> Result<Vec<IssuerEntry>, ConfigProblem> {
        let mut entries = Vec::new();
        match (&self.issuer, &self.audiences) {
            (Some(issuer), Some(audiences)) => entries.push(IssuerEntry {
                issuer: issuer.clone(),
                audiences: audiences.clone(),
                jwks_uri: self.jwks_uri.clone(),
                algorithms: None,
            }),
            (None, None) if self.jwks_uri.is_none() => {}
            _ => {
                return Err(ConfigProblem::JwtShape(
                    "`issuer` and `audiences` go together",
                ));
            }
        }
        entries.extend(self.issuers.iter().map(|entry| IssuerEntry {
            issuer: entry.issuer.clone(),
            audiences: entry.audiences.clone(),
            jwks_uri: entry.jwks_uri.clone(),
            algorithms: entry.algorithms.clone(),
        }));
        if entries.is_empty() {
            return Err(ConfigProblem::JwtShape(
                "configure `issuer` or `[[jwt.issuers]]`",
            ));
        }
        Ok(entries)
    }

    fn validator(&self, entry: &IssuerEntry) -> Result<JwtValidator, ConfigProblem> {
        let keys = match &entry.jwks_uri {
            Some(uri) => JwksCache::builder(uri),
            None => JwksCache::discover(&entry.issuer),
        }
        .ttl(Duration::from_secs(self.jwks_ttl_secs))
        .min_ttl(Duration::from_secs(self.jwks_min_ttl_secs))
        .max_ttl(Duration::from_secs(self.jwks_max_ttl_secs))
        .refresh_cooldown(Duration::from_secs(self.jwks_refresh_cooldown_secs))
        .retry_interval(Duration::from_millis(self.jwks_retry_interval_ms))
        .max_retry_interval(Duration::from_secs(self.jwks_max_retry_interval_secs))
        .fetch_timeout(Duration::from_millis(self.jwks_fetch_timeout_ms))
        .max_body_bytes(self.jwks_max_body_bytes)
        .max_staleness(Duration::from_secs(self.jwks_max_staleness_secs))
        .background_refresh(self.background_refresh)
        .build()?;
        let mut builder = JwtValidator::builder(&entry.issuer)
            .audiences(entry.audiences.iter().cloned())
            .leeway(Duration::from_secs(self.leeway_secs))
            .typ_policy(match self.typ {
                TypSetting::Lenient => TypPolicy::Lenient,
                TypSetting::Strict => TypPolicy::Strict,
            })
            .max_token_bytes(self.max_token_bytes)
            .jwks(keys);
        if let Some(algorithms) = entry.algorithms.as_ref().or(self.algorithms.as_ref()) {
            builder = builder.algorithms(algorithms.iter().copied());
        }
        Ok(builder.build()?)
    }

    /// The issuers the orders API trusts, and the same issuers (sharing their
    /// key caches) for the reports audience.
    pub(crate) fn issuer_sets(
        &self,
        reports_audience: &str,
    ) -> Result<(IssuerSet, IssuerSet), ConfigProblem> {
        let mut orders = IssuerSet::builder();
        let mut reports = IssuerSet::builder();
        for entry in self.entries()? {
            let validator = self.validator(&entry)?;
            reports = reports.issuer(validator.for_audiences([reports_audience])?);
            orders = orders.issuer(validator);
        }
        Ok((orders.build()?, reports.build()?))
    }
}

impl Config {
    /// The RFC 9728 document, when `[resource]` is configured. Tokens may be
    /// certificate-bound when a TLS listener or a trusted proxy passes
    /// client certificates on.
    pub(crate) fn resource_metadata(&self) -> Result<Option<Published>, ConfigProblem> {
        let Some(section) = &self.resource else {
            return Ok(None);
        };
        let issuers = match &section.authorization_servers {
            Some(issuers) => issuers.clone(),
            None => self.jwt.entries()?.into_iter().map(|e| e.issuer).collect(),
        };
        let mut builder = crate::app::metadata(&section.identifier)
            .certificate_bound_tokens(self.tls.is_some() || self.proxy.is_some());
        for issuer in issuers {
            builder = builder.authorization_server(issuer);
        }
        if let Some(name) = &section.name {
            builder = builder.resource_name(name);
        }
        if let Some(page) = &section.documentation {
            builder = builder.resource_documentation(page);
        }
        Ok(Some(Published {
            metadata: builder.build()?,
            in_challenges: section.challenges,
        }))
    }
}

impl ApiKeySection {
    /// Needs a tokio runtime: the file store watches its file.
    pub(crate) fn authenticator(
        &self,
    ) -> Result<(Arc<ApiKeyAuthenticator>, http::HeaderName), ConfigProblem> {
        let problem = |e: &dyn std::fmt::Display| ConfigProblem::ApiKeys(e.to_string());
        let prefix = KeyPrefix::new(&self.prefix).map_err(|e| problem(&e))?;
        let header =
            http::HeaderName::from_bytes(self.header.as_bytes()).map_err(|e| problem(&e))?;
        let authenticator = match (&self.file, &self.env) {
            (Some(file), _) => {
                let store = FileStore::builder(file)
                    .poll_interval(Duration::from_secs(self.poll_interval_secs.max(1)))
                    .build()
                    .map_err(|e| problem(&e))?;
                ApiKeyAuthenticator::new(store)
            }
            (None, Some(var)) => {
                let store = MemoryStore::from_env(var).map_err(|e| problem(&e))?;
                ApiKeyAuthenticator::new(store)
            }
            (None, None) => return Err(problem(&"set `file` or `env`")),
        };
        Ok((Arc::new(authenticator.with_prefix(prefix)), header))
    }
}

impl TlsSection {
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ConfigProblem> {
        let mut builder = TlsServerConfig::builder()
            .server_cert_pem(read_file(&self.cert)?)
            .server_key_pem(read_file(&self.key)?)
            .client_ca_pem(read_file(&self.client_ca)?)
            .client_auth(match self.client_auth {
                ClientAuthSetting::Optional => ClientAuth::Optional,
                ClientAuthSetting::Required => ClientAuth::Required,
            });
        for crl in &self.crls {
            builder = builder.crl_pem(read_file(crl)?);
        }
        builder
            .build()
            .map_err(|e| ConfigProblem::Tls(e.to_string()))
    }

    pub(crate) fn mapper(&self) -> Result<Arc<CertificateMapper>, ConfigProblem> {
        CertificateMapper::new(self.mapping.clone())
            .map(Arc::new)
            .map_err(|e| ConfigProblem::Tls(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [jwt]
        issuer = "https://idp.example.com/"
        audiences = ["orders-api"]
        jwks_uri = "http://127.0.0.1:9000/jwks.json"
    "#;

    #[test]
    fn minimal_config_gets_defaults() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.reports.audience, "reporting-service");
        assert_eq!(config.jwt.leeway_secs, 60);
        assert!(config.api_keys.is_none() && config.tls.is_none() && config.proxy.is_none());
        assert!(config.jwt.issuer_sets("reporting-service").is_ok());
        assert!(matches!(config.jwt.startup, StartupSetting::Wait));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let typo = format!("{MINIMAL}\naudience = \"a\"");
        assert!(toml::from_str::<Config>(&typo).is_err());
        let alg = "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://x/\"\nalgorithms = [\"none\"]";
        assert!(toml::from_str::<Config>(alg).is_err());
        let rule = format!(
            "{MINIMAL}\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n[[tls.mapping.rules]]\nuri_san = \"spiffe://x\"\ndns_san = \"x\"\naccount = \"a\"\n"
        );
        assert!(
            toml::from_str::<Config>(&rule).is_err(),
            "a rule has one matcher"
        );
    }

    #[test]
    fn full_config_parses() {
        let text = format!(
            "{MINIMAL}\n[api_keys]\nfile = \"keys.toml\"\nprefix = \"tp\"\n\n[tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\nclient_auth = \"required\"\n[[tls.mapping.rules]]\nuri_san = \"spiffe://ecommerce/order-processor\"\naccount = \"order-processor\"\nscopes = [\"orders:read\", \"orders:process\"]\n\n[proxy]\ntrusted_proxies = [\"127.0.0.1\"]\n"
        );
        let config: Config = toml::from_str(&text).unwrap();
        let tls = config.tls.unwrap();
        assert!(matches!(tls.client_auth, ClientAuthSetting::Required));
        assert!(tls.mapper().is_ok());
        assert!(config.proxy.is_some());
    }

    #[test]
    fn empty_audiences_and_hmac_are_refused_when_building() {
        let config: Config = toml::from_str(
            "[jwt]\nissuer = \"i\"\naudiences = []\njwks_uri = \"http://127.0.0.1:1/\"",
        )
        .unwrap();
        assert!(config.jwt.issuer_sets("r").is_err());
        let config: Config = toml::from_str(
            "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://127.0.0.1:1/\"\nalgorithms = [\"HS256\"]",
        )
        .unwrap();
        assert!(config.jwt.issuer_sets("r").is_err());
    }

    #[test]
    fn several_issuers_and_discovery() {
        let config: Config = toml::from_str(
            r#"
            [jwt]
            startup = "background"
            [[jwt.issuers]]
            issuer = "https://a.example.com/"
            audiences = ["orders-api"]
            [[jwt.issuers]]
            issuer = "https://b.example.com/"
            audiences = ["orders-api"]
            jwks_uri = "https://b.example.com/keys"
            algorithms = ["ES256"]
            "#,
        )
        .unwrap();
        let (orders, reports) = config.jwt.issuer_sets("reporting-service").unwrap();
        assert_eq!(orders.issuers().count(), 2);
        assert_eq!(reports.issuers().count(), 2);
    }

    #[test]
    fn resource_section_names_the_issuers_and_may_stay_out_of_challenges() {
        let text = |extra: &str| {
            format!(
                "[jwt]\nissuer = \"https://idp.example/\"\naudiences = [\"a\"]\n\
                 [resource]\nidentifier = \"https://orders.example/api\"\n{extra}"
            )
        };
        let config: Config = toml::from_str(&text("")).unwrap();
        let published = config.resource_metadata().unwrap().unwrap();
        assert!(published.in_challenges);
        let document: serde_json::Value =
            serde_json::from_slice(published.metadata.document()).unwrap();
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!(["https://idp.example/"])
        );
        assert_eq!(
            document.get("tls_client_certificate_bound_access_tokens"),
            None
        );

        let config: Config = toml::from_str(&text("challenges = false")).unwrap();
        assert!(!config.resource_metadata().unwrap().unwrap().in_challenges);

        let config: Config =
            toml::from_str(&text("authorization_servers = [\"http://x\"]")).unwrap();
        assert!(matches!(
            config.resource_metadata(),
            Err(ConfigProblem::Resource(_))
        ));
    }

    #[test]
    fn issuer_without_audiences_or_nothing_at_all_is_refused() {
        let config: Config = toml::from_str("[jwt]\nissuer = \"i\"").unwrap();
        assert!(config.jwt.issuer_sets("r").is_err());
        let config: Config = toml::from_str("[jwt]\n").unwrap();
        assert!(config.jwt.issuer_sets("r").is_err());
        let dup = "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\n[[jwt.issuers]]\nissuer = \"i\"\naudiences = [\"b\"]";
        let config: Config = toml::from_str(dup).unwrap();
        assert!(
            config.jwt.issuer_sets("r").is_err(),
            "one issuer configured twice"
        );
    }
}
