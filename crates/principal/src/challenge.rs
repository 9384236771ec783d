//! [`Challenge`]: the parameters every challenge of one protection space names.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::error::is_quotable;
use crate::{LayerConfigError, ResourceMetadata};

/// What every `WWW-Authenticate` challenge of one protection space names
/// besides the error: the `realm` and, per RFC 9728, the URL of the
/// resource's metadata (`resource_metadata`).
///
/// [`AuthLayer`](crate::AuthLayer) puts its challenge into each request's
/// extensions, and the scope layer and the extractors answer with it. A
/// handler that refuses a request itself extracts it to answer in the same
/// words:
///
/// ```
/// use axum::response::{IntoResponse, Response};
/// use tower_principal::{AuthError, Challenge, Principal, Scopes};
///
/// async fn refund(challenge: Challenge, principal: Principal) -> Response {
///     if !principal.has_scope("orders:refund") {
///         let needed = Scopes::parse_space_delimited("orders:refund").unwrap();
///         return AuthError::insufficient_scope(needed)
///             .with_challenge(&challenge)
///             .into_response();
///     }
///     "refunded".into_response()
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::post(refund));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    realm: Option<Arc<str>>,
    resource_metadata: Option<Arc<str>>,
}

impl Challenge {
    /// A challenge naming nothing but the scheme.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the protection space (`realm="…"`); it must be printable ASCII
    /// without `"` or `\`.
    pub fn with_realm(mut self, realm: &str) -> Result<Self, LayerConfigError> {
        if !is_quotable(realm) {
            return Err(LayerConfigError::InvalidRealm);
        }
        self.realm = Some(realm.into());
        Ok(self)
    }

    /// Names the URL of the resource's metadata (`resource_metadata="…"`).
    pub fn with_resource_metadata(mut self, metadata: &ResourceMetadata) -> Self {
        self.resource_metadata = Some(metadata.url().into());
        self
    }

    /// The realm, if one is named.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The metadata URL, if one is named.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.realm.is_none() && self.resource_metadata.is_none()
    }
}

/// The challenge of the [`AuthLayer`](crate::AuthLayer) the request passed;
/// an empty one behind no layer.
impl<S: Send + Sync> FromRequestParts<S> for Challenge {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}
