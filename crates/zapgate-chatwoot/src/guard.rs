//! The address guard: customer-supplied URLs (a Chatwoot base URL, an
//! attachment's redirect) must not reach loopback, private or link-local
//! addresses unless the operator allows it. Names are checked after
//! resolution, on every new connection (a DNS answer can change between a
//! check and a connect), through a resolver plugged into reqwest; IP
//! literals, which reqwest never resolves, are checked before each request.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether private destinations are allowed (`ZAPGATE_ALLOW_PRIVATE_URLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

impl AddressPolicy {
    /// `Err` with the first forbidden address.
    pub fn check(&self, ip: IpAddr) -> Result<(), PrivateAddress> {
        if self.allow_private || !is_private(ip) {
            Ok(())
        } else {
            Err(PrivateAddress(ip))
        }
    }

    /// Checks a URL whose host is an IP literal; names pass (the resolver
    /// checks them at connection time).
    pub fn check_url(&self, url: &url::Url) -> Result<(), PrivateAddress> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }

    /// Resolves `host` and checks every address it resolves to.
    pub async fn check_host(&self, host: &str, port: u16) -> Result<(), GuardError> {
        let addrs = resolve(host, port).await?;
        addrs.iter().try_for_each(|a| self.check(a.ip()))?;
        Ok(())
    }

    /// A reqwest resolver enforcing this policy.
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { policy: self })
    }
}

/// A destination the policy forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateAddress(pub IpAddr);

impl fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a private address", self.0)
    }
}

impl std::error::Error for PrivateAddress {}

#[derive(Debug)]
pub enum GuardError {
    Private(PrivateAddress),
    Resolve(String),
}

impl From<PrivateAddress> for GuardError {
    fn from(p: PrivateAddress) -> Self {
        Self::Private(p)
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| GuardError::Resolve(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(GuardError::Resolve(format!("{host} has no address")));
    }
    Ok(addrs)
}

/// reqwest's resolver, checking every address a name resolves to.
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), 0).await.map_err(|e| match e {
                GuardError::Private(p) => Box::new(p) as Box<dyn std::error::Error + Send + Sync>,
                GuardError::Resolve(m) => m.into(),
            })?;
            for addr in &addrs {
                policy.check(addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast and
/// the IPv6 equivalents, including IPv4 addresses mapped into IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let strict = AddressPolicy {
            allow_private: false,
        };
        match strict.check_host("localhost", 80).await {
            Err(GuardError::Private(PrivateAddress(ip))) => assert!(ip.is_loopback()),
            other => panic!("expected a private address, got {other:?}"),
        }
        let open = AddressPolicy {
            allow_private: true,
        };
        assert!(open.check_host("localhost", 80).await.is_ok());
    }

    #[test]
    fn ip_literal_urls_are_checked() {
        let strict = AddressPolicy {
            allow_private: false,
        };
        let url = url::Url::parse("http://[::1]:3000/x").unwrap();
        assert!(strict.check_url(&url).is_err());
        let url = url::Url::parse("https://chatwoot.example.com").unwrap();
        assert!(strict.check_url(&url).is_ok());
    }
}
