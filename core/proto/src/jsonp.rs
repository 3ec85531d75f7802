//! JSONP: `?jsonp=callback` on Mesos's JSON endpoints.
//!
//! libprocess answers such a request with `callback(<json>)` (no `;`) as
//! `text/javascript`, so that a web UI can read masters and agents across
//! origins. The master's legacy endpoints and the agent's endpoints both
//! wrap their answers through [`wrap`]; each server keeps only the glue
//! that reads the query and sets the headers.
//!
//! Mesos writes the callback back unchecked. Pando takes only names a
//! script could call — ASCII letters and digits, `_`, `$`, `.` and `[` `]`,
//! at most [`MAX_CALLBACK_LEN`] bytes — so a query string cannot inject
//! script into a page; the servers answer plain JSON for any other
//! callback.

/// The `Content-Type` of a JSONP answer.
pub const CONTENT_TYPE: &str = "text/javascript";

/// The longest callback name accepted, in bytes.
pub const MAX_CALLBACK_LEN: usize = 128;

/// Why a callback name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonpError {
    /// `?jsonp=` with nothing after it.
    #[error("the JSONP callback is empty")]
    Empty,
    /// A name longer than [`MAX_CALLBACK_LEN`].
    #[error("the JSONP callback is {len} bytes long; at most {MAX_CALLBACK_LEN} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character a function name cannot hold.
    #[error(
        "the JSONP callback may hold only ASCII letters, digits, '_', '$', '.', '[' and ']'; \
         found {found:?}"
    )]
    Character {
        /// The first character outside that set.
        found: char,
    },
}

/// Checks `callback` and wraps `json` as `callback(json)`.
pub fn wrap(callback: &str, json: &[u8]) -> Result<Vec<u8>, JsonpError> {
    if callback.is_empty() {
        return Err(JsonpError::Empty);
    }
    if callback.len() > MAX_CALLBACK_LEN {
        return Err(JsonpError::TooLong {
            len: callback.len(),
        });
    }
    if let Some(found) = callback
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_$.[]".contains(*c)))
    {
        return Err(JsonpError::Character { found });
    }
    let mut wrapped = Vec::with_capacity(callback.len() + json.len() + 2);
    wrapped.extend_from_slice(callback.as_bytes());
    wrapped.push(b'(');
    wrapped.extend_from_slice(json);
    wrapped.push(b')');
    Ok(wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_that_name_a_function_wrap_the_json() {
        for callback in ["cb", "cb_1", "jQuery1830_17", "$.ui.cb", "callbacks[0]"] {
            assert_eq!(
                wrap(callback, br#"{"a":1}"#),
                Ok(format!(r#"{callback}({{"a":1}})"#).into_bytes()),
                "{callback}"
            );
        }
        let longest = "a".repeat(MAX_CALLBACK_LEN);
        assert!(wrap(&longest, b"{}").is_ok());
    }

    #[test]
    fn other_callbacks_are_refused_with_the_reason() {
        let cases = [
            ("", JsonpError::Empty),
            ("alert(1);cb", JsonpError::Character { found: '(' }),
            ("cb</script>", JsonpError::Character { found: '<' }),
            ("a b", JsonpError::Character { found: ' ' }),
            ("\0", JsonpError::Character { found: '\0' }),
            ("é", JsonpError::Character { found: 'é' }),
        ];
        for (callback, error) in cases {
            assert_eq!(wrap(callback, b"{}"), Err(error), "{callback:?}");
        }
        let long = "a".repeat(5000);
        assert_eq!(wrap(&long, b"{}"), Err(JsonpError::TooLong { len: 5000 }));
        assert_eq!(
            JsonpError::Character { found: '(' }.to_string(),
            "the JSONP callback may hold only ASCII letters, digits, '_', '$', '.', '[' and ']'; \
             found '('"
        );
    }
}
