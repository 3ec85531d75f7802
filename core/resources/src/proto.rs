//! Conversions between domain resources and the Mesos `Resource` protobuf.
//!
//! Reading validates everything a framework or agent could get wrong
//! (missing values, negative or NaN scalars, inverted or overlapping ranges,
//! bad roles, broken refinement) and returns a typed error instead.
//!
//! Mesos has two reservation formats. The *pre-refinement* one uses the
//! deprecated `role` field plus an optional `reservation`; the *post*
//! one a `reservations` stack. Reading accepts both (as Mesos's
//! `convertResourceFormat` does); writing always uses the stack, which is
//! what Mesos 1.11 sends to frameworks with the RESERVATION_REFINEMENT
//! capability. [`to_pre_refinement`] produces the old format for those
//! without it.

// This module is where the deprecated pre-refinement fields (`role`,
// `reservation`) are read and written on purpose, for old frameworks.
#![allow(deprecated)]

use std::collections::BTreeSet;

use pando_proto::mesos::v1 as pb;
use pb::resource::reservation_info::Type as ReservationType;
use pb::value::Type as ValueType;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::resource::{DiskInfo, Reservation, ReservationKind, Resource, Value};
use crate::resources::Resources;
use crate::role;
use crate::scalar::Scalar;

fn invalid(name: &str, reason: impl Into<String>) -> ResourcesError {
    ResourcesError::InvalidResource {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn labels_from(labels: Option<&pb::Labels>) -> Vec<(String, Option<String>)> {
    labels
        .map(|l| {
            l.labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn labels_to(labels: &[(String, Option<String>)]) -> Option<pb::Labels> {
    if labels.is_empty() {
        return None;
    }
    Some(pb::Labels {
        labels: labels
            .iter()
            .map(|(key, value)| pb::Label {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    })
}

/// Writes ranges as a protobuf `Value.Ranges`.
pub fn ranges_to_proto(ranges: &Ranges) -> pb::value::Ranges {
    pb::value::Ranges {
        range: ranges
            .intervals()
            .iter()
            .map(|&(begin, end)| pb::value::Range { begin, end })
            .collect(),
    }
}

/// Reads a protobuf value of the given type.
pub fn value_from_proto(
    name: &str,
    kind: i32,
    scalar: Option<&pb::value::Scalar>,
    ranges: Option<&pb::value::Ranges>,
    set: Option<&pb::value::Set>,
) -> Result<Value> {
    match ValueType::try_from(kind) {
        Ok(ValueType::Scalar) => {
            let s = scalar.ok_or_else(|| invalid(name, "SCALAR resource without 'scalar'"))?;
            Scalar::from_f64(s.value)
                .map(Value::Scalar)
                .map_err(|e| invalid(name, e.to_string()))
        }
        Ok(ValueType::Ranges) => {
            let r = ranges.ok_or_else(|| invalid(name, "RANGES resource without 'ranges'"))?;
            Ranges::from_intervals_strict(r.range.iter().map(|r| (r.begin, r.end)))
                .map(Value::Ranges)
                .map_err(|e| invalid(name, e.to_string()))
        }
        Ok(ValueType::Set) => {
            let s = set.ok_or_else(|| invalid(name, "SET resource without 'set'"))?;
            Ok(Value::Set(s.item.iter().cloned().collect::<BTreeSet<_>>()))
        }
        Ok(ValueType::Text) | Err(_) => {
            Err(invalid(name, format!("unsupported value type {kind}")))
        }
    }
}

fn reservation_from_proto(name: &str, info: &pb::resource::ReservationInfo) -> Result<Reservation> {
    let kind = match info.r#type.map(ReservationType::try_from) {
        Some(Ok(ReservationType::Static)) => ReservationKind::Static,
        Some(Ok(ReservationType::Dynamic)) => ReservationKind::Dynamic,
        _ => {
            return Err(invalid(
                name,
                "reservation without a STATIC or DYNAMIC type",
            ))
        }
    };
    let role = info
        .role
        .clone()
        .ok_or_else(|| invalid(name, "reservation without a role"))?;
    Ok(Reservation {
        kind,
        role,
        principal: info.principal.clone(),
        labels: labels_from(info.labels.as_ref()),
    })
}

impl Resource {
    /// Reads and validates a protobuf `Resource`, in either reservation
    /// format.
    pub fn from_proto(r: &pb::Resource) -> Result<Resource> {
        let name = r.name.as_str();
        if name.is_empty() {
            return Err(invalid(name, "empty resource name"));
        }
        let value = value_from_proto(
            name,
            r.r#type,
            r.scalar.as_ref(),
            r.ranges.as_ref(),
            r.set.as_ref(),
        )?;
        let mut reservations = Vec::new();
        if !r.reservations.is_empty() {
            if r.role
                .as_deref()
                .is_some_and(|role| role != role::UNRESERVED)
                || r.reservation.is_some()
            {
                return Err(invalid(
                    name,
                    "both 'role'/'reservation' and 'reservations' are set",
                ));
            }
            for info in &r.reservations {
                reservations.push(reservation_from_proto(name, info)?);
            }
        } else if let Some(role) = r.role.as_deref().filter(|role| *role != role::UNRESERVED) {
            // Pre-refinement format: `role` plus an optional dynamic `reservation`.
            role::validate(role)?;
            let (kind, principal, labels) = match &r.reservation {
                Some(info) => (
                    ReservationKind::Dynamic,
                    info.principal.clone(),
                    labels_from(info.labels.as_ref()),
                ),
                None => (ReservationKind::Static, None, Vec::new()),
            };
            reservations.push(Reservation {
                kind,
                role: role.to_string(),
                principal,
                labels,
            });
        } else if r.reservation.is_some() {
            return Err(invalid(name, "'reservation' set for the '*' role"));
        }
        let disk = r.disk.as_ref().map(|d| DiskInfo {
            persistence_id: d.persistence.as_ref().map(|p| p.id.clone()),
            persistence_principal: d.persistence.as_ref().and_then(|p| p.principal.clone()),
            container_path: d.volume.as_ref().map(|v| v.container_path.clone()),
            read_write: d
                .volume
                .as_ref()
                .is_some_and(|v| v.mode == pb::volume::Mode::Rw as i32),
            source: d
                .source
                .as_ref()
                .and_then(|s| pb::resource::disk_info::source::Type::try_from(s.r#type).ok())
                .map(|t| t.as_str_name().to_string()),
        });
        let resource = Resource {
            name: name.to_string(),
            value,
            reservations,
            disk,
            revocable: r.revocable.is_some(),
            shared: r.shared.is_some(),
            allocation_role: r.allocation_info.as_ref().and_then(|a| a.role.clone()),
            provider_id: r.provider_id.as_ref().map(|p| p.value.clone()),
        };
        resource.validate()?;
        Ok(resource)
    }

    /// Writes the resource in the post-refinement format.
    pub fn to_proto(&self) -> pb::Resource {
        let mut out = pb::Resource {
            name: self.name.clone(),
            ..Default::default()
        };
        match &self.value {
            Value::Scalar(s) => {
                out.r#type = ValueType::Scalar as i32;
                out.scalar = Some(pb::value::Scalar { value: s.as_f64() });
            }
            Value::Ranges(r) => {
                out.r#type = ValueType::Ranges as i32;
                out.ranges = Some(ranges_to_proto(r));
            }
            Value::Set(items) => {
                out.r#type = ValueType::Set as i32;
                out.set = Some(pb::value::Set {
                    item: items.iter().cloned().collect(),
                });
            }
        }
        out.reservations = self
            .reservations
            .iter()
            .map(|r| pb::resource::ReservationInfo {
                r#type: Some(match r.kind {
                    ReservationKind::Static => ReservationType::Static as i32,
                    ReservationKind::Dynamic => ReservationType::Dynamic as i32,
                }),
                role: Some(r.role.clone()),
                principal: r.principal.clone(),
                labels: labels_to(&r.labels),
            })
            .collect();
        out.disk = self.disk.as_ref().map(|d| pb::resource::DiskInfo {
            persistence: d
                .persistence_id
                .as_ref()
                .map(|id| pb::resource::disk_info::Persistence {
                    id: id.clone(),
                    principal: d.persistence_principal.clone(),
                }),
            volume: d.container_path.as_ref().map(|path| pb::Volume {
                mode: if d.read_write {
                    pb::volume::Mode::Rw as i32
                } else {
                    pb::volume::Mode::Ro as i32
                },
                container_path: path.clone(),
                ..Default::default()
            }),
            source: d.source.as_ref().and_then(|s| {
                pb::resource::disk_info::source::Type::from_str_name(s).map(|t| {
                    pb::resource::disk_info::Source {
                        r#type: t as i32,
                        ..Default::default()
                    }
                })
            }),
        });
        out.revocable = self.revocable.then_some(pb::resource::RevocableInfo {});
        out.shared = self.shared.then_some(pb::resource::SharedInfo {});
        out.allocation_info =
            self.allocation_role
                .as_ref()
                .map(|role| pb::resource::AllocationInfo {
                    role: Some(role.clone()),
                });
        out.provider_id = self
            .provider_id
            .as_ref()
            .map(|value| pb::ResourceProviderId {
                value: value.clone(),
            });
        out
    }
}

/// Rewrites a post-refinement resource in the pre-refinement format, for
/// frameworks without the RESERVATION_REFINEMENT capability. Refined
/// resources (more than one reservation) cannot be expressed and are
/// returned as `None`.
pub fn to_pre_refinement(r: &pb::Resource) -> Option<pb::Resource> {
    let mut out = r.clone();
    match r.reservations.as_slice() {
        [] => out.role = Some(role::UNRESERVED.to_string()),
        [only] => {
            out.role = only.role.clone();
            if only.r#type == Some(ReservationType::Dynamic as i32) {
                out.reservation = Some(pb::resource::ReservationInfo {
                    r#type: None,
                    role: None,
                    principal: only.principal.clone(),
                    labels: only.labels.clone(),
                });
            }
        }
        _ => return None,
    }
    out.reservations.clear();
    Some(out)
}

impl Resources {
    /// Reads and validates a list of protobuf resources.
    pub fn from_proto(resources: &[pb::Resource]) -> Result<Resources> {
        resources.iter().map(Resource::from_proto).collect()
    }

    /// Writes every entry as a protobuf resource.
    pub fn to_proto(&self) -> Vec<pb::Resource> {
        self.iter().map(Resource::to_proto).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_protobuf() {
        let text = "cpus:1.5;mem(eng):128;ports:[31000-31005,31010-31010];gpus:{0,1}";
        let resources = Resources::parse(text).unwrap();
        let back = Resources::from_proto(&resources.to_proto()).unwrap();
        assert_eq!(back, resources);
    }

    #[test]
    fn reads_the_pre_refinement_format() {
        let legacy = pb::Resource {
            name: "cpus".into(),
            r#type: ValueType::Scalar as i32,
            scalar: Some(pb::value::Scalar { value: 2.0 }),
            role: Some("eng".into()),
            reservation: Some(pb::resource::ReservationInfo {
                principal: Some("ops".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = Resource::from_proto(&legacy).unwrap();
        assert_eq!(
            r.reservations,
            vec![Reservation::dynamic_for("eng", Some("ops"))]
        );
        let again = to_pre_refinement(&r.to_proto()).unwrap();
        assert_eq!(again.role.as_deref(), Some("eng"));
        assert_eq!(Resource::from_proto(&again).unwrap(), r);
    }

    #[test]
    fn rejects_bad_wire_resources() {
        let base = pb::Resource {
            name: "cpus".into(),
            r#type: ValueType::Scalar as i32,
            scalar: Some(pb::value::Scalar { value: -1.0 }),
            ..Default::default()
        };
        assert!(Resource::from_proto(&base).is_err(), "negative");
        let nan = pb::Resource {
            scalar: Some(pb::value::Scalar { value: f64::NAN }),
            ..base.clone()
        };
        assert!(Resource::from_proto(&nan).is_err(), "NaN");
        let missing = pb::Resource {
            scalar: None,
            ..base.clone()
        };
        assert!(Resource::from_proto(&missing).is_err(), "no value");
        let overlapping = pb::Resource {
            name: "ports".into(),
            r#type: ValueType::Ranges as i32,
            scalar: None,
            ranges: Some(pb::value::Ranges {
                range: vec![
                    pb::value::Range { begin: 1, end: 5 },
                    pb::value::Range { begin: 3, end: 9 },
                ],
            }),
            ..Default::default()
        };
        assert!(Resource::from_proto(&overlapping).is_err(), "overlap");
        let bad_refinement = pb::Resource {
            scalar: Some(pb::value::Scalar { value: 1.0 }),
            reservations: vec![
                pb::resource::ReservationInfo {
                    r#type: Some(ReservationType::Static as i32),
                    role: Some("eng".into()),
                    ..Default::default()
                },
                pb::resource::ReservationInfo {
                    r#type: Some(ReservationType::Dynamic as i32),
                    role: Some("ops".into()),
                    ..Default::default()
                },
            ],
            ..base
        };
        assert!(Resource::from_proto(&bad_refinement).is_err(), "refinement");
    }
}
