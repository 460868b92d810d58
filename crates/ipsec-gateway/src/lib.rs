//! A VPN gateway composed of the ipsec-rs layers (docs/gateway.md).
//!
//! The one layer of the workspace that owns I/O: it drives one
//! [`IkeEndpoint`](ipsec::ike::IkeEndpoint) serving many peers, installs each Child SA
//! with its policies into a [`Sad`](ipsec::sad::Sad), and moves packets between a TUN
//! device and the UDP sockets on worker threads.
//!
//! | module | what |
//! | --- | --- |
//! | [`conf`] | the configuration: serde types, and the `swanctl.conf` subset parsed into them |
//! | [`dataplane`] | the TUN device, the ESP-in-UDP socket and the worker threads |
//! | [`driver`] | the control plane without I/O: IKE events into SAD installs, policies, routes, acquires |

#![forbid(unsafe_code)]

pub mod conf;
pub mod dataplane;
pub mod driver;
