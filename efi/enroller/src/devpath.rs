//! UEFI device paths as bytes: walking them (bounds-checked: a node shorter
//! than its header or longer than what is left ends the walk), finding the
//! URI and UART nodes, and building the HTTP-boot path of the boot entry
//! (the NIC's path, then IPv4 with DHCP over TCP, then the ISO's URI), as
//! the firmware's own HTTP boot options are laid out.

use alloc::vec::Vec;

const MESSAGING: u8 = 0x03;
const MAC: u8 = 11;
const IPV4: u8 = 12;
const UART: u8 = 14;
const URI: u8 = 24;
const END: u8 = 0x7f;
const END_ENTIRE: u8 = 0xff;
const END_INSTANCE: u8 = 0x01;
const TCP: u16 = 6;

/// One node: type, subtype, the bytes after its 4-byte header, and where it
/// starts in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    pub kind: u8,
    pub subtype: u8,
    pub data: &'a [u8],
    pub offset: usize,
}

/// The nodes of every instance, up to the end-of-path node (excluded).
pub fn nodes(path: &[u8]) -> impl Iterator<Item = Node<'_>> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let header = path.get(at..at + 4)?;
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        if len < 4 || (header[0] == END && header[1] == END_ENTIRE) {
            return None;
        }
        let data = path.get(at + 4..at + len)?;
        let node = Node {
            kind: header[0],
            subtype: header[1],
            data,
            offset: at,
        };
        at += len;
        Some(node)
    })
}

/// The URI of the first URI node (an HTTP-booted image's path has one).
pub fn uri(path: &[u8]) -> Option<&[u8]> {
    nodes(path)
        .find(|n| n.kind == MESSAGING && n.subtype == URI)
        .map(|n| n.data)
}

/// Whether any instance goes through a UART: the console variable then
/// already reaches the serial port.
pub fn has_uart(path: &[u8]) -> bool {
    nodes(path).any(|n| n.kind == MESSAGING && n.subtype == UART)
}

/// The path up to and including its last MAC node (the NIC itself, without
/// the IPv4/URI nodes of a boot through it), or `None` if there is none.
pub fn nic(path: &[u8]) -> Option<&[u8]> {
    let mac = nodes(path)
        .filter(|n| n.kind == MESSAGING && n.subtype == MAC)
        .last()?;
    let end = mac.offset + 4 + mac.data.len();
    // A multi-instance path's MAC in a later instance would drag the
    // earlier instance along: refuse.
    let crosses = nodes(&path[..end]).any(|n| n.kind == END && n.subtype == END_INSTANCE);
    (!crosses).then(|| &path[..end])
}

/// The boot entry's path: `nic`, IPv4 (addresses from DHCP, TCP), the URI,
/// the end node.
pub fn http_boot(nic: &[u8], uri: &str) -> Vec<u8> {
    let mut path = Vec::with_capacity(nic.len() + 27 + 4 + uri.len() + 4);
    path.extend_from_slice(nic);
    path.extend_from_slice(&[MESSAGING, IPV4, 27, 0]);
    path.extend_from_slice(&[0; 12]); // local, remote address; local, remote port
    path.extend_from_slice(&TCP.to_le_bytes());
    path.push(0); // not static: DHCP
    path.extend_from_slice(&[0; 8]); // gateway, subnet mask
    let uri_len = u16::try_from(4 + uri.len()).unwrap_or(u16::MAX);
    path.extend_from_slice(&[MESSAGING, URI]);
    path.extend_from_slice(&uri_len.to_le_bytes());
    path.extend_from_slice(&uri.as_bytes()[..usize::from(uri_len) - 4]);
    path.extend_from_slice(&[END, END_ENTIRE, 4, 0]);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400123456,0x1), as OVMF lays it out.
    fn ovmf_nic() -> Vec<u8> {
        let mut p = vec![2, 1, 12, 0, 0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0];
        p.extend_from_slice(&[1, 1, 6, 0, 0, 3]);
        p.extend_from_slice(&[3, 11, 37, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        p.extend_from_slice(&[0; 26]);
        p.push(1);
        p
    }

    #[test]
    fn the_http_boot_path_walks_back_to_its_parts() {
        let nic_path = ovmf_nic();
        let path = http_boot(&nic_path, "http://10.0.0.1/kairos.iso");
        let kinds: Vec<(u8, u8)> = nodes(&path).map(|n| (n.kind, n.subtype)).collect();
        assert_eq!(kinds, [(2, 1), (1, 1), (3, 11), (3, 12), (3, 24)]);
        let ipv4 = nodes(&path).find(|n| n.subtype == IPV4).unwrap();
        assert_eq!(ipv4.data.len(), 23);
        assert_eq!(&ipv4.data[12..15], &[6, 0, 0]);
        assert_eq!(uri(&path), Some(&b"http://10.0.0.1/kairos.iso"[..]));
        assert_eq!(&path[path.len() - 4..], &[END, END_ENTIRE, 4, 0]);
        assert_eq!(nic(&path), Some(&nic_path[..]));
    }

    #[test]
    fn uart_consoles_are_found_in_any_instance() {
        let mut con = ovmf_nic();
        con.extend_from_slice(&[END, END_INSTANCE, 4, 0]);
        assert!(!has_uart(&con));
        con.extend_from_slice(&[3, UART, 19, 0]);
        con.extend_from_slice(&[0; 15]);
        con.extend_from_slice(&[END, END_ENTIRE, 4, 0]);
        assert!(has_uart(&con));
    }

    #[test]
    fn hostile_paths_end_the_walk() {
        // Zero and short lengths, a length past the end, truncations of a
        // valid path: never a panic, never a node beyond the bytes.
        assert_eq!(nodes(&[3, 24, 0, 0, b'x']).count(), 0);
        assert_eq!(nodes(&[3, 24, 2, 0]).count(), 0);
        assert_eq!(nodes(&[3, 24, 200, 0, b'h']).count(), 0);
        let path = http_boot(&ovmf_nic(), "http://h/x");
        for len in 0..path.len() {
            for n in nodes(&path[..len]) {
                assert!(n.offset + 4 + n.data.len() <= len);
            }
            let _ = (uri(&path[..len]), has_uart(&path[..len]), nic(&path[..len]));
        }
        assert_eq!(nic(&[2, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        // A MAC only in the second instance is not "the NIC".
        let mut two = vec![2, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, END, END_INSTANCE, 4, 0];
        two.extend_from_slice(&ovmf_nic());
        assert_eq!(nic(&two), None);
    }
}
