//! Reading a DHCP/BOOTP packet as the firmware cached it (the PXE base
//! code's DHCP ACK, proxy offer and PXE reply): the server address field and
//! option 66 (TFTP server name). Every length is checked; a short or
//! malformed packet yields nothing, never a panic.

use alloc::string::String;

/// Offset of `siaddr` (next server) in a BOOTP packet.
const SIADDR: usize = 20;
/// Offset of the magic cookie that starts the options.
const COOKIE: usize = 236;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
const OPT_PAD: u8 = 0;
const OPT_END: u8 = 255;
/// RFC 2132 "TFTP server name".
pub const OPT_TFTP_SERVER: u8 = 66;

/// `siaddr` when the packet is long enough and the address is set.
pub fn next_server(packet: &[u8]) -> Option<[u8; 4]> {
    let bytes: [u8; 4] = packet.get(SIADDR..SIADDR + 4)?.try_into().ok()?;
    (bytes != [0; 4]).then_some(bytes)
}

/// The value of the first option `code`, or `None` if the packet has no
/// option area, the option is absent, or its length runs past the packet.
pub fn option(packet: &[u8], code: u8) -> Option<&[u8]> {
    if packet.get(COOKIE..COOKIE + 4)? != MAGIC {
        return None;
    }
    let mut at = COOKIE + 4;
    loop {
        match *packet.get(at)? {
            OPT_END => return None,
            OPT_PAD => at += 1,
            found => {
                let len = usize::from(*packet.get(at + 1)?);
                let value = packet.get(at + 2..at + 2 + len)?;
                if found == code {
                    return Some(value);
                }
                at += 2 + len;
            }
        }
    }
}

/// Option 66 as a host name, when it is one (see [`crate::server::host`]).
pub fn tftp_server_name(packet: &[u8]) -> Option<String> {
    let value = option(packet, OPT_TFTP_SERVER)?;
    let value = value.strip_suffix(&[0]).unwrap_or(value);
    crate::server::host(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn packet(siaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[SIADDR..SIADDR + 4].copy_from_slice(&siaddr);
        p[COOKIE..COOKIE + 4].copy_from_slice(&MAGIC);
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn reads_siaddr_and_option_66() {
        let p = packet(
            [10, 0, 0, 1],
            &[
                53, 1, 5, 0, 66, 8, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'2', 255,
            ],
        );
        assert_eq!(next_server(&p), Some([10, 0, 0, 1]));
        assert_eq!(tftp_server_name(&p).as_deref(), Some("10.0.0.2"));
        assert_eq!(option(&p, 53), Some(&[5u8][..]));
        assert_eq!(option(&p, 67), None);
    }

    #[test]
    fn a_nul_terminated_option_66_is_accepted() {
        let p = packet([0; 4], &[66, 5, b'b', b'o', b'o', b't', 0, 255]);
        assert_eq!(tftp_server_name(&p).as_deref(), Some("boot"));
        assert_eq!(next_server(&p), None);
    }

    #[test]
    fn malformed_packets_yield_nothing() {
        // Every truncation of a valid packet, a missing cookie, an option
        // running past the end, no end marker, an all-zero (never received)
        // packet and an empty one.
        let full = packet([10, 0, 0, 1], &[66, 4, b'h', b'o', b's', b't', 255]);
        for len in 0..full.len() {
            let _ = option(&full[..len], OPT_TFTP_SERVER);
            let _ = next_server(&full[..len]);
        }
        assert_eq!(option(&full[..full.len() - 2], OPT_TFTP_SERVER), None);
        let mut no_cookie = full.clone();
        no_cookie[COOKIE] = 0;
        assert_eq!(option(&no_cookie, OPT_TFTP_SERVER), None);
        assert_eq!(
            option(&packet([0; 4], &[66, 200, b'x']), OPT_TFTP_SERVER),
            None
        );
        assert_eq!(
            option(&packet([0; 4], &[1, 4, 0, 0, 0, 0]), OPT_TFTP_SERVER),
            None
        );
        assert_eq!(option(&[0u8; 1472], OPT_TFTP_SERVER), None);
        assert_eq!(next_server(&[0u8; 1472]), None);
        assert_eq!(option(&[], OPT_TFTP_SERVER), None);
    }

    #[test]
    fn option_66_that_is_not_a_host_name_is_ignored() {
        for bad in [&b"a b"[..], b"http://x/", b"\xff\xfe", b"", b"host/../x"] {
            let mut opts = vec![66, bad.len() as u8];
            opts.extend_from_slice(bad);
            opts.push(255);
            assert_eq!(tftp_server_name(&packet([0; 4], &opts)), None, "{bad:?}");
        }
    }
}
