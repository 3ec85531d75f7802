//! The scheduler API without a transport: one entry point for every
//! framework call, whoever carries it.
//!
//! ```text
//!  HTTP (http/scheduler.rs)        in-process session (session.rs)
//!   decode body ─┐                   typed Call ─┐
//!                ▼                                ▼
//!        ValidatedCall::new(call, principal)  (Mesos's validation, 400s)
//!                │
//!                ▼
//!   Master::scheduler_call(&CallContext, ValidatedCall)
//!      leader? ─► stream checks ─► metrics ─► dispatch (framework.rs, offer.rs)
//!                │
//!                ▼
//!   Answer { outcome, barrier }  ──► the caller waits on the barrier, then
//!                                    replies (202, 200, or the event stream)
//! ```
//!
//! Everything a framework call means to the master happens here, under the
//! master's lock; a transport only translates its wire into a [`sched::Call`]
//! plus a [`CallContext`] and the [`Answer`] back into its wire. Errors are
//! typed ([`CallError`]) and keep Mesos's messages, so HTTP maps each to the
//! status code Mesos gives and an in-process caller can match on them.

use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler as sched;

use super::framework::Subscription;
use super::registrar::{Barrier, RegistrarError};
use super::state::{Master, MasterError};

/// Who makes a call, as far as the master cares: the connection it comes
/// on and the principal it authenticated as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The `Mesos-Stream-Id` the call names; none for SUBSCRIBE.
    pub stream_id: Option<String>,
    /// The authenticated principal, when authentication is on.
    pub principal: Option<String>,
}

/// Why a `Call` is not a valid scheduler call, with Mesos's messages
/// (`validation::scheduler::call::validate`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A field the call type needs is absent.
    #[error("Expecting '{0}' to be present")]
    Missing(&'static str),
    /// SUBSCRIBE names another framework id than its FrameworkInfo.
    #[error("'framework_id' differs from 'subscribe.framework_info.id'")]
    SubscribeIdMismatch,
    /// UPDATE_FRAMEWORK names another framework id than its FrameworkInfo.
    #[error("'framework_id' differs from 'update_framework.framework_info.id'")]
    UpdateIdMismatch,
    /// The FrameworkInfo declares another principal than the one that
    /// authenticated.
    #[error("Authenticated principal '{authenticated}' does not match principal '{declared}' set in `FrameworkInfo`")]
    PrincipalMismatch {
        /// The principal that authenticated.
        authenticated: String,
        /// The principal in the FrameworkInfo.
        declared: String,
    },
    /// An acknowledgement's uuid is not a UUID.
    #[error("Not a valid UUID")]
    InvalidUuid,
}

/// A scheduler call that passed Mesos's validation: the only kind
/// [`Master::scheduler_call`] takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCall {
    kind: sched::call::Type,
    call: sched::Call,
}

impl ValidatedCall {
    /// Validates `call` as made by `principal`.
    pub fn new(
        call: sched::Call,
        principal: Option<&str>,
    ) -> Result<ValidatedCall, ValidationError> {
        let kind = validate(&call, principal)?;
        Ok(ValidatedCall { kind, call })
    }

    /// Its type (UNKNOWN for a type this master does not know).
    pub fn kind(&self) -> sched::call::Type {
        self.kind
    }

    /// Whether the call has a response body, so that the transport must
    /// agree on its encoding first: SUBSCRIBE and RECONCILE_OPERATIONS.
    pub fn has_response_body(&self) -> bool {
        matches!(
            self.kind,
            sched::call::Type::Subscribe | sched::call::Type::ReconcileOperations
        )
    }

    /// The framework it names (empty for a first SUBSCRIBE).
    pub fn framework_id(&self) -> &str {
        self.call
            .framework_id
            .as_ref()
            .map_or("", |f| f.value.as_str())
    }

    /// The call itself.
    pub fn call(&self) -> &sched::Call {
        &self.call
    }
}

/// Why the master refused a scheduler call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// This master does not lead: the call belongs to `leader` (307), or
    /// to nobody yet (503).
    #[error("this master is not the leader")]
    NotLeader {
        /// The leading master, when one is known.
        leader: Option<Box<pb::MasterInfo>>,
    },
    /// SUBSCRIBE came on a connection that already has a stream (400).
    #[error("Subscribe calls should not include the 'Mesos-Stream-Id' header")]
    StreamIdOnSubscribe,
    /// The call names no framework this master knows, another connection
    /// than the framework's current one (400), or a framework that is not
    /// subscribed (403); see [`MasterError`].
    #[error(transparent)]
    Refused(#[from] MasterError),
    /// The call's type is unknown to this master (501).
    #[error("Received 'UNKNOWN' call")]
    Unknown,
    /// This master lost leadership before the registry held what the call
    /// changed; the caller retries with the new leader (503).
    #[error("Not the leading master any more: {0}")]
    LostLeadership(RegistrarError),
}

/// What a call did, for the transport to turn into its reply.
#[derive(Debug)]
pub enum CallOutcome {
    /// SUBSCRIBE: the new stream of events (SUBSCRIBED or ERROR first).
    Subscribed(Subscription),
    /// The call was taken (Mesos answers 202).
    Accepted,
    /// UPDATE_FRAMEWORK was applied (Mesos answers 200).
    Updated,
}

/// A call's outcome and the registry barrier to wait on before the reply
/// says so.
#[derive(Debug)]
pub struct Answer {
    /// What the call did.
    pub outcome: CallOutcome,
    /// Passes once the registry holds what the call changed.
    pub barrier: Barrier,
}

impl Master {
    /// Runs one scheduler call: the leader check, the stream checks in
    /// Mesos's order, the per-call metrics, and the dispatch. Nothing here
    /// waits: the caller awaits [`Answer::barrier`] outside the lock.
    pub fn scheduler_call(
        &mut self,
        context: &CallContext,
        call: ValidatedCall,
    ) -> Result<Answer, CallError> {
        use sched::call::Type as T;
        if !self.elected {
            return Err(CallError::NotLeader {
                leader: self.leader.clone().map(Box::new),
            });
        }
        let principal = context.principal.as_deref();
        let kind = call.kind;
        if kind == T::Subscribe {
            if context.stream_id.is_some() {
                return Err(CallError::StreamIdOnSubscribe);
            }
            let Some(subscribe) = call.call.subscribe else {
                // `ValidatedCall` guarantees it; answer as Mesos would.
                return Err(
                    MasterError::BadRequest("Expecting 'subscribe' to be present".into()).into(),
                );
            };
            self.count_scheduler_call(kind);
            let subscription = self.subscribe(subscribe, principal);
            return Ok(Answer {
                outcome: CallOutcome::Subscribed(subscription),
                barrier: self.registrar.barrier(),
            });
        }
        let framework_id = call.framework_id().to_string();
        self.check_stream(&framework_id, context.stream_id.as_deref(), principal)?;
        self.count_scheduler_call(kind);
        let call = call.call;
        let mut outcome = CallOutcome::Accepted;
        match kind {
            T::Teardown => self.remove_framework(&framework_id),
            T::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(&framework_id, accept);
                }
            }
            T::Decline => {
                if let Some(decline) = &call.decline {
                    self.decline(&framework_id, decline);
                }
            }
            T::AcceptInverseOffers => {
                if let Some(a) = &call.accept_inverse_offers {
                    self.answer_inverse_offers(&framework_id, &a.inverse_offer_ids, true);
                }
            }
            T::DeclineInverseOffers => {
                if let Some(d) = &call.decline_inverse_offers {
                    self.answer_inverse_offers(&framework_id, &d.inverse_offer_ids, false);
                }
            }
            T::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                self.revive(&framework_id, &roles)?;
            }
            T::Suppress => {
                let roles = call.suppress.map(|s| s.roles).unwrap_or_default();
                self.suppress(&framework_id, &roles)?;
            }
            T::Kill => {
                if let Some(kill) = &call.kill {
                    self.kill(&framework_id, kill);
                }
            }
            T::Shutdown => {
                if let Some(shutdown) = &call.shutdown {
                    self.shutdown_executor(&framework_id, shutdown);
                }
            }
            T::Acknowledge => {
                if let Some(ack) = &call.acknowledge {
                    self.acknowledge(&framework_id, ack);
                }
            }
            // Pando applies offer operations synchronously and sends no
            // operation status updates that need acknowledging.
            T::AcknowledgeOperationStatus => {}
            T::ReconcileOperations => {
                if let Some(reconcile) = &call.reconcile_operations {
                    self.reconcile_operations(&framework_id, reconcile);
                }
            }
            T::Reconcile => {
                if let Some(reconcile) = &call.reconcile {
                    self.reconcile(&framework_id, reconcile);
                }
            }
            T::Message => {
                if let Some(message) = &call.message {
                    self.message_to_executor(&framework_id, message);
                }
            }
            // Mesos's allocator ignores resource requests; so does Pando's.
            T::Request => {}
            T::UpdateFramework => {
                if let Some(update) = call.update_framework {
                    self.update_framework(update)?;
                }
                outcome = CallOutcome::Updated;
            }
            T::Subscribe | T::Unknown => return Err(CallError::Unknown),
        }
        Ok(Answer {
            outcome,
            barrier: self.registrar.barrier(),
        })
    }

    /// Counts a scheduler call that could not be decoded or validated
    /// (`master/invalid_scheduler_calls`).
    pub fn count_invalid_scheduler_call(&mut self) {
        self.metrics.invalid_scheduler_calls += 1;
    }

    fn count_scheduler_call(&mut self, kind: sched::call::Type) {
        *self
            .metrics
            .scheduler_calls
            .entry(kind.as_str_name().to_string())
            .or_default() += 1;
    }
}

/// Mesos's `validation::scheduler::call::validate`: the call's type and the
/// fields that type needs.
fn validate(
    call: &sched::Call,
    principal: Option<&str>,
) -> Result<sched::call::Type, ValidationError> {
    use sched::call::Type as T;
    use ValidationError as E;
    let Some(kind) = call.r#type else {
        return Err(E::Missing("type"));
    };
    let kind = T::try_from(kind).unwrap_or(T::Unknown);
    let present = |ok: bool, name: &'static str| if ok { Ok(kind) } else { Err(E::Missing(name)) };
    if kind == T::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Err(E::Missing("subscribe"));
        };
        let info = &subscribe.framework_info;
        if info.id != call.framework_id {
            return Err(E::SubscribeIdMismatch);
        }
        if let (Some(p), Some(fp)) = (principal, info.principal.as_deref()) {
            if p != fp {
                return Err(E::PrincipalMismatch {
                    authenticated: p.to_string(),
                    declared: fp.to_string(),
                });
            }
        }
        return Ok(kind);
    }
    if call.framework_id.is_none() {
        return Err(E::Missing("framework_id"));
    }
    match kind {
        T::Accept => present(call.accept.is_some(), "accept"),
        T::Decline => present(call.decline.is_some(), "decline"),
        T::AcceptInverseOffers => present(
            call.accept_inverse_offers.is_some(),
            "accept_inverse_offers",
        ),
        T::DeclineInverseOffers => present(
            call.decline_inverse_offers.is_some(),
            "decline_inverse_offers",
        ),
        T::Kill => present(call.kill.is_some(), "kill"),
        T::Shutdown => present(call.shutdown.is_some(), "shutdown"),
        T::Acknowledge => {
            let Some(ack) = &call.acknowledge else {
                return Err(E::Missing("acknowledge"));
            };
            uuid::Uuid::from_slice(&ack.uuid).map_err(|_| E::InvalidUuid)?;
            Ok(kind)
        }
        T::AcknowledgeOperationStatus => {
            let Some(ack) = &call.acknowledge_operation_status else {
                return Err(E::Missing("acknowledge_operation_status"));
            };
            uuid::Uuid::from_slice(&ack.uuid).map_err(|_| E::InvalidUuid)?;
            present(ack.agent_id.is_some(), "agent_id")
        }
        T::Reconcile => present(call.reconcile.is_some(), "reconcile"),
        T::ReconcileOperations => {
            present(call.reconcile_operations.is_some(), "reconcile_operations")
        }
        T::Message => present(call.message.is_some(), "message"),
        T::Request => present(call.request.is_some(), "request"),
        T::UpdateFramework => {
            let Some(update) = &call.update_framework else {
                return Err(E::Missing("update_framework"));
            };
            if call.framework_id != update.framework_info.id {
                return Err(E::UpdateIdMismatch);
            }
            Ok(kind)
        }
        T::Teardown | T::Revive | T::Suppress | T::Unknown | T::Subscribe => Ok(kind),
    }
}
