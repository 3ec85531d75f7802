//! Scalars: amounts such as `cpus:1.5` or `mem:1024`.
//!
//! Mesos stores scalars as doubles but does all arithmetic in fixed point
//! with three decimal places (`llround(value * 1000)`), so that adding 0.1
//! ten times gives exactly 1 and never 0.9999999. [`Scalar`] keeps the
//! fixed-point integer itself, so arithmetic and comparison are exact.

use std::fmt;

use crate::error::{ResourcesError, Result};

/// A non-negative amount with three decimals, stored as thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scalar(u64);

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// Converts a double as Mesos does: rounded to the nearest thousandth.
    /// NaN, infinities and negative values are rejected.
    pub fn from_f64(value: f64) -> Result<Scalar> {
        if !value.is_finite() || value < 0.0 || value * 1000.0 > u64::MAX as f64 {
            return Err(ResourcesError::InvalidScalar {
                value: value.to_string(),
            });
        }
        Ok(Scalar((value * 1000.0).round() as u64))
    }

    /// A scalar from a whole number of thousandths.
    pub const fn from_millis(millis: u64) -> Scalar {
        Scalar(millis)
    }

    /// The amount in thousandths.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// The amount as a double, for the wire.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - other`, or `None` if that would be negative.
    pub fn checked_sub(self, other: Scalar) -> Option<Scalar> {
        self.0.checked_sub(other.0).map(Scalar)
    }

    /// `self - other`, floored at zero.
    pub fn saturating_sub(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(other.0))
    }

    /// `self + other`, saturating at the largest representable amount.
    pub fn saturating_add(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(other.0))
    }
}

impl std::ops::Add for Scalar {
    type Output = Scalar;
    fn add(self, other: Scalar) -> Scalar {
        self.saturating_add(other)
    }
}

impl std::ops::AddAssign for Scalar {
    fn add_assign(&mut self, other: Scalar) {
        *self = self.saturating_add(other);
    }
}

impl fmt::Display for Scalar {
    /// Prints the shortest decimal form: `1`, `1.5`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = self.0 % 1000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_three_decimals_like_mesos() {
        assert_eq!(Scalar::from_f64(0.1).unwrap().millis(), 100);
        assert_eq!(Scalar::from_f64(0.0005).unwrap().millis(), 1);
        assert_eq!(Scalar::from_f64(0.0004).unwrap().millis(), 0);
        let mut sum = Scalar::ZERO;
        for _ in 0..10 {
            sum += Scalar::from_f64(0.1).unwrap();
        }
        assert_eq!(sum, Scalar::from_f64(1.0).unwrap());
    }

    #[test]
    fn rejects_impossible_values() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, -0.5] {
            assert!(Scalar::from_f64(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_shortest_form() {
        assert_eq!(Scalar::from_f64(1.0).unwrap().to_string(), "1");
        assert_eq!(Scalar::from_f64(1.5).unwrap().to_string(), "1.5");
        assert_eq!(Scalar::from_f64(0.125).unwrap().to_string(), "0.125");
    }
}
