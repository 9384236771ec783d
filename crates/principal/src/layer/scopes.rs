//! [`RequireScopesLayer`]: per-route scope requirements.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::layer::future::ResponseFuture;
use crate::{AuthError, InvalidScope, Principal, Scope, Scopes};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    All,
    Any,
}

/// Requires the request's [`Principal`] to hold scopes: all of them, or any one.
///
/// Put it on routes behind an [`AuthLayer`](crate::AuthLayer) with
/// `route_layer`. A principal without the scopes gets 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`; a request
/// without a principal gets 401.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_principal::RequireScopesLayer;
///
/// let orders: Router = Router::new()
///     .route("/orders", get(|| async { "[]" }))
///     .route_layer(RequireScopesLayer::all(["orders:read"]));
/// # let _ = orders;
/// ```
#[derive(Clone)]
pub struct RequireScopesLayer {
    required: Arc<Scopes>,
    mode: Match,
}

impl RequireScopesLayer {
    /// Requires every one of `scopes`.
    ///
    /// # Panics
    ///
    /// If a scope is not a valid RFC 6749 scope token; use
    /// [`RequireScopesLayer::try_all`] for scopes that come from configuration.
    pub fn all<I, T>(scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Self::try_all(scopes).expect("scopes in RequireScopesLayer::all must be valid")
    }

    /// Requires at least one of `scopes`.
    ///
    /// # Panics
    ///
    /// If a scope is invalid or the list is empty; see [`RequireScopesLayer::try_any`].
    pub fn any<I, T>(scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Self::try_any(scopes)
            .expect("scopes in RequireScopesLayer::any must be valid and non-empty")
    }

    /// Requires every one of `scopes`, or fails on an invalid scope.
    pub fn try_all<I, T>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Self::build(scopes, Match::All)
    }

    /// Requires at least one of `scopes`, or fails on an invalid scope or an
    /// empty list (which no principal could satisfy).
    pub fn try_any<I, T>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let layer = Self::build(scopes, Match::Any)?;
        if layer.required.is_empty() {
            return Err(InvalidScope);
        }
        Ok(layer)
    }

    fn build<I, T>(scopes: I, mode: Match) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let required = scopes
            .into_iter()
            .map(|scope| scope.as_ref().parse::<Scope>())
            .collect::<Result<Scopes, _>>()?;
        Ok(Self {
            required: Arc::new(required),
            mode,
        })
    }

    /// Decides for one principal.
    fn check(&self, principal: Option<&Principal>) -> Result<(), AuthError> {
        let Some(principal) = principal else {
            return Err(AuthError::missing_credentials());
        };
        let granted = principal.scopes();
        let allowed = match self.mode {
            Match::All => granted.contains_all(&self.required),
            Match::Any => granted.contains_any(&self.required),
        };
        if allowed {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope((*self.required).clone()))
        }
    }
}

impl fmt::Debug for RequireScopesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopesLayer")
            .field("required", &self.required)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`RequireScopesLayer`].
#[derive(Clone, Debug)]
pub struct RequireScopes<S> {
    inner: S,
    layer: RequireScopesLayer,
}

impl<S, B, ResBody> Service<Request<B>> for RequireScopes<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.layer.check(request.extensions().get::<Principal>()) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(error) => {
                error.log();
                let error = error.in_request(request.extensions());
                ResponseFuture::ready(error.into_response())
            }
        }
    }
}
