//! Binding and running the netboot servers until shutdown: ProxyDHCP on 67
//! and 4011, TFTP on 69, HTTP on `netboot_http_port`; and finding the
//! address to advertise (the default route's interface, or configured).

use crate::dhcp::{self, BootFile};
use crate::{Config, Error, http, tftp};
use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The IPv4 address of `interface`, or of the interface holding the
/// default route; returns it with the interface name.
pub fn detect_address(interface: Option<&str>) -> Result<(Ipv4Addr, String), Error> {
    let interface = match interface {
        Some(i) => i.to_string(),
        None => default_route_interface()?,
    };
    let addrs = if_addrs::get_if_addrs()?;
    addrs
        .iter()
        .filter(|a| a.name == interface)
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(ip) => Some(ip),
            _ => None,
        })
        .map(|ip| (ip, interface.clone()))
        .ok_or_else(|| {
            Error::Missing(format!(
                "interface {interface} has no IPv4 address (set netboot.address)"
            ))
        })
}

/// `/proc/net/route`: the interface of the 0.0.0.0/0 route.
fn default_route_interface() -> Result<String, Error> {
    let table = std::fs::read_to_string("/proc/net/route")?;
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[1] == "00000000")
        .map(|f| f[0].to_string())
        .ok_or_else(|| Error::Missing("no default route to pick the netboot address from (set netboot.interface or netboot.address)".into()))
}

/// The interface holding `address`, if any.
pub fn interface_of(address: Ipv4Addr) -> Option<String> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find(|a| a.ip() == std::net::IpAddr::V4(address))
        .map(|a| a.name)
}

fn bind_udp(
    what: &'static str,
    addr: SocketAddrV4,
    device: Option<&str>,
) -> Result<UdpSocket, Error> {
    let bind = |e: std::io::Error| Error::Bind {
        what,
        addr: addr.to_string(),
        hint: match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            std::io::ErrorKind::AddrInUse => {
                " (another server has it: a DHCP/TFTP server on this host? stop it, or set disable_netboot=true)"
            }
            _ => "",
        },
        source: e,
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(bind)?;
    socket.set_reuse_address(true).map_err(bind)?;
    socket.set_broadcast(true).map_err(bind)?;
    socket.set_nonblocking(true).map_err(bind)?;
    if let Some(device) = device {
        socket.bind_device(Some(device.as_bytes())).map_err(bind)?;
    }
    socket.bind(&SocketAddr::V4(addr).into()).map_err(bind)?;
    UdpSocket::from_std(socket.into()).map_err(bind)
}

/// Binds everything (errors come now, not at the first client), then
/// serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let files = tftp::Files::load(&config.ipxe)?;
    for path in [
        &config.artifacts.kernel,
        &config.artifacts.initrd,
        &config.artifacts.squashfs,
        &config.artifacts.config,
    ] {
        if !path.is_file() {
            return Err(Error::Missing(format!(
                "netboot artifact {} is missing",
                path.display()
            )));
        }
    }
    let device = config.interface.as_deref();
    let dhcp_socket = bind_udp(
        "ProxyDHCP",
        SocketAddrV4::new(config.listen, config.dhcp_port),
        device,
    )?;
    let pxe_socket = bind_udp(
        "PXE boot server",
        SocketAddrV4::new(config.listen, config.pxe_port),
        device,
    )?;
    let tftp_addr = SocketAddrV4::new(config.listen, config.tftp_port);
    let tftp_socket = bind_udp("TFTP", tftp_addr, None)?.into_std()?;
    tftp_socket.set_nonblocking(false)?;
    let http_addr = SocketAddrV4::new(config.listen, config.http_port);
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| Error::Bind {
            what: "netboot HTTP",
            addr: http_addr.to_string(),
            hint: if e.kind() == std::io::ErrorKind::AddrInUse {
                " (set netboot_http_port to a free port)"
            } else {
                ""
            },
            source: e,
        })?;

    let tftp_server = async_tftp::server::TftpServerBuilder::with_handler(tftp::Handler {
        files: files.clone(),
    })
    .std_socket(tftp_socket)
    .map_err(|e| Error::Missing(format!("TFTP: {e}")))?
    .build()
    .await
    .map_err(|e| Error::Missing(format!("TFTP: {e}")))?;
    let ipxe_efi = files.get(tftp::EFI_X64).unwrap_or_else(Bytes::new);
    let boot = Arc::new(http::Boot::new(
        config.address,
        config.http_port,
        config.cmdline.as_deref(),
        config.artifacts.clone(),
        ipxe_efi,
    ));
    let server = dhcp::Server {
        address: config.address,
        http_port: config.http_port,
    };
    tracing::info!(
        "netboot: advertising {} (ProxyDHCP :{} and :{}, TFTP :{}, HTTP :{})",
        config.address,
        config.dhcp_port,
        config.pxe_port,
        config.tftp_port,
        config.http_port
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http_task = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(
                http_listener,
                http::router(boot).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let tftp_task = tokio::spawn(async move { tftp_server.serve().await });
    let dhcp_task = tokio::spawn(dhcp_loop(
        dhcp_socket,
        server.clone(),
        false,
        config.dhcp_port,
    ));
    let pxe_task = tokio::spawn(dhcp_loop(pxe_socket, server, true, config.pxe_port));
    shutdown.await;
    tracing::info!("netboot: shutting down");
    let _ = stop_tx.send(true);
    dhcp_task.abort();
    pxe_task.abort();
    tftp_task.abort();
    let _ = http_task.await;
    Ok(())
}

/// Answers DHCP packets until aborted; nothing a client sends can stop it.
async fn dhcp_loop(socket: UdpSocket, server: dhcp::Server, pxe_port: bool, port: u16) {
    let mut buf = vec![0u8; 1500];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("DHCP: receiving on :{port}: {e}");
                continue;
            }
        };
        match dhcp::answer(&buf[..len], &server, pxe_port) {
            Ok(reply) => {
                let file = match &reply.boot {
                    BootFile::Tftp(name) => format!("tftp {name}"),
                    BootFile::Http(url) => url.clone(),
                };
                let to = if pxe_port {
                    from
                } else {
                    SocketAddr::from((Ipv4Addr::BROADCAST, 68))
                };
                if pxe_port {
                    tracing::info!(
                        "PXE: Sending boot file to {} ({:?}: {file})",
                        reply.mac,
                        reply.firmware
                    );
                } else {
                    tracing::info!(
                        "DHCP: Offering to boot {} ({:?}: {file})",
                        reply.mac,
                        reply.firmware
                    );
                }
                if let Err(e) = socket.send_to(&reply.bytes, to).await {
                    tracing::warn!("DHCP: replying to {} via {to}: {e}", reply.mac);
                }
            }
            Err(ignored) => tracing::debug!("DHCP: ignoring a packet from {from}: {ignored}"),
        }
    }
}
