//! RESERVE, UNRESERVE, CREATE and DESTROY: the four changes of form.
//!
//! Each turns some resources into the same quantities with other metadata
//! (a reservation pushed or popped, a persistent volume made or unmade), so
//! each is a [`ResourceConversion`]: what is consumed and what replaces it.
//! A framework asks for them inside ACCEPT (`offer.rs`, on offered
//! resources); an operator asks with `/api/v1` or `/master/reserve` (on an
//! agent's free resources). Both build their conversions here, so both
//! check the same rules.

use pando_proto::mesos::v1 as pb;
use pando_resources::{Resource, ResourceConversion, Resources};

use super::state::MasterError;

/// Why a RESERVE, UNRESERVE, CREATE or DESTROY is refused, with Mesos's
/// messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    /// The resources do not parse as Mesos resources.
    #[error("{0}")]
    Invalid(String),
    /// No resources were named.
    #[error("No resources specified")]
    NoResources,
    /// No volumes were named.
    #[error("No volumes specified")]
    NoVolumes,
    /// A resource to reserve carries no dynamic reservation.
    #[error("Invalid reservation: resource {0} is not dynamically reserved")]
    NotDynamicallyReserved(String),
    /// The reservation names another principal than the caller's.
    #[error("Reservation principal does not match the authenticated principal '{0}'")]
    PrincipalMismatch(String),
    /// A resource to unreserve carries no dynamic reservation.
    #[error("Resources to unreserve must be dynamically reserved")]
    UnreserveNotDynamic,
    /// A resource named as a volume is not one.
    #[error("Resources must be persistent volumes")]
    NotVolumes,
}

impl From<ReservationError> for MasterError {
    fn from(e: ReservationError) -> MasterError {
        MasterError::BadRequest(e.to_string())
    }
}

/// RESERVE: `resources` carry the new (dynamic) reservation on top of
/// their current ones; what is consumed is the same without it. When a
/// principal authenticated the request, the reservation must name it.
pub fn reserve(
    resources: &[pb::Resource],
    principal: Option<&str>,
) -> Result<ResourceConversion, ReservationError> {
    let converted = parse(resources)?;
    if converted.is_empty() {
        return Err(ReservationError::NoResources);
    }
    for r in &converted {
        if !r.is_dynamically_reserved() {
            return Err(ReservationError::NotDynamicallyReserved(r.to_string()));
        }
        if let (Some(p), Some(res)) = (principal, r.reservations.last()) {
            if res.principal.as_deref().is_some_and(|rp| rp != p) {
                return Err(ReservationError::PrincipalMismatch(p.to_string()));
            }
        }
    }
    let consumed = converted
        .pop_reservation()
        .map_err(|e| ReservationError::Invalid(e.to_string()))?;
    Ok(ResourceConversion {
        consumed,
        converted,
    })
}

/// UNRESERVE: the innermost (dynamic) reservation comes off.
pub fn unreserve(resources: &[pb::Resource]) -> Result<ResourceConversion, ReservationError> {
    let consumed = parse(resources)?;
    if consumed.is_empty() {
        return Err(ReservationError::NoResources);
    }
    if !consumed.iter().all(Resource::is_dynamically_reserved) {
        return Err(ReservationError::UnreserveNotDynamic);
    }
    let converted = consumed
        .pop_reservation()
        .map_err(|e| ReservationError::Invalid(e.to_string()))?;
    Ok(ResourceConversion {
        consumed,
        converted,
    })
}

/// CREATE (`create`) or DESTROY of persistent volumes: reserved disk
/// becomes a volume, or a volume becomes plain reserved disk again.
pub fn volumes(
    volumes: &[pb::Resource],
    create: bool,
) -> Result<ResourceConversion, ReservationError> {
    let vols = parse(volumes)?;
    if vols.is_empty() {
        return Err(ReservationError::NoVolumes);
    }
    if !vols.iter().all(Resource::is_persistent_volume) {
        return Err(ReservationError::NotVolumes);
    }
    let plain = strip_persistence(&vols);
    Ok(if create {
        ResourceConversion {
            consumed: plain,
            converted: vols,
        }
    } else {
        ResourceConversion {
            consumed: vols,
            converted: plain,
        }
    })
}

/// Resources without persistence: the disk the volumes were made of.
pub fn strip_persistence(resources: &Resources) -> Resources {
    resources.iter().map(strip_one).collect()
}

/// One resource without its persistence.
pub fn strip_one(r: &Resource) -> Resource {
    let mut r = r.clone();
    if let Some(disk) = &mut r.disk {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            r.disk = None;
        }
    }
    r
}

/// A conversion with both sides marked as allocated to `role`, as offered
/// resources are.
pub fn allocated_to(conversion: ResourceConversion, role: &str) -> ResourceConversion {
    ResourceConversion {
        consumed: conversion.consumed.unallocate().allocate(role),
        converted: conversion.converted.unallocate().allocate(role),
    }
}

fn parse(list: &[pb::Resource]) -> Result<Resources, ReservationError> {
    Resources::from_proto(list).map_err(|e| ReservationError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pando_resources::{Reservation, Scalar};

    #[test]
    fn reserve_then_unreserve_round_trips() {
        let reserved = Resources::parse("cpus:2")
            .and_then(|r| r.push_reservation(&Reservation::dynamic_for("eng", Some("ops"))))
            .expect("valid");
        let up = reserve(&reserved.to_proto(), Some("ops")).expect("reserve");
        assert_eq!(up.consumed.unreserved().cpus(), Scalar::from_units(2));
        assert_eq!(up.converted, reserved);
        let down = unreserve(&reserved.to_proto()).expect("unreserve");
        assert_eq!(down.converted, up.consumed);
        assert!(reserve(&reserved.to_proto(), Some("mallory")).is_err());
        let plain = Resources::parse("cpus:1").expect("valid");
        assert!(reserve(&plain.to_proto(), None).is_err());
        assert!(unreserve(&plain.to_proto()).is_err());
        assert!(reserve(&[], None).is_err());
    }
}
