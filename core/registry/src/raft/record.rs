//! The framing of everything the registry writes to disk: `len | crc32 | payload`.
//!
//! A record is an 8-byte header, the payload's length and its CRC-32 (both
//! little-endian `u32`), followed by the payload. The log file is a sequence
//! of records; the snapshot file is a single one. This module only turns
//! bytes into records and back, so it can be tested (and fuzzed) without a
//! file.
//!
//! Reading tells three situations apart:
//!
//! - a complete record whose CRC matches: [`Decoded::Record`];
//! - the end of the buffer falls inside a record (a write cut short by a
//!   crash), or everything left is zero bytes (space the file system
//!   allocated but never got the data for): [`Decoded::Torn`]. This is
//!   ordinary control flow, like mini-redis's `Incomplete`: the caller
//!   truncates the file there;
//! - a complete record whose CRC does not match, or a header that cannot be
//!   right: a [`RecordError`]. That is corruption, and the caller must stop
//!   rather than skip it.
//!
//! A header whose length was damaged so that it points past the end of the
//! file looks like a torn tail; only the last record can be mistaken so,
//! because any earlier one would be followed by bytes that fail its CRC.

/// Bytes before the payload: length and CRC-32.
pub const HEADER_LEN: usize = 8;

/// The largest payload a record may hold; a longer length is corruption.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// Why a record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload's CRC-32 differs from the one in the header.
    #[error("checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    Checksum {
        /// The CRC in the header.
        expected: u32,
        /// The CRC of the payload as read.
        actual: u32,
    },
    /// A zero length followed by data: no writer produces that.
    #[error("a record of length 0 followed by non-zero bytes")]
    ZeroLength,
    /// A length beyond [`MAX_PAYLOAD`].
    #[error("record length {0} exceeds the maximum of {MAX_PAYLOAD}")]
    TooLarge(usize),
}

/// What the front of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, checked record: its payload and the bytes it took.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Header plus payload.
        size: usize,
    },
    /// Nothing: the buffer is empty.
    End,
    /// An incomplete record (or unwritten zero bytes) up to the end.
    Torn,
}

/// Appends one record holding `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    // Payloads are bounded by MAX_PAYLOAD well below u32::MAX; saturate
    // rather than wrap so that an impossible size reads back as corrupt.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads the record at the front of `buf`.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, RecordError> {
    if buf.is_empty() {
        return Ok(Decoded::End);
    }
    if buf.iter().all(|b| *b == 0) {
        return Ok(Decoded::Torn);
    }
    let Some((header, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::Torn);
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let expected = u32::from_le_bytes([c0, c1, c2, c3]);
    if len == 0 {
        return Err(RecordError::ZeroLength);
    }
    if len > MAX_PAYLOAD {
        return Err(RecordError::TooLarge(len));
    }
    let Some(payload) = rest.get(..len) else {
        return Ok(Decoded::Torn);
    };
    let actual = crc32fast::hash(payload);
    if actual != expected {
        return Err(RecordError::Checksum { expected, actual });
    }
    Ok(Decoded::Record {
        payload,
        size: HEADER_LEN + len,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn two_records() -> Vec<u8> {
        let mut buf = Vec::new();
        encode(b"first", &mut buf);
        encode(b"second", &mut buf);
        buf
    }

    #[test]
    fn records_read_back_in_order() {
        let buf = two_records();
        let Decoded::Record { payload, size } = decode(&buf).unwrap() else {
            panic!("expected a record");
        };
        assert_eq!(payload, b"first");
        let Decoded::Record { payload, size: s2 } = decode(&buf[size..]).unwrap() else {
            panic!("expected a record");
        };
        assert_eq!(payload, b"second");
        assert_eq!(decode(&buf[size + s2..]).unwrap(), Decoded::End);
    }

    #[test]
    fn a_cut_short_record_is_torn_at_every_length() {
        let buf = two_records();
        let first = HEADER_LEN + 5;
        for cut in first + 1..buf.len() {
            assert_eq!(
                decode(&buf[first..cut]).unwrap(),
                Decoded::Torn,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn zero_bytes_at_the_end_are_torn() {
        assert_eq!(decode(&[0; 20]).unwrap(), Decoded::Torn);
        assert_eq!(decode(&[0; 3]).unwrap(), Decoded::Torn);
    }

    #[test]
    fn a_flipped_payload_byte_is_corrupt() {
        let mut buf = two_records();
        buf[HEADER_LEN + 2] ^= 0x40;
        assert!(matches!(decode(&buf), Err(RecordError::Checksum { .. })));
    }

    #[test]
    fn impossible_headers_are_corrupt() {
        let mut zero = vec![0; HEADER_LEN];
        zero.push(1);
        assert_eq!(decode(&zero), Err(RecordError::ZeroLength));
        let mut huge = (u32::MAX).to_le_bytes().to_vec();
        huge.extend_from_slice(&[1; 12]);
        assert!(matches!(decode(&huge), Err(RecordError::TooLarge(_))));
    }
}
