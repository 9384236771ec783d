//! Reading the one credential a request carries.

use std::fmt;
use std::sync::Arc;

use http::header::{self, HeaderName};
use http::request::Parts;

use crate::{AuthError, Reason};

/// A credential taken from a request, before it is verified.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer(String),
    /// `Authorization: ApiKey <key>` or the configured API key header.
    ApiKey(String),
    /// A client certificate verified by the TLS layer (or a trusted proxy).
    ClientCertificate(ClientCertificate),
}

impl Credential {
    /// The kind of credential, for logs and dispatch.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::Bearer(_) => CredentialKind::Bearer,
            Self::ApiKey(_) => CredentialKind::ApiKey,
            Self::ClientCertificate(_) => CredentialKind::ClientCertificate,
        }
    }
}

/// Redacts secrets.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::ClientCertificate(cert) => {
                f.debug_tuple("ClientCertificate").field(cert).finish()
            }
        }
    }
}

/// The kind of a [`Credential`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A bearer token.
    Bearer,
    /// An API key.
    ApiKey,
    /// A TLS client certificate.
    ClientCertificate,
}

/// A verified TLS client certificate, as the transport put it into the request
/// extensions.
///
/// The TLS layer (the `tower-principal-mtls` crate, or a trusted proxy's
/// RFC 9440 `Client-Cert` header) builds it after the chain has been verified;
/// the JWT authenticator reads it for certificate-bound tokens (RFC 8705).
/// Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(Arc<CertificateInner>);

#[derive(PartialEq, Eq)]
struct CertificateInner {
    der: Vec<u8>,
    sha256: [u8; 32],
    uri_sans: Vec<String>,
    dns_sans: Vec<String>,
    subject_cn: Option<String>,
}

impl ClientCertificate {
    /// A certificate from its DER bytes, their SHA-256 digest and its parsed names.
    pub fn new(
        der: Vec<u8>,
        sha256: [u8; 32],
        uri_sans: Vec<String>,
        dns_sans: Vec<String>,
        subject_cn: Option<String>,
    ) -> Self {
        Self(Arc::new(CertificateInner {
            der,
            sha256,
            uri_sans,
            dns_sans,
            subject_cn,
        }))
    }

    /// The leaf certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.0.der
    }

    /// SHA-256 of the DER certificate (the RFC 8705 `x5t#S256` input).
    pub fn sha256(&self) -> &[u8; 32] {
        &self.0.sha256
    }

    /// URI subject alternative names, such as SPIFFE IDs.
    pub fn uri_sans(&self) -> &[String] {
        &self.0.uri_sans
    }

    /// DNS subject alternative names.
    pub fn dns_sans(&self) -> &[String] {
        &self.0.dns_sans
    }

    /// The subject common name, if any. Not an identity unless opted in.
    pub fn subject_cn(&self) -> Option<&str> {
        self.0.subject_cn.as_deref()
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("uri_sans", &self.0.uri_sans)
            .field("dns_sans", &self.0.dns_sans)
            .field("subject_cn", &self.0.subject_cn)
            .finish_non_exhaustive()
    }
}

/// Which places of a request may hold a credential.
///
/// The [`AuthLayer`](crate::AuthLayer) builds one from the mechanisms it was
/// given, so a request is only searched for credentials someone can verify.
#[derive(Clone, Debug)]
pub struct CredentialSources {
    /// Read `Authorization: Bearer`.
    pub bearer: bool,
    /// Read `Authorization: ApiKey` and [`CredentialSources::api_key_header`].
    pub api_key: bool,
    /// The header holding an API key, `X-Api-Key` by default.
    pub api_key_header: HeaderName,
    /// Take a verified [`ClientCertificate`] from the request extensions.
    pub client_certificate: bool,
}

impl Default for CredentialSources {
    /// Bearer tokens only.
    fn default() -> Self {
        Self {
            bearer: true,
            api_key: false,
            api_key_header: HeaderName::from_static("x-api-key"),
            client_certificate: false,
        }
    }
}

impl CredentialSources {
    /// Reads the one credential of a request.
    ///
    /// * nothing from an enabled source (an `Authorization` scheme we do not
    ///   read counts as nothing): `Ok(None)`, answered with a bare 401;
    /// * more than one `Authorization` header, or two header credentials (say
    ///   a bearer token and an API key): 400 `invalid_request`;
    /// * `Bearer` (any case) followed by one token: the token; no token or
    ///   several space-separated ones: 400 `invalid_request`. What the token
    ///   holds is for the authenticator to judge (a malformed token is 401
    ///   `invalid_token`, RFC 6750 §3.1);
    /// * no header credential but a verified client certificate: the certificate.
    ///   With a header credential, the certificate is transport context (it may
    ///   bind a token, RFC 8705), not a second credential.
    ///
    /// Credentials in the query string or a form body are never read (RFC 6750
    /// §2.3: they end up in logs and caches).
    ///
    /// ```
    /// use tower_principal::{Credential, CredentialSources};
    ///
    /// let sources = CredentialSources::default();
    /// let (parts, ()) = http::Request::get("/")
    ///     .header("authorization", "bEaReR abc.def.ghi")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// assert_eq!(
    ///     sources.extract(&parts).unwrap(),
    ///     Some(Credential::Bearer("abc.def.ghi".into()))
    /// );
    /// ```
    pub fn extract(&self, parts: &Parts) -> Result<Option<Credential>, AuthError> {
        let read_authorization = self.read_authorization(parts)?;
        let read_api_key_header = self.read_api_key_header(parts)?;

        match (read_authorization, read_api_key_header) {
            (Some(_), Some(_)) => Err(AuthError::invalid_request(Reason::MultipleCredentials)),
            (Some(credential), None) | (None, Some(credential)) => Ok(Some(credential)),
            (None, None) => Ok(self.read_certificate(parts)),
        }
    }

    fn read_authorization(&self, parts: &Parts) -> Result<Option<Credential>, AuthError> {
        let Some(value) = single_header(parts, &header::AUTHORIZATION)? else {
            return Ok(None);
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let make: fn(String) -> Credential = if self.bearer && scheme.eq_ignore_ascii_case("bearer")
        {
            Credential::Bearer
        } else if self.api_key && scheme.eq_ignore_ascii_case("apikey") {
            Credential::ApiKey
        } else {
            return Ok(None);
        };

        let token = rest.trim_matches(' ');
        if !is_single_token(token) {
            return Err(AuthError::invalid_request(Reason::MalformedHeader));
        }
        Ok(Some(make(token.to_owned())))
    }

    fn read_api_key_header(&self, parts: &Parts) -> Result<Option<Credential>, AuthError> {
        if !self.api_key {
            return Ok(None);
        }
        let Some(value) = single_header(parts, &self.api_key_header)? else {
            return Ok(None);
        };
        let key = value.trim_matches(' ');
        if !is_single_token(key) {
            return Err(AuthError::invalid_request(Reason::MalformedHeader));
        }
        Ok(Some(Credential::ApiKey(key.to_owned())))
    }

    fn read_certificate(&self, parts: &Parts) -> Option<Credential> {
        if !self.client_certificate {
            return None;
        }
        parts
            .extensions
            .get::<ClientCertificate>()
            .cloned()
            .map(Credential::ClientCertificate)
    }
}

/// The one value of `name`, `None` if absent, 400 if repeated or not text.
fn single_header<'a>(parts: &'a Parts, name: &HeaderName) -> Result<Option<&'a str>, AuthError> {
    let mut values = parts.headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::invalid_request(Reason::MultipleCredentials));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::invalid_request(Reason::MalformedHeader))
}

/// One non-empty run of visible ASCII: the shape of RFC 6750's `b64token`
/// without judging its alphabet (that is the authenticator's job).
fn is_single_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::get("/?access_token=abc");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn all_sources() -> CredentialSources {
        CredentialSources {
            api_key: true,
            client_certificate: true,
            ..CredentialSources::default()
        }
    }

    #[test]
    fn nothing_is_none_and_query_is_ignored() {
        assert_eq!(all_sources().extract(&parts(&[])), Ok(None));
    }

    #[test]
    fn other_scheme_is_none() {
        let req = parts(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(all_sources().extract(&req), Ok(None));
    }

    #[test]
    fn disabled_scheme_is_none() {
        let req = parts(&[("authorization", "ApiKey tp_a_b"), ("x-api-key", "tp_a_b")]);
        assert_eq!(CredentialSources::default().extract(&req), Ok(None));
    }

    #[test]
    fn malformed_bearer_is_400() {
        for value in ["Bearer", "Bearer ", "Bearer a b", "Bearer a\tb"] {
            let err = all_sources()
                .extract(&parts(&[("authorization", value)]))
                .unwrap_err();
            assert_eq!(err.kind().status(), 400, "{value:?}");
        }
    }

    #[test]
    fn token_content_is_left_to_the_authenticator() {
        for token in ["abc==", "a=.b.c", "a,b", "...."] {
            let req = parts(&[("authorization", &format!("Bearer {token}"))]);
            assert_eq!(
                all_sources().extract(&req),
                Ok(Some(Credential::Bearer(token.into()))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn two_authorization_headers_is_400() {
        let req = parts(&[("authorization", "Bearer a"), ("authorization", "Bearer a")]);
        let err = all_sources().extract(&req).unwrap_err();
        assert_eq!(err.reason(), Reason::MultipleCredentials);
    }

    #[test]
    fn bearer_and_api_key_is_400() {
        let req = parts(&[("authorization", "Bearer a.b.c"), ("x-api-key", "tp_a_b")]);
        let err = all_sources().extract(&req).unwrap_err();
        assert_eq!(err.reason(), Reason::MultipleCredentials);
    }

    #[test]
    fn api_key_scheme_and_header() {
        let by_scheme = parts(&[("authorization", "apikey tp_a_b")]);
        let by_header = parts(&[("x-api-key", "tp_a_b")]);
        for req in [by_scheme, by_header] {
            assert_eq!(
                all_sources().extract(&req),
                Ok(Some(Credential::ApiKey("tp_a_b".into())))
            );
        }
    }

    #[test]
    fn certificate_only_without_header_credential() {
        let cert = ClientCertificate::new(vec![1], [0; 32], vec![], vec![], None);
        let mut req = parts(&[]);
        req.extensions.insert(cert.clone());
        assert_eq!(
            all_sources().extract(&req),
            Ok(Some(Credential::ClientCertificate(cert.clone())))
        );

        let mut req = parts(&[("authorization", "Bearer a.b.c")]);
        req.extensions.insert(cert);
        assert_eq!(
            all_sources().extract(&req),
            Ok(Some(Credential::Bearer("a.b.c".into())))
        );
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(
            format!("{:?}", Credential::Bearer("secret".into())),
            "Bearer(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", Credential::ApiKey("secret".into())),
            "ApiKey(<redacted>)"
        );
    }
}
