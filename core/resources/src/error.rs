//! The one error type of this crate: every way a resource can be invalid.
//!
//! Resource math is one concept seen from several modules (a bad range is
//! a bad range whether it came from the `--resources` flag, a protobuf
//! message or a RESERVE call), so the modules share this enum rather than
//! wrapping each other's errors. Each variant's message names the offending
//! part, so an operator who typed a bad `--resources` flag, or a framework
//! that sent a bad `Resource`, learns what to fix.

/// Why a resource, a role or a resource expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// A scalar was negative, NaN, infinite or too large.
    #[error("invalid scalar {value}: {reason}")]
    InvalidScalar {
        /// The value as given.
        value: String,
        /// Which rule it broke.
        reason: String,
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
    /// A set listed an item twice.
    #[error("duplicate item '{0}' in a set")]
    DuplicateSetItem(String),
    /// A role name broke Mesos's rules.
    #[error("invalid role '{role}': {reason}")]
    InvalidRole {
        /// The role as given.
        role: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A reservation stack was not a chain of ever more specific roles, or
    /// a reservation could not be added or removed.
    #[error("invalid reservation: {0}")]
    InvalidRefinement(String),
    /// A resource expression (flag text or JSON) could not be parsed.
    #[error("invalid resource '{input}': {reason}")]
    Parse {
        /// The part of the input that failed.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// An `--attributes` entry could not be parsed.
    #[error("invalid attribute '{input}': {reason}")]
    ParseAttribute {
        /// The entry that failed.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// A quantity or limit expression (`cpus:10;mem:4096`) could not be
    /// parsed.
    #[error("invalid quantity '{input}': {reason}")]
    ParseQuantity {
        /// The entry that failed.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// A resource (from protobuf or built in code) broke Mesos's rules.
    #[error("invalid resource '{name}': {reason}")]
    InvalidResource {
        /// The resource's name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// Subtraction would have produced something negative or absent.
    #[error("cannot subtract {0}: not contained")]
    NotContained(String),
    /// A resource with refined reservations cannot be written in the
    /// pre-refinement format that old frameworks understand.
    #[error("cannot downgrade resource '{0}': it has refined reservations")]
    CannotDowngrade(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ResourcesError>;
