//! axum extractors for the authenticated caller.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::{AuthError, Principal, Reason, SystemAccount, UserToken};

fn principal_of(parts: &Parts) -> Result<&Principal, AuthError> {
    parts.extensions.get::<Principal>().ok_or_else(|| {
        // Either the route is behind no `AuthLayer` or the layer is optional.
        AuthError::missing_credentials().in_request(&parts.extensions)
    })
}

fn forbidden(parts: &Parts) -> AuthError {
    AuthError::forbidden(Reason::WrongPrincipalKind).in_request(&parts.extensions)
}

/// Extracts the caller; 401 if the request has none.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        principal_of(parts).cloned()
    }
}

/// `Option<Principal>`: the caller if authenticated, for optional routes.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// Extracts a user caller; 403 for a system account, 401 without a caller.
///
/// ```
/// use tower_principal::User;
///
/// async fn profile(User(user): User) -> String {
///     format!("hello {}", user.subject())
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(profile));
/// ```
#[derive(Clone, Debug)]
pub struct User(pub UserToken);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match principal_of(parts)? {
            Principal::User(user) => Ok(Self(user.clone())),
            Principal::System(_) => Err(forbidden(parts)),
        }
    }
}

/// Extracts a system-account caller; 403 for a user, 401 without a caller.
#[derive(Clone, Debug)]
pub struct System(pub SystemAccount);

impl<S: Send + Sync> FromRequestParts<S> for System {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match principal_of(parts)? {
            Principal::System(account) => Ok(Self(account.clone())),
            Principal::User(_) => Err(forbidden(parts)),
        }
    }
}
