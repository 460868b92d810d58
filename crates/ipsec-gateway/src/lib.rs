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
//! | [`control`] | the control socket (`ipsec status`) and the metrics listener |
//! | [`driver`] | the control plane without I/O: IKE events into SAD installs, policies, routes, acquires |
//! | [`eap`] | EAP-MSCHAPv2 credentials: the responder's password database, the initiator's password |
//! | [`gateway`] | the gateway as a process: driver, data plane, IKE sockets, routes, control and metrics |
//! | [`metrics`] | Prometheus text metrics |
//! | [`pool`] | virtual IP address pools: leases per identity, served to initiators that ask in a configuration payload |

#![forbid(unsafe_code)]

pub mod cluster;
pub mod conf;
pub mod control;
pub mod dataplane;
pub mod driver;
pub mod eap;
pub mod gateway;
pub mod metrics;
pub mod pool;
