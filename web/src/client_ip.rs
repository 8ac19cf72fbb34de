//! Who is asking: the client's IP address, for rate limits and connection caps.
//!
//! The peer address is the client unless the peer is one of `TRUSTED_PROXIES`; then the
//! `X-Forwarded-For` chain is read from the right, skipping trusted hops, and the first address a
//! trusted proxy vouches for is the client. An untrusted peer cannot spoof its address by sending
//! the header itself.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;
use poem::{Endpoint, Middleware, Request, Result};

/// The client's address, in every request's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Puts a [`ClientIp`] into every request.
pub struct ResolveClientIp(pub Arc<Vec<IpNet>>);

impl<E: Endpoint> Middleware<E> for ResolveClientIp {
    type Output = ResolveClientIpEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ResolveClientIpEndpoint { inner, trusted: self.0.clone() }
    }
}

/// The endpoint wrapped by [`ResolveClientIp`].
pub struct ResolveClientIpEndpoint<E> {
    inner: E,
    trusted: Arc<Vec<IpNet>>,
}

impl<E: Endpoint> Endpoint for ResolveClientIpEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let peer = req.remote_addr().as_socket_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let client = resolve(peer, forwarded, &self.trusted);
        req.extensions_mut().insert(ClientIp(client));
        self.inner.call(req).await
    }
}

/// The client behind `peer`, given the `X-Forwarded-For` header values in order.
pub fn resolve<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain: Vec<&str> = forwarded.flat_map(|value| value.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A garbled entry: nothing to its left can be trusted; the last good hop is the client.
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoof = ["1.2.3.4"];
        assert_eq!(resolve(ip("203.0.113.9"), spoof.into_iter(), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("10.0.0.2"), spoof.into_iter(), &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain = ["6.6.6.6, 198.51.100.4", "10.0.0.7"];
        assert_eq!(resolve(ip("10.0.0.2"), chain.into_iter(), &trusted), ip("198.51.100.4"));
        assert_eq!(resolve(ip("10.0.0.2"), std::iter::empty(), &trusted), ip("10.0.0.2"));
        assert_eq!(resolve(ip("10.0.0.2"), ["junk, 10.0.0.9"].into_iter(), &trusted), ip("10.0.0.9"));
    }
}
