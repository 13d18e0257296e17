//! Any datagram on port 67 or 4011: an answer or an `Ignored`, never a
//! panic; an answer is always a decodable BOOTREPLY without an address.
#![no_main]

use auroraboot_netboot::dhcp::{Offer, Server, answer};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    for offer in [Offer::Kairos, Offer::Enroller, Offer::Iso] {
        let server = Server { address: Ipv4Addr::new(10, 0, 0, 1), http_port: 8090, offer };
        for pxe_port in [false, true] {
            if let Ok(reply) = answer(data, &server, pxe_port) {
                assert!(reply.bytes.len() >= 240);
                assert_eq!(reply.bytes[0], 2, "a BOOTREPLY");
                assert_eq!(&reply.bytes[16..20], &[0, 0, 0, 0], "yiaddr stays empty");
            }
        }
    }
});
