//! The network side: the NIC this program was booted through, the boot
//! server (from the boot URI or the PXE base code's cached packets), the
//! NIC's IPv4 configuration, and HTTP GETs of bounded size.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use auroraboot_enroller::devpath;
use auroraboot_enroller::server::{self, Packets, Server};
use uefi::Handle;
use uefi::boot::{self, OpenProtocolAttributes, OpenProtocolParams, ScopedProtocol};
use uefi::proto::ProtocolPointer;
use uefi::proto::device_path::{DevicePath, LoadedImageDevicePath};
use uefi::proto::network::http::HttpHelper;
use uefi::proto::network::ip4config2::Ip4Config2;
use uefi::proto::network::pxe::{BaseCode, Packet};
use uefi_raw::protocol::network::http::HttpStatusCode;

/// How this program was booted.
pub struct Boot {
    /// The NIC's handle (the one with the IPv4 and HTTP service bindings).
    pub nic: Handle,
    /// The NIC's device path up to its MAC node.
    pub nic_path: Vec<u8>,
    pub server: Server,
}

/// A protocol on `handle`, shared with the drivers that use it.
fn shared<P: ProtocolPointer + ?Sized>(handle: Handle) -> uefi::Result<ScopedProtocol<P>> {
    // SAFETY: the protocol is used only through the returned scope, while
    // boot services are active.
    unsafe {
        boot::open_protocol::<P>(
            OpenProtocolParams {
                handle,
                agent: boot::image_handle(),
                controller: None,
            },
            OpenProtocolAttributes::GetProtocol,
        )
    }
}

/// The NIC and the boot server of this boot.
pub fn discover() -> Result<Boot, String> {
    let image = shared::<LoadedImageDevicePath>(boot::image_handle())
        .map_err(|e| format!("the firmware gives no device path for this program ({e})"))?;
    let image_path: &DevicePath = &image;
    let nic = boot::locate_device_path::<Ip4Config2>(&mut &*image_path).map_err(|e| {
        format!("this program was not booted through a network interface with IPv4 ({e})")
    })?;
    let nic_dp =
        shared::<DevicePath>(nic).map_err(|e| format!("the NIC has no device path ({e})"))?;
    let nic_path = devpath::nic(nic_dp.as_bytes())
        .ok_or("the NIC's device path has no MAC address node")?
        .to_vec();
    let base_code = boot::locate_device_path::<BaseCode>(&mut &*image_path)
        .ok()
        .and_then(|handle| shared::<BaseCode>(handle).ok());
    let server = choose_server(image_path.as_bytes(), base_code.as_deref())?;
    Ok(Boot {
        nic,
        nic_path,
        server,
    })
}

fn choose_server(image_path: &[u8], base_code: Option<&BaseCode>) -> Result<Server, String> {
    let mode = base_code.map(BaseCode::mode).filter(|m| m.started());
    let packets = mode.map_or_else(Packets::default, |m| Packets {
        ack: m.dhcp_ack_received().then(|| raw(m.dhcp_ack())),
        proxy_offer: m.proxy_offer_received().then(|| raw(m.proxy_offer())),
        pxe_reply: m.pxe_reply_received().then(|| raw(m.pxe_reply())),
    });
    server::choose(devpath::uri(image_path), packets).ok_or_else(|| {
        "no boot server: not HTTP-booted, and the DHCP answers name none (no option 66, no \
         next-server address)"
            .to_string()
    })
}

/// A cached packet's bytes.
fn raw(packet: &Packet) -> &[u8] {
    let bytes: &[u8; 1472] = packet.as_ref();
    bytes
}

/// Brings IPv4 up on the NIC (DHCP, unless it already has an address) and
/// returns the address.
pub fn ifup(nic: Handle) -> Result<String, String> {
    let mut ip4 =
        Ip4Config2::new(nic).map_err(|e| format!("no IPv4 configuration on the NIC ({e})"))?;
    ip4.ifup()
        .map_err(|e| format!("DHCP for IPv4 failed ({e})"))?;
    let info = ip4
        .get_interface_info()
        .map_err(|e| format!("reading the IPv4 address ({e})"))?;
    Ok(info.station_addr.to_string())
}

/// The body of `GET url`, which must answer 200 with a `Content-Length` of
/// at most `max` bytes and deliver all of them.
pub fn get(nic: Handle, url: &str, max: usize) -> Result<Vec<u8>, String> {
    let fail = |what: &str, e: uefi::Error| format!("GET {url}: {what} ({e})");
    let mut http = HttpHelper::new(nic).map_err(|e| fail("no HTTP service on the NIC", e))?;
    http.configure().map_err(|e| fail("configuring HTTP", e))?;
    http.request_get(url)
        .map_err(|e| fail("sending the request", e))?;
    let first = http
        .response_first(true)
        .map_err(|e| fail("reading the response", e))?;
    if first.status != HttpStatusCode::STATUS_200_OK {
        return Err(format!("GET {url}: the server answered {:?}", first.status));
    }
    let length = first
        .headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .ok_or_else(|| format!("GET {url}: the answer has no Content-Length"))?;
    if length > max {
        return Err(format!(
            "GET {url}: {length} bytes, more than the {max} a key file may have"
        ));
    }
    let mut body = first.body;
    while body.len() < length {
        let more = http
            .response_more(&mut body)
            .map_err(|e| format!("GET {url}: the transfer broke off ({e})"))?;
        if more.is_empty() {
            break;
        }
    }
    if body.len() != length {
        return Err(format!("GET {url}: got {} of {length} bytes", body.len()));
    }
    Ok(body)
}
