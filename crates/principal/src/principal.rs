//! The authenticated caller: [`Principal`] and its two shapes.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Scopes;

/// Who is calling, as established by the authentication layer.
///
/// Exactly one `Principal` is inserted into the request extensions of every
/// request that the [`AuthLayer`](crate::AuthLayer) lets through with
/// credentials. Handlers take it with the [`Principal`] extractor, or with
/// [`User`](crate::User) / [`System`](crate::System) when a route serves only
/// one kind of caller.
///
/// ```
/// use tower_principal::{AuthMethod, Principal, Scopes, SystemAccount};
///
/// let scopes = Scopes::parse_space_delimited("orders:read orders:process").unwrap();
/// let account = SystemAccount::new("order-processor", scopes, AuthMethod::ApiKey {
///     key_id: "k1".into(),
/// });
/// let principal = Principal::System(account);
///
/// assert_eq!(principal.subject(), "order-processor");
/// assert!(principal.has_scope("orders:process"));
/// assert!(!principal.has_scope("orders:write"));
/// ```
#[derive(Clone, Debug)]
pub enum Principal {
    /// A service or daemon with fixed privileges.
    System(SystemAccount),
    /// A person (or a client acting for one) holding an access token.
    User(UserToken),
}

impl Principal {
    /// The stable identifier of the caller: the account name, or the token's `sub`.
    pub fn subject(&self) -> &str {
        match self {
            Self::System(account) => account.name(),
            Self::User(user) => user.subject(),
        }
    }

    /// The scopes the caller holds.
    pub fn scopes(&self) -> &Scopes {
        match self {
            Self::System(account) => account.scopes(),
            Self::User(user) => user.scopes(),
        }
    }

    /// Whether the caller holds `scope` (case-sensitive).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(scope)
    }

    /// How the caller proved who it is.
    pub fn method(&self) -> &AuthMethod {
        match self {
            Self::System(account) => account.method(),
            Self::User(user) => user.method(),
        }
    }

    /// `"system"` or `"user"`, for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::System(_) => "system",
            Self::User(_) => "user",
        }
    }

    /// The user token, if the caller is a user.
    pub fn as_user(&self) -> Option<&UserToken> {
        match self {
            Self::User(user) => Some(user),
            Self::System(_) => None,
        }
    }

    /// The system account, if the caller is one.
    pub fn as_system(&self) -> Option<&SystemAccount> {
        match self {
            Self::System(account) => Some(account),
            Self::User(_) => None,
        }
    }
}

/// How a principal authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT bearer token (`Authorization: Bearer`).
    BearerJwt {
        /// The `kid` of the key that verified the token, if the token named one.
        key_id: Option<String>,
    },
    /// An API key; only its public key id is kept.
    ApiKey {
        /// The key id part of the API key.
        key_id: String,
    },
    /// A verified TLS client certificate.
    ClientCertificate {
        /// SHA-256 thumbprint of the leaf certificate, base64url without padding.
        sha256_thumbprint: String,
    },
}

impl AuthMethod {
    /// A short stable name: `bearer_jwt`, `api_key` or `client_certificate`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BearerJwt { .. } => "bearer_jwt",
            Self::ApiKey { .. } => "api_key",
            Self::ClientCertificate { .. } => "client_certificate",
        }
    }
}

/// A system account: a service with fixed privileges, such as `order-processor`.
#[derive(Clone, Debug)]
pub struct SystemAccount {
    name: Arc<str>,
    scopes: Scopes,
    method: AuthMethod,
}

impl SystemAccount {
    /// An account `name` holding `scopes`, authenticated by `method`.
    pub fn new(name: impl Into<Arc<str>>, scopes: Scopes, method: AuthMethod) -> Self {
        Self {
            name: name.into(),
            scopes,
            method,
        }
    }

    /// The account name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes granted to the account.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// How the account authenticated on this request.
    pub fn method(&self) -> &AuthMethod {
        &self.method
    }
}

/// One link of an RFC 8693 delegation chain (`act` claim).
///
/// The outermost actor is the party currently acting; [`Actor::actor`] goes
/// back to earlier ones. Only the outer actor is meant for authorization
/// decisions; the rest is for auditing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    /// The actor's `sub`.
    pub subject: String,
    /// The actor's `iss`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The actor's `client_id`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The actor before this one, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Box<Actor>>,
}

impl Actor {
    /// Iterates the chain from this actor back to the first one.
    pub fn chain(&self) -> impl Iterator<Item = &Actor> {
        std::iter::successors(Some(self), |actor| actor.actor.as_deref())
    }
}

/// A validated user access token.
///
/// Built by an authenticator (such as the JWT one) after the signature and the
/// registered claims have been checked. The full claim set is kept and can be
/// deserialized into an application's own type with [`UserToken::claims`].
/// Cheap to clone: the fields are shared.
#[derive(Clone)]
pub struct UserToken(Arc<TokenFields>);

struct TokenFields {
    subject: String,
    issuer: String,
    audiences: Vec<String>,
    expires_at: SystemTime,
    issued_at: Option<SystemTime>,
    jwt_id: Option<String>,
    client_id: Option<String>,
    scopes: Scopes,
    actor: Option<Actor>,
    method: AuthMethod,
    certificate_thumbprint: Option<String>,
    claims: RawClaims,
}

/// The claim set as received, parsed into a [`Value`] only when asked for:
/// most requests never look at more than the registered claims.
struct RawClaims {
    json: Box<[u8]>,
    parsed: OnceLock<Value>,
}

impl UserToken {
    /// Starts a token for `subject` from `issuer`, expiring at `expires_at`.
    ///
    /// Authenticators use this after validation; applications normally receive
    /// tokens from the layer instead of building them.
    pub fn builder(
        subject: impl Into<String>,
        issuer: impl Into<String>,
        expires_at: SystemTime,
    ) -> UserTokenBuilder {
        UserTokenBuilder(TokenFields {
            subject: subject.into(),
            issuer: issuer.into(),
            audiences: Vec::new(),
            expires_at,
            issued_at: None,
            jwt_id: None,
            client_id: None,
            scopes: Scopes::new(),
            actor: None,
            method: AuthMethod::BearerJwt { key_id: None },
            certificate_thumbprint: None,
            claims: RawClaims {
                json: Box::from(&b"{}"[..]),
                parsed: OnceLock::new(),
            },
        })
    }

    /// The `sub` claim.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The `aud` claim, as a list.
    pub fn audiences(&self) -> &[String] {
        &self.0.audiences
    }

    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.0.expires_at
    }

    /// When the token was issued (`iat`), if it says.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.0.issued_at
    }

    /// The `jti` claim.
    pub fn jwt_id(&self) -> Option<&str> {
        self.0.jwt_id.as_deref()
    }

    /// The OAuth client the token was issued to (`client_id`, RFC 9068).
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// The granted scopes, from `scope` (and `scp`, if present).
    pub fn scopes(&self) -> &Scopes {
        &self.0.scopes
    }

    /// The current actor of an RFC 8693 delegation (`act` claim), if any.
    pub fn actor(&self) -> Option<&Actor> {
        self.0.actor.as_ref()
    }

    /// How the token was presented and verified.
    pub fn method(&self) -> &AuthMethod {
        &self.0.method
    }

    /// The SHA-256 thumbprint (`cnf.x5t#S256`, base64url) of the client
    /// certificate the token is bound to (RFC 8705), if it is bound.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.0.certificate_thumbprint.as_deref()
    }

    /// The raw claim set as JSON, parsed on first use.
    pub fn raw_claims(&self) -> &Value {
        let claims = &self.0.claims;
        claims
            .parsed
            .get_or_init(|| serde_json::from_slice(&claims.json).unwrap_or_default())
    }

    /// Deserializes the claim set into the caller's own type.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_principal::UserToken;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Claims {
    ///     tenant: String,
    /// }
    ///
    /// let exp = SystemTime::now() + Duration::from_secs(60);
    /// let token = UserToken::builder("alice", "https://idp.example.com/", exp)
    ///     .claims(serde_json::json!({ "sub": "alice", "tenant": "acme" }))
    ///     .build();
    /// let claims: Claims = token.claims().unwrap();
    /// assert_eq!(claims.tenant, "acme");
    /// ```
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0.claims.json)
    }
}

/// Redacts the raw claims: they may hold personal data.
impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserToken")
            .field("subject", &self.0.subject)
            .field("issuer", &self.0.issuer)
            .field("audiences", &self.0.audiences)
            .field("expires_at", &self.0.expires_at)
            .field("client_id", &self.0.client_id)
            .field("scopes", &self.0.scopes)
            .field("actor", &self.0.actor)
            .field("method", &self.0.method)
            .finish_non_exhaustive()
    }
}

/// Builds a [`UserToken`]; see [`UserToken::builder`].
pub struct UserTokenBuilder(TokenFields);

impl fmt::Debug for UserTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokenBuilder")
            .field("subject", &self.0.subject)
            .finish_non_exhaustive()
    }
}

impl UserTokenBuilder {
    /// Sets the audiences (`aud`).
    pub fn audiences(mut self, audiences: Vec<String>) -> Self {
        self.0.audiences = audiences;
        self
    }

    /// Sets the issue time (`iat`).
    pub fn issued_at(mut self, issued_at: Option<SystemTime>) -> Self {
        self.0.issued_at = issued_at;
        self
    }

    /// Sets the token id (`jti`).
    pub fn jwt_id(mut self, jwt_id: Option<String>) -> Self {
        self.0.jwt_id = jwt_id;
        self
    }

    /// Sets the OAuth client id (`client_id`).
    pub fn client_id(mut self, client_id: Option<String>) -> Self {
        self.0.client_id = client_id;
        self
    }

    /// Sets the granted scopes.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.0.scopes = scopes;
        self
    }

    /// Sets the delegation chain (`act`).
    pub fn actor(mut self, actor: Option<Actor>) -> Self {
        self.0.actor = actor;
        self
    }

    /// Sets how the token was verified.
    pub fn method(mut self, method: AuthMethod) -> Self {
        self.0.method = method;
        self
    }

    /// Sets the RFC 8705 certificate binding (`cnf.x5t#S256`).
    pub fn certificate_thumbprint(mut self, thumbprint: Option<String>) -> Self {
        self.0.certificate_thumbprint = thumbprint;
        self
    }

    /// Sets the full claim set.
    pub fn claims(mut self, claims: Value) -> Self {
        self.0.claims = RawClaims {
            json: serde_json::to_vec(&claims).unwrap_or_default().into(),
            parsed: OnceLock::from(claims),
        };
        self
    }

    /// Sets the full claim set from the JSON text the token carried, which
    /// must be a JSON object (validators have parsed it already); it is
    /// parsed again only if [`UserToken::raw_claims`] or
    /// [`UserToken::claims`] is called.
    pub fn claims_json(mut self, json: impl Into<Box<[u8]>>) -> Self {
        self.0.claims = RawClaims {
            json: json.into(),
            parsed: OnceLock::new(),
        };
        self
    }

    /// Finishes the token.
    pub fn build(self) -> UserToken {
        UserToken(Arc::new(self.0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn exp() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    #[test]
    fn claims_from_json_text_are_parsed_on_demand() {
        let token = UserToken::builder("alice", "https://idp/", exp())
            .claims_json(br#"{"sub":"alice","tenant":"acme","n":3}"#.to_vec())
            .build();
        assert!(token.0.claims.parsed.get().is_none(), "nothing parsed yet");

        #[derive(serde::Deserialize)]
        struct Tenant {
            tenant: String,
        }
        assert_eq!(token.claims::<Tenant>().unwrap().tenant, "acme");
        assert_eq!(token.raw_claims()["n"], 3);
        assert!(token.0.claims.parsed.get().is_some());
    }

    #[test]
    fn claims_from_a_value_round_trip() {
        let token = UserToken::builder("alice", "https://idp/", exp())
            .claims(serde_json::json!({ "sub": "alice", "x": [1, 2] }))
            .certificate_thumbprint(Some("abc".into()))
            .build();
        assert_eq!(token.raw_claims()["x"][1], 2);
        let x: serde_json::Value = token.claims().unwrap();
        assert_eq!(x["sub"], "alice");
        assert_eq!(token.certificate_thumbprint(), Some("abc"));
    }

    #[test]
    fn debug_redacts_claims() {
        let token = UserToken::builder("alice", "https://idp/", exp())
            .claims(serde_json::json!({ "secret_claim": "s3cr3t" }))
            .build();
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }
}
