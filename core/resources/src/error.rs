//! The one error type of this crate: every way a resource can be invalid.
//!
//! Each variant's message names the offending part, so an operator who typed
//! a bad `--resources` flag, or a framework that sent a bad Resource, learns
//! what to fix.

/// Why a resource, a role or a resource expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// A scalar was negative, NaN or infinite.
    #[error("invalid scalar {value}: scalars must be finite and non-negative")]
    InvalidScalar {
        /// The value as given.
        value: String,
    },
    /// A range had its begin after its end.
    #[error("invalid range [{begin}-{end}]: begin is after end")]
    InvertedRange {
        /// Start of the range.
        begin: u64,
        /// End of the range.
        end: u64,
    },
    /// Two ranges of one value overlap.
    #[error("overlapping ranges [{0}] in one value")]
    OverlappingRanges(String),
    /// A role name broke Mesos's rules.
    #[error("invalid role '{role}': {reason}")]
    InvalidRole {
        /// The role as given.
        role: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A reservation stack was not a chain of ever more specific roles.
    #[error("invalid reservation refinement: {0}")]
    InvalidRefinement(String),
    /// A resource expression (flag text or JSON) could not be parsed.
    #[error("invalid resource '{input}': {reason}")]
    Parse {
        /// The part of the input that failed.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// A protobuf Resource could not be turned into a domain resource.
    #[error("invalid Resource '{name}': {reason}")]
    InvalidResource {
        /// The resource's name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// Subtraction would have produced something negative or absent.
    #[error("cannot subtract {0}: not contained")]
    NotContained(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ResourcesError>;
