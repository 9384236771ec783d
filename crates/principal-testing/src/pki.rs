//! A throwaway PKI for tests and the demo: a CA, a server certificate for
//! `127.0.0.1`/`::1`/`localhost`, client certificates good and bad, and CRLs.
//!
//! Everything is generated with rcgen and handed out as PEM. The functions
//! panic if generation fails, which only a broken crypto backend causes.

use std::sync::atomic::{AtomicU64, Ordering};

pub use rcgen::ExtendedKeyUsagePurpose;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType,
    SerialNumber, date_time_ymd,
};

/// The SPIFFE ID the tests map to `order-processor`.
pub const ORDER_PROCESSOR: &str = "spiffe://ecommerce/order-processor";

/// A SPIFFE ID no test maps.
pub const UNMAPPED: &str = "spiffe://ecommerce/stranger";

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// The PKCS#8 private key.
    pub key: String,
    /// The certificate's serial number, for CRLs.
    pub serial: u64,
}

impl Pem {
    /// Certificate and key in one PEM string, as `reqwest::Identity::from_pem` wants.
    pub fn identity(&self) -> String {
        format!("{}{}", self.cert, self.key)
    }

    /// The DER bytes of the certificate.
    pub fn der(&self) -> Vec<u8> {
        rustls_pki_types::pem::PemObject::from_pem_slice(self.cert.as_bytes())
            .map(|der: rustls_pki_types::CertificateDer<'_>| der.to_vec())
            .expect("test certificate PEM")
    }
}

/// When a client certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From 2020 to 2090.
    Current,
    /// 2000 to 2001.
    Expired,
    /// 2080 to 2090.
    NotYetValid,
}

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1000);

impl TestCa {
    /// A new CA with its own key, named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from(next_serial()));
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `127.0.0.1`, `::1` and `localhost`.
    pub fn server(&self) -> Pem {
        let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let mut params = CertificateParams::new(names).expect("server names");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "test server")
    }

    /// A client certificate with the URI SAN `uri`, valid now, for client auth.
    pub fn client(&self, uri: &str) -> Pem {
        self.client_with(uri, Validity::Current, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client certificate with the URI SAN `uri` and the given validity and EKU.
    pub fn client_with(&self, uri: &str, validity: Validity, eku: ExtendedKeyUsagePurpose) -> Pem {
        let mut params = CertificateParams::default();
        let uri = Ia5String::try_from(uri).expect("URI SAN");
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![eku];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let (not_before, not_after) = match validity {
            Validity::Current => ((2020, 1, 1), (2090, 1, 1)),
            Validity::Expired => ((2000, 1, 1), (2001, 1, 1)),
            Validity::NotYetValid => ((2080, 1, 1), (2090, 1, 1)),
        };
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        self.issue(params, "test client")
    }

    /// A CRL signed by this CA revoking the certificates with `serials`.
    pub fn crl(&self, serials: &[u64]) -> String {
        let revoked = serials.iter().map(|&serial| RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: date_time_ymd(2021, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        });
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2021, 1, 1),
            next_update: date_time_ymd(2090, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: revoked.collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).expect("CRL");
        crl.pem().expect("CRL PEM")
    }

    fn issue(&self, mut params: CertificateParams, common_name: &str) -> Pem {
        let serial = next_serial();
        params.serial_number = Some(SerialNumber::from(serial));
        params.distinguished_name.remove(DnType::CommonName);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;

        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            serial,
        }
    }
}

fn next_serial() -> u64 {
    NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// The test PKI most tests need: a CA, its server certificate, and a second,
/// untrusted CA.
pub struct TestPki {
    /// The CA the server trusts for clients (and that issued its certificate).
    pub ca: TestCa,
    /// The server's certificate, issued by `ca`.
    pub server: Pem,
    /// A CA nobody trusts.
    pub other_ca: TestCa,
}

impl TestPki {
    /// A fresh PKI.
    pub fn new() -> Self {
        let ca = TestCa::new("tower-principal test CA");
        let server = ca.server();
        let other_ca = TestCa::new("some other CA");
        Self {
            ca,
            server,
            other_ca,
        }
    }

    /// A valid client certificate for `order-processor`.
    pub fn order_processor(&self) -> Pem {
        self.ca.client(ORDER_PROCESSOR)
    }

    /// An expired client certificate for `order-processor`.
    pub fn expired(&self) -> Pem {
        let eku = ExtendedKeyUsagePurpose::ClientAuth;
        self.ca.client_with(ORDER_PROCESSOR, Validity::Expired, eku)
    }

    /// A not-yet-valid client certificate for `order-processor`.
    pub fn not_yet_valid(&self) -> Pem {
        let eku = ExtendedKeyUsagePurpose::ClientAuth;
        self.ca
            .client_with(ORDER_PROCESSOR, Validity::NotYetValid, eku)
    }

    /// A current `order-processor` certificate with only the serverAuth EKU.
    pub fn server_auth_only(&self) -> Pem {
        let eku = ExtendedKeyUsagePurpose::ServerAuth;
        self.ca.client_with(ORDER_PROCESSOR, Validity::Current, eku)
    }

    /// An `order-processor` certificate from the untrusted CA.
    pub fn signed_by_other_ca(&self) -> Pem {
        self.other_ca.client(ORDER_PROCESSOR)
    }

    /// A valid certificate whose SAN no rule maps.
    pub fn unmapped(&self) -> Pem {
        self.ca.client(UNMAPPED)
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
