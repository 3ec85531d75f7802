//! Decodes arbitrary bytes as Mesos JSON for the scheduler, executor and
//! operator Calls: an error is fine, a panic is not. Whatever decodes must
//! encode again and decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pando_proto::json;
use pando_proto::mesos::v1::{executor, master, scheduler};

fn round_trip<M: prost::Message + prost::Name + Default + PartialEq>(data: &[u8]) {
    if let Ok(message) = json::from_json::<M>(data) {
        let text = json::to_json(&message);
        let again: M = json::from_json(text.as_bytes()).expect("our own JSON decodes");
        assert!(again == message, "JSON round trip changed the message");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<scheduler::Call>(data);
    round_trip::<executor::Call>(data);
    round_trip::<master::Call>(data);
});
