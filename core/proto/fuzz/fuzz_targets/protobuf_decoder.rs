//! Decodes arbitrary bytes as protobuf scheduler Calls and Events, with the
//! required-field check: an error is fine, a panic is not. Whatever decodes
//! must survive the JSON codec both ways.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pando_proto::codec::decode_protobuf;
use pando_proto::json;
use pando_proto::mesos::v1::scheduler;

fn check<M: prost::Message + prost::Name + Default + PartialEq>(data: &[u8]) {
    if let Ok(message) = decode_protobuf::<M>(data) {
        let text = json::to_json(&message);
        let _ = json::from_json::<M>(text.as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    check::<scheduler::Call>(data);
    check::<scheduler::Event>(data);
});
