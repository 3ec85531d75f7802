//! Conversions between domain resources and the Mesos `Resource` protobuf.
//!
//! Reading ([`Resource::from_proto`]) first applies every check of Mesos's
//! `Resources::validate` to the message as received (missing or extra
//! values for the type, negative, NaN or vanishing scalars, inverted or
//! overlapping ranges, duplicate set items, disk info on a non-disk
//! resource, sharing something that is not a persistent volume, bad roles,
//! broken refinement, inconsistent reservation formats) and returns a typed
//! error; it never panics. Then it converts the message to the domain type.
//!
//! Mesos has three reservation formats, and this module reads all of them
//! (Mesos's `convertResourceFormat`):
//!
//! * **pre-refinement**: the deprecated `role` field (6), `*` when
//!   unreserved, plus `reservation` (8) for a dynamic reservation;
//! * **post-refinement**: the `reservations` stack (13) only;
//! * **endpoint**: both at once, consistent, for a single reservation.
//!
//! Writing uses the post-refinement format by default, which is what Mesos
//! 1.11 sends frameworks with the RESERVATION_REFINEMENT capability;
//! [`ResourceFormat`] selects the others, for older frameworks and for the
//! HTTP endpoints.

// This module is where the deprecated pre-refinement fields (`role`,
// `reservation`) are read and written on purpose, for old frameworks.
#![allow(deprecated)]

use pando_proto::mesos::v1 as pb;
use pb::resource::disk_info::source::Type as SourceType;
use pb::resource::reservation_info::Type as ReservationType;
use pb::value::Type as ValueType;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::resource::{
    DiskInfo, DiskSource, DiskSourceKind, Label, Labels, Persistence, Reservation, ReservationKind,
    Resource, Value, Volume, VolumeMode,
};
use crate::resources::Resources;
use crate::role;
use crate::scalar::Scalar;
use crate::set::Set;

/// Which reservation format to write (Mesos `ResourceFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceFormat {
    /// `role` plus `reservation`, for frameworks without the
    /// RESERVATION_REFINEMENT capability; refined reservations cannot be
    /// written.
    PreReservationRefinement,
    /// The `reservations` stack only: the current format.
    PostReservationRefinement,
    /// Both, as Mesos's HTTP endpoints (`/state`, `/slaves`) show them.
    Endpoint,
}

fn invalid(name: &str, reason: impl Into<String>) -> ResourcesError {
    ResourcesError::InvalidResource {
        name: name.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

impl From<Scalar> for pb::value::Scalar {
    fn from(scalar: Scalar) -> pb::value::Scalar {
        pb::value::Scalar {
            value: scalar.as_f64(),
        }
    }
}

impl TryFrom<&pb::value::Scalar> for Scalar {
    type Error = ResourcesError;

    /// Rounds to thousandths; NaN, infinite and negative values fail.
    fn try_from(scalar: &pb::value::Scalar) -> Result<Scalar> {
        Scalar::from_f64(scalar.value)
    }
}

impl From<&Ranges> for pb::value::Ranges {
    fn from(ranges: &Ranges) -> pb::value::Ranges {
        pb::value::Ranges {
            range: ranges
                .iter()
                .map(|(begin, end)| pb::value::Range { begin, end })
                .collect(),
        }
    }
}

impl TryFrom<&pb::value::Ranges> for Ranges {
    type Error = ResourcesError;

    /// Inverted and overlapping intervals fail, as in a Mesos `Resource`.
    fn try_from(ranges: &pb::value::Ranges) -> Result<Ranges> {
        Ranges::from_intervals_strict(ranges.range.iter().map(|r| (r.begin, r.end)))
    }
}

impl From<&Set> for pb::value::Set {
    fn from(set: &Set) -> pb::value::Set {
        pb::value::Set {
            item: set.iter().map(str::to_string).collect(),
        }
    }
}

impl TryFrom<&pb::value::Set> for Set {
    type Error = ResourcesError;

    /// Duplicate items fail, as in a Mesos `Resource`.
    fn try_from(set: &pb::value::Set) -> Result<Set> {
        Set::from_items_strict(set.item.iter().cloned())
    }
}

/// Reads the value of a resource, checking that exactly the field for its
/// type is set.
fn value_from_proto(r: &pb::Resource) -> Result<Value> {
    let name = r.name.as_str();
    let fields = (r.scalar.as_ref(), r.ranges.as_ref(), r.set.as_ref());
    let kind = ValueType::try_from(r.r#type)
        .map_err(|_| invalid(name, format!("invalid resource type {}", r.r#type)))?;
    match (kind, fields) {
        (ValueType::Scalar, (Some(scalar), None, None)) => {
            let amount = Scalar::try_from(scalar).map_err(|e| invalid(name, e.to_string()))?;
            if amount.is_zero() && scalar.value != 0.0 {
                return Err(invalid(
                    name,
                    format!(
                        "invalid scalar resource: {} is below the 0.001 resolution",
                        scalar.value
                    ),
                ));
            }
            Ok(Value::Scalar(amount))
        }
        (ValueType::Ranges, (None, Some(ranges), None)) => Ranges::try_from(ranges)
            .map(Value::Ranges)
            .map_err(|e| invalid(name, e.to_string())),
        (ValueType::Set, (None, None, Some(set))) => Set::try_from(set)
            .map(Value::Set)
            .map_err(|e| invalid(name, e.to_string())),
        (ValueType::Text, _) => Err(invalid(name, "TEXT is not a resource type")),
        (kind, _) => Err(invalid(
            name,
            format!(
                "a {} resource must set '{}' and no other value field",
                kind.as_str_name(),
                kind.as_str_name().to_lowercase()
            ),
        )),
    }
}

fn write_value(value: &Value, out: &mut pb::Resource) {
    match value {
        Value::Scalar(s) => {
            out.r#type = ValueType::Scalar as i32;
            out.scalar = Some((*s).into());
        }
        Value::Ranges(r) => {
            out.r#type = ValueType::Ranges as i32;
            out.ranges = Some(r.into());
        }
        Value::Set(s) => {
            out.r#type = ValueType::Set as i32;
            out.set = Some(s.into());
        }
    }
}

// ---------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------

fn labels_from(labels: &pb::Labels) -> Labels {
    Labels(
        labels
            .labels
            .iter()
            .map(|l| Label {
                key: l.key.clone(),
                value: l.value.clone(),
            })
            .collect(),
    )
}

fn labels_to(labels: &Labels) -> pb::Labels {
    pb::Labels {
        labels: labels
            .0
            .iter()
            .map(|l| pb::Label {
                key: l.key.clone(),
                value: l.value.clone(),
            })
            .collect(),
    }
}

fn reservation_from_proto(name: &str, info: &pb::resource::ReservationInfo) -> Result<Reservation> {
    let kind = match info.r#type.map(ReservationType::try_from) {
        Some(Ok(ReservationType::Static)) => ReservationKind::Static,
        Some(Ok(ReservationType::Dynamic)) => ReservationKind::Dynamic,
        None => return Err(invalid(name, "a reservation must set 'type'")),
        Some(_) => return Err(invalid(name, "unsupported reservation type")),
    };
    let role = info
        .role
        .clone()
        .ok_or_else(|| invalid(name, "a reservation must set 'role'"))?;
    Ok(Reservation {
        kind,
        role,
        principal: info.principal.clone(),
        labels: info.labels.as_ref().map(labels_from),
    })
}

fn reservation_to_proto(r: &Reservation) -> pb::resource::ReservationInfo {
    pb::resource::ReservationInfo {
        r#type: Some(match r.kind {
            ReservationKind::Static => ReservationType::Static as i32,
            ReservationKind::Dynamic => ReservationType::Dynamic as i32,
        }),
        role: Some(r.role.clone()),
        principal: r.principal.clone(),
        labels: r.labels.as_ref().map(labels_to),
    }
}

/// Reads the reservation stack from whichever format the message uses,
/// checking the format is consistent (Mesos's validation, then upgrade).
fn reservations_from_proto(r: &pb::Resource) -> Result<Vec<Reservation>> {
    let name = r.name.as_str();
    if r.reservations.is_empty() {
        // Pre-refinement format.
        let role_name = r.role.as_deref().unwrap_or(role::UNRESERVED);
        role::validate(role_name)?;
        return match &r.reservation {
            None if role_name == role::UNRESERVED => Ok(Vec::new()),
            None => Ok(vec![Reservation::static_for(role_name)]),
            Some(info) => {
                if info.r#type.is_some() {
                    return Err(invalid(
                        name,
                        "'reservation.type' must not be set in the 'reservation' field",
                    ));
                }
                if info.role.is_some() {
                    return Err(invalid(
                        name,
                        "'reservation.role' must not be set in the 'reservation' field",
                    ));
                }
                if role_name == role::UNRESERVED {
                    return Err(invalid(name, "role '*' cannot be dynamically reserved"));
                }
                Ok(vec![Reservation {
                    kind: ReservationKind::Dynamic,
                    role: role_name.to_string(),
                    principal: info.principal.clone(),
                    labels: info.labels.as_ref().map(labels_from),
                }])
            }
        };
    }
    // Post-refinement (or endpoint) format.
    let mut stack = Vec::with_capacity(r.reservations.len());
    for info in &r.reservations {
        let reservation = reservation_from_proto(name, info)?;
        let mut probe = Resource::new(name, Value::Scalar(Scalar::ZERO));
        probe.reservations = std::mem::take(&mut stack);
        probe.push_reservation(reservation)?;
        stack = probe.reservations;
    }
    match stack.as_slice() {
        [only] => {
            if r.role.as_deref().is_some_and(|role| role != only.role) {
                return Err(invalid(
                    name,
                    format!(
                        "'role' ('{}') does not match the role '{}' in 'reservations'",
                        r.role.as_deref().unwrap_or_default(),
                        only.role
                    ),
                ));
            }
            match only.kind {
                ReservationKind::Static if r.reservation.is_some() => Err(invalid(
                    name,
                    "'reservation' must not be set when the single reservation is STATIC",
                )),
                ReservationKind::Static => Ok(stack),
                ReservationKind::Dynamic => {
                    if r.role.is_some() != r.reservation.is_some() {
                        return Err(invalid(
                            name,
                            "'role' and 'reservation' must both be set or both be unset \
                             when the single reservation is DYNAMIC",
                        ));
                    }
                    if let Some(info) = &r.reservation {
                        if info.principal.as_deref().unwrap_or_default()
                            != only.principal.as_deref().unwrap_or_default()
                        {
                            return Err(invalid(
                                name,
                                "'reservation.principal' does not match the principal in \
                                 'reservations'",
                            ));
                        }
                        let given = info.labels.as_ref().map(labels_from).unwrap_or_default();
                        if given != only.labels.clone().unwrap_or_default() {
                            return Err(invalid(
                                name,
                                "'reservation.labels' does not match the labels in \
                                 'reservations'",
                            ));
                        }
                    }
                    Ok(stack)
                }
            }
        }
        _ => {
            if r.role.is_some() {
                return Err(invalid(
                    name,
                    "'role' must not be set with more than one reservation",
                ));
            }
            if r.reservation.is_some() {
                return Err(invalid(
                    name,
                    "'reservation' must not be set with more than one reservation",
                ));
            }
            Ok(stack)
        }
    }
}

fn disk_from_proto(name: &str, d: &pb::resource::DiskInfo) -> Result<DiskInfo> {
    let source = match &d.source {
        None => None,
        Some(s) => {
            let kind = match SourceType::try_from(s.r#type) {
                Ok(SourceType::Path) => DiskSourceKind::Path,
                Ok(SourceType::Mount) => DiskSourceKind::Mount,
                Ok(SourceType::Block) => DiskSourceKind::Block,
                Ok(SourceType::Raw) => DiskSourceKind::Raw,
                Ok(SourceType::Unknown) | Err(_) => {
                    return Err(invalid(name, "unsupported disk source type"))
                }
            };
            let root = match kind {
                DiskSourceKind::Path => s.path.as_ref().and_then(|p| p.root.clone()),
                DiskSourceKind::Mount => s.mount.as_ref().and_then(|m| m.root.clone()),
                DiskSourceKind::Block | DiskSourceKind::Raw => {
                    if s.mount.is_some() || s.path.is_some() {
                        return Err(invalid(
                            name,
                            format!(
                                "'mount' and 'path' must not be set for a {} disk source",
                                kind.as_str()
                            ),
                        ));
                    }
                    None
                }
            };
            Some(DiskSource {
                kind,
                root,
                vendor: s.vendor.clone(),
                id: s.id.clone(),
                metadata: s.metadata.as_ref().map(labels_from),
                profile: s.profile.clone(),
            })
        }
    };
    let volume = match &d.volume {
        None => None,
        Some(v) => {
            let mode = match pb::volume::Mode::try_from(v.mode) {
                Ok(pb::volume::Mode::Rw) => VolumeMode::ReadWrite,
                Ok(pb::volume::Mode::Ro) => VolumeMode::ReadOnly,
                Err(_) => return Err(invalid(name, format!("invalid volume mode {}", v.mode))),
            };
            Some(Volume {
                container_path: v.container_path.clone(),
                mode,
                host_path: v.host_path.clone(),
            })
        }
    };
    Ok(DiskInfo {
        persistence: d.persistence.as_ref().map(|p| Persistence {
            id: p.id.clone(),
            principal: p.principal.clone(),
        }),
        volume,
        source,
    })
}

fn disk_to_proto(d: &DiskInfo) -> pb::resource::DiskInfo {
    use pb::resource::disk_info::{source, Persistence as PbPersistence, Source};
    pb::resource::DiskInfo {
        persistence: d.persistence.as_ref().map(|p| PbPersistence {
            id: p.id.clone(),
            principal: p.principal.clone(),
        }),
        volume: d.volume.as_ref().map(|v| pb::Volume {
            mode: match v.mode {
                VolumeMode::ReadWrite => pb::volume::Mode::Rw as i32,
                VolumeMode::ReadOnly => pb::volume::Mode::Ro as i32,
            },
            container_path: v.container_path.clone(),
            host_path: v.host_path.clone(),
            ..Default::default()
        }),
        source: d.source.as_ref().map(|s| {
            let (kind, path, mount) = match s.kind {
                DiskSourceKind::Path => (
                    SourceType::Path,
                    s.root.clone().map(|root| source::Path { root: Some(root) }),
                    None,
                ),
                DiskSourceKind::Mount => (
                    SourceType::Mount,
                    None,
                    s.root
                        .clone()
                        .map(|root| source::Mount { root: Some(root) }),
                ),
                DiskSourceKind::Block => (SourceType::Block, None, None),
                DiskSourceKind::Raw => (SourceType::Raw, None, None),
            };
            Source {
                r#type: kind as i32,
                path,
                mount,
                vendor: s.vendor.clone(),
                id: s.id.clone(),
                metadata: s.metadata.as_ref().map(labels_to),
                profile: s.profile.clone(),
            }
        }),
    }
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

impl Resource {
    /// Reads and validates a protobuf `Resource`, in any reservation
    /// format.
    pub fn from_proto(r: &pb::Resource) -> Result<Resource> {
        let name = r.name.as_str();
        if name.is_empty() {
            return Err(invalid(name, "empty resource name"));
        }
        let value = value_from_proto(r)?;
        let disk = r
            .disk
            .as_ref()
            .map(|d| disk_from_proto(name, d))
            .transpose()?;
        let reservations = reservations_from_proto(r)?;
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
        write_value(&self.value, &mut out);
        out.reservations = self.reservations.iter().map(reservation_to_proto).collect();
        out.disk = self.disk.as_ref().map(|d| Box::new(disk_to_proto(d)));
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

    /// Writes the resource in the given reservation format. Fails only for
    /// the pre-refinement format of a resource with refined reservations.
    pub fn to_proto_in(&self, format: ResourceFormat) -> Result<pb::Resource> {
        let mut out = self.to_proto();
        convert_format(&mut out, format)?;
        Ok(out)
    }
}

/// Rewrites a post-refinement message in place into `format`, as Mesos's
/// `convertResourceFormat` does. Converting to the post-refinement format
/// also accepts the pre-refinement and endpoint formats (upgrade); the
/// other directions expect a post-refinement message.
pub fn convert_format(r: &mut pb::Resource, format: ResourceFormat) -> Result<()> {
    match format {
        ResourceFormat::PostReservationRefinement => {
            if !r.reservations.is_empty() {
                r.role = None;
                r.reservation = None;
                return Ok(());
            }
            let role_name = r
                .role
                .take()
                .unwrap_or_else(|| role::UNRESERVED.to_string());
            if role_name == role::UNRESERVED {
                r.reservation = None;
                return Ok(());
            }
            let reservation = match r.reservation.take() {
                None => pb::resource::ReservationInfo {
                    r#type: Some(ReservationType::Static as i32),
                    ..Default::default()
                },
                Some(mut info) => {
                    info.r#type = Some(ReservationType::Dynamic as i32);
                    *info
                }
            };
            r.reservations.push(pb::resource::ReservationInfo {
                role: Some(role_name),
                ..reservation
            });
            Ok(())
        }
        ResourceFormat::PreReservationRefinement | ResourceFormat::Endpoint => {
            match r.reservations.as_slice() {
                [] => r.role = Some(role::UNRESERVED.to_string()),
                [only] => {
                    if only.r#type == Some(ReservationType::Dynamic as i32) {
                        r.reservation = Some(Box::new(pb::resource::ReservationInfo {
                            r#type: None,
                            role: None,
                            principal: only.principal.clone(),
                            labels: only.labels.clone(),
                        }));
                    }
                    r.role = only.role.clone();
                    if format == ResourceFormat::PreReservationRefinement {
                        r.reservations.clear();
                    }
                }
                _ if format == ResourceFormat::PreReservationRefinement => {
                    return Err(ResourcesError::CannotDowngrade(r.name.clone()));
                }
                _ => {}
            }
            Ok(())
        }
    }
}

/// Rewrites a post-refinement resource in the pre-refinement format, for
/// frameworks without the RESERVATION_REFINEMENT capability. Refined
/// resources (more than one reservation) cannot be expressed and give
/// `None`.
pub fn to_pre_refinement(r: &pb::Resource) -> Option<pb::Resource> {
    let mut out = r.clone();
    convert_format(&mut out, ResourceFormat::PreReservationRefinement).ok()?;
    Some(out)
}

impl Resources {
    /// Reads and validates a list of protobuf resources; the first invalid
    /// one fails the whole list, with its error.
    pub fn from_proto(resources: &[pb::Resource]) -> Result<Resources> {
        let mut all = Resources::new();
        for r in resources {
            all.add(Resource::from_proto(r)?);
        }
        Ok(all)
    }

    /// Writes every entry as a protobuf resource, post-refinement format.
    pub fn to_proto(&self) -> Vec<pb::Resource> {
        self.iter().map(Resource::to_proto).collect()
    }

    /// Writes every entry in the given reservation format.
    pub fn to_proto_in(&self, format: ResourceFormat) -> Result<Vec<pb::Resource>> {
        self.iter().map(|r| r.to_proto_in(format)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(value: f64) -> pb::Resource {
        pb::Resource {
            name: "cpus".into(),
            r#type: ValueType::Scalar as i32,
            scalar: Some(pb::value::Scalar { value }),
            ..Default::default()
        }
    }

    fn info(kind: ReservationType, role: &str) -> pb::resource::ReservationInfo {
        pb::resource::ReservationInfo {
            r#type: Some(kind as i32),
            role: Some(role.into()),
            ..Default::default()
        }
    }

    fn rejects(r: &pb::Resource, needle: &str) {
        let error = Resource::from_proto(r).expect_err(needle).to_string();
        assert!(error.contains(needle), "expected '{needle}' in: {error}");
    }

    #[test]
    fn round_trips_through_protobuf() {
        let text = "cpus:1.5;mem(eng):128;ports:[31000-31005,31010-31010];gpus:{0,1}";
        let resources = Resources::parse(text).unwrap();
        let back = Resources::from_proto(&resources.to_proto()).unwrap();
        assert_eq!(back, resources);
    }

    #[test]
    fn round_trips_every_field() {
        let mut r = Resource::scalar("disk", Scalar::from_units(64));
        r.push_reservation(Reservation::static_for("eng")).unwrap();
        r.push_reservation(
            Reservation::dynamic_for("eng/a", Some("ops"))
                .with_labels(Labels::from_pairs([("k", Some("v")), ("bare", None)])),
        )
        .unwrap();
        r.disk = Some(DiskInfo {
            source: Some(DiskSource {
                vendor: Some("csi".into()),
                id: Some("vol-1".into()),
                metadata: Some(Labels::from_pairs([("m", Some("1"))])),
                profile: Some("fast".into()),
                ..DiskSource::new(DiskSourceKind::Mount, Some("/mnt/1"))
            }),
            ..DiskInfo::persistent_volume("v1", Some("ops"), "data", VolumeMode::ReadOnly)
        });
        r.shared = true;
        r.revocable = true;
        r.allocation_role = Some("eng/a".into());
        r.provider_id = Some("rp-1".into());
        let back = Resource::from_proto(&r.to_proto()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn reads_the_pre_refinement_format() {
        let legacy = pb::Resource {
            role: Some("eng".into()),
            reservation: Some(Box::new(pb::resource::ReservationInfo {
                principal: Some("ops".into()),
                ..Default::default()
            })),
            ..cpus(2.0)
        };
        let r = Resource::from_proto(&legacy).unwrap();
        assert_eq!(
            r.reservations,
            vec![Reservation::dynamic_for("eng", Some("ops"))]
        );
        let again = to_pre_refinement(&r.to_proto()).unwrap();
        assert_eq!(again.role.as_deref(), Some("eng"));
        assert!(again.reservations.is_empty());
        assert_eq!(Resource::from_proto(&again).unwrap(), r);

        let static_legacy = pb::Resource {
            role: Some("eng".into()),
            ..cpus(1.0)
        };
        assert_eq!(
            Resource::from_proto(&static_legacy).unwrap().reservations,
            vec![Reservation::static_for("eng")]
        );
        let star = pb::Resource {
            role: Some("*".into()),
            ..cpus(1.0)
        };
        assert!(Resource::from_proto(&star).unwrap().is_unreserved());
    }

    #[test]
    fn reads_the_endpoint_format() {
        let mut post = Resource::from_proto(&pb::Resource {
            reservations: vec![info(ReservationType::Dynamic, "eng")],
            ..cpus(1.0)
        })
        .unwrap();
        post.reservations[0].principal = Some("p".into());
        let endpoint = post.to_proto_in(ResourceFormat::Endpoint).unwrap();
        assert_eq!(endpoint.role.as_deref(), Some("eng"));
        assert!(endpoint.reservation.is_some());
        assert_eq!(endpoint.reservations.len(), 1);
        assert_eq!(Resource::from_proto(&endpoint).unwrap(), post);

        let unreserved = Resource::from_proto(&cpus(1.0))
            .unwrap()
            .to_proto_in(ResourceFormat::Endpoint)
            .unwrap();
        assert_eq!(unreserved.role.as_deref(), Some("*"));
    }

    #[test]
    fn refined_resources_cannot_be_downgraded() {
        let refined = pb::Resource {
            reservations: vec![
                info(ReservationType::Static, "eng"),
                info(ReservationType::Dynamic, "eng/a"),
            ],
            ..cpus(1.0)
        };
        let r = Resource::from_proto(&refined).unwrap();
        assert_eq!(
            r.to_proto_in(ResourceFormat::PreReservationRefinement),
            Err(ResourcesError::CannotDowngrade("cpus".into()))
        );
        assert!(to_pre_refinement(&r.to_proto()).is_none());
        let endpoint = r.to_proto_in(ResourceFormat::Endpoint).unwrap();
        assert_eq!(endpoint.role, None);
        assert_eq!(endpoint.reservations.len(), 2);
    }

    #[test]
    fn upgrades_raw_messages() {
        let mut legacy = pb::Resource {
            role: Some("eng".into()),
            reservation: Some(Box::new(pb::resource::ReservationInfo {
                principal: Some("p".into()),
                ..Default::default()
            })),
            ..cpus(1.0)
        };
        convert_format(&mut legacy, ResourceFormat::PostReservationRefinement).unwrap();
        assert_eq!(legacy.role, None);
        assert_eq!(legacy.reservation, None);
        assert_eq!(
            legacy.reservations,
            vec![pb::resource::ReservationInfo {
                principal: Some("p".into()),
                ..info(ReservationType::Dynamic, "eng")
            }]
        );
        let mut plain = pb::Resource {
            role: Some("*".into()),
            ..cpus(1.0)
        };
        convert_format(&mut plain, ResourceFormat::PostReservationRefinement).unwrap();
        assert_eq!(plain, cpus(1.0));
    }

    #[test]
    fn rejects_bad_values() {
        rejects(&cpus(-1.0), "negative");
        rejects(&cpus(f64::NAN), "NaN");
        rejects(&cpus(f64::INFINITY), "infinite");
        rejects(&cpus(0.0004), "resolution");
        rejects(
            &pb::Resource {
                scalar: None,
                ..cpus(1.0)
            },
            "must set 'scalar'",
        );
        rejects(
            &pb::Resource {
                set: Some(pb::value::Set::default()),
                ..cpus(1.0)
            },
            "no other value field",
        );
        let ports = |range: Vec<(u64, u64)>| pb::Resource {
            name: "ports".into(),
            r#type: ValueType::Ranges as i32,
            ranges: Some(pb::value::Ranges {
                range: range
                    .into_iter()
                    .map(|(begin, end)| pb::value::Range { begin, end })
                    .collect(),
            }),
            ..Default::default()
        };
        rejects(&ports(vec![(1, 5), (3, 9)]), "overlapping");
        rejects(&ports(vec![(5, 1)]), "begin is after end");
        assert!(Resource::from_proto(&ports(vec![(1, 5), (6, 9)])).is_ok());
        rejects(
            &pb::Resource {
                name: "gpus".into(),
                r#type: ValueType::Set as i32,
                set: Some(pb::value::Set {
                    item: vec!["0".into(), "0".into()],
                }),
                ..Default::default()
            },
            "duplicate",
        );
        rejects(
            &pb::Resource {
                r#type: ValueType::Text as i32,
                ..cpus(1.0)
            },
            "TEXT",
        );
        rejects(
            &pb::Resource {
                r#type: 42,
                ..cpus(1.0)
            },
            "invalid resource type",
        );
        rejects(
            &pb::Resource {
                name: String::new(),
                ..cpus(1.0)
            },
            "empty resource name",
        );
    }

    #[test]
    fn rejects_bad_reservations() {
        let stack = |infos| pb::Resource {
            reservations: infos,
            ..cpus(1.0)
        };
        rejects(
            &stack(vec![
                info(ReservationType::Static, "eng"),
                info(ReservationType::Dynamic, "ops"),
            ]),
            "not a refinement",
        );
        rejects(
            &stack(vec![
                info(ReservationType::Static, "eng"),
                info(ReservationType::Static, "eng/a"),
            ]),
            "cannot be static",
        );
        rejects(&stack(vec![info(ReservationType::Dynamic, "*")]), "'*'");
        rejects(&stack(vec![info(ReservationType::Dynamic, "a b")]), "a b");
        rejects(
            &stack(vec![pb::resource::ReservationInfo {
                role: Some("eng".into()),
                ..Default::default()
            }]),
            "'type'",
        );
        rejects(
            &stack(vec![pb::resource::ReservationInfo {
                r#type: Some(ReservationType::Dynamic as i32),
                ..Default::default()
            }]),
            "'role'",
        );
        rejects(
            &stack(vec![info(ReservationType::Unknown, "eng")]),
            "unsupported",
        );
        rejects(
            &pb::Resource {
                role: Some("ops".into()),
                ..stack(vec![info(ReservationType::Static, "eng")])
            },
            "does not match",
        );
        rejects(
            &pb::Resource {
                reservation: Some(Default::default()),
                ..stack(vec![info(ReservationType::Static, "eng")])
            },
            "STATIC",
        );
        rejects(
            &pb::Resource {
                role: Some("eng".into()),
                ..stack(vec![info(ReservationType::Dynamic, "eng")])
            },
            "both be set",
        );
        rejects(
            &pb::Resource {
                role: Some("eng".into()),
                reservation: Some(Box::new(pb::resource::ReservationInfo {
                    principal: Some("x".into()),
                    ..Default::default()
                })),
                ..stack(vec![info(ReservationType::Dynamic, "eng")])
            },
            "principal",
        );
        rejects(
            &pb::Resource {
                role: Some("eng".into()),
                ..stack(vec![
                    info(ReservationType::Static, "eng"),
                    info(ReservationType::Dynamic, "eng/a"),
                ])
            },
            "more than one reservation",
        );
        rejects(
            &pb::Resource {
                reservation: Some(Default::default()),
                ..cpus(1.0)
            },
            "cannot be dynamically reserved",
        );
        rejects(
            &pb::Resource {
                role: Some("eng".into()),
                reservation: Some(Box::new(info(ReservationType::Dynamic, "eng"))),
                ..cpus(1.0)
            },
            "must not be set",
        );
        rejects(
            &pb::Resource {
                role: Some("/eng".into()),
                ..cpus(1.0)
            },
            "slash",
        );
    }

    #[test]
    fn rejects_bad_disks_and_sharing() {
        rejects(
            &pb::Resource {
                disk: Some(Default::default()),
                ..cpus(1.0)
            },
            "disk info should not be set",
        );
        rejects(
            &pb::Resource {
                shared: Some(pb::resource::SharedInfo {}),
                ..cpus(1.0)
            },
            "cannot be shared",
        );
        let disk = |d: pb::resource::DiskInfo| pb::Resource {
            name: "disk".into(),
            disk: Some(Box::new(d)),
            ..cpus(10.0)
        };
        rejects(
            &pb::Resource {
                shared: Some(pb::resource::SharedInfo {}),
                ..disk(Default::default())
            },
            "only persistent volumes",
        );
        rejects(
            &disk(pb::resource::DiskInfo {
                source: Some(pb::resource::disk_info::Source {
                    r#type: SourceType::Block as i32,
                    path: Some(Default::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "BLOCK",
        );
        rejects(
            &disk(pb::resource::DiskInfo {
                source: Some(Default::default()),
                ..Default::default()
            }),
            "unsupported disk source",
        );
    }

    #[test]
    fn converts_values() {
        let ranges = Ranges::from_intervals([(1, 2), (5, 9)]).unwrap();
        let wire = pb::value::Ranges::from(&ranges);
        assert_eq!(Ranges::try_from(&wire).unwrap(), ranges);
        let set: Set = ["a", "b"].into_iter().collect();
        assert_eq!(Set::try_from(&pb::value::Set::from(&set)).unwrap(), set);
        let scalar = Scalar::from_millis(1500);
        assert_eq!(pb::value::Scalar::from(scalar).value, 1.5);
        assert_eq!(
            Scalar::try_from(&pb::value::Scalar { value: 1.5 }).unwrap(),
            scalar
        );
    }
}
