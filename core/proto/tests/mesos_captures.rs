//! Goldens from a real Mesos: the bytes a real Apache Mesos 1.12 master
//! wrote (`../shared/fixtures/mesos-1.12/`, see its README for how they were
//! captured), decoded by our codecs and written again, must come out
//! identical. Unlike `json_golden.rs`, whose expected files our own encoder
//! produced, nothing here was written by Pando: a default we write that
//! Mesos does not (or the reverse), a field out of declaration order, or a
//! number laid out differently fails the comparison.
//!
//! - `scheduler_stream.json.recordio`: every event of one JSON scheduler's
//!   stream (SUBSCRIBED, OFFERS with MULTI_ROLE allocation info, UPDATEs
//!   with container status, HEARTBEAT...), record by record.
//! - `scheduler_stream.pb.recordio`: a protobuf scheduler's stream.
//! - `call_subscribe.pb`, `call_decline.pb`: calls encoded by Mesos's 1.4.3
//!   Java classes.
//!
//! The captures live beside the repository (`../shared`). Where they are
//! missing the test says so and passes, except under CI (`CI=true`), where
//! it fails: CI always has them.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use pando_proto::json::{from_json, to_json};
use pando_proto::mesos::v1::scheduler as sched;
use pando_proto::recordio::{Decoder, DEFAULT_MAX_RECORD_SIZE};
use prost::Message;

fn captures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mesos-1.12");
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!("the Mesos 1.12 captures are not at {}", dir.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "under CI this test must run: {why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = Decoder::new(DEFAULT_MAX_RECORD_SIZE);
    let records = decoder.decode(bytes).unwrap();
    decoder.finish().unwrap();
    records.into_iter().map(|r| r.to_vec()).collect()
}

#[test]
fn every_json_event_of_a_real_mesos_stream_is_written_back_byte_for_byte() {
    let Some(dir) = captures() else { return };
    let stream = std::fs::read(dir.join("scheduler_stream.json.recordio")).unwrap();
    let events = records(&stream);
    assert!(events.len() > 5, "the capture holds a whole stream");
    let mut kinds = Vec::new();
    for (i, record) in events.iter().enumerate() {
        let event: sched::Event =
            from_json(record).unwrap_or_else(|e| panic!("event {i} does not decode: {e}"));
        kinds.push(event.r#type());
        let ours = to_json(&event);
        assert_eq!(
            ours,
            String::from_utf8_lossy(record),
            "event {i} ({:?}) is written differently from Mesos",
            event.r#type()
        );
    }
    for kind in [
        sched::event::Type::Subscribed,
        sched::event::Type::Offers,
        sched::event::Type::Update,
        sched::event::Type::Heartbeat,
    ] {
        assert!(kinds.contains(&kind), "the capture has {kind:?}: {kinds:?}");
    }
}

#[test]
fn every_protobuf_event_of_a_real_mesos_stream_is_encoded_back_byte_for_byte() {
    let Some(dir) = captures() else { return };
    let stream = std::fs::read(dir.join("scheduler_stream.pb.recordio")).unwrap();
    let events = records(&stream);
    assert!(!events.is_empty());
    for (i, record) in events.iter().enumerate() {
        let event = sched::Event::decode(record.as_slice())
            .unwrap_or_else(|e| panic!("event {i} does not decode: {e}"));
        assert_eq!(
            event.encode_to_vec(),
            *record,
            "event {i} ({:?}) is encoded differently from Mesos",
            event.r#type()
        );
    }
}

#[test]
fn calls_encoded_by_mesos_java_classes_are_encoded_back_byte_for_byte() {
    let Some(dir) = captures() else { return };
    for name in ["call_subscribe.pb", "call_decline.pb"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let call = sched::Call::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        assert_eq!(call.encode_to_vec(), bytes, "{name}");
        // And through our JSON and back, nothing is lost (defaults come
        // back set, as Mesos writes them, so compare the JSON).
        let json = to_json(&call);
        let again: sched::Call = from_json(json.as_bytes()).unwrap();
        assert_eq!(to_json(&again), json, "{name} through JSON");
        assert!(
            again.encode_to_vec().len() >= bytes.len(),
            "{name}: nothing dropped"
        );
    }
}
