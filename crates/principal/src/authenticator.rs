//! The trait every authentication mechanism implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::request::Parts;

use crate::{AuthError, Credential, Principal};

/// A boxed, sendable future, as returned by [`Authenticator::authenticate`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a [`Credential`] into a [`Principal`], or rejects it.
///
/// One implementation exists per mechanism (JWT, API key, client
/// certificate). The request head is passed along for mechanisms that need
/// more than the credential, such as certificate-bound tokens (RFC 8705).
///
/// Implementations must not log the credential, and must map every failure to
/// an [`AuthError`] whose [`ErrorKind`](crate::ErrorKind) is the client's
/// (`InvalidToken`, `InvalidRequest`) or the server's (`Unavailable`,
/// `Internal`) as appropriate.
///
/// ```
/// use http::request::Parts;
/// use tower_principal::{
///     AuthError, AuthMethod, Authenticator, BoxFuture, Credential, Principal, Reason, Scopes,
///     SystemAccount,
/// };
///
/// /// Accepts one fixed token; for illustration only.
/// struct Fixed;
///
/// impl Authenticator for Fixed {
///     fn authenticate<'a>(
///         &'a self,
///         credential: &'a Credential,
///         _request: &'a Parts,
///     ) -> BoxFuture<'a, Result<Principal, AuthError>> {
///         Box::pin(async move {
///             match credential {
///                 Credential::Bearer(token) if token == "let-me-in" => {
///                     let method = AuthMethod::ApiKey { key_id: "fixed".into() };
///                     Ok(Principal::System(SystemAccount::new("demo", Scopes::new(), method)))
///                 }
///                 _ => Err(AuthError::invalid_token(Reason::BadSignature)),
///             }
///         })
///     }
/// }
///
/// let layer = tower_principal::AuthLayer::new(Fixed);
/// # let _ = layer;
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies `credential` and returns who presented it.
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>>;
}

impl<A: Authenticator + ?Sized> Authenticator for Arc<A> {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        (**self).authenticate(credential, request)
    }
}
