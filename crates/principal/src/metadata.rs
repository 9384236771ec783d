//! RFC 9728 protected resource metadata: how a client learns which
//! authorization servers issue tokens for this resource, and which scopes and
//! token forms it accepts.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, Uri, header};
use serde_json::{Map, Value, json};

use crate::error::is_quotable;
use crate::{InvalidScope, Scope};

/// The well-known path prefix of RFC 9728 §3.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// An RFC 9728 metadata document, ready to serve.
///
/// The document is rendered once, when built. [`ResourceMetadata::router`]
/// serves it at its well-known path; give the same value to
/// [`AuthLayer`](crate::AuthLayer) (through
/// [`AuthLayerBuilder::resource_metadata`](crate::AuthLayerBuilder::resource_metadata))
/// and every challenge names the document's URL in `resource_metadata="…"`,
/// so a client that was refused can find out where to get a token.
///
/// The resource identifier is the URL clients use for this resource: `https`,
/// without query or fragment. Plain `http` is accepted only for loopback hosts
/// (`127.0.0.1`, `[::1]`, `localhost`), for local development.
///
/// ```
/// use axum::{Router, body::Body};
/// use http::Request;
/// use tower::ServiceExt;
/// use tower_principal::ResourceMetadata;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let metadata = ResourceMetadata::builder("https://orders.example.com/api")
///     .authorization_server("https://login.example.com")
///     .scopes(["orders:read", "orders:write"])
///     .resource_name("Orders API")
///     .build()
///     .unwrap();
/// assert_eq!(
///     metadata.url(),
///     "https://orders.example.com/.well-known/oauth-protected-resource/api"
/// );
/// let document: serde_json::Value = serde_json::from_slice(metadata.document()).unwrap();
/// assert_eq!(document["bearer_methods_supported"], serde_json::json!(["header"]));
///
/// // Served outside the authentication layer: clients read it before they
/// // have a token.
/// let app: Router = Router::new().merge(metadata.router());
/// let request = Request::get("/.well-known/oauth-protected-resource/api");
/// let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// # }
/// ```
#[derive(Clone)]
pub struct ResourceMetadata {
    inner: Arc<Inner>,
}

struct Inner {
    resource: String,
    path: String,
    url: String,
    document: Bytes,
}

impl ResourceMetadata {
    /// Starts a document for the resource identified by `resource`.
    pub fn builder(resource: impl Into<String>) -> ResourceMetadataBuilder {
        ResourceMetadataBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            certificate_bound_tokens: false,
        }
    }

    /// The resource identifier (the document's `resource`).
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// The path the document is served at, such as
    /// `/.well-known/oauth-protected-resource`.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The document's URL, as challenges name it.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The JSON document.
    pub fn document(&self) -> &[u8] {
        &self.inner.document
    }

    /// A router serving the document at [`path`](Self::path) (`GET` and
    /// `HEAD`, `application/json`). Merge it outside the authentication layer.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let document = self.inner.document.clone();
        let serve = move || {
            let body = document.clone();
            async move {
                let content_type = HeaderValue::from_static("application/json");
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }
        };
        Router::new().route(&self.inner.path, get(serve))
    }
}

impl fmt::Debug for ResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceMetadata")
            .field("resource", &self.inner.resource)
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ResourceMetadata`]; see there.
#[derive(Debug, Clone)]
pub struct ResourceMetadataBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    certificate_bound_tokens: bool,
}

impl ResourceMetadataBuilder {
    /// An issuer whose tokens this resource accepts (`authorization_servers`).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Scopes the resource's routes ask for (`scopes_supported`).
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// A name for people (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// A page about the resource for developers (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Says that certificate-bound tokens (RFC 8705) are supported
    /// (`tls_client_certificate_bound_access_tokens`).
    pub fn certificate_bound_tokens(mut self, supported: bool) -> Self {
        self.certificate_bound_tokens = supported;
        self
    }

    /// Checks every URL and scope and renders the document.
    pub fn build(self) -> Result<ResourceMetadata, MetadataError> {
        let resource = checked_url(&self.resource).map_err(MetadataError::Resource)?;
        for issuer in &self.authorization_servers {
            checked_url(issuer).map_err(MetadataError::AuthorizationServer)?;
        }
        if let Some(page) = &self.resource_documentation {
            checked_url(page).map_err(MetadataError::Documentation)?;
        }
        let mut scopes: Vec<Scope> = Vec::with_capacity(self.scopes.len());
        for scope in &self.scopes {
            let scope = Scope::new(scope).ok_or(MetadataError::Scope(InvalidScope))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }

        let path = well_known_path(resource.path());
        let authority = resource.authority().map_or("", |a| a.as_str());
        let scheme = resource.scheme_str().unwrap_or("https");
        let url = format!("{scheme}://{authority}{path}");
        if !is_quotable(&url) {
            return Err(MetadataError::Resource(UrlProblem::Unquotable));
        }

        let mut document = Map::new();
        document.insert("resource".into(), json!(self.resource));
        if !self.authorization_servers.is_empty() {
            document.insert(
                "authorization_servers".into(),
                json!(self.authorization_servers),
            );
        }
        if !scopes.is_empty() {
            document.insert("scopes_supported".into(), json!(scopes));
        }
        // AuthLayer reads bearer tokens from the Authorization header only.
        document.insert("bearer_methods_supported".into(), json!(["header"]));
        if let Some(name) = self.resource_name {
            document.insert("resource_name".into(), json!(name));
        }
        if let Some(page) = self.resource_documentation {
            document.insert("resource_documentation".into(), json!(page));
        }
        if self.certificate_bound_tokens {
            document.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                json!(true),
            );
        }
        let document = serde_json::to_vec(&Value::Object(document))
            .map_err(|_| MetadataError::Resource(UrlProblem::Invalid))?;

        Ok(ResourceMetadata {
            inner: Arc::new(Inner {
                resource: self.resource,
                path,
                url,
                document: Bytes::from(document),
            }),
        })
    }
}

/// RFC 9728 §3.1: the well-known prefix goes between the host and the
/// resource's path; a terminating `/` of the path is dropped first.
fn well_known_path(resource_path: &str) -> String {
    let path = resource_path.trim_end_matches('/');
    format!("{WELL_KNOWN_PREFIX}{path}")
}

/// Parses a URL the document names: `https` (or `http` on a loopback host),
/// with a host, without user info, query or fragment.
fn checked_url(text: &str) -> Result<Uri, UrlProblem> {
    if text.contains('#') {
        return Err(UrlProblem::Fragment);
    }
    let uri: Uri = text.parse().map_err(|_| UrlProblem::Invalid)?;
    if uri.scheme().is_none() {
        return Err(UrlProblem::Invalid);
    }
    let authority = uri.authority().ok_or(UrlProblem::Invalid)?;
    if authority.as_str().contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    if uri.query().is_some() {
        return Err(UrlProblem::Query);
    }
    // Served as a route, so no route syntax (`{param}`); not valid in a URL
    // path unencoded anyway.
    if uri.path().contains(['{', '}']) {
        return Err(UrlProblem::Invalid);
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(authority.host()) => Ok(uri),
        _ => Err(UrlProblem::NotHttps),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why [`ResourceMetadataBuilder::build`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The resource identifier is not an acceptable URL.
    #[error("resource identifier: {0}")]
    Resource(UrlProblem),
    /// An authorization server (issuer) is not an acceptable URL.
    #[error("authorization server: {0}")]
    AuthorizationServer(UrlProblem),
    /// The documentation URL is not acceptable.
    #[error("resource documentation: {0}")]
    Documentation(UrlProblem),
    /// A scope is empty or has characters RFC 6749 does not allow.
    #[error("scopes: {0}")]
    Scope(InvalidScope),
}

/// What is wrong with a URL given to [`ResourceMetadataBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlProblem {
    /// Not an absolute URL with a host.
    #[error("not an absolute URL with a host")]
    Invalid,
    /// Neither `https` nor `http` on a loopback host.
    #[error("must use https (http only for loopback hosts)")]
    NotHttps,
    /// Has a query component.
    #[error("must not have a query")]
    Query,
    /// Has a fragment.
    #[error("must not have a fragment")]
    Fragment,
    /// Has user info (`user@`).
    #[error("must not have user info")]
    UserInfo,
    /// Cannot be quoted in a `WWW-Authenticate` challenge.
    #[error("cannot be quoted in a challenge")]
    Unquotable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_path_goes_between_host_and_path() {
        let url = |resource: &str| {
            ResourceMetadata::builder(resource)
                .build()
                .unwrap()
                .url()
                .to_owned()
        };
        assert_eq!(
            url("https://r.example"),
            "https://r.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("https://r.example/"),
            "https://r.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("https://r.example:8443/a/b/"),
            "https://r.example:8443/.well-known/oauth-protected-resource/a/b"
        );
        assert_eq!(
            url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("http://[::1]:8080"),
            "http://[::1]:8080/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn unacceptable_urls_are_refused() {
        let problem = |resource: &str| ResourceMetadata::builder(resource).build().unwrap_err();
        let resource = MetadataError::Resource;
        assert_eq!(
            problem("http://orders.example"),
            resource(UrlProblem::NotHttps)
        );
        assert_eq!(problem("ftp://127.0.0.1"), resource(UrlProblem::NotHttps));
        assert_eq!(
            problem("https://r.example/?a=1"),
            resource(UrlProblem::Query)
        );
        assert_eq!(
            problem("https://r.example/#x"),
            resource(UrlProblem::Fragment)
        );
        assert_eq!(
            problem("https://u:p@r.example/"),
            resource(UrlProblem::UserInfo)
        );
        assert_eq!(problem("/relative"), resource(UrlProblem::Invalid));
        assert_eq!(problem("api"), resource(UrlProblem::Invalid));
        assert_eq!(problem("orders.example:443"), resource(UrlProblem::Invalid));
        assert_eq!(
            problem("https://r.example/{id}"),
            resource(UrlProblem::Invalid)
        );
        assert_eq!(
            problem("https://r.example/a{b"),
            resource(UrlProblem::Invalid)
        );
        assert_eq!(problem(""), resource(UrlProblem::Invalid));
        assert_eq!(
            problem("http://127.0.0.1.evil.example/"),
            resource(UrlProblem::NotHttps)
        );

        let issuer = ResourceMetadata::builder("https://r.example")
            .authorization_server("http://login.example")
            .build();
        assert_eq!(
            issuer.unwrap_err(),
            MetadataError::AuthorizationServer(UrlProblem::NotHttps)
        );
        let scope = ResourceMetadata::builder("https://r.example")
            .scopes(["ok", "not ok"])
            .build();
        assert!(matches!(scope, Err(MetadataError::Scope(_))));
    }

    #[test]
    fn document_holds_what_was_configured_and_nothing_else() {
        let metadata = ResourceMetadata::builder("https://r.example/api")
            .authorization_server("https://login.example")
            .scopes(["b", "a", "b"])
            .certificate_bound_tokens(true)
            .build()
            .unwrap();
        let document: Value = serde_json::from_slice(metadata.document()).unwrap();
        assert_eq!(
            document,
            json!({
                "resource": "https://r.example/api",
                "authorization_servers": ["https://login.example"],
                "scopes_supported": ["b", "a"],
                "bearer_methods_supported": ["header"],
                "tls_client_certificate_bound_access_tokens": true,
            })
        );

        let bare = ResourceMetadata::builder("https://r.example")
            .build()
            .unwrap();
        let document: Value = serde_json::from_slice(bare.document()).unwrap();
        assert_eq!(
            document,
            json!({ "resource": "https://r.example", "bearer_methods_supported": ["header"] })
        );
    }
}
