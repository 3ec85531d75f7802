//! RecordIO: the framing Mesos uses for its event streams.
//!
//! A stream is a sequence of records, each written as its length in ASCII
//! decimal, a line feed, and then exactly that many bytes:
//!
//! ```text
//! 104\n{"type":"SUBSCRIBED",...}20\n{"type":"HEARTBEAT"}
//! ```
//!
//! HTTP chunk boundaries carry no meaning, so the [`Decoder`] is incremental:
//! feed it whatever bytes arrived with [`Decoder::push`], then take complete
//! records with [`Decoder::next_record`] until it returns `Ok(None)`, which
//! means "need more bytes" and is ordinary control flow, not an error.
//!
//! The decoder is built for hostile input. A record may not be larger than
//! the limit given at construction, a length of zero or a length that is not
//! plain decimal digits is an error, and the decoder never buffers more than
//! one record plus its header, so a peer cannot make it allocate without
//! bound.

use bytes::{Buf, Bytes, BytesMut};

/// The largest record a [`Decoder`] accepts unless told otherwise: 16 MiB,
/// far above any Mesos event but small enough to bound memory.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 16 * 1024 * 1024;

/// The most digits a length header may have. Twenty digits cover `u64::MAX`,
/// and anything longer is garbage.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a RecordIO stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The header held something other than ASCII decimal digits.
    #[error("invalid RecordIO length header: byte 0x{byte:02x} at offset {offset} is not a decimal digit")]
    InvalidHeader {
        /// The offending byte.
        byte: u8,
        /// Its position within the header.
        offset: usize,
    },
    /// The header ended (a line feed) before any digit.
    #[error("invalid RecordIO length header: empty length")]
    EmptyHeader,
    /// The header had more digits than any sane length.
    #[error("invalid RecordIO length header: more than {MAX_HEADER_DIGITS} digits")]
    HeaderTooLong,
    /// A record declared a length of zero, which Mesos never sends.
    #[error("invalid RecordIO record: length 0")]
    ZeroLength,
    /// A record declared a length above the decoder's limit.
    #[error("RecordIO record of {length} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// The declared length.
        length: u64,
        /// The decoder's limit.
        limit: usize,
    },
    /// The stream ended in the middle of a header or a record.
    #[error("RecordIO stream ended inside a record ({buffered} bytes pending)")]
    Truncated {
        /// How many bytes were buffered when the stream ended.
        buffered: usize,
    },
}

/// Appends one record (`<length>\n<bytes>`) to `dst`.
pub fn encode(record: &[u8], dst: &mut BytesMut) {
    let mut digits = itoa_buffer();
    let header = format_len(record.len(), &mut digits);
    dst.reserve(header.len() + 1 + record.len());
    dst.extend_from_slice(header);
    dst.extend_from_slice(b"\n");
    dst.extend_from_slice(record);
}

/// Returns one record framed as RecordIO, as a fresh buffer.
pub fn frame(record: &[u8]) -> Bytes {
    let mut dst = BytesMut::with_capacity(record.len() + 12);
    encode(record, &mut dst);
    dst.freeze()
}

fn itoa_buffer() -> [u8; MAX_HEADER_DIGITS] {
    [0; MAX_HEADER_DIGITS]
}

fn format_len(mut n: usize, buf: &mut [u8; MAX_HEADER_DIGITS]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Where the decoder is within the current record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the decimal length; holds the value and digit count so far.
    Header { length: u64, digits: usize },
    /// Waiting for `remaining` more bytes of a record of this length.
    Body { length: usize },
}

/// An incremental RecordIO decoder that survives arbitrary chunking.
#[derive(Debug)]
pub struct Decoder {
    /// Bytes received but not yet returned as records.
    buffer: BytesMut,
    /// Progress through the record at the front of `buffer`.
    state: State,
    /// The largest record accepted.
    max_record_size: usize,
    /// Set once an error was returned: a broken stream stays broken.
    failed: Option<RecordIoError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_SIZE)
    }
}

impl Decoder {
    /// A decoder that rejects records larger than `max_record_size` bytes.
    pub fn new(max_record_size: usize) -> Self {
        Decoder {
            buffer: BytesMut::new(),
            state: State::Header {
                length: 0,
                digits: 0,
            },
            max_record_size,
            failed: None,
        }
    }

    /// Adds bytes that arrived from the stream.
    ///
    /// Bytes are only buffered; call [`Decoder::next_record`] to take
    /// records out. Memory stays bounded because a record's body is only
    /// awaited after its header passed the size check, and callers drain
    /// records between pushes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(chunk);
        }
    }

    /// Returns the next complete record, `Ok(None)` when more bytes are
    /// needed, or the error that broke the stream.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.step() {
            Ok(record) => Ok(record),
            Err(error) => {
                self.failed = Some(error.clone());
                self.buffer.clear();
                Err(error)
            }
        }
    }

    /// Decodes every complete record in `chunk` together with what was
    /// buffered before.
    pub fn decode(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
        self.push(chunk);
        let mut records = Vec::new();
        while let Some(record) = self.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    /// Checks that the stream ended on a record boundary.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let mid_header = matches!(self.state, State::Header { digits, .. } if digits > 0);
        if mid_header || !self.buffer.is_empty() || matches!(self.state, State::Body { .. }) {
            return Err(RecordIoError::Truncated {
                buffered: self.buffer.len(),
            });
        }
        Ok(())
    }

    /// How many bytes are buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn step(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        loop {
            match self.state {
                State::Header { length, digits } => {
                    let Some(&byte) = self.buffer.first() else {
                        return Ok(None);
                    };
                    self.buffer.advance(1);
                    if byte == b'\n' {
                        if digits == 0 {
                            return Err(RecordIoError::EmptyHeader);
                        }
                        if length == 0 {
                            return Err(RecordIoError::ZeroLength);
                        }
                        let length = usize::try_from(length)
                            .ok()
                            .filter(|l| *l <= self.max_record_size)
                            .ok_or(RecordIoError::RecordTooLarge {
                                length,
                                limit: self.max_record_size,
                            })?;
                        self.state = State::Body { length };
                        continue;
                    }
                    if !byte.is_ascii_digit() {
                        return Err(RecordIoError::InvalidHeader {
                            byte,
                            offset: digits,
                        });
                    }
                    if digits == MAX_HEADER_DIGITS {
                        return Err(RecordIoError::HeaderTooLong);
                    }
                    let length = length
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(u64::from(byte - b'0')))
                        .ok_or(RecordIoError::HeaderTooLong)?;
                    // Reject oversized records as soon as the header says so,
                    // before any body bytes are buffered.
                    if length > self.max_record_size as u64 {
                        return Err(RecordIoError::RecordTooLarge {
                            length,
                            limit: self.max_record_size,
                        });
                    }
                    self.state = State::Header {
                        length,
                        digits: digits + 1,
                    };
                }
                State::Body { length } => {
                    if self.buffer.len() < length {
                        self.buffer.reserve(length - self.buffer.len());
                        return Ok(None);
                    }
                    let record = self.buffer.split_to(length).freeze();
                    self.state = State::Header {
                        length: 0,
                        digits: 0,
                    };
                    return Ok(Some(record));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for record in records {
            encode(record, &mut out);
        }
        out.to_vec()
    }

    #[test]
    fn encodes_length_newline_body() {
        assert_eq!(
            &frame(b"{\"type\":\"HEARTBEAT\"}")[..],
            b"20\n{\"type\":\"HEARTBEAT\"}"
        );
        let mut dst = BytesMut::new();
        encode(&[7u8; 1234], &mut dst);
        assert_eq!(&dst[..5], b"1234\n");
        assert_eq!(dst.len(), 1239);
    }

    #[test]
    fn decodes_records_split_across_pushes() {
        let mut decoder = Decoder::default();
        assert_eq!(decoder.decode(b"5\nhel").unwrap(), Vec::<Bytes>::new());
        assert_eq!(
            decoder.decode(b"lo3\nabc1").unwrap(),
            vec![&b"hello"[..], &b"abc"[..]]
        );
        assert!(decoder.finish().is_err());
        assert_eq!(decoder.decode(b"\nz").unwrap(), vec![&b"z"[..]]);
        decoder.finish().unwrap();
    }

    #[test]
    fn rejects_zero_length() {
        let mut decoder = Decoder::default();
        assert_eq!(decoder.decode(b"0\n"), Err(RecordIoError::ZeroLength));
        // A failed stream stays failed.
        assert_eq!(decoder.decode(b"1\na"), Err(RecordIoError::ZeroLength));
    }

    #[test]
    fn rejects_garbage_headers() {
        for (input, expected) in [
            (&b"\n"[..], RecordIoError::EmptyHeader),
            (
                b"12a\n",
                RecordIoError::InvalidHeader {
                    byte: b'a',
                    offset: 2,
                },
            ),
            (
                b"-1\n",
                RecordIoError::InvalidHeader {
                    byte: b'-',
                    offset: 0,
                },
            ),
            (
                b" 1\n",
                RecordIoError::InvalidHeader {
                    byte: b' ',
                    offset: 0,
                },
            ),
            (
                b"{\"type\"",
                RecordIoError::InvalidHeader {
                    byte: b'{',
                    offset: 0,
                },
            ),
        ] {
            assert_eq!(Decoder::default().decode(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn rejects_oversized_records_before_buffering_them() {
        let mut decoder = Decoder::new(10);
        assert_eq!(
            decoder.decode(b"11"),
            Err(RecordIoError::RecordTooLarge {
                length: 11,
                limit: 10
            })
        );
        assert_eq!(decoder.buffered(), 0);
        let mut huge = Decoder::new(usize::MAX);
        assert_eq!(
            huge.decode(b"999999999999999999999999\n"),
            Err(RecordIoError::HeaderTooLong)
        );
    }

    proptest! {
        #[test]
        fn random_chunking_yields_the_same_records(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let bytes = stream(&records);
            let mut positions: Vec<usize> =
                cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            positions.push(0);
            positions.push(bytes.len());
            positions.sort_unstable();
            let mut decoder = Decoder::new(1024);
            let mut decoded = Vec::new();
            for pair in positions.windows(2) {
                decoded.extend(decoder.decode(&bytes[pair[0]..pair[1]]).unwrap());
            }
            decoder.finish().unwrap();
            let decoded: Vec<Vec<u8>> = decoded.iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(decoded, records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = Decoder::new(64);
            match decoder.decode(&input) {
                // Drained: at most one partial record body is left.
                Ok(_) => prop_assert!(decoder.buffered() <= 64),
                // Failed: nothing is kept.
                Err(_) => prop_assert_eq!(decoder.buffered(), 0),
            }
        }
    }
}
