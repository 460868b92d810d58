//! `ipsec`: the reference command line of the IPsec workspace.
//!
//! - `ipsec suites`: what is supported, by IANA id and proposal token;
//! - `ipsec proposal STRING`: parse and explain a proposal string;
//! - `ipsec demo`: an IKEv2-negotiated (or manually keyed) ESP-in-UDP tunnel between
//!   two loopback sockets, optionally writing a capture and Wireshark key tables;
//! - `ipsec decode`: decrypt and print ESP and IKEv2 from a pcap/pcapng capture with
//!   Wireshark key tables;
//! - `ipsec connect` / `ipsec listen`: an IKEv2 initiator / responder for testing;
//! - `ipsec gateway` / `ipsec status`: the VPN gateway (crate `ipsec-gateway`) from a
//!   `swanctl.conf`, and its IKE SAs and Child SAs;
//! - `ipsec load`: an IKEv2 load generator (many handshakes, a report of their rate
//!   and latency).
//!
//! When stdout is closed early (`| head`), output stops quietly and the exit status is
//! the command's own (0 on success); see module `out`.
#![forbid(unsafe_code)]
// Output goes through `outln!` (module `out`), which does not panic on a closed
// stdout; clippy's `print_stdout` keeps `println!` out.
#![allow(clippy::disallowed_methods)] // the CLI is the one crate that reads clocks

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ipsec_cli::{capture, keyfile};

#[macro_use]
mod out;

mod args;
mod decode;
mod demo;
mod gateway;
mod ikedemo;
mod info;
mod load;
mod packets;
mod peer;
mod tunnel;

/// IPsec toolkit: suites, proposals, an ESP demo and a capture decoder.
#[derive(Parser)]
#[command(name = "ipsec", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Which crypto provider to use.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    /// ring where it has the transform, RustCrypto otherwise (the default).
    Composed,
    /// Pure-Rust RustCrypto only.
    Rustcrypto,
}

impl Backend {
    /// The provider.
    pub fn provider(self) -> &'static ipsec::crypto::CryptoProvider {
        match self {
            Backend::Composed => &ipsec::DEFAULT_PROVIDER,
            Backend::Rustcrypto => ipsec::rustcrypto_provider(),
        }
    }
}

/// Tunnel or transport mode on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// Tunnel mode: the whole inner packet is protected.
    Tunnel,
    /// Transport mode: the payload of the packet is protected.
    Transport,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the supported transforms with their IANA ids and proposal tokens.
    Suites {
        /// Crypto provider to show.
        #[arg(long, value_enum, default_value = "composed")]
        backend: Backend,
    },
    /// Parse a proposal string (strongSwan syntax) and explain it.
    Proposal {
        /// e.g. aes128gcm16-prfsha256-x25519 or aes256-sha384-ecp384 or chacha20poly1305.
        proposal: String,
        /// What the proposal is for; guessed when not given.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Run an IKEv2-negotiated (or, with --manual, manually keyed) ESP-in-UDP tunnel
    /// between two loopback sockets; --pcap and --keys make it decryptable in Wireshark.
    Demo(demo::DemoArgs),
    /// Act as an IKEv2 initiator: negotiate an IKE SA and a Child SA, ping through it,
    /// rekey when asked, delete, and exit 0 only if everything asked for worked.
    Connect(peer::PeerArgs),
    /// Act as an IKEv2 responder: serve the first initiator that authenticates (failed
    /// handshakes are counted, not fatal), answer echo requests through the tunnel, ping
    /// and rekey when asked; exit when its IKE SA is deleted.
    Listen(peer::PeerArgs),
    /// Run a VPN gateway from a swanctl.conf: IKEv2 for many peers, ESP in UDP
    /// through a TUN device, routes for each Child SA; until SIGINT or SIGTERM.
    Gateway(gateway::GatewayArgs),
    /// List the gateway's IKE SAs and Child SAs (as swanctl --list-sas does).
    Status {
        /// The gateway's control socket.
        #[arg(long, value_name = "PATH", default_value = gateway::DEFAULT_CONTROL)]
        control: PathBuf,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run many IKEv2 handshakes (IKE SA and first Child SA) against a responder, at
    /// most --concurrency at once, each with its own identity, and report the rate,
    /// latency percentiles and failures by reason; exit non-zero if any failed.
    Load(load::LoadArgs),
    /// Decrypt and print ESP frames of a pcap or pcapng capture.
    Decode {
        /// Wireshark key table (esp_sa / ikev2_decryption_table) or a directory of them.
        #[arg(long = "keys", value_name = "PATH")]
        keys: Vec<PathBuf>,
        /// One JSON object per frame per line.
        #[arg(long)]
        json: bool,
        /// With --json: leave the decrypted inner packet out.
        #[arg(long, requires = "json")]
        brief: bool,
        /// Open every ESP frame, duplicates and frames far behind too (decryption
        /// without a replay window; for checking a capture's sequence numbers).
        #[arg(long)]
        no_replay_check: bool,
        /// Crypto provider.
        #[arg(long, value_enum, default_value = "composed")]
        backend: Backend,
        /// The capture (pcap or pcapng).
        capture: PathBuf,
    },
}

/// The kind of a proposal on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    /// An IKE SA proposal.
    Ike,
    /// An ESP proposal.
    Esp,
    /// An AH proposal.
    Ah,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        None => demo::run(&demo::DemoArgs::default()),
        Some(Cmd::Suites { backend }) => {
            info::suites(backend.provider());
            Ok(())
        }
        Some(Cmd::Proposal { proposal, kind }) => {
            let kind = kind.map(|k| match k {
                KindArg::Ike => ipsec::crypto::ProposalKind::Ike,
                KindArg::Esp => ipsec::crypto::ProposalKind::Esp,
                KindArg::Ah => ipsec::crypto::ProposalKind::Ah,
            });
            info::proposal(&proposal, kind, &ipsec::DEFAULT_PROVIDER)
        }
        Some(Cmd::Demo(args)) => demo::run(&args),
        Some(Cmd::Connect(args)) => peer::run(&args, true),
        Some(Cmd::Listen(args)) => peer::run(&args, false),
        Some(Cmd::Gateway(args)) => gateway::run(&args),
        Some(Cmd::Status { control, json }) => gateway::status(&control, json),
        Some(Cmd::Load(args)) => load::run(&args),
        Some(Cmd::Decode {
            keys,
            json,
            brief,
            no_replay_check,
            backend,
            capture,
        }) => decode::run(
            &keys,
            &capture,
            decode::DecodeOptions {
                json,
                brief,
                no_replay_check,
            },
            backend.provider(),
        ),
    };
    // A reader that went away (`ipsec decode ... | head -1`) is not a failure.
    match r.and_then(|()| out::finish()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipsec: {e}");
            ExitCode::FAILURE
        }
    }
}
