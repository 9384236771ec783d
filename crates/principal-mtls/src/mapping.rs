//! [`CertificateMapper`]: verified client certificates to system accounts.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use serde::Deserialize;
use tower_principal::{
    AuthError, AuthMethod, Authenticator, BoxFuture, ClientCertificate, Credential, Principal,
    Reason, Scope, Scopes, SystemAccount,
};

/// A pinned SHA-256 certificate fingerprint: the digest of the DER leaf.
///
/// Parsed from either of two spellings, told apart by length:
///
/// * hexadecimal, 64 digits of any case, optionally with `:` between the
///   bytes (`AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it);
/// * base64url without padding, 43 characters: the RFC 8705 `x5t#S256`
///   form, as in [`AuthMethod::ClientCertificate`].
///
/// It prints as lowercase hex.
///
/// ```
/// use tower_principal_mtls::Sha256Fingerprint;
///
/// let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// let b64 = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
/// let a: Sha256Fingerprint = hex.parse().unwrap();
/// let b: Sha256Fingerprint = b64.parse().unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), hex);
/// assert!("e3b0".parse::<Sha256Fingerprint>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Sha256Fingerprint([u8; 32]);

impl Sha256Fingerprint {
    /// A fingerprint from the 32 digest bytes.
    pub const fn new(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The fingerprint of `certificate`.
    pub fn of(certificate: &ClientCertificate) -> Self {
        Self(*certificate.sha256())
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Sha256Fingerprint {
    type Err = InvalidFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = if s.contains(':') {
            decode_hex_pairs(s.split(':'))
        } else if s.len() == 64 {
            decode_hex_pairs((0..32).map(|i| s.get(2 * i..2 * i + 2).unwrap_or("")))
        } else if s.len() == 43 {
            URL_SAFE_NO_PAD.decode(s).ok()
        } else {
            None
        };
        let digest = bytes.and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
        digest.map(Self).ok_or(InvalidFingerprint)
    }
}

fn decode_hex_pairs<'a>(pairs: impl Iterator<Item = &'a str>) -> Option<Vec<u8>> {
    pairs
        .map(|pair| {
            let hex_digits = pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit());
            hex_digits
                .then(|| u8::from_str_radix(pair, 16).ok())
                .flatten()
        })
        .collect()
}

impl TryFrom<String> for Sha256Fingerprint {
    type Error = InvalidFingerprint;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Fingerprint({self})")
    }
}

/// Text that is not a SHA-256 fingerprint in hex or base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a SHA-256 fingerprint is 64 hex digits (optionally `:`-separated) or 43 base64url characters"
)]
pub struct InvalidFingerprint;

/// What a [`MappingRule`] looks for in a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matcher {
    /// The SHA-256 fingerprint of the whole leaf certificate (pinning).
    Sha256(Sha256Fingerprint),
    /// A URI subject alternative name, such as the SPIFFE ID
    /// `spiffe://ecommerce/order-processor`. Compared exactly, case-sensitively.
    UriSan(String),
    /// A DNS subject alternative name. Compared ASCII case-insensitively and
    /// without a trailing dot; wildcards are not expanded (a `*.example.com`
    /// rule matches only a certificate that holds `*.example.com` itself).
    DnsSan(String),
    /// The subject common name, compared exactly. Only honoured with
    /// [`MappingConfig::dangerous_match_subject_cn`]: a common name is not
    /// checked by certificate path validation the way SANs are constrained,
    /// and any CA in the trust store may issue one that collides.
    SubjectCn(String),
}

impl Matcher {
    fn kind(&self) -> &'static str {
        match self {
            Self::Sha256(_) => "sha256_fingerprint",
            Self::UriSan(_) => "uri_san",
            Self::DnsSan(_) => "dns_san",
            Self::SubjectCn(_) => "subject_cn",
        }
    }

    /// The matched value, for error messages.
    fn value(&self) -> String {
        match self {
            Self::Sha256(fingerprint) => fingerprint.to_string(),
            Self::UriSan(value) | Self::DnsSan(value) | Self::SubjectCn(value) => value.clone(),
        }
    }
}

/// One rule: certificates matching [`MappingRule::matcher`] authenticate as
/// [`MappingRule::account`] holding [`MappingRule::scopes`].
///
/// In configuration files a rule names exactly one matcher field:
///
/// ```toml
/// [[rules]]
/// uri_san = "spiffe://ecommerce/order-processor"   # or dns_san, sha256_fingerprint, subject_cn
/// account = "order-processor"
/// scopes = ["orders:read", "orders:process"]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRule")]
#[non_exhaustive]
pub struct MappingRule {
    /// What the certificate must hold.
    pub matcher: Matcher,
    /// The system account name the certificate authenticates as.
    pub account: String,
    /// The scopes the account holds (validated when the mapper is built).
    pub scopes: Vec<String>,
}

impl MappingRule {
    /// A rule mapping `matcher` to `account` with `scopes`.
    pub fn new<I, T>(matcher: Matcher, account: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self {
            matcher,
            account: account.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    sha256_fingerprint: Option<Sha256Fingerprint>,
    uri_san: Option<String>,
    dns_san: Option<String>,
    subject_cn: Option<String>,
    account: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl TryFrom<RawRule> for MappingRule {
    type Error = MapperConfigError;

    fn try_from(raw: RawRule) -> Result<Self, Self::Error> {
        let matchers = [
            raw.sha256_fingerprint.map(Matcher::Sha256),
            raw.uri_san.map(Matcher::UriSan),
            raw.dns_san.map(Matcher::DnsSan),
            raw.subject_cn.map(Matcher::SubjectCn),
        ];
        let mut matchers = matchers.into_iter().flatten();
        let (Some(matcher), None) = (matchers.next(), matchers.next()) else {
            return Err(MapperConfigError::NotOneMatcher {
                account: raw.account,
            });
        };
        Ok(Self::new(matcher, raw.account, raw.scopes))
    }
}

/// The configuration of a [`CertificateMapper`], deserializable from a file.
///
/// ```
/// use tower_principal_mtls::{CertificateMapper, MappingConfig};
///
/// let config: MappingConfig = toml::from_str(r#"
///     [[rules]]
///     uri_san = "spiffe://ecommerce/order-processor"
///     account = "order-processor"
///     scopes = ["orders:read", "orders:process"]
///
///     [[rules]]
///     sha256_fingerprint = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
///     account = "legacy-batch"
///     scopes = ["reports:read"]
/// "#).unwrap();
/// let mapper = CertificateMapper::new(config).unwrap();
/// # drop(mapper);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MappingConfig {
    /// The rules, in any order: precedence is fixed by matcher kind (see
    /// [`CertificateMapper`]).
    #[serde(default)]
    pub rules: Vec<MappingRule>,
    /// Allows [`Matcher::SubjectCn`] rules. **Insecure** unless every CA in
    /// the client trust store is yours and vets common names; prefer SANs.
    #[serde(default)]
    pub dangerous_match_subject_cn: bool,
}

impl MappingConfig {
    /// A configuration with these rules.
    pub fn new(rules: impl IntoIterator<Item = MappingRule>) -> Self {
        Self {
            rules: rules.into_iter().collect(),
            dangerous_match_subject_cn: false,
        }
    }

    /// Allows subject common name rules; see
    /// [`MappingConfig::dangerous_match_subject_cn`].
    pub fn dangerous_match_subject_cn(mut self, allow: bool) -> Self {
        self.dangerous_match_subject_cn = allow;
        self
    }
}

/// A [`MappingConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapperConfigError {
    /// The configuration has no rules, so every certificate would be refused.
    #[error("no certificate mapping rules are configured")]
    NoRules,
    /// A rule names no matcher, or several.
    #[error(
        "the rule for account {account:?} needs exactly one of \
         uri_san, dns_san, sha256_fingerprint, subject_cn"
    )]
    NotOneMatcher {
        /// The account of the rule.
        account: String,
    },
    /// A rule's account name is empty.
    #[error("a certificate mapping rule has an empty account name")]
    EmptyAccount,
    /// A rule's scope is not an RFC 6749 scope token.
    #[error("the rule for account {account:?} has an invalid scope")]
    InvalidScope {
        /// The account of the rule.
        account: String,
    },
    /// Two rules match the same value.
    #[error("more than one rule matches {kind} {value:?}")]
    DuplicateRule {
        /// The matcher kind (`uri_san`, ...).
        kind: &'static str,
        /// The matched value.
        value: String,
    },
    /// A `subject_cn` rule without `dangerous_match_subject_cn`.
    #[error("subject_cn rules need dangerous_match_subject_cn = true")]
    SubjectCnNotAllowed,
}

#[derive(Debug, PartialEq, Eq)]
struct Account {
    name: Arc<str>,
    scopes: Scopes,
}

#[derive(Debug, Default)]
struct Rules {
    accounts: Vec<Account>,
    by_sha256: HashMap<[u8; 32], usize>,
    by_uri: HashMap<String, usize>,
    by_dns: HashMap<String, usize>,
    by_cn: HashMap<String, usize>,
}

/// What a lookup found.
enum Lookup {
    Matched(usize, &'static str),
    Ambiguous(&'static str),
    Unmapped,
}

/// Maps verified client certificates to [`SystemAccount`]s; an
/// [`Authenticator`] for [`Credential::ClientCertificate`].
///
/// Rules are looked up in hash maps, in this fixed precedence; the first kind
/// that matches decides:
///
/// 1. the pinned SHA-256 fingerprint of the leaf ([`Matcher::Sha256`]);
/// 2. the URI SANs ([`Matcher::UriSan`]); a SPIFFE ID (`spiffe://…`) only
///    counts when it is the certificate's one URI SAN, as in an X.509-SVID;
/// 3. the DNS SANs ([`Matcher::DnsSan`]);
/// 4. the subject CN ([`Matcher::SubjectCn`]), only if opted in.
///
/// If the SANs of one kind match rules of different accounts (or of one
/// account with different scopes), the certificate is refused rather than one
/// picked. A certificate that matches nothing, or is ambiguous, is answered
/// with 403 ([`Reason::UnmappedCertificate`]): it was valid, but it is nobody
/// this service knows. The resulting principal is
/// `Principal::System` with [`AuthMethod::ClientCertificate`] carrying the
/// base64url (unpadded) SHA-256 thumbprint.
///
/// ```
/// use tower_principal::AuthLayer;
/// use tower_principal_mtls::{CertificateMapper, MappingConfig, MappingRule, Matcher};
///
/// let rule = MappingRule::new(
///     Matcher::UriSan("spiffe://ecommerce/order-processor".into()),
///     "order-processor",
///     ["orders:read", "orders:process"],
/// );
/// let mapper = CertificateMapper::new(MappingConfig::new([rule])).unwrap();
/// let layer = AuthLayer::builder().client_certificate(mapper).build().unwrap();
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct CertificateMapper {
    rules: Arc<Rules>,
}

impl CertificateMapper {
    /// Checks `config` and builds the lookup tables.
    pub fn new(config: MappingConfig) -> Result<Self, MapperConfigError> {
        if config.rules.is_empty() {
            return Err(MapperConfigError::NoRules);
        }

        let mut rules = Rules::default();
        for rule in config.rules {
            if matches!(rule.matcher, Matcher::SubjectCn(_)) && !config.dangerous_match_subject_cn {
                return Err(MapperConfigError::SubjectCnNotAllowed);
            }
            rules.add(rule)?;
        }
        Ok(Self {
            rules: Arc::new(rules),
        })
    }

    /// The system account `certificate` maps to, or 403
    /// [`Reason::UnmappedCertificate`].
    ///
    /// The certificate must already be verified; see [`CertificateMapper`]
    /// for the precedence of rules.
    pub fn map(&self, certificate: &ClientCertificate) -> Result<SystemAccount, AuthError> {
        let (index, matched_by) = match self.rules.lookup(certificate) {
            Lookup::Matched(index, matched_by) => (index, matched_by),
            Lookup::Ambiguous(matched_by) => {
                tracing::warn!(matched_by, "client certificate matches several accounts");
                return Err(AuthError::forbidden(Reason::UnmappedCertificate));
            }
            Lookup::Unmapped => return Err(AuthError::forbidden(Reason::UnmappedCertificate)),
        };

        let account = &self.rules.accounts[index];
        tracing::trace!(account = %account.name, matched_by, "client certificate mapped");
        let method = AuthMethod::ClientCertificate {
            sha256_thumbprint: URL_SAFE_NO_PAD.encode(certificate.sha256()),
        };
        Ok(SystemAccount::new(
            account.name.clone(),
            account.scopes.clone(),
            method,
        ))
    }
}

impl fmt::Debug for CertificateMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateMapper")
            .field("sha256_rules", &self.rules.by_sha256.len())
            .field("uri_san_rules", &self.rules.by_uri.len())
            .field("dns_san_rules", &self.rules.by_dns.len())
            .field("subject_cn_rules", &self.rules.by_cn.len())
            .finish()
    }
}

impl Authenticator for CertificateMapper {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
        _request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let result = match credential {
            Credential::ClientCertificate(certificate) => {
                self.map(certificate).map(Principal::System)
            }
            // Registered for another mechanism by mistake.
            _ => Err(AuthError::internal(Reason::Misconfigured)),
        };
        Box::pin(std::future::ready(result))
    }
}

impl Rules {
    fn add(&mut self, rule: MappingRule) -> Result<(), MapperConfigError> {
        let account = account_of(&rule)?;
        let index = self.accounts.len();
        let duplicate = MapperConfigError::DuplicateRule {
            kind: rule.matcher.kind(),
            value: rule.matcher.value(),
        };

        let fresh = match rule.matcher {
            Matcher::Sha256(fingerprint) => insert_new(&mut self.by_sha256, fingerprint.0, index),
            Matcher::UriSan(uri) => insert_new(&mut self.by_uri, uri, index),
            Matcher::DnsSan(dns) => insert_new(&mut self.by_dns, normalize_dns(&dns), index),
            Matcher::SubjectCn(cn) => insert_new(&mut self.by_cn, cn, index),
        };
        if !fresh {
            return Err(duplicate);
        }
        self.accounts.push(account);
        Ok(())
    }

    fn lookup(&self, certificate: &ClientCertificate) -> Lookup {
        if let Some(&index) = self.by_sha256.get(certificate.sha256()) {
            return Lookup::Matched(index, "sha256_fingerprint");
        }

        // An X.509-SVID carries exactly one URI SAN (SPIFFE X509-SVID §2): a
        // certificate with several is no SPIFFE identity, whatever it lists.
        let single_uri = certificate.uri_sans().len() == 1;
        let uris = certificate.uri_sans().iter();
        let by_uri = uris
            .filter(|uri| single_uri || !is_spiffe_id(uri))
            .filter_map(|uri| self.by_uri.get(uri.as_str()).copied());
        let dns_names = certificate.dns_sans().iter();
        let by_dns = dns_names.filter_map(|dns| self.by_dns.get(&normalize_dns(dns)).copied());
        let cn = certificate.subject_cn();
        let by_cn = cn.and_then(|cn| self.by_cn.get(cn).copied());

        [
            self.one_account(by_uri, "uri_san"),
            self.one_account(by_dns, "dns_san"),
            self.one_account(by_cn.into_iter(), "subject_cn"),
        ]
        .into_iter()
        .find(|lookup| !matches!(lookup, Lookup::Unmapped))
        .unwrap_or(Lookup::Unmapped)
    }

    /// The one account the matches of a kind agree on.
    fn one_account(&self, mut matches: impl Iterator<Item = usize>, kind: &'static str) -> Lookup {
        let Some(first) = matches.next() else {
            return Lookup::Unmapped;
        };
        if matches.all(|other| self.accounts[other] == self.accounts[first]) {
            Lookup::Matched(first, kind)
        } else {
            Lookup::Ambiguous(kind)
        }
    }
}

fn account_of(rule: &MappingRule) -> Result<Account, MapperConfigError> {
    if rule.account.is_empty() {
        return Err(MapperConfigError::EmptyAccount);
    }
    let scopes = rule
        .scopes
        .iter()
        .map(|scope| Scope::new(scope))
        .collect::<Option<Scopes>>()
        .ok_or_else(|| MapperConfigError::InvalidScope {
            account: rule.account.clone(),
        })?;
    Ok(Account {
        name: Arc::from(rule.account.as_str()),
        scopes,
    })
}

/// Inserts `key` unless present; whether it was new.
fn insert_new<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K, index: usize) -> bool {
    match map.entry(key) {
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(index);
            true
        }
        std::collections::hash_map::Entry::Occupied(_) => false,
    }
}

fn is_spiffe_id(uri: &str) -> bool {
    uri.get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("spiffe://"))
}

fn normalize_dns(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPIFFE: &str = "spiffe://ecommerce/order-processor";

    fn cert(sha256: [u8; 32], uris: &[&str], dns: &[&str], cn: Option<&str>) -> ClientCertificate {
        let owned = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        ClientCertificate::new(
            vec![0],
            sha256,
            owned(uris),
            owned(dns),
            cn.map(str::to_owned),
        )
    }

    fn rule(matcher: Matcher, account: &str) -> MappingRule {
        MappingRule::new(matcher, account, [format!("{account}:scope")])
    }

    fn mapper(rules: Vec<MappingRule>) -> CertificateMapper {
        CertificateMapper::new(MappingConfig::new(rules).dangerous_match_subject_cn(true)).unwrap()
    }

    fn subject(mapper: &CertificateMapper, cert: &ClientCertificate) -> Result<String, Reason> {
        mapper
            .map(cert)
            .map(|account| account.name().to_owned())
            .map_err(|err| err.reason())
    }

    #[test]
    fn mapper_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<CertificateMapper>();
    }

    #[test]
    fn precedence_is_fingerprint_uri_dns_cn() {
        let m = mapper(vec![
            rule(Matcher::SubjectCn("cn".into()), "by-cn"),
            rule(Matcher::DnsSan("svc.example".into()), "by-dns"),
            rule(Matcher::UriSan(SPIFFE.into()), "by-uri"),
            rule(Matcher::Sha256(Sha256Fingerprint::new([7; 32])), "by-pin"),
        ]);
        let all = cert([7; 32], &[SPIFFE], &["svc.example"], Some("cn"));
        assert_eq!(subject(&m, &all).unwrap(), "by-pin");
        let no_pin = cert([1; 32], &[SPIFFE], &["svc.example"], Some("cn"));
        assert_eq!(subject(&m, &no_pin).unwrap(), "by-uri");
        let dns_cn = cert([1; 32], &["spiffe://other"], &["svc.example"], Some("cn"));
        assert_eq!(subject(&m, &dns_cn).unwrap(), "by-dns");
        let cn_only = cert([1; 32], &[], &[], Some("cn"));
        assert_eq!(subject(&m, &cn_only).unwrap(), "by-cn");
    }

    #[test]
    fn spiffe_ids_match_only_certificates_with_one_uri_san() {
        let m = mapper(vec![
            rule(Matcher::UriSan(SPIFFE.into()), "svc"),
            rule(Matcher::UriSan("urn:example:legacy".into()), "legacy"),
        ]);
        let svid = cert([1; 32], &[SPIFFE], &[], None);
        assert_eq!(subject(&m, &svid).unwrap(), "svc");
        let two = cert([1; 32], &["spiffe://ecommerce/other", SPIFFE], &[], None);
        assert_eq!(subject(&m, &two), Err(Reason::UnmappedCertificate));
        let legacy = cert(
            [1; 32],
            &["urn:example:legacy", "urn:example:more"],
            &[],
            None,
        );
        assert_eq!(
            subject(&m, &legacy).unwrap(),
            "legacy",
            "non-SPIFFE URIs are unaffected"
        );
    }

    #[test]
    fn unmapped_is_forbidden() {
        let m = mapper(vec![rule(Matcher::UriSan(SPIFFE.into()), "a")]);
        let err = m
            .map(&cert([0; 32], &["spiffe://ecommerce/other"], &[], None))
            .unwrap_err();
        assert_eq!(err.kind(), tower_principal::ErrorKind::Forbidden);
        assert_eq!(err.reason(), Reason::UnmappedCertificate);
    }

    #[test]
    fn uri_is_case_sensitive_dns_is_not() {
        let m = mapper(vec![
            rule(Matcher::UriSan(SPIFFE.into()), "a"),
            rule(Matcher::DnsSan("Svc.Example.".into()), "b"),
        ]);
        let upper = SPIFFE.to_ascii_uppercase();
        assert!(subject(&m, &cert([0; 32], &[&upper], &[], None)).is_err());
        assert_eq!(
            subject(&m, &cert([0; 32], &[], &["SVC.example"], None)).unwrap(),
            "b"
        );
    }

    #[test]
    fn two_accounts_of_one_kind_are_refused() {
        let m = mapper(vec![
            rule(Matcher::UriSan("spiffe://a".into()), "a"),
            rule(Matcher::UriSan("spiffe://b".into()), "b"),
        ]);
        let both = cert([0; 32], &["spiffe://a", "spiffe://b"], &[], None);
        assert_eq!(subject(&m, &both), Err(Reason::UnmappedCertificate));
    }

    #[test]
    fn cn_rules_need_the_opt_in() {
        let config = MappingConfig::new([rule(Matcher::SubjectCn("cn".into()), "a")]);
        assert_eq!(
            CertificateMapper::new(config).unwrap_err(),
            MapperConfigError::SubjectCnNotAllowed
        );
    }

    #[test]
    fn bad_configs_fail_at_build() {
        let new = |rules| CertificateMapper::new(MappingConfig::new(rules)).unwrap_err();
        assert_eq!(new(vec![]), MapperConfigError::NoRules);

        let dup = vec![
            rule(Matcher::DnsSan("a.example".into()), "a"),
            rule(Matcher::DnsSan("A.EXAMPLE".into()), "b"),
        ];
        assert!(matches!(
            new(dup),
            MapperConfigError::DuplicateRule {
                kind: "dns_san",
                ..
            }
        ));

        let bad_scope = MappingRule::new(Matcher::UriSan(SPIFFE.into()), "a", ["a b"]);
        assert!(matches!(
            new(vec![bad_scope]),
            MapperConfigError::InvalidScope { .. }
        ));

        let empty = MappingRule::new(Matcher::UriSan(SPIFFE.into()), "", ["a"]);
        assert_eq!(new(vec![empty]), MapperConfigError::EmptyAccount);
    }

    #[test]
    fn toml_rule_needs_exactly_one_matcher() {
        let two = "[[rules]]\nuri_san = \"spiffe://a\"\ndns_san = \"a\"\naccount = \"a\"";
        assert!(toml::from_str::<MappingConfig>(two).is_err());
        let none = "[[rules]]\naccount = \"a\"";
        assert!(toml::from_str::<MappingConfig>(none).is_err());
        let unknown = "[[rules]]\nuri_san = \"spiffe://a\"\naccount = \"a\"\nscope = \"x\"";
        assert!(toml::from_str::<MappingConfig>(unknown).is_err());
    }

    #[test]
    fn fingerprint_spellings() {
        let digest = [0xab; 32];
        let hex = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        let b64 = URL_SAFE_NO_PAD.encode(digest);
        for text in [hex.as_str(), colons.as_str(), b64.as_str()] {
            assert_eq!(text.parse(), Ok(Sha256Fingerprint::new(digest)), "{text}");
        }
        let padded = format!("{b64}=");
        let short_pair = format!("a:{}", vec!["ab"; 31].join(":"));
        for bad in [
            "",
            "zz".repeat(32).as_str(),
            padded.as_str(),
            short_pair.as_str(),
        ] {
            assert!(bad.parse::<Sha256Fingerprint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn principal_carries_thumbprint_and_scopes() {
        let m = mapper(vec![MappingRule::new(
            Matcher::UriSan(SPIFFE.into()),
            "order-processor",
            ["orders:read", "orders:process"],
        )]);
        let account = m.map(&cert([0xff; 32], &[SPIFFE], &[], None)).unwrap();
        assert_eq!(account.scopes().to_string(), "orders:process orders:read");
        assert_eq!(
            account.method(),
            &AuthMethod::ClientCertificate {
                sha256_thumbprint: URL_SAFE_NO_PAD.encode([0xff; 32])
            }
        );
    }
}
