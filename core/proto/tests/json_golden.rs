//! Golden JSON fixtures: each example from the Mesos API docs, decoded and
//! written again, must come out byte for byte as a Mesos master writes it.
//!
//! The `.expected` files were produced by our encoder and checked two ways:
//! by hand against Mesos's rules (declaration order, non-deprecated defaults,
//! rapidjson numbers), and by `java_interop.rs`, which derives the same JSON
//! from the descriptors inside Mesos's own Java classes. To re-bless after a
//! deliberate change, run with `PANDO_BLESS=1` and review the diff.
//!
//! Bytes a real Mesos wrote are compared in `mesos_captures.rs`, against
//! the captures in `../shared/fixtures/mesos-1.12/`; these fixtures stay for
//! messages those captures lack (calls with every operation, reserved and
//! refined resources, ranges with legacy roles, the examples of the Mesos
//! scheduler HTTP API docs).

#![allow(clippy::unwrap_used)]

mod fixtures;

#[test]
fn fixtures_encode_exactly_as_mesos() {
    let bless = std::env::var_os("PANDO_BLESS").is_some();
    let mut failures = Vec::new();
    for fixture in fixtures::load_all() {
        let decoded = fixtures::decode(&fixture);
        if bless {
            std::fs::write(&fixture.expected_path, format!("{}\n", decoded.json)).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&fixture.expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.expected_path.display()));
        if decoded.json != expected.trim_end_matches('\n') {
            failures.push(format!(
                "{}:\n  expected {}\n  actual   {}",
                fixture.name,
                expected.trim_end(),
                decoded.json
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "JSON differs from Mesos:\n{}",
        failures.join("\n")
    );
}

#[test]
fn fixtures_round_trip_through_protobuf_and_json() {
    for fixture in fixtures::load_all() {
        let decoded = fixtures::decode(&fixture);
        assert_eq!(
            decoded.json_after_protobuf_round_trip, decoded.json,
            "{}",
            fixture.name
        );
        assert_eq!(
            decoded.json_after_json_round_trip, decoded.json,
            "{}",
            fixture.name
        );
        assert!(!decoded.protobuf.is_empty(), "{}", fixture.name);
    }
}
