//! Turning a DER certificate into the core [`ClientCertificate`].

use sha2::{Digest, Sha256};
use tower_principal::ClientCertificate;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// A certificate that could not be parsed as X.509.
///
/// The message names what failed, never the certificate's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateParseError {
    /// The bytes are not one DER-encoded X.509 certificate.
    #[error("not a DER-encoded X.509 certificate")]
    NotX509,
    /// Bytes follow the certificate.
    #[error("trailing bytes after the certificate")]
    TrailingData,
    /// The subject alternative name extension is malformed or repeated.
    #[error("malformed subject alternative name extension")]
    BadSubjectAltName,
}

/// Parses a DER leaf certificate into a [`ClientCertificate`].
///
/// Reads the URI and DNS subject alternative names (in certificate order) and
/// the subject common name; computes the SHA-256 digest of the DER bytes.
/// A subject with more than one common name gets none: such a name could not
/// identify anybody.
///
/// This function **does not verify** the certificate. Call it only on a
/// certificate that a TLS handshake (or a trusted proxy) has verified; the
/// [`serve`](crate::serve) loop and the
/// [`ClientCertHeaderLayer`](crate::ClientCertHeaderLayer) do.
pub fn parse_certificate(der: Vec<u8>) -> Result<ClientCertificate, CertificateParseError> {
    let (rest, cert) =
        X509Certificate::from_der(&der).map_err(|_| CertificateParseError::NotX509)?;
    if !rest.is_empty() {
        return Err(CertificateParseError::TrailingData);
    }

    let (uri_sans, dns_sans) = subject_alt_names(&cert)?;
    let subject_cn = single_common_name(&cert);
    drop(cert);

    let sha256: [u8; 32] = Sha256::digest(&der).into();
    Ok(ClientCertificate::new(
        der, sha256, uri_sans, dns_sans, subject_cn,
    ))
}

fn subject_alt_names(
    cert: &X509Certificate<'_>,
) -> Result<(Vec<String>, Vec<String>), CertificateParseError> {
    let extension = cert
        .subject_alternative_name()
        .map_err(|_| CertificateParseError::BadSubjectAltName)?;

    let (mut uris, mut dns_names) = (Vec::new(), Vec::new());
    for name in extension.iter().flat_map(|ext| &ext.value.general_names) {
        match name {
            GeneralName::URI(uri) => uris.push((*uri).to_owned()),
            GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
            _ => {}
        }
    }
    Ok((uris, dns_names))
}

fn single_common_name(cert: &X509Certificate<'_>) -> Option<String> {
    let mut names = cert.subject().iter_common_name();
    let first = names.next()?;
    if names.next().is_some() {
        return None;
    }
    first.as_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_x509() {
        assert_eq!(
            parse_certificate(b"not a certificate".to_vec()),
            Err(CertificateParseError::NotX509)
        );
        assert_eq!(
            parse_certificate(Vec::new()),
            Err(CertificateParseError::NotX509)
        );
    }
}
