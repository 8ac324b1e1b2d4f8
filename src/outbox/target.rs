//! Where a rule's `http:` action may go. Text from strangers can end up in
//! a URL, so the call must not reach the machine itself or its network:
//! loopback, private, link-local (cloud metadata at 169.254.169.254),
//! unique-local, CGNAT, unspecified and multicast addresses are refused
//! unless the host is listed in `http_actions.allow_hosts`; when that list
//! is not empty, only listed hosts are called at all. Checked on the URL's
//! literal host and, through [`Guarded`], on every address a name
//! resolves to, so a public name pointing inward is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::runtime::Shared;

/// Whether `ip` is an address of this machine or a private network.
pub(super) fn is_inward(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_inward(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `host` is in the allow list (`example.com`, `*.example.com`, an IP).
pub(super) fn listed(host: &str, allow: &[String]) -> bool {
    let host = host.trim_matches(['[', ']']).trim_end_matches('.');
    allow.iter().any(|entry| {
        let entry = entry.trim_matches(['[', ']']);
        match entry.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')),
            None => host.eq_ignore_ascii_case(entry),
        }
    })
}

/// Whether a call to the URL `url` may be made, judged on its literal
/// host (the daemon also checks the addresses a name resolves to); why not.
pub fn check_url(url: &str, allow: &[String]) -> Result<(), String> {
    url::Url::parse(url)
        .map_err(|e| format!("`{url}` is not a URL: {e}"))
        .and_then(|url| check(&url, allow))
}

/// Whether a call to `url` may be made, judged on its literal host; why not.
pub(super) fn check(url: &url::Url, allow: &[String]) -> Result<(), String> {
    let Some(host) = url.host() else {
        return Err("the URL has no host".into());
    };
    let name = host.to_string();
    if listed(&name, allow) {
        return Ok(());
    }
    if !allow.is_empty() {
        return Err(format!(
            "host {name} is not in http_actions.allow_hosts; add it there to allow the call"
        ));
    }
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(d)
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            Some(IpAddr::from([127, 0, 0, 1]))
        }
        url::Host::Domain(_) => None,
    };
    match literal {
        Some(ip) if is_inward(ip) => Err(inward(&name, ip)),
        _ => Ok(()),
    }
}

fn inward(host: &str, ip: IpAddr) -> String {
    format!(
        "host {host} is {ip}, an address of this machine or a private network; list it in http_actions.allow_hosts to allow the call"
    )
}

/// The resolver of the `http:` client: names resolve as usual, but an
/// unlisted name whose addresses include an inward one is refused.
pub(super) struct Guarded(pub(super) Arc<Shared>);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.0.loaded().config.allow_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !listed(&host, &allow)
                && let Some(bad) = addrs.iter().find(|a| is_inward(a.ip()))
            {
                return Err(inward(&host, bad.ip()).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(url: &str, allow: &[&str]) -> bool {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        check(&url::Url::parse(url).unwrap(), &allow).is_ok()
    }

    #[test]
    fn every_spelling_of_loopback_and_metadata_is_refused() {
        for url in [
            "http://localhost/x",
            "http://app.localhost/x",
            "http://127.0.0.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0177.0.0.1/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://0.0.0.0/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/x",
            "http://192.168.0.10/x",
            "http://172.16.5.5/x",
            "http://100.64.0.1/x",
            "http://[fd00::1]/x",
            "http://[fe80::1]/x",
        ] {
            assert!(!verdict(url, &[]), "{url} was allowed");
        }
        assert!(verdict("https://example.com/x", &[]));
        assert!(verdict("https://93.184.216.34/x", &[]));
    }

    #[test]
    fn the_allow_list_opens_listed_hosts_and_closes_the_rest() {
        assert!(verdict("http://127.0.0.1:9000/hook", &["127.0.0.1"]));
        assert!(verdict("http://crm.internal/x", &["*.internal"]));
        assert!(!verdict("http://internal/x", &["*.internal"]));
        assert!(!verdict("https://example.com/x", &["crm.example.org"]));
        assert!(verdict("http://[::1]/x", &["::1"]));
    }
}
