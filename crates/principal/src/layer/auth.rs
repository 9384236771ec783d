//! [`AuthLayer`]: authenticate every request into a [`Principal`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Request;
use http::header::HeaderName;
use http::request::Parts;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    AuthError, Authenticator, BoxFuture, Challenge, CredentialKind, CredentialSources, Principal,
    Reason, ResourceMetadata,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Authenticates each request and inserts one [`Principal`] into its extensions.
///
/// Deny by default: a request without credentials is answered with 401 and a
/// bare `WWW-Authenticate: Bearer realm="…"` challenge, a bad credential with
/// 401 `invalid_token`, a malformed request with 400 `invalid_request`; the
/// inner service only runs with a principal. [`AuthLayer::optional`] lets
/// requests *without* credentials through (bad credentials are still 401).
///
/// ```
/// use axum::{Router, routing::get};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use tower_principal::{
///     AuthError, AuthLayer, Authenticator, BoxFuture, Credential, Principal, Reason,
/// };
///
/// struct RejectAll;
/// impl Authenticator for RejectAll {
///     fn authenticate<'a>(
///         &'a self,
///         _: &'a Credential,
///         _: &'a http::request::Parts,
///     ) -> BoxFuture<'a, Result<Principal, AuthError>> {
///         Box::pin(async { Err(AuthError::invalid_token(Reason::BadSignature)) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = AuthLayer::new(RejectAll).with_realm("orders").unwrap();
/// let app = Router::new()
///     .route("/orders", get(|principal: Principal| async move { principal.subject().to_owned() }))
///     .layer(layer);
///
/// let response = app
///     .oneshot(Request::get("/orders").body(axum::body::Body::empty()).unwrap())
///     .await
///     .unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="orders""#);
/// # }
/// ```
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    bearer: Option<Arc<dyn Authenticator>>,
    api_key: Option<Arc<dyn Authenticator>>,
    client_certificate: Option<Arc<dyn Authenticator>>,
    sources: CredentialSources,
    /// Also put into each request's extensions, so that inner layers (such as
    /// [`RequireScopesLayer`](crate::RequireScopesLayer)) and extractors
    /// answer in the same words.
    challenge: Challenge,
    optional: bool,
}

/// The error of [`AuthLayer::with_realm`] and [`AuthLayerBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerConfigError {
    /// The realm cannot be quoted in a challenge.
    #[error("realm must be printable ASCII without '\"' or '\\'")]
    InvalidRealm,
    /// No mechanism was configured, so every request would be refused.
    #[error("no authentication mechanism configured")]
    NoMechanism,
}

impl AuthLayer {
    /// A layer that verifies bearer tokens with `authenticator` and requires
    /// credentials. Use [`AuthLayer::builder`] for more mechanisms.
    pub fn new(authenticator: impl Authenticator) -> Self {
        Self::from_shared(Shared {
            bearer: Some(Arc::new(authenticator)),
            api_key: None,
            client_certificate: None,
            sources: CredentialSources::default(),
            challenge: Challenge::new(),
            optional: false,
        })
    }

    /// Starts a layer with several mechanisms (bearer, API key, client certificate).
    pub fn builder() -> AuthLayerBuilder {
        AuthLayerBuilder::default()
    }

    /// Names the protection space in every challenge (`realm="…"`).
    pub fn with_realm(self, realm: &str) -> Result<Self, LayerConfigError> {
        let challenge = self.shared.challenge.clone().with_realm(realm)?;
        Ok(self.map_shared(|shared| shared.challenge = challenge))
    }

    /// Names the resource's RFC 9728 metadata in every challenge
    /// (`resource_metadata="…"`).
    pub fn with_resource_metadata(self, metadata: &ResourceMetadata) -> Self {
        self.map_shared(|shared| {
            shared.challenge = shared.challenge.clone().with_resource_metadata(metadata);
        })
    }

    /// Lets requests without any credential reach the inner service without a
    /// principal. Requests with a bad credential are still rejected.
    pub fn optional(self) -> Self {
        self.map_shared(|shared| shared.optional = true)
    }

    fn from_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    fn map_shared(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = (*self.shared).clone();
        change(&mut shared);
        Self::from_shared(shared)
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("sources", &self.shared.sources)
            .field("challenge", &self.shared.challenge)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AuthLayer`] from one authenticator per mechanism.
///
/// ```
/// # use tower_principal::{AuthError, Authenticator, BoxFuture, Credential, Principal, Reason};
/// # struct Deny;
/// # impl Authenticator for Deny {
/// #     fn authenticate<'a>(&'a self, _: &'a Credential, _: &'a http::request::Parts)
/// #         -> BoxFuture<'a, Result<Principal, AuthError>> {
/// #         Box::pin(async { Err(AuthError::invalid_token(Reason::BadSignature)) })
/// #     }
/// # }
/// # let (jwt, api_keys) = (Deny, Deny);
/// use tower_principal::AuthLayer;
///
/// let layer = AuthLayer::builder()
///     .bearer(jwt)
///     .api_key(api_keys)
///     .realm("orders")
///     .build()
///     .unwrap();
/// assert!(format!("{layer:?}").contains("api_key: true"));
/// ```
#[derive(Default)]
pub struct AuthLayerBuilder {
    bearer: Option<Arc<dyn Authenticator>>,
    api_key: Option<Arc<dyn Authenticator>>,
    client_certificate: Option<Arc<dyn Authenticator>>,
    api_key_header: Option<HeaderName>,
    realm: Option<String>,
    resource_metadata: Option<ResourceMetadata>,
    optional: bool,
}

impl AuthLayerBuilder {
    /// Verifies `Authorization: Bearer` tokens with `authenticator`.
    pub fn bearer(mut self, authenticator: impl Authenticator) -> Self {
        self.bearer = Some(Arc::new(authenticator));
        self
    }

    /// Verifies API keys (`Authorization: ApiKey` or the API key header).
    pub fn api_key(mut self, authenticator: impl Authenticator) -> Self {
        self.api_key = Some(Arc::new(authenticator));
        self
    }

    /// The header that carries an API key; `X-Api-Key` by default.
    pub fn api_key_header(mut self, name: HeaderName) -> Self {
        self.api_key_header = Some(name);
        self
    }

    /// Maps verified client certificates (from the request extensions) to principals.
    pub fn client_certificate(mut self, authenticator: impl Authenticator) -> Self {
        self.client_certificate = Some(Arc::new(authenticator));
        self
    }

    /// Names the protection space in every challenge.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Names the resource's RFC 9728 metadata in every challenge
    /// (`resource_metadata="…"`), so a refused client can find its
    /// authorization servers. Serve the document with
    /// [`ResourceMetadata::router`].
    pub fn resource_metadata(mut self, metadata: &ResourceMetadata) -> Self {
        self.resource_metadata = Some(metadata.clone());
        self
    }

    /// Lets requests without credentials through without a principal.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<AuthLayer, LayerConfigError> {
        if self.bearer.is_none() && self.api_key.is_none() && self.client_certificate.is_none() {
            return Err(LayerConfigError::NoMechanism);
        }
        let mut challenge = Challenge::new();
        if let Some(realm) = &self.realm {
            challenge = challenge.with_realm(realm)?;
        }
        if let Some(metadata) = &self.resource_metadata {
            challenge = challenge.with_resource_metadata(metadata);
        }

        let mut sources = CredentialSources {
            bearer: self.bearer.is_some(),
            api_key: self.api_key.is_some(),
            client_certificate: self.client_certificate.is_some(),
            ..CredentialSources::default()
        };
        if let Some(name) = self.api_key_header {
            sources.api_key_header = name;
        }

        Ok(AuthLayer::from_shared(Shared {
            bearer: self.bearer,
            api_key: self.api_key,
            client_certificate: self.client_certificate,
            sources,
            challenge,
            optional: self.optional,
        }))
    }
}

impl fmt::Debug for AuthLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayerBuilder")
            .field("bearer", &self.bearer.is_some())
            .field("api_key", &self.api_key.is_some())
            .field("client_certificate", &self.client_certificate.is_some())
            .field("realm", &self.realm)
            .field("resource_metadata", &self.resource_metadata)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// `Ok(None)` only for an optional layer and a request without credentials.
    async fn authenticate(&self, parts: &Parts) -> Result<Option<Principal>, AuthError> {
        let credential = match self.sources.extract(parts)? {
            Some(credential) => credential,
            None if self.optional => return Ok(None),
            None => return Err(AuthError::missing_credentials()),
        };

        let authenticator = match credential.kind() {
            CredentialKind::Bearer => self.bearer.as_ref(),
            CredentialKind::ApiKey => self.api_key.as_ref(),
            CredentialKind::ClientCertificate => self.client_certificate.as_ref(),
        };
        // `extract` only reads sources that have an authenticator.
        let authenticator = authenticator.ok_or(AuthError::internal(Reason::Misconfigured))?;
        authenticator
            .authenticate(&credential, parts)
            .await
            .map(Some)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`AuthLayer`].
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("sources", &self.shared.sources)
            .field("challenge", &self.shared.challenge)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone may not be ready; keep the one `poll_ready` prepared.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();

        ResponseFuture {
            inner: Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                parts.extensions.remove::<Principal>();
                // This layer's words, not those of an outer one.
                if shared.challenge.is_empty() {
                    parts.extensions.remove::<Challenge>();
                } else {
                    parts.extensions.insert(shared.challenge.clone());
                }

                match shared.authenticate(&parts).await {
                    Ok(Some(principal)) => {
                        parts.extensions.insert(principal);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        error.log();
                        let error = error.with_challenge(&shared.challenge);
                        return Ok(error.into_response());
                    }
                }

                let response = inner.call(Request::from_parts(parts, body)).await?;
                Ok(response.map(Body::new))
            }),
        }
    }
}

/// The response future of [`Auth`].
pub struct ResponseFuture<E> {
    inner: BoxFuture<'static, Result<Response, E>>,
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::{AuthMethod, Credential, RequireScopesLayer, Scopes, SystemAccount};

    /// Accepts the bearer token `good` as `svc` with scope `read`.
    struct Fixed;

    impl Authenticator for Fixed {
        fn authenticate<'a>(
            &'a self,
            credential: &'a Credential,
            _: &'a Parts,
        ) -> BoxFuture<'a, Result<Principal, AuthError>> {
            let result = match credential {
                Credential::Bearer(token) if token == "good" => {
                    let scopes = Scopes::parse_space_delimited("read").unwrap();
                    let method = AuthMethod::ApiKey { key_id: "k".into() };
                    Ok(Principal::System(SystemAccount::new("svc", scopes, method)))
                }
                _ => Err(AuthError::invalid_token(Reason::BadSignature)),
            };
            Box::pin(std::future::ready(result))
        }
    }

    /// Ready only once `ready` is set; answers with the caller's subject.
    #[derive(Clone)]
    struct Gate(Arc<AtomicBool>);

    impl Service<Request<Body>> for Gate {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.0.load(Ordering::SeqCst) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn call(&mut self, request: Request<Body>) -> Self::Future {
            let subject = request
                .extensions()
                .get::<Principal>()
                .map_or("none".to_owned(), |p| p.subject().to_owned());
            std::future::ready(Ok(http::Response::new(Body::from(subject))))
        }
    }

    fn request(authorization: Option<&str>) -> Request<Body> {
        let mut builder = Request::get("/");
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn layers_and_services_are_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<AuthLayer>();
        assert_traits::<Auth<Gate>>();
        assert_traits::<RequireScopesLayer>();
        assert_traits::<crate::layer::scopes::RequireScopes<Gate>>();
    }

    #[tokio::test]
    async fn poll_ready_waits_for_the_inner_service() {
        let gate = Arc::new(AtomicBool::new(false));
        let mut service = AuthLayer::new(Fixed).layer(Gate(gate.clone()));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(service.poll_ready(&mut cx).is_pending());

        gate.store(true, Ordering::SeqCst);
        assert!(service.poll_ready(&mut cx).is_ready());
        let response = service.call(request(Some("Bearer good"))).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"svc");
    }

    #[tokio::test]
    async fn a_principal_planted_by_an_outer_layer_is_removed() {
        let planted = Principal::System(SystemAccount::new(
            "planted",
            Scopes::new(),
            AuthMethod::ApiKey { key_id: "x".into() },
        ));
        let service = AuthLayer::new(Fixed)
            .optional()
            .layer(Gate(Arc::new(AtomicBool::new(true))));
        let mut req = request(None);
        req.extensions_mut().insert(planted);
        let response = service.oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"none");
    }

    #[tokio::test]
    async fn scope_rejection_names_the_auth_realm() {
        let service = tower::ServiceBuilder::new()
            .layer(AuthLayer::new(Fixed).with_realm("orders").unwrap())
            .layer(RequireScopesLayer::all(["write"]))
            .service(Gate(Arc::new(AtomicBool::new(true))));
        let response = service.oneshot(request(Some("Bearer good"))).await.unwrap();
        assert_eq!(response.status(), 403);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with(r#"Bearer realm="orders", error="insufficient_scope""#));
        assert_eq!(
            response
                .extensions()
                .get::<AuthError>()
                .map(AuthError::reason),
            Some(Reason::MissingScope),
            "the typed rejection travels in the response extensions"
        );
    }

    fn metadata() -> ResourceMetadata {
        ResourceMetadata::builder("https://orders.example/api")
            .build()
            .unwrap()
    }

    const METADATA_PARAM: &str =
        r#"resource_metadata="https://orders.example/.well-known/oauth-protected-resource/api""#;

    fn challenge_of(response: &Response) -> &str {
        response.headers()["www-authenticate"].to_str().unwrap()
    }

    #[tokio::test]
    async fn every_challenge_names_the_resource_metadata() {
        let layer = AuthLayer::builder()
            .bearer(Fixed)
            .realm("orders")
            .resource_metadata(&metadata())
            .build()
            .unwrap();
        let service = tower::ServiceBuilder::new()
            .layer(layer)
            .layer(RequireScopesLayer::all(["write"]))
            .service(Gate(Arc::new(AtomicBool::new(true))));

        let none = service.clone().oneshot(request(None)).await.unwrap();
        assert_eq!(none.status(), 401);
        assert_eq!(
            challenge_of(&none),
            format!(r#"Bearer realm="orders", {METADATA_PARAM}"#)
        );

        let bad = service.clone().oneshot(request(Some("Bearer bad"))).await;
        let bad = bad.unwrap();
        assert_eq!(bad.status(), 401);
        assert!(challenge_of(&bad).contains(r#"error="invalid_token""#));
        assert!(challenge_of(&bad).ends_with(METADATA_PARAM));

        let scope = service.oneshot(request(Some("Bearer good"))).await.unwrap();
        assert_eq!(scope.status(), 403);
        assert!(challenge_of(&scope).contains(r#"scope="write""#));
        assert!(challenge_of(&scope).ends_with(METADATA_PARAM));
    }

    #[tokio::test]
    async fn an_extractor_on_an_optional_route_answers_in_the_layers_words() {
        use axum::routing::get;

        let layer = AuthLayer::new(Fixed)
            .with_realm("orders")
            .unwrap()
            .with_resource_metadata(&metadata())
            .optional();
        let app = axum::Router::new()
            .route(
                "/",
                get(|p: Principal| async move { p.subject().to_owned() }),
            )
            .layer(layer);

        let response = app.oneshot(request(None)).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            challenge_of(&response),
            format!(r#"Bearer realm="orders", {METADATA_PARAM}"#)
        );
    }

    #[test]
    fn builder_refuses_no_mechanism_and_bad_realm() {
        assert_eq!(
            AuthLayer::builder().build().unwrap_err(),
            LayerConfigError::NoMechanism
        );
        assert_eq!(
            AuthLayer::builder()
                .bearer(Fixed)
                .realm("a\"b")
                .build()
                .unwrap_err(),
            LayerConfigError::InvalidRealm
        );
    }
}
