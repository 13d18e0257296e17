//! ProxyDHCP decisions. Only PXE and HTTP-boot clients (option 60
//! `PXEClient…` / `HTTPClient…`) get an answer, and never an address: the
//! offer carries the boot server and file only, the site's DHCP server
//! still leases the address. What a client gets depends on what the server
//! offers ([`Offer`]), option 93, and whether it is already iPXE (user
//! class `iPXE`, or option 175); [`Server::boot_file`] is the one place
//! that decides it.

use dhcproto::v4::{
    Architecture, DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::net::Ipv4Addr;

/// The client kinds option 93 distinguishes (RFC 4578 and IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    EfiX64,
    EfiHttpX64,
    EfiArm64,
}

/// What an answered client is told to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootFile {
    /// Over TFTP from the server.
    Tftp(&'static str),
    /// An http:// URL.
    Http(String),
}

/// Why a packet got no answer (logged at debug level).
#[derive(Debug, PartialEq, Eq)]
pub enum Ignored {
    Malformed(String),
    NotPxe,
    NotARequest,
    Unsupported(String),
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::Malformed(e) => write!(f, "malformed packet: {e}"),
            Ignored::NotPxe => f.write_str("not a PXE or HTTP-boot client"),
            Ignored::NotARequest => f.write_str("not a DISCOVER or REQUEST"),
            Ignored::Unsupported(e) => write!(f, "unsupported client: {e}"),
        }
    }
}

/// What a server hands out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Offer {
    /// Kairos over iPXE (the netboot of the main command): firmware PXE →
    /// an iPXE binary over TFTP; iPXE → the boot script URL; UEFI HTTP boot
    /// (arch 16) → iPXE over HTTP (upstream refuses those).
    #[default]
    Kairos,
    /// The Secure Boot key enroller (`uki-pxe --key-dir`): UEFI PXE → over
    /// TFTP, UEFI HTTP boot → over HTTP. BIOS and arm64 clients cannot run
    /// it and get no answer.
    Enroller,
    /// The ISO to UEFI HTTP boot clients only (`uki-pxe ISO`), which boot it
    /// as a RAM disk.
    Iso,
}

/// The boot file name of the key enroller, over TFTP and HTTP (upstream's).
pub const ENROLLER_FILE: &str = "booter.efi";
/// The ISO's path on the HTTP server (upstream's).
pub const ISO_FILE: &str = "kairos.iso";

/// The server's side of the conversation.
#[derive(Clone, Debug)]
pub struct Server {
    pub address: Ipv4Addr,
    pub http_port: u16,
    pub offer: Offer,
}

impl Server {
    /// `http://address[:port]/file` (no port when it is 80: a client that
    /// only knows the address, as the enroller booted over TFTP, finds it).
    pub fn url(&self, file: &str) -> String {
        match self.http_port {
            80 => format!("http://{}/{file}", self.address),
            port => format!("http://{}:{port}/{file}", self.address),
        }
    }

    /// The iPXE script URL.
    pub fn script_url(&self) -> String {
        format!("http://{}:{}/boot.ipxe", self.address, self.http_port)
    }

    /// What `firmware` gets, if anything.
    pub fn boot_file(&self, firmware: Firmware, is_ipxe: bool) -> Result<BootFile, Ignored> {
        let refuse = |why: &str| Err(Ignored::Unsupported(why.to_string()));
        match (self.offer, firmware) {
            (Offer::Kairos, _) if is_ipxe => Ok(BootFile::Http(self.script_url())),
            (Offer::Kairos, Firmware::Bios) => Ok(BootFile::Tftp(crate::tftp::BIOS)),
            (Offer::Kairos, Firmware::EfiX64) => Ok(BootFile::Tftp(crate::tftp::EFI_X64)),
            (Offer::Kairos, Firmware::EfiHttpX64) => Ok(BootFile::Http(format!(
                "http://{}:{}/ipxe.efi",
                self.address, self.http_port
            ))),
            (Offer::Kairos, Firmware::EfiArm64) => {
                refuse("arm64 UEFI: no arm64 iPXE build is available")
            }
            (Offer::Enroller, Firmware::EfiX64) => Ok(BootFile::Tftp(ENROLLER_FILE)),
            (Offer::Enroller, Firmware::EfiHttpX64) => Ok(BootFile::Http(self.url(ENROLLER_FILE))),
            (Offer::Enroller, Firmware::Bios) => {
                refuse("BIOS: the Secure Boot key enroller is a UEFI application")
            }
            (Offer::Enroller, Firmware::EfiArm64) => {
                refuse("arm64 UEFI: the Secure Boot key enroller is built for x86-64")
            }
            (Offer::Iso, Firmware::EfiHttpX64) => Ok(BootFile::Http(self.url(ISO_FILE))),
            (Offer::Iso, _) => refuse("only UEFI HTTP boot clients are offered the ISO"),
        }
    }
}

/// An answer to send back, and to whom it is about.
#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub mac: String,
    pub firmware: Firmware,
    pub boot: BootFile,
}

/// The MAC of an Ethernet client, as `aa:bb:cc:dd:ee:ff`.
fn mac_of(msg: &Message) -> Result<String, Ignored> {
    // Message::chaddr() slices by hlen, which a hostile packet sets freely.
    if msg.htype() != HType::Eth || msg.hlen() != 6 {
        return Err(Ignored::Malformed(format!(
            "hardware type {:?} / length {}",
            msg.htype(),
            msg.hlen()
        )));
    }
    Ok(msg
        .chaddr()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// The options a ProxyDHCP decision reads: everything else is dropped
/// before decoding (dhcproto trusts some option lengths, and one of its
/// decoders can panic on a hostile prefix length).
const USED_OPTIONS: &[u8] = &[53, 60, 77, 93, 97, 175];

/// The fixed header plus only the used options, lengths checked
/// (message type: 1 byte; architecture: the first of its 2-byte types).
fn sanitize(packet: &[u8]) -> Result<Vec<u8>, Ignored> {
    const HEADER: usize = 236;
    if packet.len() < HEADER + 4 || packet[HEADER..HEADER + 4] != [99, 130, 83, 99] {
        return Err(Ignored::Malformed(format!(
            "{} bytes without the DHCP magic cookie",
            packet.len()
        )));
    }
    let mut out = packet[..HEADER + 4].to_vec();
    let mut at = HEADER + 4;
    while at < packet.len() {
        let code = packet[at];
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = *packet
            .get(at + 1)
            .ok_or_else(|| Ignored::Malformed(format!("option {code} has no length")))?
            as usize;
        let data = packet.get(at + 2..at + 2 + len).ok_or_else(|| {
            Ignored::Malformed(format!("option {code} claims {len} bytes past the end"))
        })?;
        at += 2 + len;
        if !USED_OPTIONS.contains(&code) {
            continue;
        }
        let data = match code {
            53 if len != 1 => {
                return Err(Ignored::Malformed(format!("message type of {len} bytes")));
            }
            93 if len < 2 || !len.is_multiple_of(2) => {
                return Err(Ignored::Malformed(format!(
                    "architecture option of {len} bytes"
                )));
            }
            93 => &data[..2],
            _ => data,
        };
        out.extend_from_slice(&[code, data.len() as u8]);
        out.extend_from_slice(data);
    }
    out.push(255);
    Ok(out)
}

/// Decides the answer to one packet received on port 67 (`pxe_port`
/// false) or 4011 (`pxe_port` true).
pub fn answer(packet: &[u8], server: &Server, pxe_port: bool) -> Result<Reply, Ignored> {
    let packet = sanitize(packet)?;
    let msg = Message::decode(&mut Decoder::new(&packet))
        .map_err(|e| Ignored::Malformed(e.to_string()))?;
    if msg.opcode() != Opcode::BootRequest {
        return Err(Ignored::NotARequest);
    }
    let kind = msg.opts().msg_type();
    let reply_type = match (kind, pxe_port) {
        (Some(MessageType::Discover), false) => MessageType::Offer,
        (Some(MessageType::Request), true) => MessageType::Ack,
        _ => return Err(Ignored::NotARequest),
    };
    let class = match msg.opts().get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(c)) => c.clone(),
        _ => return Err(Ignored::NotPxe),
    };
    let http_client = class.starts_with(b"HTTPClient");
    if !class.starts_with(b"PXEClient") && !http_client {
        return Err(Ignored::NotPxe);
    }
    let mac = mac_of(&msg)?;
    let arch = match msg.opts().get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(Architecture(a))) => *a,
        _ => {
            return Err(Ignored::Unsupported(
                "no client architecture (option 93)".into(),
            ));
        }
    };
    let firmware = match arch {
        0 => Firmware::Bios,
        7 | 9 => Firmware::EfiX64,
        16 => Firmware::EfiHttpX64,
        11 => Firmware::EfiArm64,
        other => return Err(Ignored::Unsupported(format!("architecture {other}"))),
    };
    if let Some(DhcpOption::ClientMachineIdentifier(id)) =
        msg.opts().get(OptionCode::ClientMachineIdentifier)
        && !(id.is_empty() || (id.len() == 17 && id[0] == 0))
    {
        return Err(Ignored::Malformed(
            "option 97 is neither empty nor a 17-byte GUID".into(),
        ));
    }
    let is_ipxe = matches!(msg.opts().get(OptionCode::UserClass), Some(DhcpOption::UserClass(u)) if user_class_has_ipxe(u))
        || msg.opts().get(OptionCode::Unknown(175)).is_some();
    let boot = server.boot_file(firmware, is_ipxe)?;

    let mut reply = Message::new_with_id(
        msg.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        server.address,
        msg.giaddr(),
        msg.chaddr(),
    );
    reply.set_opcode(Opcode::BootReply);
    reply.set_flags(Flags::default().set_broadcast());
    reply.set_sname_str(server.address.to_string());
    let file = match &boot {
        BootFile::Tftp(name) => name.to_string(),
        BootFile::Http(url) => url.clone(),
    };
    reply.set_fname_str(&file);
    let opts = reply.opts_mut();
    opts.insert(DhcpOption::MessageType(reply_type));
    opts.insert(DhcpOption::ServerIdentifier(server.address));
    opts.insert(DhcpOption::ClassIdentifier(if http_client {
        b"HTTPClient".to_vec()
    } else {
        b"PXEClient".to_vec()
    }));
    if !http_client {
        // PXE_DISCOVERY_CONTROL = 8: take the boot file from this offer,
        // no boot-server discovery.
        opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
    }
    if let Some(DhcpOption::ClientMachineIdentifier(id)) =
        msg.opts().get(OptionCode::ClientMachineIdentifier)
    {
        opts.insert(DhcpOption::ClientMachineIdentifier(id.clone()));
    }
    let mut bytes = Vec::new();
    reply
        .encode(&mut Encoder::new(&mut bytes))
        .map_err(|e| Ignored::Malformed(format!("encoding the reply: {e}")))?;
    Ok(Reply {
        bytes,
        mac,
        firmware,
        boot,
    })
}

/// RFC 3004 user class data: length-prefixed entries; iPXE sends a bare
/// "iPXE" too.
fn user_class_has_ipxe(data: &[u8]) -> bool {
    if data == b"iPXE" {
        return true;
    }
    let mut at = 0;
    while at < data.len() {
        let len = data[at] as usize;
        if at + 1 + len > data.len() {
            return false;
        }
        if &data[at + 1..at + 1 + len] == b"iPXE" {
            return true;
        }
        at += 1 + len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn server() -> Server {
        Server {
            address: Ipv4Addr::new(10, 77, 0, 1),
            http_port: 8090,
            offer: Offer::Kairos,
        }
    }

    fn uki_server(offer: Offer) -> Server {
        Server {
            address: Ipv4Addr::new(10, 77, 0, 1),
            http_port: 80,
            offer,
        }
    }

    #[test]
    fn uki_pxe_offers_the_enroller_then_the_iso() {
        let pxe = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00007:UNDI:003000",
            Some(7),
            None,
            &[],
        );
        let http = discover(
            MessageType::Discover,
            b"HTTPClient:Arch:00016:UNDI:003001",
            Some(16),
            None,
            &[],
        );
        let bios = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00000:UNDI:002001",
            Some(0),
            None,
            &[],
        );
        let enroller = uki_server(Offer::Enroller);
        let r = answer(&pxe, &enroller, false).unwrap();
        assert_eq!(r.boot, BootFile::Tftp("booter.efi"));
        assert_eq!(
            decode(&r.bytes)
                .fname_str()
                .unwrap()
                .unwrap()
                .trim_end_matches('\0'),
            "booter.efi"
        );
        assert_eq!(
            answer(&http, &enroller, false).unwrap().boot,
            BootFile::Http("http://10.77.0.1/booter.efi".into())
        );
        assert!(matches!(
            answer(&bios, &enroller, false),
            Err(Ignored::Unsupported(_))
        ));
        let iso = uki_server(Offer::Iso);
        assert_eq!(
            answer(&http, &iso, false).unwrap().boot,
            BootFile::Http("http://10.77.0.1/kairos.iso".into())
        );
        assert!(matches!(
            answer(&pxe, &iso, false),
            Err(Ignored::Unsupported(_))
        ));
        // A non-default port is part of the URL.
        let on_8080 = Server {
            http_port: 8080,
            ..uki_server(Offer::Iso)
        };
        assert_eq!(
            on_8080.url("kairos.iso"),
            "http://10.77.0.1:8080/kairos.iso"
        );
    }

    /// A DISCOVER shaped like the given firmware's.
    fn discover(
        kind: MessageType,
        class: &[u8],
        arch: Option<u16>,
        user_class: Option<&[u8]>,
        extra: &[DhcpOption],
    ) -> Vec<u8> {
        let mut m = Message::new_with_id(
            0x1234_5678,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        m.set_flags(Flags::default().set_broadcast());
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ClassIdentifier(class.to_vec()));
        if let Some(a) = arch {
            o.insert(DhcpOption::ClientSystemArchitecture(Architecture(a)));
        }
        if let Some(u) = user_class {
            o.insert(DhcpOption::UserClass(u.to_vec()));
        }
        o.insert(DhcpOption::ClientMachineIdentifier(
            [vec![0], vec![7; 16]].concat(),
        ));
        for e in extra {
            o.insert(e.clone());
        }
        let mut out = Vec::new();
        m.encode(&mut Encoder::new(&mut out)).unwrap();
        out
    }

    fn decode(bytes: &[u8]) -> Message {
        Message::decode(&mut Decoder::new(bytes)).unwrap()
    }

    #[test]
    fn seabios_ipxe_rom_gets_the_script() {
        let p = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00000:UNDI:002001",
            Some(0),
            Some(b"iPXE"),
            &[],
        );
        let r = answer(&p, &server(), false).unwrap();
        assert_eq!(
            r.boot,
            BootFile::Http("http://10.77.0.1:8090/boot.ipxe".into())
        );
        assert_eq!(r.mac, "52:54:00:12:34:56");
        let m = decode(&r.bytes);
        assert_eq!(m.opcode(), Opcode::BootReply);
        assert_eq!(m.xid(), 0x1234_5678);
        assert_eq!(
            m.yiaddr(),
            Ipv4Addr::UNSPECIFIED,
            "a proxy never hands out addresses"
        );
        assert_eq!(m.siaddr(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(
            m.fname_str().unwrap().unwrap().trim_end_matches('\0'),
            "http://10.77.0.1:8090/boot.ipxe"
        );
        assert!(
            matches!(m.opts().get(OptionCode::ClientMachineIdentifier), Some(DhcpOption::ClientMachineIdentifier(id)) if id.len() == 17)
        );
    }

    #[test]
    fn firmware_pxe_gets_ipxe_over_tftp() {
        let bios = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00000:UNDI:002001",
            Some(0),
            None,
            &[],
        );
        assert_eq!(
            answer(&bios, &server(), false).unwrap().boot,
            BootFile::Tftp("undionly.kpxe")
        );
        let ovmf = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00007:UNDI:003000",
            Some(7),
            None,
            &[],
        );
        let r = answer(&ovmf, &server(), false).unwrap();
        assert_eq!(r.boot, BootFile::Tftp("ipxe.efi"));
        assert!(
            matches!(decode(&r.bytes).opts().get(OptionCode::VendorExtensions), Some(DhcpOption::VendorExtensions(v)) if v == &[6, 1, 8, 255])
        );
        // The same client asking the boot server on 4011 gets an ACK.
        let req = discover(
            MessageType::Request,
            b"PXEClient:Arch:00007:UNDI:003000",
            Some(7),
            None,
            &[],
        );
        let r = answer(&req, &server(), true).unwrap();
        assert_eq!(decode(&r.bytes).opts().msg_type(), Some(MessageType::Ack));
        // iPXE announcing itself with option 175 (no user class).
        let ipxe = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00007:UNDI:003010",
            Some(7),
            None,
            &[DhcpOption::Unknown(dhcproto::v4::UnknownOption::new(
                OptionCode::Unknown(175),
                vec![1, 1, 1],
            ))],
        );
        assert!(matches!(
            answer(&ipxe, &server(), false).unwrap().boot,
            BootFile::Http(_)
        ));
        // RFC 3004 length-prefixed user class.
        let rfc = discover(
            MessageType::Discover,
            b"PXEClient",
            Some(0),
            Some(b"\x04iPXE"),
            &[],
        );
        assert!(matches!(
            answer(&rfc, &server(), false).unwrap().boot,
            BootFile::Http(_)
        ));
    }

    #[test]
    fn uefi_http_boot_is_served() {
        let p = discover(
            MessageType::Discover,
            b"HTTPClient:Arch:00016:UNDI:003000",
            Some(16),
            None,
            &[],
        );
        let r = answer(&p, &server(), false).unwrap();
        assert_eq!(
            r.boot,
            BootFile::Http("http://10.77.0.1:8090/ipxe.efi".into())
        );
        let m = decode(&r.bytes);
        assert!(
            matches!(m.opts().get(OptionCode::ClassIdentifier), Some(DhcpOption::ClassIdentifier(c)) if c == b"HTTPClient")
        );
    }

    #[test]
    fn everything_else_is_ignored() {
        let plain = discover(MessageType::Discover, b"udhcp 1.36.1", None, None, &[]);
        assert_eq!(
            answer(&plain, &server(), false).unwrap_err(),
            Ignored::NotPxe
        );
        let no_arch = discover(MessageType::Discover, b"PXEClient", None, None, &[]);
        assert!(matches!(
            answer(&no_arch, &server(), false),
            Err(Ignored::Unsupported(_))
        ));
        let request_on_67 = discover(MessageType::Request, b"PXEClient", Some(0), None, &[]);
        assert_eq!(
            answer(&request_on_67, &server(), false).unwrap_err(),
            Ignored::NotARequest
        );
        let arm = discover(MessageType::Discover, b"PXEClient", Some(11), None, &[]);
        assert!(matches!(
            answer(&arm, &server(), false),
            Err(Ignored::Unsupported(_))
        ));
        let mut reply = discover(MessageType::Discover, b"PXEClient", Some(0), None, &[]);
        reply[0] = 2;
        assert_eq!(
            answer(&reply, &server(), false).unwrap_err(),
            Ignored::NotARequest
        );
    }

    #[test]
    fn malformed_packets_never_panic() {
        let good = discover(
            MessageType::Discover,
            b"PXEClient:Arch:00000",
            Some(0),
            Some(b"iPXE"),
            &[],
        );
        for cut in 0..good.len() {
            let _ = answer(&good[..cut], &server(), false);
        }
        // hlen beyond the 16-byte chaddr field (dhcproto would panic on it).
        let mut long = good.clone();
        long[2] = 200;
        assert!(matches!(
            answer(&long, &server(), false),
            Err(Ignored::Malformed(_))
        ));
        // Every byte replaced in turn, and option lengths that overflow.
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = answer(&bad, &server(), false);
            }
        }
        let mut overflow = good[..240].to_vec();
        overflow.extend_from_slice(&[60, 250, b'P']);
        assert!(answer(&overflow, &server(), false).is_err());
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let len = (seed % 600) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            for offer in [Offer::Kairos, Offer::Enroller, Offer::Iso] {
                let _ = answer(&junk, &Server { offer, ..server() }, false);
                let _ = answer(&junk, &Server { offer, ..server() }, true);
            }
        }
        assert!(!user_class_has_ipxe(b"\xffiPXE"));
        // A classless-route option with a prefix length over 32 (dhcproto
        // unwraps it) is dropped before decoding.
        let mut routes = good[..good.len() - 1].to_vec();
        routes.extend_from_slice(&[121, 5, 200, 10, 0, 0, 1, 255]);
        assert!(answer(&routes, &server(), false).is_ok());
    }
}
