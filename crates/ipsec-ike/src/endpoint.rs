//! [`IkeEndpoint`]: many IKE SAs behind one set of UDP sockets.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use ipsec_core::{IkeSpi, Instant};
use ipsec_crypto::CryptoProvider;
use ipsec_ike_wire::{
    error_response, ExchangeType, IkeHeaderRepr, IkePacket, NotifyType, ParseErrorKind, Trust,
    HEADER_LEN,
};

use crate::admission::{Admission, EndpointStats};
use crate::config::{Config, ResolvesPeer};
use crate::error::{ApiMisuse, Error};
use crate::event::{ChildSaId, Event, SaHandle, Transmit};
use crate::msg::InMsg;
use crate::puzzle;
use crate::redirect::{Gateway, Redirect};
use crate::sa::{IkeSa, NewResponder};
use crate::shared::{Path, Shared, SpiInUse, SpiSpace, NON_ESP_MARKER};
use crate::stateless::{self, Stateless};
use crate::trace;

/// A sans-I/O IKEv2 endpoint (RFC 7296): it owns any number of IKE SAs, routes each
/// incoming datagram to its SA by IKE SPI, and answers statelessly where the RFC says
/// so (COOKIE above a half-open threshold, §2.6; INVALID_KE_PAYLOAD, §1.3;
/// INVALID_MAJOR_VERSION, §2.5; NO_PROPOSAL_CHOSEN).
///
/// # Driving contract
///
/// The endpoint never reads a clock, opens a socket or draws randomness of its own:
/// time comes in as `now`, randomness from `provider.secure_random`.
///
/// - **Inputs**: [`handle_datagram`](Self::handle_datagram) for every UDP datagram
///   received on the IKE ports (500 and 4500; on 4500 pass everything, the endpoint
///   ignores ESP and keepalives), [`handle_timeout`](Self::handle_timeout) when the
///   instant from [`poll_timeout`](Self::poll_timeout) is reached (calling it early is
///   harmless).
/// - **Commands**: [`connect`](Self::connect),
///   [`connect_redirected`](Self::connect_redirected), [`redirect`](Self::redirect),
///   [`create_child_sa`](Self::create_child_sa),
///   [`rekey_child_sa`](Self::rekey_child_sa), [`delete_child_sa`](Self::delete_child_sa),
///   [`rekey_ike_sa`](Self::rekey_ike_sa), [`check_liveness`](Self::check_liveness),
///   [`close`](Self::close).
/// - **Outputs**: after any input or command, first drain
///   [`poll_transmit`](Self::poll_transmit) and send each datagram from `local` to
///   `remote` (its payload is the exact UDP payload, with the non-ESP marker on port
///   4500), then read [`poll_timeout`](Self::poll_timeout) and arm one timer for it,
///   then drain [`poll_event`](Self::poll_event) and apply Child SA events to the data
///   plane.
/// - `now` must never go backwards.
///
/// `local` addresses must be the address the datagram really arrived at (not a
/// wildcard): NAT detection hashes it. The endpoint sends from port 4500 once NAT
/// traversal starts, so the caller needs sockets on both 500 and 4500.
pub struct IkeEndpoint {
    /// The endpoint's configuration: endpoint-wide limits, and the default of every
    /// IKE SA (`shared.config` holds the SA's own during calls into an SA).
    config: Arc<Config>,
    shared: Shared,
    sas: BTreeMap<SaHandle, IkeSa>,
    /// Every SA's next timer, ordered by deadline, so `poll_timeout` reads the first
    /// entry and `handle_timeout` visits only the SAs that are due.
    timers: BTreeSet<(Instant, SaHandle)>,
    /// The deadline each SA has in `timers`.
    deadlines: BTreeMap<SaHandle, Instant>,
    /// Responder SAs by (initiator address, initiator SPI), for retransmitted
    /// IKE_SA_INIT requests.
    by_init: BTreeMap<(SocketAddr, IkeSpi), SaHandle>,
    /// The `by_init` key of each responder SA, so removal is one lookup.
    init_keys: BTreeMap<SaHandle, (SocketAddr, IkeSpi)>,
    next_handle: u64,
    /// Cookies, half-open accounting and counters.
    admission: Admission,
    /// The state of the stateless answers (the INVALID_IKE_SPI rate limit).
    stateless: Stateless,
}

impl fmt::Debug for IkeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeEndpoint")
            .field("local_id", &self.config.local_id)
            .field("sas", &self.sas.len())
            .field("transmits", &self.shared.transmits.len())
            .field("events", &self.shared.events.len())
            .finish_non_exhaustive()
    }
}

impl IkeEndpoint {
    /// An endpoint with no SAs. The configuration is taken as it is; prefer
    /// [`IkeEndpoint::with_config`], which checks it first.
    pub fn new(config: Arc<Config>, provider: &'static CryptoProvider) -> Self {
        IkeEndpoint {
            config: Arc::clone(&config),
            shared: Shared {
                config,
                resolver: None,
                provider,
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                spis: BTreeMap::new(),
                child_spis: BTreeSet::new(),
                child_spi_space: None,
                child_spi_in_use: None,
                next_child: 0,
                established: BTreeSet::new(),
                counters: crate::shared::IkeCounters::default(),
            },
            sas: BTreeMap::new(),
            timers: BTreeSet::new(),
            deadlines: BTreeMap::new(),
            by_init: BTreeMap::new(),
            init_keys: BTreeMap::new(),
            next_handle: 0,
            admission: Admission::default(),
            stateless: Stateless::new(),
        }
    }

    /// An endpoint with no SAs, after checking `config` ([`Config::validate`]).
    ///
    /// # Errors
    /// The [`ConfigError`](crate::ConfigError) naming the first field that cannot
    /// work.
    pub fn with_config(
        config: Arc<Config>,
        provider: &'static CryptoProvider,
    ) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        Ok(Self::new(config, provider))
    }

    /// Chooses every new inbound Child SA SPI from `space` (see [`SpiSpace`]: the
    /// nodes of an anycast cluster each take their own part). SPIs already in use are
    /// kept.
    pub fn set_child_spi_space(&mut self, space: SpiSpace) {
        self.shared.child_spi_space = Some(space);
    }

    /// Never chooses an inbound SPI for which `in_use` says true: the embedder's SAD
    /// may hold SAs this endpoint did not negotiate (an anycast cluster's replicas of
    /// other nodes' SAs, or this node's own from before a restart), and two SAs with
    /// one inbound SPI cannot both be installed.
    pub fn set_child_spi_in_use(&mut self, in_use: SpiInUse) {
        self.shared.child_spi_in_use = Some(in_use);
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Sets the resolver that chooses each peer's configuration when its IKE_AUTH
    /// request arrives ([`ResolvesPeer`]); without one, every responder SA uses the
    /// endpoint's configuration. A configuration the resolver returns is not
    /// checked by [`Config::validate`] here: check it when it is built.
    pub fn set_resolver(&mut self, resolver: Arc<dyn ResolvesPeer>) {
        self.shared.resolver = Some(resolver);
    }

    /// The configuration an IKE SA runs with: the endpoint's, the one given to
    /// [`connect_with`](Self::connect_with), or the one the resolver chose. An
    /// embedder that serves several connections tells them apart with
    /// [`Arc::ptr_eq`].
    pub fn sa_config(&self, sa: SaHandle) -> Option<&Arc<Config>> {
        self.sas.get(&sa).map(|s| &s.config)
    }

    /// Runs `f` on SA `h` with the SA's configuration in `shared`, and keeps what the
    /// configuration is afterwards (the IKE_AUTH responder may have resolved
    /// another).
    fn with_sa<R>(
        &mut self,
        h: SaHandle,
        f: impl FnOnce(&mut IkeSa, &mut Shared) -> R,
    ) -> Option<R> {
        let sa = self.sas.get_mut(&h)?;
        self.shared.config = Arc::clone(&sa.config);
        let r = f(sa, &mut self.shared);
        sa.config = core::mem::replace(&mut self.shared.config, Arc::clone(&self.config));
        Some(r)
    }

    fn new_handle(&mut self) -> SaHandle {
        self.next_handle = self.next_handle.wrapping_add(1);
        SaHandle(self.next_handle)
    }

    /// Starts an IKE SA as the initiator: queues the IKE_SA_INIT request from
    /// `local` to `remote` (port 500, or 4500 to start with NAT traversal). The first
    /// Child SA is negotiated in IKE_AUTH with the configured proposals and selectors.
    ///
    /// # Errors
    /// [`ApiMisuse::NoUsableProposal`] when no IKE proposal can be run by the
    /// provider, [`ApiMisuse::AddressFamily`] for mixed families, a crypto error
    /// when the random source fails.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<SaHandle, Error> {
        let config = Arc::clone(&self.config);
        self.connect_with(now, local, remote, config)
    }

    /// As [`connect`](Self::connect), with `config` instead of the endpoint's for
    /// this IKE SA: its identities, PSK, proposals, selectors and timers. The
    /// endpoint-wide limits (half-open caps, cookies, puzzles) stay the endpoint's.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        config: Arc<Config>,
    ) -> Result<SaHandle, Error> {
        self.start(now, local, remote, config, None)
    }

    /// As [`connect_with`](Self::connect_with), to the gateway a [`Redirect`] sent us
    /// to (RFC 5685; `remote` is `redirect.to` resolved, on the IKE port): the
    /// IKE_SA_INIT request names the gateway that redirected us in REDIRECTED_FROM
    /// (§7), and the redirects followed so far count toward
    /// [`Config::max_redirects`] (§9).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_redirected(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        config: Arc<Config>,
        redirect: &Redirect,
    ) -> Result<SaHandle, Error> {
        self.start(now, local, remote, config, Some(redirect))
    }

    /// Sends the client of an established IKE SA to another gateway: an
    /// INFORMATIONAL request with REDIRECT (RFC 5685 §5), then
    /// [`Event::PeerRedirected`]. The client deletes the IKE SA (and connects to
    /// `to`); if it has not after [`Config::half_open_timeout`], we delete it.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`], and
    /// [`ApiMisuse::CannotRedirect`] when the initiator did not announce redirect
    /// support (or we are the initiator), the IKE SA was redirected already, or `to`
    /// is a name that cannot be sent.
    pub fn redirect(&mut self, now: Instant, sa: SaHandle, to: Gateway) -> Result<(), Error> {
        let r = self
            .with_sa(sa, |s, shared| s.redirect_peer(shared, now, to))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    fn start(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        config: Arc<Config>,
        after: Option<&Redirect>,
    ) -> Result<SaHandle, Error> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(ApiMisuse::AddressFamily.into());
        }
        let h = self.new_handle();
        self.shared.config = config;
        let sa = IkeSa::connect(&mut self.shared, h, now, Path { local, remote }, after);
        self.shared.config = Arc::clone(&self.config);
        self.sas.insert(h, sa?);
        self.touched(now, h);
        Ok(h)
    }

    /// A snapshot of the established IKE SA `sa`, for another endpoint (another node of
    /// a cluster) to continue it with [`import_ike_sa`](Self::import_ike_sa): SPIs,
    /// keys, Message IDs, our last response, path, NAT state and Child SAs
    /// ([`IkeSaSnapshot`](crate::IkeSaSnapshot)). Only between exchanges: export again
    /// after every exchange that completes ([`ike_sa_message_ids`](Self::ike_sa_message_ids)
    /// tells when). The SA itself goes on here unchanged.
    ///
    /// # Errors
    /// [`ExportError::UnknownSa`](crate::ExportError::UnknownSa);
    /// [`ExportError::NotEstablished`](crate::ExportError::NotEstablished) while it
    /// is set up or deleted; [`ExportError::Busy`](crate::ExportError::Busy) while a
    /// request of ours is outstanding or queued, a rekey, collision or deferred
    /// exchange is unresolved, or an old IKE SA or Child SA is still on its way out.
    pub fn export_ike_sa(&self, sa: SaHandle) -> Result<crate::IkeSaSnapshot, crate::ExportError> {
        self.sas
            .get(&sa)
            .ok_or(crate::ExportError::UnknownSa)?
            .export()
    }

    /// Our next request's and the peer's next request's Message IDs
    /// (`(next_id, expect_id)`) of the established IKE SA `sa`; `None` if it is
    /// unknown or not established. Cheap: a caller exports when they change.
    pub fn ike_sa_message_ids(&self, sa: SaHandle) -> Option<(u32, u32)> {
        match &self.sas.get(&sa)?.state {
            crate::sa::State::Established(e) => Some((e.current.next_id, e.current.expect_id)),
            _ => None,
        }
    }

    /// Continues here the IKE SA that `snap` holds (taken by
    /// [`export_ike_sa`](Self::export_ike_sa) on another endpoint), under `config`
    /// (the connection: proposals, lifetimes, liveness, rekey times), with its
    /// timers started at `now`: the peer sees the same SPIs, keys and Message IDs,
    /// and a retransmission of its last request gets our cached response. Its Child
    /// SAs are installed with new [`ChildSaId`]s, returned in the order of
    /// `snap.children`, and rekey and expiry timers from `config` as when they are
    /// negotiated; the caller binds them to its data-plane SAs, which it imports
    /// itself. No event is queued.
    ///
    /// # Errors
    /// [`ImportError`](crate::ImportError): a version, transform, key length, SPI,
    /// address or other field that cannot be; an IKE SPI or Child SA inbound SPI in
    /// use here already ([`ImportError::SpiInUse`](crate::ImportError::SpiInUse)).
    /// Nothing is registered then.
    pub fn import_ike_sa(
        &mut self,
        now: Instant,
        snap: &crate::IkeSaSnapshot,
        config: Arc<Config>,
    ) -> Result<(SaHandle, Vec<ChildSaId>), crate::ImportError> {
        let h = self.new_handle();
        self.shared.config = config;
        let r = IkeSa::import(&mut self.shared, h, now, snap);
        self.shared.config = Arc::clone(&self.config);
        let (sa, ids) = r?;
        trace::info!(
            sa = %h,
            local = %snap.local,
            remote = %snap.remote,
            children = ids.len(),
            next_id = snap.next_id,
            expect_id = snap.expect_id,
            "IKE SA imported from a snapshot"
        );
        self.shared.established.insert(h);
        self.sas.insert(h, sa);
        self.touched(now, h);
        Ok((h, ids))
    }

    /// Creates another Child SA with the configured proposals and selectors
    /// (CREATE_CHILD_SA, RFC 7296 §1.3.1). Its id comes back in
    /// [`Event::ChildSaInstalled`] or [`Event::ChildSaFailed`].
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`].
    pub fn create_child_sa(&mut self, now: Instant, sa: SaHandle) -> Result<ChildSaId, Error> {
        let r = self
            .with_sa(sa, |s, shared| s.create_child(shared, now))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Rekeys a Child SA (CREATE_CHILD_SA with REKEY_SA, RFC 7296 §1.3.3); the result
    /// is [`Event::ChildSaRekeyed`].
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::UnknownChildSa`], [`ApiMisuse::NotEstablished`].
    pub fn rekey_child_sa(
        &mut self,
        now: Instant,
        sa: SaHandle,
        child: ChildSaId,
    ) -> Result<(), Error> {
        let r = self
            .with_sa(sa, |s, shared| s.rekey_child(shared, now, child))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Deletes a Child SA (INFORMATIONAL with Delete, RFC 7296 §1.4.1); the result is
    /// [`Event::ChildSaDeleted`].
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::UnknownChildSa`], [`ApiMisuse::NotEstablished`].
    pub fn delete_child_sa(
        &mut self,
        now: Instant,
        sa: SaHandle,
        child: ChildSaId,
    ) -> Result<(), Error> {
        let r = self
            .with_sa(sa, |s, shared| s.delete_child(shared, now, child))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Rekeys the IKE SA (RFC 7296 §2.18); the result is [`Event::IkeSaRekeyed`].
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`].
    pub fn rekey_ike_sa(&mut self, now: Instant, sa: SaHandle) -> Result<(), Error> {
        let r = self
            .with_sa(sa, |s, shared| s.rekey_ike(shared, now))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Sends an empty INFORMATIONAL request (RFC 7296 §1.4); the result is
    /// [`Event::LivenessOk`], or [`Event::IkeSaClosed`] with
    /// [`CloseReason::Timeout`](crate::CloseReason::Timeout) when the peer is gone.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`].
    pub fn check_liveness(&mut self, now: Instant, sa: SaHandle) -> Result<(), Error> {
        let r = self
            .with_sa(sa, |s, shared| s.check_liveness(shared, now))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Our address for IKE SA `sa` changed to `local` (an interface went away, a new
    /// network came up): MOBIKE (RFC 4555 §3.5). As the original initiator of an IKE
    /// SA with MOBIKE, IKE moves to `local` at once (and to port 4500 at the peer,
    /// §3.3) and an INFORMATIONAL with UPDATE_SA_ADDRESSES, NAT detection and COOKIE2
    /// goes out ahead of other queued requests, retransmitted on the new path; its
    /// answer gives [`Event::PathUpdated`], after which the data plane sends ESP from
    /// `local`. Another change while it is in flight sends another update after it.
    /// `local`'s port should be the one the embedder receives IKE on (4500).
    ///
    /// Without MOBIKE, IKE moves to `local`, [`Event::PathUpdated`] comes at once
    /// and a liveness check follows: a peer that sees us behind a NAT follows the
    /// new address (RFC 7296 §2.23); another peer stops answering and the IKE SA
    /// times out.
    ///
    /// Returns whether an UPDATE_SA_ADDRESSES was queued (MOBIKE negotiated).
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`], [`ApiMisuse::NotEstablished`],
    /// [`ApiMisuse::NotOriginalInitiator`] (a MOBIKE responder does not move),
    /// [`ApiMisuse::AddressFamily`] (`local` is of another family than the peer and
    /// the peer announced no additional address of it).
    pub fn update_path(
        &mut self,
        now: Instant,
        sa: SaHandle,
        local: SocketAddr,
    ) -> Result<bool, Error> {
        let r = self
            .with_sa(sa, |s, shared| s.update_path(shared, now, local))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        r
    }

    /// Whether MOBIKE (RFC 4555) was negotiated for IKE SA `sa`: both sides sent
    /// MOBIKE_SUPPORTED in IKE_AUTH.
    pub fn mobike(&self, sa: SaHandle) -> bool {
        self.sas.get(&sa).is_some_and(IkeSa::mobike)
    }

    /// Closes the IKE SA: deletes it with the peer if established (the result is
    /// [`Event::IkeSaClosed`] with `Deleted { by_peer: false }`), or abandons the
    /// handshake.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownSa`].
    pub fn close(&mut self, now: Instant, sa: SaHandle) -> Result<(), Error> {
        self.with_sa(sa, |s, shared| s.close(shared, now))
            .ok_or(Error::ApiMisuse(ApiMisuse::UnknownSa))?;
        self.touched(now, sa);
        Ok(())
    }

    /// The handles of all IKE SAs.
    pub fn sa_handles(&self) -> Vec<SaHandle> {
        self.sas.keys().copied().collect()
    }

    /// Whether the IKE SA is established.
    pub fn is_established(&self, sa: SaHandle) -> bool {
        self.sas.get(&sa).is_some_and(IkeSa::is_established)
    }

    /// The Child SAs of an IKE SA that are installed.
    pub fn child_sas(&self, sa: SaHandle) -> Vec<ChildSaId> {
        self.sas.get(&sa).map(IkeSa::child_ids).unwrap_or_default()
    }

    /// Our and the peer's address of an IKE SA.
    pub fn addresses(&self, sa: SaHandle) -> Option<(SocketAddr, SocketAddr)> {
        self.sas.get(&sa).map(|s| (s.path.local, s.path.remote))
    }

    /// Processes one UDP datagram received at `local` from `remote`. On port 4500
    /// (either end) an IKE message must start with the Non-ESP Marker (RFC 3948
    /// §2.2); anything else there is ESP or a keepalive and is left alone.
    ///
    /// Returns what the datagram was. [`Handled::MarkerMissing`] says that a datagram
    /// on port 4500 looks like an IKE message whose marker was already stripped (as
    /// `ipsec_sad`'s `UdpInbound::Ike` and `ipsec_esp::udp::classify` strip it): such
    /// messages go to [`IkeEndpoint::handle_ike_message`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) -> Handled {
        let path = Path { local, remote };
        if !path.encap() {
            return self.handle_ike_message(now, local, remote, payload);
        }
        match payload.split_first_chunk::<4>() {
            Some((m, rest)) if *m == NON_ESP_MARKER => {
                self.handle_ike_message(now, local, remote, rest)
            }
            // ESP (non-zero SPI) or a NAT keepalive: the data plane's, unless it is
            // shaped like a whole IKE message.
            _ if looks_like_ike(payload) => {
                self.admission.stats.marker_missing += 1;
                trace::debug!(
                    remote = %remote,
                    reason = "marker_missing",
                    "IKE datagram dropped: on port 4500 without the Non-ESP Marker"
                );
                Handled::MarkerMissing
            }
            _ => Handled::NotIke,
        }
    }

    /// Processes one IKE message received at `local` from `remote`, without the
    /// Non-ESP Marker whatever the port: for a data plane that has sorted the
    /// datagrams of port 4500 itself and stripped the marker. Answers on port 4500
    /// carry the marker again.
    pub fn handle_ike_message(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> Handled {
        let path = Path { local, remote };
        let packet = match IkePacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                let major = matches!(e.kind, ParseErrorKind::UnsupportedMajorVersion { .. });
                trace::debug!(
                    remote = %remote,
                    reason = if major { "major_version" } else { "malformed" },
                    error = %e,
                    "IKE datagram dropped"
                );
                if major {
                    stateless::major_version(&mut self.shared, path, bytes, &e);
                }
                return Handled::Ike;
            }
        };
        let h = IkeHeaderRepr::parse(&packet);
        if h.exchange_type == ExchangeType::IKE_SA_INIT
            && !h.flags.is_response()
            && h.flags.is_initiator()
            && h.spi_r.is_zero()
        {
            if h.message_id != 0 || h.spi_i.is_zero() {
                trace::debug!(
                    remote = %remote,
                    reason = "malformed",
                    message_id = h.message_id,
                    spi_i = %h.spi_i,
                    "IKE datagram dropped: IKE_SA_INIT request with a Message ID or a zero SPIi"
                );
                return Handled::Ike;
            }
            if let Some(handle) = self.by_init.get(&(remote, h.spi_i)).copied() {
                self.with_sa(handle, |sa, shared| {
                    sa.handle_datagram(shared, now, path, bytes, &h)
                });
                self.touched(now, handle);
            } else {
                self.new_responder(now, path, bytes, &h);
            }
            return Handled::Ike;
        }
        let ours = if h.flags.is_initiator() {
            h.spi_r
        } else {
            h.spi_i
        };
        if let Some(handle) = self.shared.spis.get(&ours).copied() {
            self.with_sa(handle, |sa, shared| {
                sa.handle_datagram(shared, now, path, bytes, &h)
            });
            self.touched(now, handle);
            return Handled::Ike;
        }
        self.stateless
            .unknown_spi(&mut self.shared, now, path, &h, packet.next_payload());
        Handled::Ike
    }

    /// A new IKE_SA_INIT request: size bound, cookie (and puzzle) checks, the
    /// half-open caps, then the SA's own checks.
    fn new_responder(&mut self, now: Instant, path: Path, bytes: &[u8], h: &IkeHeaderRepr) {
        let config = Arc::clone(&self.config);
        if bytes.len() > config.max_init_request_len {
            // Kept whole until IKE_AUTH, so its size is our memory.
            self.admission.stats.init_too_large += 1;
            trace::debug!(
                remote = %path.remote,
                reason = "init_too_large",
                len = bytes.len(),
                max = config.max_init_request_len,
                "IKE_SA_INIT request dropped"
            );
            return;
        }
        let Ok(packet) = IkePacket::parse(bytes) else {
            return;
        };
        let chain = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        let m = match InMsg::parse(packet.next_payload(), chain) {
            Ok(m) => m,
            Err(e) => {
                let r = error_response(bytes, &e, Trust::Unauthenticated);
                trace::debug!(
                    remote = %path.remote,
                    reason = "malformed",
                    error = %e,
                    answer = ?r.notify_type(),
                    "IKE_SA_INIT request dropped"
                );
                if let Some(n) = r.notify_type() {
                    stateless::init_notify(&mut self.shared, path, h, n, r.notify_data());
                }
                return;
            }
        };
        let Some(ni) = m.nonce.clone() else {
            trace::debug!(
                remote = %path.remote,
                reason = "malformed",
                error = "no Nonce payload",
                "IKE_SA_INIT request dropped"
            );
            stateless::init_notify(&mut self.shared, path, h, NotifyType::INVALID_SYNTAX, &[]);
            return;
        };
        let provider = self.shared.provider;
        if self
            .admission
            .rotate_cookies(provider, now, config.cookie_secret_lifetime)
            .is_err()
        {
            trace::warning!(
                remote = %path.remote,
                reason = "random_source",
                "IKE_SA_INIT request dropped: no new cookie secret"
            );
            return;
        }
        let ip = path.remote.ip();
        let half_open = self.admission.half_open();
        let mut verified = false;
        let mut rank = 0;
        if half_open >= config.half_open_cookie_threshold {
            let cookie = m.notify(NotifyType::COOKIE).map(|c| c.data.clone());
            let cookie = cookie.filter(|c| self.admission.cookie_ok(provider, c, &ni, ip, h.spi_i));
            let puzzle = config.puzzle_threshold.is_some_and(|t| half_open >= t);
            let Some(cookie) = cookie else {
                let Some(cookie) = self.admission.make_cookie(provider, &ni, ip, h.spi_i) else {
                    trace::warning!(
                        remote = %path.remote,
                        reason = "cookie_failed",
                        "IKE_SA_INIT request dropped: no cookie could be computed"
                    );
                    return;
                };
                self.admission.stats.cookies_sent += 1;
                trace::debug!(
                    remote = %path.remote,
                    reason = if puzzle { "puzzle_required" } else { "cookie_required" },
                    half_open,
                    "IKE_SA_INIT request answered with a COOKIE (RFC 7296 §2.6), no SA kept"
                );
                if puzzle {
                    self.admission.stats.puzzles_sent += 1;
                    let difficulty = config.puzzle_difficulty;
                    stateless::puzzle(&mut self.shared, path, h, &m, &cookie, difficulty);
                } else {
                    stateless::cookie(&mut self.shared, path, h, &cookie);
                }
                return;
            };
            verified = true;
            rank = 1;
            // A solution where no puzzle is asked for is ignored (RFC 8019 §7.1.4); one
            // short of the difficulty ranks as a bare cookie.
            if puzzle && m.ps.is_some() {
                match puzzle::solved_bits(provider, &m, &cookie) {
                    Some(bits) if bits >= u32::from(config.puzzle_difficulty) => {
                        rank = 1 + bits;
                    }
                    _ => {
                        self.admission.stats.puzzles_failed += 1;
                        trace::debug!(
                            remote = %path.remote,
                            reason = "puzzle_failed",
                            "IKE_SA_INIT puzzle solution missing or too weak: ranked as a cookie"
                        );
                    }
                }
            }
        }
        if verified && self.admission.held_by(ip) >= config.max_half_open_per_source {
            self.admission.stats.refused_per_source += 1;
            trace::debug!(
                remote = %path.remote,
                reason = "half_open_per_source",
                max = config.max_half_open_per_source,
                "IKE_SA_INIT request dropped: the source holds its share of half-open SAs"
            );
            return;
        }
        let full = self.admission.half_open() >= config.max_half_open;
        if full && self.admission.victim(rank).is_none() {
            self.admission.stats.refused_full += 1;
            trace::debug!(
                remote = %path.remote,
                reason = "half_open_full",
                max = config.max_half_open,
                rank,
                "IKE_SA_INIT request dropped: every half-open SA outranks it"
            );
            return;
        }
        let handle = self.new_handle();
        match IkeSa::respond_init(&mut self.shared, handle, now, path, bytes, h, m) {
            NewResponder::Created(sa) => {
                // Displace only for a request that really made an SA, so a refused
                // one (no proposal, bad KE) cannot push out others for free.
                while self.admission.half_open() >= config.max_half_open {
                    let Some(victim) = self.admission.victim(rank) else {
                        break;
                    };
                    self.admission.stats.half_open_evicted += 1;
                    trace::debug!(
                        sa = %victim,
                        reason = "half_open_evicted",
                        "half-open IKE SA displaced by a newer request"
                    );
                    self.forget(victim);
                }
                self.by_init.insert((path.remote, h.spi_i), handle);
                self.init_keys.insert(handle, (path.remote, h.spi_i));
                self.admission.admit(handle, verified.then_some(ip), rank);
                self.sas.insert(handle, *sa);
                self.touched(now, handle);
            }
            NewResponder::Reject(n, data) => {
                trace::debug!(
                    remote = %path.remote,
                    reason = "refused",
                    notify = %n,
                    "IKE_SA_INIT request refused, no SA kept"
                );
                stateless::init_notify(&mut self.shared, path, h, n, &data)
            }
            NewResponder::Drop => trace::warning!(
                remote = %path.remote,
                reason = "crypto",
                "IKE_SA_INIT request dropped: the crypto provider failed"
            ),
        }
    }

    /// Drops IKE SA `sa` here without a word to the peer: no Delete, no events. For
    /// an IKE SA that continues elsewhere: another node of a cluster took it over
    /// ([`import_ike_sa`](Self::import_ike_sa) there), so this endpoint must stop
    /// answering for it and sending on it. Its Child SAs in the data plane are the
    /// embedder's. Returns whether there was such an SA.
    pub fn abandon_ike_sa(&mut self, sa: SaHandle) -> bool {
        if !self.sas.contains_key(&sa) {
            return false;
        }
        self.forget(sa);
        self.shared.established.remove(&sa);
        true
    }

    /// Removes an SA at once, with its SPIs, timer and indexes.
    fn forget(&mut self, h: SaHandle) {
        if let Some(old) = self.deadlines.remove(&h) {
            self.timers.remove(&(old, h));
        }
        if let Some(sa) = self.sas.remove(&h) {
            sa.release(&mut self.shared);
        }
        if let Some(key) = self.init_keys.remove(&h) {
            if self.by_init.get(&key) == Some(&h) {
                self.by_init.remove(&key);
            }
        }
        self.admission.settle(h);
    }

    /// Fires expired timers: retransmissions, rekeys, liveness checks, expiries.
    /// Visits only the SAs whose timer is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Everything due now, taken out first: an SA whose handling leaves a timer
        // that is due again is visited on the next call, not in a loop here.
        let mut due = Vec::new();
        while let Some(&(t, h)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            self.deadlines.remove(&h);
            due.push(h);
        }
        for h in due {
            self.with_sa(h, |sa, shared| sa.handle_timeout(shared, now));
            self.touched(now, h);
        }
    }

    /// After `h` handled an input, command or timer: forgets it if it is gone (with
    /// its SPIs), or files its next timer. Only `h` can have changed: other SAs
    /// change only through their own inputs and timers.
    fn touched(&mut self, now: Instant, h: SaHandle) {
        if let Some(old) = self.deadlines.remove(&h) {
            self.timers.remove(&(old, h));
        }
        let Some(sa) = self.sas.get(&h) else {
            self.forget(h);
            return;
        };
        if sa.is_gone(now) {
            self.forget(h);
            return;
        }
        if !sa.is_half_open() {
            self.admission.settle(h);
        }
        if let Some(t) = sa.poll_timeout() {
            self.timers.insert((t, h));
            self.deadlines.insert(h, t);
        }
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next (`None`: no
    /// timer; wait for datagrams and commands).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.timers.first().map(|(t, _)| *t);
        // Debug builds cross-check the index against a full scan while it is cheap.
        debug_assert!(
            self.sas.len() > 256 || next == self.sas.values().filter_map(IkeSa::poll_timeout).min(),
            "timer index out of date"
        );
        next
    }

    /// What the endpoint holds now and the admission counters so far. O(1).
    #[must_use]
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            ike_sas: self.sas.len(),
            ike_spis: self.shared.spis.len(),
            child_spis: self.shared.child_spis.len(),
            timers: self.timers.len(),
            queued_transmits: self.shared.transmits.len(),
            queued_events: self.shared.events.len(),
            ike: self.shared.counters,
            ..self.admission.stats
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(SaHandle, Event)> {
        self.shared.events.pop_front()
    }
}

/// What [`IkeEndpoint::handle_datagram`] found in a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// An IKE message (or something that was meant to be one): processed, or
    /// dropped by the IKE rules (malformed, unknown SPI, a replay...).
    Ike,
    /// Not IKE: on port 4500, an ESP packet or a NAT keepalive, for the data plane.
    NotIke,
    /// On port 4500 without the Non-ESP Marker, but shaped like a whole IKE message:
    /// the marker was most likely stripped before the call. Not processed; use
    /// [`IkeEndpoint::handle_ike_message`] for marker-stripped messages. Counted in
    /// [`EndpointStats::marker_missing`](crate::EndpointStats::marker_missing).
    MarkerMissing,
}

/// Whether a datagram without the Non-ESP Marker is shaped like a whole IKEv2
/// message: at least a header, version 2.x in the version octet, and a length field
/// equal to the datagram's length. An ESP packet matches by chance with a
/// probability of about 2^-20 per packet (one octet of ciphertext, four of length);
/// the cost of a false match is only that counter.
fn looks_like_ike(d: &[u8]) -> bool {
    let (Some(&version), Some(len)) = (d.get(17), d.get(24..28)) else {
        return false;
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    d.len() >= HEADER_LEN && version >> 4 == 2 && usize::try_from(len).ok() == Some(d.len())
}
