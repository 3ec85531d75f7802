//! Choosing and applying an encoding: JSON or protobuf, as HTTP says.
//!
//! Every Mesos v1 endpoint takes its body as `application/json` or
//! `application/x-protobuf` (the `Content-Type`) and answers in the encoding
//! the `Accept` header asks for. This module turns those header values into a
//! [`ContentType`], and encodes or decodes a typed message in it. It knows
//! nothing of HTTP itself: transports hand over header strings and bytes.
//!
//! Decoding protobuf also enforces proto2 `required` fields, which prost
//! does not: a Mesos master rejects a Call without them, and so do we.

use bytes::Bytes;
use prost_reflect::DynamicMessage;

use crate::json::{self, JsonError};

/// The media type of JSON bodies.
pub const APPLICATION_JSON: &str = "application/json";
/// The media type of protobuf bodies.
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";
/// The media type of RecordIO streams (the agent's streaming calls).
pub const APPLICATION_RECORDIO: &str = "application/recordio";

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The JSON was malformed or did not fit the message.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The protobuf bytes were malformed.
    #[error("failed to parse body into a {message} protobuf: {reason}")]
    Protobuf {
        /// The message type expected.
        message: String,
        /// What the decoder said.
        reason: String,
    },
    /// The protobuf parsed but lacks required fields.
    #[error("missing required fields: {}", .0.join(", "))]
    MissingRequired(Vec<String>),
}

/// The two encodings of Mesos messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/json`, written as Mesos writes it.
    Json,
    /// `application/x-protobuf`, the binary protobuf encoding.
    Protobuf,
}

impl ContentType {
    /// The media type string.
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Json => APPLICATION_JSON,
            ContentType::Protobuf => APPLICATION_PROTOBUF,
        }
    }

    /// Reads a `Content-Type` header value; parameters such as `charset`
    /// are ignored. `None` means the type is not one Mesos accepts (415).
    pub fn from_content_type(value: &str) -> Option<ContentType> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(APPLICATION_JSON) {
            Some(ContentType::Json)
        } else if essence.eq_ignore_ascii_case(APPLICATION_PROTOBUF) {
            Some(ContentType::Protobuf)
        } else {
            None
        }
    }

    /// Picks the response encoding from an `Accept` header, as Mesos does:
    /// JSON if it is acceptable (including a missing header and `*/*`),
    /// else protobuf if that is, else `None` (406 Not Acceptable).
    pub fn negotiate(accept: Option<&str>) -> Option<ContentType> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(ContentType::Json);
        };
        [ContentType::Json, ContentType::Protobuf]
            .into_iter()
            .find(|candidate| accepts(accept, candidate.mime()))
    }

    /// Encodes a message in this encoding.
    pub fn encode<M: prost::Message + prost::Name>(self, message: &M) -> Bytes {
        match self {
            ContentType::Json => Bytes::from(json::to_json(message)),
            ContentType::Protobuf => Bytes::from(message.encode_to_vec()),
        }
    }

    /// Decodes a message from this encoding, rejecting missing required
    /// fields in either encoding.
    pub fn decode<M: prost::Message + prost::Name + Default>(
        self,
        body: &[u8],
    ) -> Result<M, CodecError> {
        match self {
            ContentType::Json => Ok(json::from_json(body)?),
            ContentType::Protobuf => decode_protobuf(body),
        }
    }
}

/// Decodes protobuf bytes, checking proto2 required fields.
pub fn decode_protobuf<M: prost::Message + prost::Name + Default>(
    body: &[u8],
) -> Result<M, CodecError> {
    let protobuf_error = |e: prost::DecodeError| CodecError::Protobuf {
        message: M::full_name(),
        reason: e.to_string(),
    };
    let descriptor = json::descriptor_of::<M>()?;
    let dynamic = DynamicMessage::decode(descriptor, body).map_err(protobuf_error)?;
    let missing = json::missing_required_fields(&dynamic);
    if !missing.is_empty() {
        return Err(CodecError::MissingRequired(missing));
    }
    M::decode(body).map_err(protobuf_error)
}

/// Whether an `Accept` header admits `mime`: the most specific media range
/// that matches it (`type/subtype` over `type/*` over `*/*`) must have a
/// non-zero quality, as RFC 9110 defines.
fn accepts(accept: &str, mime: &str) -> bool {
    let (kind, subtype) = mime.split_once('/').unwrap_or((mime, ""));
    let mut best: Option<(u8, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let quality_zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        let (range_kind, range_sub) = media.split_once('/').unwrap_or((media, ""));
        let specificity =
            if range_kind.eq_ignore_ascii_case(kind) && range_sub.eq_ignore_ascii_case(subtype) {
                3
            } else if range_kind.eq_ignore_ascii_case(kind) && range_sub == "*" {
                2
            } else if range_kind == "*" && range_sub == "*" {
                1
            } else {
                continue;
            };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, !quality_zero));
        }
    }
    best.is_some_and(|(_, acceptable)| acceptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_accept_header() {
        assert_eq!(ContentType::negotiate(None), Some(ContentType::Json));
        assert_eq!(ContentType::negotiate(Some("*/*")), Some(ContentType::Json));
        assert_eq!(
            ContentType::negotiate(Some("application/x-protobuf")),
            Some(ContentType::Protobuf)
        );
        assert_eq!(
            ContentType::negotiate(Some("application/json;q=0, application/*")),
            Some(ContentType::Protobuf)
        );
        assert_eq!(ContentType::negotiate(Some("text/html")), None);
    }

    #[test]
    fn content_type_ignores_parameters() {
        assert_eq!(
            ContentType::from_content_type("application/json; charset=utf-8"),
            Some(ContentType::Json)
        );
        assert_eq!(ContentType::from_content_type("text/plain"), None);
    }
}
