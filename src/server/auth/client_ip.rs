//! The address a request came from, for rate limiting. `X-Forwarded-For`
//! is believed only from proxies we were told to trust (`TLDW_TRUSTED_PROXIES`);
//! anyone else could write any address there and dodge the limits.

use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = peer.ip();
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    // Walk from the nearest hop back; the first address that is not one of
    // our proxies is the client.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|hop| !trusted_proxies.contains(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert_eq!(
            client_ip(peer, &headers("1.2.3.4"), &[]).to_string(),
            "203.0.113.9"
        );
    }

    #[test]
    fn trusted_proxies_pass_the_client_through() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 443);
        // The client may prepend lies; only the hop our proxy added counts.
        let ip = client_ip(peer, &headers("6.6.6.6, 198.51.100.7"), &[proxy]);
        assert_eq!(ip.to_string(), "198.51.100.7");
        assert_eq!(client_ip(peer, &HeaderMap::new(), &[proxy]), proxy);
    }
}
