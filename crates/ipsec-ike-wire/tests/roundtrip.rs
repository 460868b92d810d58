//! Property tests: `parse(emit(repr)) == repr` for every payload repr and for whole
//! messages, and `emit(parse(bytes)) == bytes` for what `emit` produced.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::iana::{KeId, TransformType};
use ipsec_core::{IkeSpi, IpProto, TrafficSelector};
use ipsec_ike_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..=max).prop_map(leak)
}

fn attr() -> impl Strategy<Value = TransformAttr<'static>> {
    (
        0u16..0x8000,
        prop_oneof![
            any::<u16>().prop_map(AttrValue::Tv),
            bytes(12).prop_map(AttrValue::Tlv)
        ],
    )
        .prop_map(|(attr_type, value)| TransformAttr { attr_type, value })
}

fn transform() -> impl Strategy<Value = TransformRepr<'static>> {
    (any::<u8>(), any::<u16>(), vec(attr(), 0..3)).prop_map(|(t, id, attributes)| TransformRepr {
        transform_type: TransformType(t),
        id,
        attributes,
    })
}

fn sa() -> impl Strategy<Value = SaRepr<'static>> {
    vec(
        (any::<u8>(), any::<u8>(), bytes(8), vec(transform(), 0..6)).prop_map(
            |(number, p, spi, transforms)| ProposalRepr {
                number,
                protocol: ProtocolId(p),
                spi,
                transforms,
            },
        ),
        1..4,
    )
    .prop_map(|proposals| SaRepr { proposals })
}

fn id() -> impl Strategy<Value = IdRepr<'static>> {
    any::<u8>().prop_flat_map(|t| {
        let data = match t {
            1 => vec(any::<u8>(), 4..=4).prop_map(leak).boxed(),
            5 => vec(any::<u8>(), 16..=16).prop_map(leak).boxed(),
            _ => bytes(40).boxed(),
        };
        data.prop_map(move |data| IdRepr {
            id_type: IdType(t),
            data,
        })
    })
}

fn selector() -> impl Strategy<Value = TsEntry<'static>> {
    let v4 = (
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(a, b, p, s, e)| {
            TsEntry::Ip(TrafficSelector {
                start_addr: IpAddr::V4(Ipv4Addr::from(a)),
                end_addr: IpAddr::V4(Ipv4Addr::from(b)),
                protocol: IpProto(p),
                start_port: s,
                end_port: e,
            })
        });
    let v6 = (
        any::<u128>(),
        any::<u128>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(a, b, p, s, e)| {
            TsEntry::Ip(TrafficSelector {
                start_addr: IpAddr::V6(Ipv6Addr::from(a)),
                end_addr: IpAddr::V6(Ipv6Addr::from(b)),
                protocol: IpProto(p),
                start_port: s,
                end_port: e,
            })
        });
    let other = (
        any::<u8>().prop_filter("not an address range", |t| *t != 7 && *t != 8),
        any::<u8>(),
        bytes(20),
    )
        .prop_map(|(t, second_byte, data)| TsEntry::Other {
            ts_type: TsType(t),
            second_byte,
            data,
        });
    prop_oneof![v4, v6, other]
}

fn delete() -> impl Strategy<Value = DeleteRepr<'static>> {
    (any::<u8>(), 0u8..=8, 0usize..6).prop_flat_map(|(p, size, n)| {
        let len = usize::from(size) * n;
        vec(any::<u8>(), len..=len).prop_map(move |spis| DeleteRepr {
            protocol: ProtocolId(p),
            spi_size: size,
            spis: leak(spis),
        })
    })
}

/// Any payload that may appear before the end of a chain.
fn inner_payload() -> impl Strategy<Value = Payload<'static>> {
    prop_oneof![
        sa().prop_map(Payload::Sa),
        (any::<u16>(), bytes(300)).prop_map(|(g, data)| Payload::Ke(KeRepr {
            group: KeId(g),
            data
        })),
        id().prop_map(Payload::IdI),
        id().prop_map(Payload::IdR),
        (any::<u8>(), bytes(60)).prop_map(|(e, data)| Payload::Cert(CertRepr {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(60)).prop_map(|(e, data)| Payload::CertReq(CertRepr {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(60)).prop_map(|(m, data)| Payload::Auth(AuthRepr {
            method: AuthMethod(m),
            data
        })),
        vec(any::<u8>(), 16..=256).prop_map(|d| Payload::Nonce(NonceRepr { data: leak(d) })),
        (any::<u8>(), bytes(16), any::<u16>(), bytes(40)).prop_map(|(p, spi, t, data)| {
            Payload::Notify(NotifyRepr {
                protocol: ProtocolId(p),
                spi,
                notify_type: NotifyType(t),
                data,
            })
        }),
        delete().prop_map(Payload::Delete),
        bytes(40).prop_map(|data| Payload::VendorId(VendorIdRepr { data })),
        vec(selector(), 0..5).prop_map(|selectors| Payload::TsI(TsRepr { selectors })),
        vec(selector(), 0..5).prop_map(|selectors| Payload::TsR(TsRepr { selectors })),
        (any::<u8>(), vec((0u16..0x8000, bytes(20)), 0..5)).prop_map(|(t, attrs)| {
            Payload::Cp(CpRepr {
                cfg_type: CfgType(t),
                attributes: attrs
                    .into_iter()
                    .map(|(a, value)| CpAttr {
                        attr_type: CfgAttrType(a),
                        value,
                    })
                    .collect(),
            })
        }),
        bytes(60).prop_map(|message| Payload::Eap(EapRepr { message })),
        (
            any::<u8>().prop_filter("unknown", |t| *t != 0 && !PayloadType(*t).is_known()),
            bytes(30)
        )
            .prop_map(|(t, body)| Payload::Unknown(UnknownPayload {
                payload_type: PayloadType(t),
                critical: false,
                body,
            })),
    ]
}

/// A payload that must end a chain.
fn last_payload() -> impl Strategy<Value = Payload<'static>> {
    prop_oneof![
        (any::<u8>(), bytes(80)).prop_map(|(t, data)| Payload::Sk(SkRepr {
            first_inner: PayloadType(t),
            data
        })),
        (any::<u8>(), 1u16.., any::<u16>(), bytes(80)).prop_map(|(t, total, n, data)| {
            Payload::Skf(SkfRepr {
                first_inner: PayloadType(t),
                fragment_number: n % total + 1,
                total_fragments: total,
                data,
            })
        }),
    ]
}

fn header() -> impl Strategy<Value = IkeHeaderRepr> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(|(i, r, minor, x, f, id)| IkeHeaderRepr {
            spi_i: IkeSpi(i),
            spi_r: IkeSpi(r),
            minor_version: minor,
            exchange_type: ExchangeType(x),
            flags: Flags(f),
            message_id: id,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_every_payload_repr(p in prop_oneof![inner_payload(), last_payload()]) {
        let mut buf = vec![0xcc; p.buffer_len()];
        p.emit(PayloadType::NONE, &mut buf);
        let raws: Vec<_> = PayloadIter::new(p.payload_type(), &buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(raws.len(), 1);
        let back = Payload::parse(&raws[0]).unwrap();
        prop_assert_eq!(&back, &p);
        // every strict prefix fails
        for n in 0..buf.len() {
            let r: Result<Vec<_>, _> = PayloadIter::new(p.payload_type(), &buf[..n])
                .map(|r| r.and_then(|raw| Payload::parse(&raw)))
                .collect();
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn roundtrip_messages(
        header in header(),
        mut payloads in vec(inner_payload(), 0..6),
        last in proptest::option::of(last_payload()),
    ) {
        payloads.extend(last);
        let m = Message { header, payloads };
        let bytes = m.to_vec();
        prop_assert!(is_canonical(&bytes));
        let back = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_vec(), bytes);
    }

    #[test]
    fn parse_never_panics_and_reemits_canonical(data in vec(any::<u8>(), 0..400)) {
        if let Ok(m) = Message::parse(&data) {
            let again = m.to_vec();
            prop_assert_eq!(Message::parse(&again).unwrap(), m);
            if is_canonical(&data) {
                prop_assert_eq!(again, data);
            }
        }
    }
}
