//! Where an endpoint chooses its inbound Child SA SPIs: from its own part of the SPI
//! space (`IkeEndpoint::set_child_spi_space`, so the nodes of an anycast cluster never
//! choose the same one), and never one the embedder's SAD holds already
//! (`IkeEndpoint::set_child_spi_in_use`).

use std::sync::Arc;

use ipsec_core::Spi;
use ipsec_ike::{Event, SpiSpace, SpiSpaceError};
use ipsec_test::{config, Pair};

#[test]
fn spi_spaces_are_checked() {
    assert!(SpiSpace::new(0, 1).is_ok());
    assert!(SpiSpace::new(65_535, 16).is_ok());
    assert_eq!(
        SpiSpace::new(256, 8),
        Err(SpiSpaceError {
            index: 256,
            bits: 8
        })
    );
    assert!(SpiSpace::new(0, 0).is_err());
    assert!(SpiSpace::new(0, 17).is_err());
    let s = SpiSpace::new(0xc8, 8).unwrap();
    assert!(s.contains(Spi(0xc800_0001)));
    assert!(!s.contains(Spi(0xc900_0001)));
}

#[test]
fn inbound_spis_come_from_the_endpoints_space_and_skip_those_in_use() {
    let mut p = Pair::new(config("@a.test"), config("@b.test"), 91);
    let (sa_space, sb_space) = (
        SpiSpace::new(3, 8).unwrap(),
        SpiSpace::new(0xc8, 8).unwrap(),
    );
    p.a.ep.set_child_spi_space(sa_space);
    p.b.ep.set_child_spi_space(sb_space);
    // B's SAD holds SAs it did not negotiate: every SPI with an even last byte.
    p.b.ep
        .set_child_spi_in_use(Arc::new(|spi: Spi| spi.0 & 1 == 0));
    let h = p.connect();
    p.drive();
    p.churn_children(h, 60);
    let inbound = |side: &ipsec_test::Side| -> Vec<Spi> {
        side.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ChildSaInstalled { params, .. } => Some(params.inbound_spi),
                _ => None,
            })
            .collect()
    };
    let (a_in, b_in) = (inbound(&p.a), inbound(&p.b));
    assert!(
        a_in.len() > 20 && b_in.len() > 20,
        "{} {}",
        a_in.len(),
        b_in.len()
    );
    for s in &a_in {
        assert!(sa_space.contains(*s), "A chose {s:?} outside its space");
    }
    for s in &b_in {
        assert!(sb_space.contains(*s), "B chose {s:?} outside its space");
        assert_eq!(s.0 & 1, 1, "B chose {s:?}, which its SAD holds");
    }
    // And each side's outbound SPIs are the other's inbound ones.
    for (_, e) in &p.a.events {
        if let Event::ChildSaInstalled { params, .. } = e {
            assert!(sb_space.contains(params.outbound_spi));
        }
    }
}
