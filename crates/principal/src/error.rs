//! Rejections and how they answer on the wire (RFC 6750 §3).
//!
//! Every mechanism reports failures as an [`AuthError`]. Its [`ErrorKind`]
//! decides the status, the RFC 6750 `error` code and a fixed public
//! description, in one table ([`ErrorKind::status`], [`ErrorKind::code`],
//! [`ErrorKind::description`]). The [`Reason`] says what exactly went wrong;
//! it is logged and put into the response extensions for outer layers, but
//! never written into the response.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::{Challenge, Scopes};

/// The class of a rejection, which alone decides what the client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No credentials were sent: 401 with a bare challenge.
    MissingCredentials,
    /// The request is malformed or carries more than one credential:
    /// 400 `invalid_request`.
    InvalidRequest,
    /// The credential is not acceptable (bad, expired, revoked, wrong
    /// audience...): 401 `invalid_token`.
    InvalidToken,
    /// Valid credentials without the scopes the route needs:
    /// 403 `insufficient_scope`.
    InsufficientScope,
    /// Valid credentials of a caller the route does not serve: 403.
    Forbidden,
    /// Keys or another upstream needed to decide are unavailable: 503.
    Unavailable,
    /// A fault of the server's own configuration: 500.
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 `error` code, where the RFC defines one for this kind.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::MissingCredentials | Self::Forbidden | Self::Unavailable | Self::Internal => None,
        }
    }

    /// The code written into the JSON body (RFC 6750 codes, or our own).
    pub fn body_code(self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::Forbidden => "access_denied",
            Self::Unavailable => "temporarily_unavailable",
            Self::Internal => "server_error",
            other => other.code().unwrap_or("server_error"),
        }
    }

    /// A fixed, public description. It never depends on the credential.
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingCredentials => "authentication is required",
            Self::InvalidRequest => "the request is malformed or carries more than one credential",
            Self::InvalidToken => "the credential is invalid",
            Self::InsufficientScope => "the credential lacks a required scope",
            Self::Forbidden => "the caller may not use this resource",
            Self::Unavailable => "authentication is temporarily unavailable",
            Self::Internal => "authentication failed on the server",
        }
    }

    /// Whether a `WWW-Authenticate` challenge goes with this kind.
    fn challenges(self) -> bool {
        matches!(
            self,
            Self::MissingCredentials
                | Self::InvalidRequest
                | Self::InvalidToken
                | Self::InsufficientScope
        )
    }

    /// Whether this kind is the server's or an upstream's fault (logged at
    /// `warn`/`error`) rather than the client's (logged at `debug`).
    pub fn is_server_fault(self) -> bool {
        matches!(self, Self::Unavailable | Self::Internal)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_code())
    }
}

/// What exactly went wrong. For logs and metrics only: never sent to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No credential of an accepted kind was present.
    NoCredentials,
    /// More than one credential was presented.
    MultipleCredentials,
    /// A credential header could not be read.
    MalformedHeader,
    /// The token exceeds the configured size limit.
    TooLarge,
    /// The token is not three non-empty base64url segments.
    MalformedToken,
    /// The JOSE header is not acceptable (bad JSON, `crit`, `typ`, ...).
    BadHeader,
    /// The token's algorithm is not allowed for this issuer or key.
    AlgorithmNotAllowed,
    /// No key matches the token's `kid`.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// The claim set is not a JSON object of well-typed claims.
    MalformedClaims,
    /// A required claim is missing.
    MissingClaim,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// No `aud` value is accepted here.
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// The credential was revoked.
    Revoked,
    /// The credential is bound to a key the request did not prove.
    BindingMismatch,
    /// A valid client certificate maps to no account.
    UnmappedCertificate,
    /// The route needs scopes the caller lacks.
    MissingScope,
    /// The route serves another kind of caller.
    WrongPrincipalKind,
    /// The route is behind no authentication layer.
    NoPrincipal,
    /// Signing keys could not be obtained from the issuer.
    KeysUnavailable,
    /// The server's own configuration or environment failed.
    Misconfigured,
}

impl Reason {
    /// A stable snake-case name, used as the `reason` field of log events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::MultipleCredentials => "multiple_credentials",
            Self::MalformedHeader => "malformed_header",
            Self::TooLarge => "too_large",
            Self::MalformedToken => "malformed_token",
            Self::BadHeader => "bad_header",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::MalformedClaims => "malformed_claims",
            Self::MissingClaim => "missing_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::BindingMismatch => "binding_mismatch",
            Self::UnmappedCertificate => "unmapped_certificate",
            Self::MissingScope => "missing_scope",
            Self::WrongPrincipalKind => "wrong_principal_kind",
            Self::NoPrincipal => "no_principal",
            Self::KeysUnavailable => "keys_unavailable",
            Self::Misconfigured => "misconfigured",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected request: a kind (what the client sees) and a reason (what the
/// logs see).
///
/// It turns into a response with [`IntoResponse`]; the response carries a copy
/// of the error in its extensions so outer layers can count or log it.
///
/// ```
/// use axum::response::IntoResponse;
/// use tower_principal::{AuthError, Reason};
///
/// let response = AuthError::invalid_token(Reason::Expired).into_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(
///     response.headers()["www-authenticate"],
///     r#"Bearer error="invalid_token", error_description="the credential is invalid""#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    kind: ErrorKind,
    reason: Reason,
    required_scopes: Option<Scopes>,
    challenge: Option<Challenge>,
}

impl AuthError {
    /// An error of `kind` for `reason`.
    pub fn new(kind: ErrorKind, reason: Reason) -> Self {
        Self {
            kind,
            reason,
            required_scopes: None,
            challenge: None,
        }
    }

    /// 401 without an error code: nothing to authenticate with.
    pub fn missing_credentials() -> Self {
        Self::new(ErrorKind::MissingCredentials, Reason::NoCredentials)
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(reason: Reason) -> Self {
        Self::new(ErrorKind::InvalidRequest, reason)
    }

    /// 401 `invalid_token`.
    pub fn invalid_token(reason: Reason) -> Self {
        Self::new(ErrorKind::InvalidToken, reason)
    }

    /// 403 `insufficient_scope`, naming the scopes the route needs.
    pub fn insufficient_scope(required: Scopes) -> Self {
        Self {
            required_scopes: Some(required),
            ..Self::new(ErrorKind::InsufficientScope, Reason::MissingScope)
        }
    }

    /// 403 for a caller the route does not serve.
    pub fn forbidden(reason: Reason) -> Self {
        Self::new(ErrorKind::Forbidden, reason)
    }

    /// 503: the keys needed to decide could not be had.
    pub fn unavailable(reason: Reason) -> Self {
        Self::new(ErrorKind::Unavailable, reason)
    }

    /// 500: the server's own fault.
    pub fn internal(reason: Reason) -> Self {
        Self::new(ErrorKind::Internal, reason)
    }

    /// What the client sees.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, for logs.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The scopes a 403 `insufficient_scope` names.
    pub fn required_scopes(&self) -> Option<&Scopes> {
        self.required_scopes.as_ref()
    }

    /// Logs the rejection once: `debug` for client mistakes, `warn` for
    /// upstream faults, `error` for our own.
    pub fn log(&self) {
        let (kind, reason) = (self.kind.body_code(), self.reason.as_str());
        match self.kind {
            ErrorKind::Internal => tracing::error!(kind, reason, "request rejected"),
            ErrorKind::Unavailable => tracing::warn!(kind, reason, "request rejected"),
            _ => tracing::debug!(kind, reason, "request rejected"),
        }
    }

    /// Answers in the words of `challenge` (its `realm` and
    /// `resource_metadata`), as the layer that refused the request does.
    pub fn with_challenge(mut self, challenge: &Challenge) -> Self {
        self.challenge = (!challenge.is_empty()).then(|| challenge.clone());
        self
    }

    /// [`with_challenge`](Self::with_challenge) with the challenge an
    /// [`AuthLayer`](crate::AuthLayer) put into these request extensions.
    pub(crate) fn in_request(self, extensions: &http::Extensions) -> Self {
        match extensions.get::<Challenge>() {
            Some(challenge) => self.with_challenge(challenge),
            None => self,
        }
    }

    /// The challenge this error answers with, if one was given.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    fn response(&self) -> Response {
        let body = serde_json::json!({
            "error": self.kind.body_code(),
            "error_description": self.kind.description(),
        });
        let mut response = (self.kind.status(), axum::Json(body)).into_response();
        if self.kind.challenges()
            && let Ok(value) = HeaderValue::try_from(self.challenge_header())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response.extensions_mut().insert(self.clone());
        response
    }

    fn challenge_header(&self) -> String {
        let mut params = Vec::with_capacity(5);
        let given = self.challenge.as_ref();
        if let Some(realm) = given.and_then(Challenge::realm) {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(code) = self.kind.code() {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description=\"{}\"", self.kind.description()));
        }
        if let Some(scopes) = &self.required_scopes {
            params.push(format!("scope=\"{scopes}\""));
        }
        if let Some(url) = given.and_then(Challenge::resource_metadata) {
            params.push(format!("resource_metadata=\"{url}\""));
        }
        if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.reason)
    }
}

impl std::error::Error for AuthError {}

/// The response carries the challenge given with
/// [`with_challenge`](AuthError::with_challenge), if any.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// Checks that text can be quoted in a challenge as it is.
pub(crate) fn is_quotable(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7F).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_rfc6750() {
        assert_eq!(ErrorKind::MissingCredentials.status(), 401);
        assert_eq!(ErrorKind::MissingCredentials.code(), None);
        assert_eq!(ErrorKind::InvalidRequest.status(), 400);
        assert_eq!(ErrorKind::InvalidToken.code(), Some("invalid_token"));
        assert_eq!(ErrorKind::InsufficientScope.status(), 403);
        assert_eq!(ErrorKind::Unavailable.status(), 503);
    }

    #[test]
    fn missing_credentials_challenge_is_bare() {
        let err = AuthError::missing_credentials();
        assert_eq!(err.challenge_header(), "Bearer");
        let orders = Challenge::new().with_realm("orders").unwrap();
        let err = err.with_challenge(&orders);
        assert_eq!(err.challenge_header(), r#"Bearer realm="orders""#);
    }

    #[test]
    fn insufficient_scope_names_scopes() {
        let scopes = Scopes::parse_space_delimited("b a").unwrap();
        let err = AuthError::insufficient_scope(scopes);
        assert!(err.challenge_header().ends_with(r#"scope="a b""#));
    }

    #[test]
    fn resource_metadata_comes_last_and_an_empty_challenge_is_none() {
        let metadata = crate::ResourceMetadata::builder("https://r.example")
            .build()
            .unwrap();
        let challenge = Challenge::new()
            .with_realm("orders")
            .unwrap()
            .with_resource_metadata(&metadata);
        let err = AuthError::invalid_token(Reason::Expired).with_challenge(&challenge);
        assert_eq!(
            err.challenge_header(),
            "Bearer realm=\"orders\", error=\"invalid_token\", \
             error_description=\"the credential is invalid\", \
             resource_metadata=\"https://r.example/.well-known/oauth-protected-resource\""
        );
        assert!(err.with_challenge(&Challenge::new()).challenge().is_none());
    }

    #[test]
    fn quotable_text() {
        assert!(is_quotable("tower principal"));
        assert!(!is_quotable("a\"b"));
        assert!(!is_quotable("a\\b"));
        assert!(!is_quotable("a\nb"));
    }
}
