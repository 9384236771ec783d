//! [`TrustedProxies`]: the peers whose `Client-Cert` header is believed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address.
///
/// Host bits must be zero: `10.1.2.3/8` is refused as a likely typo.
///
/// ```
/// use std::net::IpAddr;
/// use tower_principal_mtls::IpNetwork;
///
/// let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.20.30.40".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// assert!("10.1.2.3/8".parse::<IpNetwork>().is_err());
///
/// let one = IpNetwork::from(IpAddr::from([127, 0, 0, 1]));
/// assert_eq!(one.to_string(), "127.0.0.1/32");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network of `addr` with a `prefix`-bit mask; fails if the prefix is
    /// too long for the address family or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, InvalidNetwork> {
        if prefix > max_prefix(addr) {
            return Err(InvalidNetwork);
        }
        let network = Self { addr, prefix };
        if network.masked(addr) != bits(addr) {
            return Err(InvalidNetwork);
        }
        Ok(network)
    }

    /// Whether `addr` is in the network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) count as the IPv4 address they map.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.addr.is_ipv4() && self.masked(addr) == bits(self.addr)
    }

    fn masked(&self, addr: IpAddr) -> u128 {
        let host_bits = u32::from(max_prefix(addr) - self.prefix);
        bits(addr) & u128::MAX.checked_shl(host_bits).unwrap_or(0)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl From<IpAddr> for IpNetwork {
    /// The network of exactly `addr`.
    fn from(addr: IpAddr) -> Self {
        Self {
            addr: addr.to_canonical(),
            prefix: max_prefix(addr.to_canonical()),
        }
    }
}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((addr, prefix)) = s.split_once('/') else {
            return s
                .parse::<IpAddr>()
                .map(Self::from)
                .map_err(|_| InvalidNetwork);
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| InvalidNetwork)?;
        let digits = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit());
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|_| digits)
            .ok_or(InvalidNetwork)?;
        Self::new(addr, prefix)
    }
}

impl TryFrom<String> for IpNetwork {
    type Error = InvalidNetwork;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Text that is not an IP address or CIDR network without host bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an IP address or a CIDR network such as 10.0.0.0/8, without host bits")]
pub struct InvalidNetwork;

/// The proxies allowed to forward client certificates (RFC 9440).
///
/// Deserializes from a list of addresses and CIDR networks:
///
/// ```
/// use tower_principal_mtls::TrustedProxies;
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     trusted_proxies: TrustedProxies,
/// }
///
/// let config: Config = toml::from_str(r#"trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]"#)
///     .unwrap();
/// assert!(config.trusted_proxies.contains("10.1.1.1".parse().unwrap()));
/// assert!(!config.trusted_proxies.contains("192.0.2.1".parse().unwrap()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// Trusts these networks (or addresses, through `From<IpAddr>`).
    pub fn new<I, T>(networks: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<IpNetwork>,
    {
        Self(networks.into_iter().map(Into::into).collect())
    }

    /// Whether `addr` is a trusted proxy.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(addr))
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNetwork] {
        &self.0
    }
}

impl FromIterator<IpNetwork> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNetwork>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks() {
        for good in [
            "127.0.0.1",
            "0.0.0.0/0",
            "10.0.0.0/8",
            "::1",
            "fd00::/8",
            "::/0",
        ] {
            assert!(good.parse::<IpNetwork>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "fd00::/129",
            "x",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment() {
        let net: IpNetwork = "192.168.0.0/16".parse().unwrap();
        assert!(net.contains(ip("192.168.255.1")));
        assert!(!net.contains(ip("192.169.0.1")));
        assert!(net.contains(ip("::ffff:192.168.1.1")), "IPv4-mapped counts");
        assert!(!net.contains(ip("::1")));

        let all_v4: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all_v4.contains(ip("8.8.8.8")));
        assert!(!all_v4.contains(ip("2001:db8::1")));

        let v6: IpNetwork = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn single_address_is_exact() {
        let proxies = TrustedProxies::new([ip("127.0.0.1")]);
        assert!(proxies.contains(ip("127.0.0.1")));
        assert!(!proxies.contains(ip("127.0.0.2")));
        assert!(!TrustedProxies::default().contains(ip("127.0.0.1")));
    }
}
