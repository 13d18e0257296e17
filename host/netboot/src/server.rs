//! Binding and running the netboot servers until shutdown: ProxyDHCP on 67
//! (and 4011 with TFTP on 69 when PXE clients are served), HTTP on the
//! configured port; and finding the address to advertise (the default
//! route's interface, or configured).

use crate::dhcp::{self, BootFile, Offer};
use crate::uki::{self, Stage};
use crate::{Config, Error, Network, UkiConfig, http, tftp};
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

/// Serves Kairos over iPXE (the main command's netboot) until `shutdown`
/// completes.
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
    let net = &config.network;
    let ipxe_efi = files.get(tftp::EFI_X64).unwrap_or_else(Bytes::new);
    let boot = Arc::new(http::Boot::new(
        net.address,
        net.http_port,
        config.cmdline.as_deref(),
        config.artifacts.clone(),
        ipxe_efi,
    ));
    let services = Services {
        offer: Offer::Kairos,
        tftp: Some(files),
        router: http::router(boot),
    };
    serve(net, services, shutdown).await
}

/// Serves `uki-pxe` (the key enroller then the ISO, or the ISO alone) until
/// `shutdown` completes.
pub async fn run_uki(
    config: UkiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if !config.boot.iso.is_file() {
        return Err(Error::Missing(format!(
            "ISO {} is not a file",
            config.boot.iso.display()
        )));
    }
    let (offer, tftp) = match &config.boot.stage {
        Stage::Enroll { enroller, .. } => (
            Offer::Enroller,
            Some(tftp::Files::any_name(enroller.clone())),
        ),
        Stage::IsoOnly => (Offer::Iso, None),
    };
    let services = Services {
        offer,
        tftp,
        router: uki::router(Arc::new(config.boot)),
    };
    serve(&config.network, services, shutdown).await
}

/// What one server instance hands out; PXE (port 4011 and TFTP) only runs
/// when there are TFTP files.
struct Services {
    offer: Offer,
    tftp: Option<tftp::Files>,
    router: axum::Router,
}

/// The bound sockets (errors come at binding, not at the first client).
struct Sockets {
    dhcp: UdpSocket,
    pxe: Option<(UdpSocket, std::net::UdpSocket)>,
    http: tokio::net::TcpListener,
}

async fn bind(net: &Network, pxe: bool) -> Result<Sockets, Error> {
    let device = net.interface.as_deref();
    let dhcp = bind_udp(
        "ProxyDHCP",
        SocketAddrV4::new(net.listen, net.dhcp_port),
        device,
    )?;
    let pxe = if pxe {
        let boot_server = bind_udp(
            "PXE boot server",
            SocketAddrV4::new(net.listen, net.pxe_port),
            device,
        )?;
        let tftp_addr = SocketAddrV4::new(net.listen, net.tftp_port);
        let tftp = bind_udp("TFTP", tftp_addr, None)?.into_std()?;
        tftp.set_nonblocking(false)?;
        Some((boot_server, tftp))
    } else {
        None
    };
    let http_addr = SocketAddrV4::new(net.listen, net.http_port);
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| Error::Bind {
            what: "netboot HTTP",
            addr: http_addr.to_string(),
            hint: match e.kind() {
                std::io::ErrorKind::AddrInUse => net.http_in_use_hint,
                std::io::ErrorKind::PermissionDenied => {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                }
                _ => "",
            },
            source: e,
        })?;
    Ok(Sockets { dhcp, pxe, http })
}

/// Binds everything, then serves until `shutdown` completes.
async fn serve(
    net: &Network,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let sockets = bind(net, services.tftp.is_some()).await?;
    let server = dhcp::Server {
        address: net.address,
        http_port: net.http_port,
        offer: services.offer,
    };
    let mut tasks = Vec::new();
    if let (Some((pxe_socket, tftp_socket)), Some(files)) = (sockets.pxe, services.tftp) {
        let tftp_server =
            async_tftp::server::TftpServerBuilder::with_handler(tftp::Handler { files })
                .std_socket(tftp_socket)
                .map_err(|e| Error::Missing(format!("TFTP: {e}")))?
                .build()
                .await
                .map_err(|e| Error::Missing(format!("TFTP: {e}")))?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = tftp_server.serve().await {
                tracing::warn!("TFTP: {e}");
            }
        }));
        tasks.push(tokio::spawn(dhcp_loop(
            pxe_socket,
            server.clone(),
            true,
            net.pxe_port,
        )));
        tracing::info!(
            "netboot: advertising {} (ProxyDHCP :{} and :{}, TFTP :{}, HTTP :{})",
            net.address,
            net.dhcp_port,
            net.pxe_port,
            net.tftp_port,
            net.http_port
        );
    } else {
        tracing::info!(
            "netboot: advertising {} (ProxyDHCP :{}, HTTP :{})",
            net.address,
            net.dhcp_port,
            net.http_port
        );
    }
    tasks.push(tokio::spawn(dhcp_loop(
        sockets.dhcp,
        server,
        false,
        net.dhcp_port,
    )));

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let http_task = tokio::spawn(async move {
        axum::serve(
            sockets.http,
            services
                .router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        })
        .await
    });
    shutdown.await;
    tracing::info!("netboot: shutting down");
    let _ = stop_tx.send(true);
    for task in tasks {
        task.abort();
    }
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
