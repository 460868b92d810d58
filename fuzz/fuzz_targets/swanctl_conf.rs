//! The `swanctl.conf` subset (`ipsec_gateway::conf::parse_swanctl`) on arbitrary bytes:
//! nothing panics; an error names the file and a line within the text; a parsed
//! configuration survives a serde JSON round trip unchanged, and converting each of
//! its connections to an `ipsec_ike::Config` either works or fails with an error that
//! names the connection.
#![no_main]

use ipsec_gateway::conf::{parse_swanctl, GatewayConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_swanctl("fuzz.conf", data) {
        Ok(conf) => {
            let json = serde_json::to_string(&conf).expect("serializes");
            let back: GatewayConfig = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, conf);
            for c in &conf.connections {
                if let Err(e) = c.to_ike_config(&conf.secrets) {
                    assert_eq!(e.connection, c.name);
                }
            }
        }
        Err(e) => {
            assert_eq!(e.file, "fuzz.conf");
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(e.line as usize <= lines, "{e}");
            assert!(e.to_string().starts_with("fuzz.conf:"));
        }
    }
});
