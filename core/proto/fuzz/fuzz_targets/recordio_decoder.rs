//! Feeds arbitrary bytes, in arbitrary chunks, to the RecordIO decoder: it
//! must return records or an error, never panic, and never hold more than one
//! record's worth of bytes after draining.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pando_proto::recordio::Decoder;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so chunking is fuzzed too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new(LIMIT);
    for piece in rest.chunks(chunk) {
        match decoder.decode(piece) {
            Ok(records) => {
                assert!(records.iter().all(|r| !r.is_empty() && r.len() <= LIMIT));
                assert!(decoder.buffered() <= LIMIT);
            }
            Err(_) => return,
        }
    }
    let _ = decoder.finish();
});
