//! The TOML configuration of the example (see README.md for every key).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tower_principal_jwt::{Algorithm, JwksCache, JwtValidator, TypPolicy};

/// Where the resource server listens unless told otherwise.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtSection {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_uri: String,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    #[serde(default = "default_leeway")]
    pub(crate) leeway_secs: u64,
    #[serde(default)]
    pub(crate) typ: TypSetting,
    #[serde(default = "default_max_token_bytes")]
    pub(crate) max_token_bytes: usize,
    #[serde(default = "default_ttl")]
    pub(crate) jwks_ttl_secs: u64,
    #[serde(default = "default_cooldown")]
    pub(crate) jwks_refresh_cooldown_secs: u64,
    #[serde(default = "default_timeout")]
    pub(crate) jwks_fetch_timeout_ms: u64,
    #[serde(default = "default_max_body")]
    pub(crate) jwks_max_body_bytes: usize,
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
fn default_reports_audience() -> String {
    DEFAULT_REPORTS_AUDIENCE.to_owned()
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
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigProblem> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigProblem::Read {
            path: display.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigProblem::Parse {
            path: display,
            message: error.to_string(),
        })
    }
}

/// The validators of the two routers, sharing one key cache.
pub(crate) struct Validators {
    pub(crate) orders: JwtValidator,
    pub(crate) reports: JwtValidator,
}

impl JwtSection {
    pub(crate) fn validators(&self, reports_audience: &str) -> Result<Validators, ConfigProblem> {
        let keys = JwksCache::builder(&self.jwks_uri)
            .ttl(Duration::from_secs(self.jwks_ttl_secs))
            .refresh_cooldown(Duration::from_secs(self.jwks_refresh_cooldown_secs))
            .fetch_timeout(Duration::from_millis(self.jwks_fetch_timeout_ms))
            .max_body_bytes(self.jwks_max_body_bytes)
            .build()?;
        let mut builder = JwtValidator::builder(&self.issuer)
            .audiences(self.audiences.iter().cloned())
            .leeway(Duration::from_secs(self.leeway_secs))
            .typ_policy(match self.typ {
                TypSetting::Lenient => TypPolicy::Lenient,
                TypSetting::Strict => TypPolicy::Strict,
            })
            .max_token_bytes(self.max_token_bytes)
            .jwks(keys);
        if let Some(algorithms) = &self.algorithms {
            builder = builder.algorithms(algorithms.iter().copied());
        }
        let orders = builder.build()?;
        let reports = orders.for_audiences([reports_audience])?;
        Ok(Validators { orders, reports })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let config: Config = toml::from_str(
            r#"
            [jwt]
            issuer = "https://idp.example.com/"
            audiences = ["orders-api"]
            jwks_uri = "http://127.0.0.1:9000/jwks.json"
            "#,
        )
        .unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.reports.audience, "reporting-service");
        assert_eq!(config.jwt.leeway_secs, 60);
        assert!(config.jwt.validators("reporting-service").is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let typo = "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://x/\"\naudience = \"a\"";
        assert!(toml::from_str::<Config>(typo).is_err());
        let alg = "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://x/\"\nalgorithms = [\"none\"]";
        assert!(toml::from_str::<Config>(alg).is_err());
    }

    #[test]
    fn empty_audiences_and_hmac_are_refused_when_building() {
        let config: Config = toml::from_str(
            "[jwt]\nissuer = \"i\"\naudiences = []\njwks_uri = \"http://127.0.0.1:1/\"",
        )
        .unwrap();
        assert!(config.jwt.validators("r").is_err());
        let config: Config = toml::from_str(
            "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://127.0.0.1:1/\"\nalgorithms = [\"HS256\"]",
        )
        .unwrap();
        assert!(config.jwt.validators("r").is_err());
    }
}
