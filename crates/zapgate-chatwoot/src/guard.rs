//! The address guard: customer-supplied URLs (a Chatwoot base URL, an
//! attachment's redirect) must not reach loopback, private, link-local or
//! otherwise special addresses unless the operator allows it. Names are checked after
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

/// Any address that is not plainly a public unicast one: loopback, private,
/// link-local, shared (CGNAT), benchmarking, documentation, reserved,
/// multicast, unspecified and broadcast, and their IPv6 counterparts.
/// IPv6 forms that carry an IPv4 address (mapped, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`) are judged by that IPv4 address, since the network
/// may route them to it; the deprecated IPv4-compatible `::/96`, local-use
/// NAT64 `64:ff9b:1::/48` and Teredo `2001::/32` are refused whole.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240 // reserved (RFC 1112)
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 198 && (b & 0xfe) == 18) // benchmarking (RFC 2544)
}

/// The IPv4 address an IPv6 one stands for: mapped `::ffff:a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let [_, _, _, _, _, _, _, _, _, _, _, _, a, b, c, d] = ip.octets();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    if s[0] == 0x2002 {
        let [hi, lo] = s[1].to_be_bytes();
        let [hi2, lo2] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(hi, lo, hi2, lo2));
    }
    None
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first = s[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || s[..6] == [0; 6] // IPv4-compatible (deprecated, RFC 4291)
        || s[..3] == [0x64, 0xff9b, 1] // local-use NAT64 (RFC 8215)
        || s[..4] == [0x100, 0, 0, 0] // discard-only (RFC 6666)
        || (first == 0x2001 && s[1] == 0) // Teredo (RFC 4380)
        || (first == 0x2001 && s[1] == 0xdb8) // documentation (RFC 3849)
        || (first == 0x3fff && s[1] < 0x1000) // documentation (RFC 9637)
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
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
            // IPv4 special ranges.
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 forms carrying a private IPv4 address.
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
            "2002:7f00:1::",
            // IPv6 ranges refused whole.
            "::",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "172.32.0.1",
            "198.20.0.1",
            "192.0.1.1",
            "223.255.255.255",
            // A public IPv4 address behind NAT64, 6to4 or mapping stays public.
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
            "2001:4860:4860::8888",
        ] {
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
