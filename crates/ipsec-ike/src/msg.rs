//! Owned forms of the payloads the state machines read and write.
//!
//! Incoming messages are parsed once with `ipsec-ike-wire` and copied into an
//! [`InMsg`] (IKE messages are small; owning them keeps the state machines free of
//! borrows). Outgoing ones are built as [`Out`] payloads and emitted through the wire
//! reprs.

use alloc::vec::Vec;

use ipsec_core::iana::{TransformType, ATTR_KEY_LENGTH};
use ipsec_core::{IkeSpi, TrafficSelector};
use ipsec_ike_wire::{
    AttrValue, AuthMethod, AuthRepr, CertEncoding, CertRepr, CfgAttrType, CfgType, CpAttr, CpRepr,
    DeleteRepr, EapRepr, IdRepr, IdType, IkeHeaderRepr, KeRepr, NonceRepr, NotifyRepr, NotifyType,
    ParseError, Payload, PayloadIter, PayloadType, ProposalRepr, ProtocolId, SaRepr, TransformAttr,
    TransformRepr, TsRepr, UnknownPayload,
};

use crate::KeId;

/// One transform of a received proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InTransform {
    pub ty: TransformType,
    pub id: u16,
    pub key_len: Option<u16>,
    /// An attribute other than Key Length: RFC 7296 §3.3.6 says to reject the transform.
    pub unknown_attr: bool,
}

/// A received proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InProposal {
    pub num: u8,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub transforms: Vec<InTransform>,
}

/// A received notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InNotify {
    pub ty: NotifyType,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub data: Vec<u8>,
}

/// A received Delete payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InDelete {
    pub protocol: ProtocolId,
    pub spis: Vec<Vec<u8>>,
}

/// The attributes of a CP payload: type and value.
pub(crate) type CfgAttrs = Vec<(CfgAttrType, Vec<u8>)>;

/// The payloads of one message, owned.
#[derive(Clone, Debug, Default)]
pub(crate) struct InMsg {
    pub sa: Option<Vec<InProposal>>,
    pub ke: Option<(KeId, Vec<u8>)>,
    pub nonce: Option<Vec<u8>>,
    pub notifies: Vec<InNotify>,
    /// IDi: type, data, and the whole body (for the AUTH computation).
    pub idi: Option<(IdType, Vec<u8>, Vec<u8>)>,
    pub idr: Option<(IdType, Vec<u8>, Vec<u8>)>,
    pub auth: Option<(AuthMethod, Vec<u8>)>,
    pub tsi: Option<Vec<TrafficSelector>>,
    pub tsr: Option<Vec<TrafficSelector>>,
    pub deletes: Vec<InDelete>,
    /// The body of a Puzzle Solution payload (RFC 8019 §8.2).
    pub ps: Option<Vec<u8>>,
    /// The X.509 certificates (CERT encoding 4) in the order received, at most
    /// [`MAX_CERTS`]; other encodings are skipped.
    pub certs: Vec<Vec<u8>>,
    /// Whether a CERTREQ payload came (RFC 7296 §3.7).
    pub certreq: bool,
    /// The first CP payload (RFC 7296 §3.15): its type and attributes.
    pub cp: Option<(CfgType, CfgAttrs)>,
    /// The EAP message of the first EAP payload (RFC 7296 §3.16).
    pub eap: Option<Vec<u8>>,
}

/// The most CERT payloads of one message we keep: an end-entity certificate and
/// more intermediates than any real chain has.
pub(crate) const MAX_CERTS: usize = 8;

impl InMsg {
    /// Parses a payload chain.
    pub(crate) fn parse(first: PayloadType, chain: &[u8]) -> Result<InMsg, ParseError> {
        let mut m = InMsg::default();
        for raw in PayloadIter::new(first, chain) {
            let raw = raw?;
            let p = Payload::parse(&raw)?;
            match p {
                Payload::Sa(sa) if m.sa.is_none() => {
                    m.sa = Some(sa.proposals.iter().map(in_proposal).collect());
                }
                Payload::Ke(ke) if m.ke.is_none() => m.ke = Some((ke.group, ke.data.to_vec())),
                Payload::Nonce(n) if m.nonce.is_none() => m.nonce = Some(n.data.to_vec()),
                Payload::Notify(n) => {
                    // Bounded by the message length; a hostile peer cannot make it grow
                    // beyond one payload header per four bytes.
                    m.notifies.push(InNotify {
                        ty: n.notify_type,
                        protocol: n.protocol,
                        spi: n.spi.to_vec(),
                        data: n.data.to_vec(),
                    });
                }
                Payload::IdI(id) if m.idi.is_none() => {
                    m.idi = Some((id.id_type, id.data.to_vec(), raw.body.to_vec()));
                }
                Payload::IdR(id) if m.idr.is_none() => {
                    m.idr = Some((id.id_type, id.data.to_vec(), raw.body.to_vec()));
                }
                Payload::Auth(a) if m.auth.is_none() => m.auth = Some((a.method, a.data.to_vec())),
                Payload::TsI(ts) if m.tsi.is_none() => m.tsi = Some(ts.ip_selectors().collect()),
                Payload::TsR(ts) if m.tsr.is_none() => m.tsr = Some(ts.ip_selectors().collect()),
                Payload::Delete(d) => m.deletes.push(InDelete {
                    protocol: d.protocol,
                    spis: d.iter_spis().map(<[u8]>::to_vec).collect(),
                }),
                Payload::Cert(c)
                    if c.encoding == CertEncoding::X509_CERT_SIG && m.certs.len() < MAX_CERTS =>
                {
                    m.certs.push(c.data.to_vec());
                }
                Payload::CertReq(_) => m.certreq = true,
                Payload::Cp(cp) if m.cp.is_none() => {
                    m.cp = Some((
                        cp.cfg_type,
                        cp.attributes
                            .iter()
                            .map(|a| (a.attr_type, a.value.to_vec()))
                            .collect(),
                    ));
                }
                Payload::Eap(e) if m.eap.is_none() => m.eap = Some(e.message.to_vec()),
                Payload::Unknown(u) if u.payload_type == PayloadType::PS && m.ps.is_none() => {
                    m.ps = Some(u.body.to_vec());
                }
                _ => {}
            }
        }
        Ok(m)
    }

    /// The first notification of type `ty`.
    pub(crate) fn notify(&self, ty: NotifyType) -> Option<&InNotify> {
        self.notifies.iter().find(|n| n.ty == ty)
    }

    /// Whether a notification of type `ty` is present.
    pub(crate) fn has(&self, ty: NotifyType) -> bool {
        self.notify(ty).is_some()
    }

    /// The first error notification, if any.
    pub(crate) fn error_notify(&self) -> Option<NotifyType> {
        self.notifies.iter().find(|n| n.ty.is_error()).map(|n| n.ty)
    }
}

fn in_proposal(p: &ProposalRepr<'_>) -> InProposal {
    InProposal {
        num: p.number,
        protocol: p.protocol,
        spi: p.spi.to_vec(),
        transforms: p
            .transforms
            .iter()
            .map(|t| InTransform {
                ty: t.transform_type,
                id: t.id,
                key_len: t.key_length(),
                unknown_attr: t.attributes.iter().any(|a| {
                    a.attr_type != ATTR_KEY_LENGTH || !matches!(a.value, AttrValue::Tv(_))
                }),
            })
            .collect(),
    }
}

/// A proposal to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutProposal {
    pub num: u8,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    /// Type, id, key length attribute.
    pub transforms: Vec<(TransformType, u16, Option<u16>)>,
}

/// A payload to send.
#[derive(Clone, Debug)]
pub(crate) enum Out {
    Sa(Vec<OutProposal>),
    Ke(KeId, Vec<u8>),
    Nonce(Vec<u8>),
    Notify {
        protocol: ProtocolId,
        spi: Vec<u8>,
        ty: NotifyType,
        data: Vec<u8>,
    },
    IdI(IdType, Vec<u8>),
    IdR(IdType, Vec<u8>),
    Auth(AuthMethod, Vec<u8>),
    TsI(Vec<TrafficSelector>),
    TsR(Vec<TrafficSelector>),
    Delete {
        protocol: ProtocolId,
        spi_size: u8,
        spis: Vec<u8>,
    },
    /// A CERT payload: an X.509 certificate (encoding 4), DER.
    Cert(Vec<u8>),
    /// A CERTREQ payload for X.509 certificates: concatenated CA key hashes.
    CertReq(Vec<u8>),
    /// A CP payload (RFC 7296 §3.15): its type and attributes.
    Cp(CfgType, CfgAttrs),
    /// An EAP payload: the EAP message (RFC 7296 §3.16).
    Eap(Vec<u8>),
    /// A payload this crate does not model (a Puzzle Solution), as type and body.
    Raw(PayloadType, Vec<u8>),
}

impl Out {
    /// A notification about no particular SA.
    pub(crate) fn notify(ty: NotifyType, data: &[u8]) -> Out {
        Out::Notify {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            ty,
            data: data.to_vec(),
        }
    }

    /// A Delete of the IKE SA itself (RFC 7296 §3.11: no SPIs).
    pub(crate) fn delete_ike() -> Out {
        Out::Delete {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: Vec::new(),
        }
    }

    /// A Delete of one ESP Child SA, named by the SPI we receive it on.
    pub(crate) fn delete_esp(inbound_spi: ipsec_core::Spi) -> Out {
        Out::Delete {
            protocol: ProtocolId::ESP,
            spi_size: 4,
            spis: inbound_spi.to_be_bytes().to_vec(),
        }
    }

    fn payload(&self) -> Payload<'_> {
        match self {
            Out::Sa(ps) => Payload::Sa(SaRepr {
                proposals: ps
                    .iter()
                    .map(|p| ProposalRepr {
                        number: p.num,
                        protocol: p.protocol,
                        spi: &p.spi,
                        transforms: p
                            .transforms
                            .iter()
                            .map(|&(ty, id, kl)| TransformRepr {
                                transform_type: ty,
                                id,
                                attributes: kl.map(TransformAttr::key_length).into_iter().collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            Out::Ke(g, d) => Payload::Ke(KeRepr { group: *g, data: d }),
            Out::Nonce(n) => Payload::Nonce(NonceRepr { data: n }),
            Out::Notify {
                protocol,
                spi,
                ty,
                data,
            } => Payload::Notify(NotifyRepr {
                protocol: *protocol,
                spi,
                notify_type: *ty,
                data,
            }),
            Out::IdI(t, d) => Payload::IdI(IdRepr::new(*t, d)),
            Out::IdR(t, d) => Payload::IdR(IdRepr::new(*t, d)),
            Out::Auth(m, d) => Payload::Auth(AuthRepr {
                method: *m,
                data: d,
            }),
            Out::TsI(ts) => Payload::TsI(TsRepr::from_selectors(ts)),
            Out::TsR(ts) => Payload::TsR(TsRepr::from_selectors(ts)),
            Out::Delete {
                protocol,
                spi_size,
                spis,
            } => Payload::Delete(DeleteRepr {
                protocol: *protocol,
                spi_size: *spi_size,
                spis,
            }),
            Out::Cert(d) => Payload::Cert(CertRepr {
                encoding: CertEncoding::X509_CERT_SIG,
                data: d,
            }),
            Out::CertReq(d) => Payload::CertReq(CertRepr {
                encoding: CertEncoding::X509_CERT_SIG,
                data: d,
            }),
            Out::Cp(ty, attrs) => Payload::Cp(CpRepr {
                cfg_type: *ty,
                attributes: attrs
                    .iter()
                    .map(|(t, v)| CpAttr {
                        attr_type: *t,
                        value: v,
                    })
                    .collect(),
            }),
            Out::Eap(m) => Payload::Eap(EapRepr { message: m }),
            Out::Raw(ty, body) => Payload::Unknown(UnknownPayload {
                payload_type: *ty,
                critical: false,
                body,
            }),
        }
    }
}

/// The payload reprs of `out`, borrowing from it.
pub(crate) fn payloads(out: &[Out]) -> Vec<Payload<'_>> {
    out.iter().map(Out::payload).collect()
}

/// A plaintext message (IKE_SA_INIT and stateless answers).
pub(crate) fn plain(header: IkeHeaderRepr, out: &[Out]) -> Vec<u8> {
    ipsec_ike_wire::Message {
        header,
        payloads: payloads(out),
    }
    .to_vec()
}

/// The emitted inner chain and its first payload type.
pub(crate) fn chain(out: &[Out]) -> (PayloadType, Vec<u8>) {
    let p = payloads(out);
    let first = p.first().map_or(PayloadType::NONE, Payload::payload_type);
    let len = p
        .iter()
        .fold(0usize, |n, x| n.saturating_add(x.buffer_len()));
    let mut buf = alloc::vec![0u8; len];
    let mut at = 0usize;
    for (i, x) in p.iter().enumerate() {
        let next = p
            .get(i + 1)
            .map_or(PayloadType::NONE, Payload::payload_type);
        let l = x.buffer_len();
        if let Some(slot) = buf.get_mut(at..at + l) {
            x.emit(next, slot);
        }
        at += l;
    }
    (first, buf)
}

/// A header.
pub(crate) fn header(
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    exchange: ipsec_ike_wire::ExchangeType,
    initiator: bool,
    response: bool,
    message_id: u32,
) -> IkeHeaderRepr {
    IkeHeaderRepr {
        spi_i,
        spi_r,
        minor_version: 0,
        exchange_type: exchange,
        flags: ipsec_ike_wire::Flags::new(initiator, response),
        message_id,
    }
}
