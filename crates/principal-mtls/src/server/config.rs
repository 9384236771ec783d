//! [`TlsServerConfig`]: a rustls server configuration that verifies client certificates.

use std::fmt;
use std::sync::Arc;

use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// The handshake fails without a valid client certificate.
    #[default]
    Required,
    /// Clients may connect without a certificate (and authenticate another
    /// way, say with a bearer token); a certificate that *is* sent must be
    /// valid, or the handshake fails.
    Optional,
}

/// Builds the rustls [`ServerConfig`] of an mTLS server; see
/// [`TlsServerConfig::builder`].
///
/// The result verifies client certificates with rustls' WebPKI verifier:
/// the chain must lead to a configured client CA, the leaf must be within its
/// validity period and carry the `clientAuth` extended key usage, and (with
/// CRLs) neither the leaf nor an intermediate may be revoked. Anything else
/// fails the handshake, which [`serve`](crate::serve) logs at `debug` with the
/// reason. ALPN offers `h2` and `http/1.1`; the crypto provider is aws-lc-rs.
///
/// ```
/// use tower_principal_mtls::{ClientAuth, TlsServerConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pki = tower_principal_testing::pki::TestPki::new();
/// # let (server_chain, server_key, client_ca) = (pki.server.cert, pki.server.key, pki.ca.cert_pem());
/// let tls = TlsServerConfig::builder()
///     .server_cert_pem(server_chain)
///     .server_key_pem(server_key)
///     .client_ca_pem(client_ca)
///     .client_auth(ClientAuth::Required)
///     .build()?;
/// assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TlsServerConfig {
    _private: (),
}

impl TlsServerConfig {
    /// Starts a configuration: required client authentication, no CRLs.
    pub fn builder() -> TlsServerConfigBuilder {
        TlsServerConfigBuilder::default()
    }
}

/// The builder returned by [`TlsServerConfig::builder`].
#[derive(Default)]
pub struct TlsServerConfigBuilder {
    server_cert_pem: Option<Vec<u8>>,
    server_key_pem: Option<Vec<u8>>,
    client_ca_pems: Vec<Vec<u8>>,
    crl_pems: Vec<Vec<u8>>,
    client_auth: ClientAuth,
}

impl TlsServerConfigBuilder {
    /// The server's certificate chain in PEM, leaf first.
    pub fn server_cert_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.server_cert_pem = Some(pem.as_ref().to_vec());
        self
    }

    /// The server's private key in PEM (PKCS#8, PKCS#1 or SEC1).
    pub fn server_key_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.server_key_pem = Some(pem.as_ref().to_vec());
        self
    }

    /// Trusts the CA certificates in `pem` to issue client certificates.
    /// May be called more than once; every call adds.
    pub fn client_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.client_ca_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Checks client certificates against the CRLs in `pem`. May be called
    /// more than once; every call adds.
    ///
    /// With CRLs, every certificate of a client chain must be covered by one
    /// of them (an unknown revocation status fails the handshake); expired
    /// CRLs are still used.
    pub fn crl_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.crl_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Whether a client certificate is required (the default) or optional.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Parses the PEM inputs and builds the rustls configuration.
    pub fn build(self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

        let chain_pem = self.server_cert_pem.as_deref();
        let chain_pem = chain_pem.ok_or(TlsConfigError::MissingServerCert)?;
        let chain = parse_all::<CertificateDer<'static>>(chain_pem, "server certificate")?;
        let key_pem = self.server_key_pem.as_deref();
        let key_pem = key_pem.ok_or(TlsConfigError::MissingServerKey)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsConfigError::Pem {
            what: "server private key",
            source,
        })?;

        let verifier = self.client_auth_verifier(provider.clone())?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(TlsConfigError::Rustls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn client_auth_verifier(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        for pem in &self.client_ca_pems {
            for ca in parse_all::<CertificateDer<'static>>(pem, "client CA certificate")? {
                roots.add(ca).map_err(TlsConfigError::ClientCa)?;
            }
        }
        if roots.is_empty() {
            return Err(TlsConfigError::MissingClientCa);
        }

        let mut crls = Vec::new();
        for pem in &self.crl_pems {
            crls.extend(parse_all::<CertificateRevocationListDer<'static>>(
                pem, "CRL",
            )?);
        }

        let mut verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls);
        if self.client_auth == ClientAuth::Optional {
            verifier = verifier.allow_unauthenticated();
        }
        verifier.build().map_err(TlsConfigError::Verifier)
    }
}

/// Every PEM block of type `T` in `pem`; at least one.
fn parse_all<T: PemObject>(pem: &[u8], what: &'static str) -> Result<Vec<T>, TlsConfigError> {
    let items = T::pem_slice_iter(pem)
        .collect::<Result<Vec<T>, _>>()
        .map_err(|source| TlsConfigError::Pem { what, source })?;
    if items.is_empty() {
        return Err(TlsConfigError::Pem {
            what,
            source: pem::Error::NoItemsFound,
        });
    }
    Ok(items)
}

/// Redacts the private key.
impl fmt::Debug for TlsServerConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfigBuilder")
            .field("server_cert_pem", &self.server_cert_pem.is_some())
            .field(
                "server_key_pem",
                &self.server_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("client_ca_pems", &self.client_ca_pems.len())
            .field("crl_pems", &self.crl_pems.len())
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// A TLS server configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// [`TlsServerConfigBuilder::server_cert_pem`] was not called.
    #[error("no server certificate chain is configured")]
    MissingServerCert,
    /// [`TlsServerConfigBuilder::server_key_pem`] was not called.
    #[error("no server private key is configured")]
    MissingServerKey,
    /// No client CA certificate was given.
    #[error("no client CA certificate is configured")]
    MissingClientCa,
    /// A PEM input is malformed or holds no block of the expected type.
    #[error("{what}: invalid PEM")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What was wrong with it.
        #[source]
        source: pem::Error,
    },
    /// A client CA certificate is not a usable trust anchor.
    #[error("a client CA certificate is not a usable trust anchor")]
    ClientCa(#[source] rustls::Error),
    /// The client certificate verifier rejected the CAs or CRLs.
    #[error("the client certificate verifier cannot be built")]
    Verifier(#[source] VerifierBuilderError),
    /// rustls rejected the configuration (for example, a key that does not
    /// match the certificate).
    #[error("rustls rejected the server configuration")]
    Rustls(#[source] rustls::Error),
}
