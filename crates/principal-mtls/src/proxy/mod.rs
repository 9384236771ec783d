//! Client certificates forwarded by a TLS-terminating proxy (RFC 9440).
//!
//! The main types are re-exported at the crate root; this module also holds
//! the response future of [`ClientCertHeader`].

mod layer;
mod networks;

pub use layer::{
    CLIENT_CERT, CLIENT_CERT_CHAIN, ClientCertHeader, ClientCertHeaderConfig,
    ClientCertHeaderLayer, DEFAULT_MAX_HEADER_BYTES, ResponseFuture,
};
pub use networks::{InvalidNetwork, IpNetwork, TrustedProxies};
