//! `Config::export_ike_keys`: the keys handed out in `Event::IkeSaKeysDerived`
//! decrypt the captured IKE messages of the IKE SA they name, for the first IKE SA
//! and for a rekeyed one; nothing is handed out without the flag, and `Debug` never
//! prints a key.

use ipsec_core::IkeSpi;
use ipsec_ike::{Config, Event, IkeSaKeys, SaHandle, Transmit};
use ipsec_ike_wire::{ExchangeType, IkeHeaderRepr, IkePacket, SkKeys};
use ipsec_test::{config, Pair};

fn exporting(id: &str, ike: &str) -> Config {
    let mut c = config(id).with_ike_proposals(ike).unwrap();
    c.export_ike_keys = true;
    c
}

fn exported(side: &ipsec_test::Side) -> Vec<&IkeSaKeys> {
    side.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::IkeSaKeysDerived { keys } => Some(keys),
            _ => None,
        })
        .collect()
}

/// The SK protection a debugging tool builds from exported keys.
fn sk(k: &IkeSaKeys) -> SkKeys {
    let p = &ipsec_crypto_rustcrypto::PROVIDER;
    match k.integ {
        None => SkKeys::aead(
            p.aead_for(k.encr).unwrap(),
            k.sk_ei.expose(),
            k.sk_er.expose(),
        )
        .unwrap(),
        Some(i) => SkKeys::cipher_integ(
            p.cipher(k.encr.id, k.encr.key_len()).unwrap(),
            p.integ(i.id).unwrap(),
            k.sk_ei.expose(),
            k.sk_ai.expose(),
            k.sk_er.expose(),
            k.sk_ar.expose(),
        )
        .unwrap(),
    }
}

/// The IKE message of a datagram (without the non-ESP marker) and its header.
fn message(t: &Transmit) -> (&[u8], IkeHeaderRepr) {
    let off = if t.local.port() == 4500 || t.remote.port() == 4500 {
        4
    } else {
        0
    };
    let m = &t.payload[off..];
    (m, IkeHeaderRepr::parse(&IkePacket::parse(m).unwrap()))
}

/// Every protected message sent on the IKE SA `(spi_i, spi_r)` opens with `keys`;
/// returns how many there were.
fn opens_all(p: &Pair, keys: &IkeSaKeys) -> usize {
    let sk = sk(keys);
    let mut n = 0;
    for (_, _, t) in &p.sent {
        let (m, h) = message(t);
        if h.spi_i != keys.spi_i || h.spi_r != keys.spi_r {
            continue;
        }
        if h.exchange_type == ExchangeType::IKE_SA_INIT {
            continue;
        }
        let mut copy = m.to_vec();
        let opened = sk.open(&mut copy);
        assert!(opened.is_ok(), "{h:?} does not open: {:?}", opened.err());
        n += 1;
    }
    n
}

fn established_spis(side: &ipsec_test::Side) -> (IkeSpi, IkeSpi) {
    side.events
        .iter()
        .find_map(|(_, e)| match e {
            Event::IkeSaEstablished {
                local_spi,
                remote_spi,
                ..
            } => Some((*local_spi, *remote_spi)),
            _ => None,
        })
        .expect("established")
}

fn run(ike: &str, seed: u64) {
    let mut p = Pair::new(exporting("@a.test", ike), exporting("@b.test", ike), seed);
    let h: SaHandle = p.connect();
    p.drive();
    assert!(p.a.ep.is_established(h));

    // One export per side, before IkeSaEstablished, naming the same IKE SA.
    for side in [&p.a, &p.b] {
        let pos = |f: &dyn Fn(&Event) -> bool| side.events.iter().position(|(_, e)| f(e));
        let k = pos(&|e| matches!(e, Event::IkeSaKeysDerived { .. })).unwrap();
        let est = pos(&|e| matches!(e, Event::IkeSaEstablished { .. })).unwrap();
        assert!(k < est);
    }
    {
        let (a1, b1) = (exported(&p.a), exported(&p.b));
        assert_eq!((a1.len(), b1.len()), (1, 1));
        let (ka, kb) = (a1[0], b1[0]);
        // A initiated: SPIi is its own.
        assert_eq!((ka.spi_i, ka.spi_r), established_spis(&p.a));
        assert_eq!((kb.spi_r, kb.spi_i), established_spis(&p.b));
        assert_eq!((ka.spi_i, ka.spi_r), (kb.spi_i, kb.spi_r));
        assert_eq!(ka.sk_ei.expose(), kb.sk_ei.expose());
        assert_eq!(ka.sk_er.expose(), kb.sk_er.expose());
        assert_eq!(ka.sk_ai.expose(), kb.sk_ai.expose());
        assert_eq!(ka.sk_ar.expose(), kb.sk_ar.expose());
        assert_eq!(ka.encr.keymat_len(), ka.sk_ei.expose().len());
        assert_eq!(ka.integ.map_or(0, |i| i.key_len), ka.sk_ai.expose().len());
        // IKE_AUTH request and response.
        assert_eq!(opens_all(&p, ka), 2);
    }

    // An IKE SA rekey started by B: one more export each, for the new SPIs.
    let bh =
        p.b.events
            .iter()
            .find(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
            .map(|(h, _)| *h)
            .unwrap();
    p.b.ep.rekey_ike_sa(p.now, bh).unwrap();
    p.drive();
    p.a.ep.check_liveness(p.now, h).unwrap();
    p.drive();
    let (a2, b2) = (exported(&p.a), exported(&p.b));
    assert_eq!((a2.len(), b2.len()), (2, 2));
    let (ka, na, nb) = (a2[0], a2[1], b2[1]);
    let rekeyed =
        p.a.events
            .iter()
            .find_map(|(_, e)| match e {
                Event::IkeSaRekeyed {
                    new_local_spi,
                    new_remote_spi,
                    ..
                } => Some((*new_local_spi, *new_remote_spi)),
                _ => None,
            })
            .unwrap();
    // B initiated the rekey, so B's SPI is the new SPIi.
    assert_eq!((na.spi_r, na.spi_i), rekeyed);
    assert_eq!((na.spi_i, na.spi_r), (nb.spi_i, nb.spi_r));
    assert_eq!(na.sk_er.expose(), nb.sk_er.expose());
    assert_ne!(na.sk_ei.expose(), ka.sk_ei.expose());
    // The old IKE SA carried the rekey and its own Delete; the new one the liveness
    // check (request and response).
    assert_eq!(opens_all(&p, ka), 6);
    assert_eq!(opens_all(&p, na), 2);
}

#[test]
fn exported_keys_open_ike_messages_aead() {
    run("aes128gcm16-prfsha256-x25519", 71);
}

#[test]
fn exported_keys_open_ike_messages_cbc() {
    run("aes256-sha384-ecp384", 72);
}

#[test]
fn no_export_without_the_flag() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 73);
    let h = p.connect();
    p.drive();
    p.a.ep.rekey_ike_sa(p.now, h).unwrap();
    p.drive();
    assert!(p.a.ep.is_established(h));
    assert!(exported(&p.a).is_empty() && exported(&p.b).is_empty());
}

#[test]
fn exported_keys_are_redacted_in_debug() {
    let mut p = Pair::new(
        exporting("@a.test", "aes256-sha256-x25519"),
        exporting("@b.test", "aes256-sha256-x25519"),
        74,
    );
    p.connect();
    p.drive();
    let (_, ev) =
        p.a.events
            .iter()
            .find(|(_, e)| matches!(e, Event::IkeSaKeysDerived { .. }))
            .unwrap();
    let Event::IkeSaKeysDerived { keys } = ev else {
        unreachable!()
    };
    let printed = [format!("{ev:?}"), format!("{keys:?}"), format!("{keys:#?}")];
    for k in [&keys.sk_ei, &keys.sk_er, &keys.sk_ai, &keys.sk_ar] {
        let bytes = k.expose();
        assert!(bytes.len() >= 16);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let list = format!("{bytes:?}");
        let head = format!("{}, {}, {}, {}", bytes[0], bytes[1], bytes[2], bytes[3]);
        for s in &printed {
            assert!(
                !s.contains(&hex) && !s.contains(&list) && !s.contains(&head),
                "{s}"
            );
        }
    }
    // What it does print.
    assert!(
        printed[1].contains("aes256") && printed[1].contains("sha256"),
        "{}",
        printed[1]
    );
}
