//! Which boot server the enroller talks to, and the URLs it builds. In
//! order: the host of the URI the enroller was HTTP-booted from; option 66 of
//! the DHCP ACK, then of the proxy offer; the `siaddr` of the proxy offer,
//! then of the PXE reply, then of the ACK. (Upstream's enroller tries the
//! ACK's `siaddr` before the proxy offer's; with a ProxyDHCP server beside a
//! plain DHCP server, the ACK's `siaddr` is usually the DHCP server itself,
//! not the machine that served the enroller, so the proxy offer comes first.)

use alloc::format;
use alloc::string::String;

use crate::dhcp;

/// A boot server and where the enroller learned of it (printed on the
/// console, so a wrong answer can be traced to its source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// A host name or dotted IPv4 address, optionally with `:port`.
    pub host: String,
    pub source: &'static str,
}

/// The packets the PXE base code cached, each `None` when not received.
#[derive(Debug, Default, Clone, Copy)]
pub struct Packets<'a> {
    pub ack: Option<&'a [u8]>,
    pub proxy_offer: Option<&'a [u8]>,
    pub pxe_reply: Option<&'a [u8]>,
}

/// The boot server, from the boot URI (when HTTP-booted) or the packets.
pub fn choose(boot_uri: Option<&[u8]>, packets: Packets<'_>) -> Option<Server> {
    let found = |host: String, source| Some(Server { host, source });
    if let Some(host) = boot_uri.and_then(uri_host) {
        return found(host, "the URI this program was booted from");
    }
    let named = [
        (packets.ack, "DHCP option 66 of the ACK"),
        (packets.proxy_offer, "DHCP option 66 of the proxy offer"),
    ];
    for (packet, source) in named {
        if let Some(host) = packet.and_then(dhcp::tftp_server_name) {
            return found(host, source);
        }
    }
    let addressed = [
        (
            packets.proxy_offer,
            "the next-server address of the proxy offer",
        ),
        (
            packets.pxe_reply,
            "the next-server address of the PXE reply",
        ),
        (packets.ack, "the next-server address of the DHCP ACK"),
    ];
    for (packet, source) in addressed {
        if let Some([a, b, c, d]) = packet.and_then(dhcp::next_server) {
            return found(format!("{a}.{b}.{c}.{d}"), source);
        }
    }
    None
}

/// `bytes` as a host (`name`, `a.b.c.d`, either with `:port`), when it is
/// one: letters, digits, `.` and `-`, at most 253 of them, and an optional
/// decimal port. Anything else (spaces, slashes, non-ASCII) is refused, so it
/// cannot smuggle a path or a second URL into the requests.
pub fn host(bytes: &[u8]) -> Option<String> {
    let text = core::str::from_utf8(bytes).ok()?;
    let (name, port) = match text.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    (name_ok && port_ok).then(|| String::from(text))
}

/// The host of an `http://host[:port]/...` URI (as a URI device path node
/// carries it), when it is one.
pub fn uri_host(uri: &[u8]) -> Option<String> {
    let rest = uri.strip_prefix(b"http://")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    host(&rest[..end])
}

/// `http://<host><path>`.
pub fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn packet(siaddr: [u8; 4], opt66: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[20..24].copy_from_slice(&siaddr);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        if let Some(name) = opt66 {
            p.extend_from_slice(&[66, name.len() as u8]);
            p.extend_from_slice(name);
        }
        p.push(255);
        p
    }

    #[test]
    fn the_boot_uri_comes_first() {
        let ack = packet([10, 0, 0, 9], Some(b"other"));
        let s = choose(
            Some(b"http://10.0.0.1:8080/enroller.efi"),
            Packets {
                ack: Some(&ack),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.host, "10.0.0.1:8080");
        assert_eq!(url(&s, "/PK.auth"), "http://10.0.0.1:8080/PK.auth");
    }

    #[test]
    fn option_66_then_the_proxy_offer_then_the_ack() {
        let ack_named = packet([10, 0, 0, 9], Some(b"boot.lan"));
        let ack = packet([10, 0, 0, 9], None);
        let proxy = packet([10, 0, 0, 1], None);
        let reply = packet([10, 0, 0, 5], None);
        let pick = |ack: &[u8], proxy: Option<&[u8]>, reply: Option<&[u8]>| {
            choose(
                None,
                Packets {
                    ack: Some(ack),
                    proxy_offer: proxy,
                    pxe_reply: reply,
                },
            )
            .map(|s| s.host)
        };
        assert_eq!(
            pick(&ack_named, Some(&proxy), None).as_deref(),
            Some("boot.lan")
        );
        assert_eq!(
            pick(&ack, Some(&proxy), Some(&reply)).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(pick(&ack, None, Some(&reply)).as_deref(), Some("10.0.0.5"));
        assert_eq!(pick(&ack, None, None).as_deref(), Some("10.0.0.9"));
        let nothing = packet([0; 4], None);
        assert_eq!(pick(&nothing, None, None), None);
    }

    #[test]
    fn hostile_hosts_are_refused() {
        for bad in [
            &b"http://a b/x"[..],
            b"http:///x",
            b"http://host:99999/",
            b"http://host:0/",
            b"http://host:/",
            b"https://host/",
            b"http://ho\xffst/",
            b"http://h?x/",
            b"http://@evil/",
        ] {
            assert_eq!(uri_host(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(host(&[b'a'; 254]), None);
        assert_eq!(uri_host(b"http://h.example").as_deref(), Some("h.example"));
    }
}
