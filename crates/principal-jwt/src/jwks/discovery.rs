//! Finding an issuer's `jwks_uri` through OIDC discovery or RFC 8414 metadata.

use serde::Deserialize;

use super::FetchError;
use super::fetch::{self, Answer, Limits};

const OIDC_SUFFIX: &str = ".well-known/openid-configuration";
const RFC8414_SEGMENT: &str = "/.well-known/oauth-authorization-server";

/// The two metadata addresses of an issuer, in the order they are tried.
#[derive(Clone, Debug)]
pub(crate) struct MetadataUrls {
    pub(crate) issuer: String,
    pub(crate) oidc: reqwest::Url,
    pub(crate) rfc8414: reqwest::Url,
}

impl MetadataUrls {
    /// OIDC Discovery §4 appends to the issuer; RFC 8414 §3 inserts the
    /// well-known segment between the host and the issuer's path.
    pub(crate) fn for_issuer(issuer: &str) -> Option<Self> {
        let url = reqwest::Url::parse(issuer).ok()?;
        if !matches!(url.scheme(), "https" | "http")
            || url.host().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return None;
        }

        let oidc = format!("{}/{OIDC_SUFFIX}", issuer.trim_end_matches('/'));
        let path = url.path().trim_end_matches('/');
        let mut rfc8414 = url.clone();
        rfc8414.set_path(&format!("{RFC8414_SEGMENT}{path}"));
        Some(Self {
            issuer: issuer.to_owned(),
            oidc: reqwest::Url::parse(&oidc).ok()?,
            rfc8414,
        })
    }

    /// Fetches the metadata (OIDC first, RFC 8414 when that is not served)
    /// and returns the `jwks_uri` of a document whose `issuer` matches.
    pub(crate) async fn jwks_uri(
        &self,
        client: &reqwest::Client,
        limits: Limits,
    ) -> Result<reqwest::Url, FetchError> {
        let body = match self.fetch(client, &self.oidc, limits).await {
            Err(FetchError::Status(_)) => self.fetch(client, &self.rfc8414, limits).await?,
            other => other?,
        };
        self.check(&body)
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &reqwest::Url,
        limits: Limits,
    ) -> Result<Vec<u8>, FetchError> {
        let started = std::time::Instant::now();
        let result = fetch::get(client, url, "application/json", None, limits).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(Answer::Body { body, .. }) => {
                tracing::debug!(uri = %url, elapsed_ms, "issuer metadata fetched");
                Ok(body)
            }
            Ok(Answer::NotModified { .. }) => Err(FetchError::Status(304)),
            Err(error) => {
                tracing::debug!(uri = %url, elapsed_ms, %error, "issuer metadata not fetched");
                Err(error)
            }
        }
    }

    fn check(&self, body: &[u8]) -> Result<reqwest::Url, FetchError> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: Option<String>,
        }
        let metadata: Metadata =
            serde_json::from_slice(body).map_err(|_| FetchError::InvalidMetadata)?;
        // OIDC Discovery §4.3 and RFC 8414 §3.3: exactly the configured issuer.
        if metadata.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch);
        }
        let uri = metadata.jwks_uri.ok_or(FetchError::InvalidMetadata)?;
        let uri = reqwest::Url::parse(&uri).map_err(|_| FetchError::InvalidMetadata)?;
        let downgrade = self.oidc.scheme() == "https" && uri.scheme() != "https";
        if !matches!(uri.scheme(), "https" | "http") || downgrade {
            return Err(FetchError::InvalidMetadata);
        }
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_addresses_follow_both_specs() {
        let urls = MetadataUrls::for_issuer("https://idp.example.com").unwrap();
        assert_eq!(
            urls.oidc.as_str(),
            "https://idp.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            urls.rfc8414.as_str(),
            "https://idp.example.com/.well-known/oauth-authorization-server"
        );

        let urls = MetadataUrls::for_issuer("https://idp.example.com/tenant/a/").unwrap();
        assert_eq!(
            urls.oidc.as_str(),
            "https://idp.example.com/tenant/a/.well-known/openid-configuration"
        );
        assert_eq!(
            urls.rfc8414.as_str(),
            "https://idp.example.com/.well-known/oauth-authorization-server/tenant/a"
        );
    }

    #[test]
    fn odd_issuers_are_refused() {
        for bad in [
            "idp.example.com",
            "ftp://idp/",
            "https://idp/?tenant=a",
            "https://idp/#x",
        ] {
            assert!(MetadataUrls::for_issuer(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn metadata_issuer_must_match_exactly() {
        let urls = MetadataUrls::for_issuer("https://idp.example.com/").unwrap();
        let doc = |iss: &str, jwks: &str| format!(r#"{{"issuer":"{iss}","jwks_uri":"{jwks}"}}"#);
        let ok = doc("https://idp.example.com/", "https://idp.example.com/keys");
        assert_eq!(
            urls.check(ok.as_bytes()).unwrap().as_str(),
            "https://idp.example.com/keys"
        );
        let slashless = doc("https://idp.example.com", "https://idp.example.com/keys");
        assert_eq!(
            urls.check(slashless.as_bytes()),
            Err(FetchError::IssuerMismatch)
        );
        let downgrade = doc("https://idp.example.com/", "http://idp.example.com/keys");
        assert_eq!(
            urls.check(downgrade.as_bytes()),
            Err(FetchError::InvalidMetadata)
        );
        assert_eq!(urls.check(b"<html>"), Err(FetchError::InvalidMetadata));
    }
}
