//! What a cluster node reads from the network and the store
//! (`ipsec_gateway::cluster`): a forwarded IKE frame (after its seal is opened), the
//! IKE SPIs of a datagram, a sequence-lease record and a Child SA record, on
//! arbitrary bytes. Nothing panics; a frame that decodes encodes back to the same
//! bytes; a lease record that decodes has `next` >= 1 and re-encodes to a record that
//! decodes to itself.
#![no_main]

use ipsec_cluster::LeaseRecord;
use ipsec_gateway::cluster::forward::{ike_spis, Forwarded};
use ipsec_gateway::cluster::records::ChildRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Forwarded::decode(data) {
        assert_eq!(f.encode(), data);
    }
    let _ = ike_spis(4500, data);
    let _ = ike_spis(500, data);
    if let Ok(r) = LeaseRecord::decode(data) {
        assert!(r.next >= 1);
        assert_eq!(LeaseRecord::decode(&r.encode()).expect("re-encoded"), r);
    }
    let _ = serde_json::from_slice::<ChildRecord>(data);
});
