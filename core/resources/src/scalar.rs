//! Scalars: amounts such as `cpus:1.5` or `mem:1024`.
//!
//! On the wire a Mesos scalar is a double, but Mesos never does arithmetic
//! or comparison on the double itself: it first converts the value to a
//! fixed-point integer of thousandths (`llround(value * 1000)`), works on
//! that integer, and converts back for output. That is why ten times
//! `0.1` is exactly `1` in Mesos, and why `0.0004` is the same as `0`.
//!
//! [`Scalar`] stores that fixed-point integer, so our arithmetic and
//! comparisons are exact and identical to Mesos's. Doubles enter only
//! through [`Scalar::from_f64`] (which refuses NaN, infinities and negative
//! values) and leave only through [`Scalar::as_f64`].

use std::fmt;

use crate::error::{ResourcesError, Result};

/// A non-negative amount with three decimals, stored as thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scalar(u64);

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// The largest amount a scalar can hold.
    pub const MAX: Scalar = Scalar(u64::MAX);

    /// Converts a double as Mesos does: rounded to the nearest thousandth,
    /// halves away from zero. NaN, infinities and negative values are
    /// rejected; `-0.0` is zero.
    pub fn from_f64(value: f64) -> Result<Scalar> {
        let invalid = |reason: &str| ResourcesError::InvalidScalar {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_nan() {
            return Err(invalid("NaN is not supported"));
        }
        if value.is_infinite() {
            return Err(invalid("infinite values are not supported"));
        }
        if value < 0.0 {
            return Err(invalid("negative values are not supported"));
        }
        let thousandths = (value * 1000.0).round();
        // 2^64 is exactly representable; anything at or above it does not
        // fit in the fixed-point integer.
        if thousandths >= 18_446_744_073_709_551_616.0 {
            return Err(invalid("the value is too large"));
        }
        Ok(Scalar(thousandths as u64))
    }

    /// A scalar from a whole number of thousandths.
    pub const fn from_millis(millis: u64) -> Scalar {
        Scalar(millis)
    }

    /// A scalar holding a whole number, such as a count of ports.
    pub const fn from_units(units: u64) -> Scalar {
        Scalar(units.saturating_mul(1000))
    }

    /// The amount in thousandths.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// The amount as a double, for the wire. Like Mesos, the whole part and
    /// the thousandths are converted separately, so the double printed is
    /// the one Mesos would print.
    pub fn as_f64(self) -> f64 {
        (self.0 / 1000) as f64 + (self.0 % 1000) as f64 / 1000.0
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

    /// `self + other`, saturating at [`Scalar::MAX`].
    pub fn saturating_add(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(other.0))
    }
}

impl TryFrom<f64> for Scalar {
    type Error = ResourcesError;

    fn try_from(value: f64) -> Result<Scalar> {
        Scalar::from_f64(value)
    }
}

impl std::ops::Add for Scalar {
    type Output = Scalar;

    /// Saturating addition; amounts never wrap.
    fn add(self, other: Scalar) -> Scalar {
        self.saturating_add(other)
    }
}

impl std::ops::AddAssign for Scalar {
    fn add_assign(&mut self, other: Scalar) {
        *self = self.saturating_add(other);
    }
}

impl std::iter::Sum for Scalar {
    fn sum<I: Iterator<Item = Scalar>>(iter: I) -> Scalar {
        iter.fold(Scalar::ZERO, Scalar::saturating_add)
    }
}

impl fmt::Display for Scalar {
    /// Prints the shortest exact decimal form: `1`, `1.5`, `0.125`.
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

    fn s(v: f64) -> Scalar {
        Scalar::from_f64(v).unwrap()
    }

    #[test]
    fn rounds_to_three_decimals_like_mesos() {
        assert_eq!(s(0.1).millis(), 100);
        assert_eq!(s(0.0005).millis(), 1, "halves round away from zero");
        assert_eq!(s(0.0004).millis(), 0);
        assert_eq!(s(1.2345).millis(), 1235);
        assert_eq!(s(-0.0), Scalar::ZERO);
    }

    #[test]
    fn arithmetic_is_exact() {
        let mut sum = Scalar::ZERO;
        for _ in 0..10 {
            sum += s(0.1);
        }
        assert_eq!(sum, s(1.0));
        assert_eq!(s(0.3).checked_sub(s(0.1)), Some(s(0.2)));
        assert_eq!(s(0.1).checked_sub(s(0.3)), None);
        assert_eq!(s(0.1).saturating_sub(s(0.3)), Scalar::ZERO);
        assert_eq!(Scalar::MAX + s(1.0), Scalar::MAX);
        assert_eq!([s(1.5), s(2.5)].into_iter().sum::<Scalar>(), s(4.0));
        assert!(s(0.001) > s(0.0004), "comparison happens on thousandths");
    }

    #[test]
    fn rejects_impossible_values() {
        for bad in [-1.0, -0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e17] {
            assert!(Scalar::from_f64(bad).is_err(), "{bad}");
        }
        let error = Scalar::from_f64(-1.0).unwrap_err().to_string();
        assert!(error.contains("negative"), "{error}");
    }

    #[test]
    fn converts_back_like_mesos() {
        assert_eq!(s(0.3).as_f64(), 0.3);
        assert_eq!(s(1.1).as_f64(), 1.1);
        assert_eq!(s(8192.0).as_f64(), 8192.0);
        assert_eq!(Scalar::from_units(3), s(3.0));
    }

    #[test]
    fn prints_shortest_form() {
        assert_eq!(s(1.0).to_string(), "1");
        assert_eq!(s(1.5).to_string(), "1.5");
        assert_eq!(s(0.125).to_string(), "0.125");
        assert_eq!(s(0.05).to_string(), "0.05");
    }
}
