//! `repair`: receives a `Step Functions Execution Status Change` event
//! (ABORTED, TIMED_OUT, FAILED) for the deployment state machine and
//! restores what the execution left behind when it ended without passing
//! through its own rollback or cleanup (a StopExecution, `ecs-dns-canary
//! abort` outside a bake, the history limit, a timeout).
//!
//! Nothing is guessed: the execution's input says it is a deployment, its
//! history holds the plan create-taskset answered (the slot that was live,
//! the task set it created, found again by its `externalId`), the states it
//! entered say how far it got ([`plan::repair_decision`]). The restore goes
//! through the engine's one weight-change path (set-weight's rollback
//! request: INSYNC confirmed, exact drain) and delete-taskset's own checks,
//! so it is idempotent: a second delivery finds the weights in place and
//! the task set gone. A deployment whose world moved on (another deployment
//! of the service runs or holds the lock) is left alone.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::{error, info, warn};

use super::{delete_taskset, respond, set_weight};
use crate::aws::{ecs, route53, sfn};
use crate::error::ErrorKind;
use crate::model::Slot;
use crate::model::{
    DeleteTaskSetRequest, Deployment, DeploymentRequest, DrainRequest, RepairReport,
    SetWeightRequest, Target, TaskSetRef,
};
use crate::plan::{self, DeploymentLock, RepairDecision};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

/// The longest the function waits for a drain; the Lambda timeout (900 s)
/// bounds it anyway, and a drain is at most TTL 300 + Cloud Map TTL + 10.
const MAX_DRAIN_WAIT: Duration = Duration::from_secs(840);

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<RepairReport, Diagnostic> {
    let mut progress = Progress::default();
    let outcome = match run_tracked(ctx, &event.payload, &mut progress).await {
        // Lambda retries a function error of an asynchronous invocation
        // twice (Lambda Developer Guide, "Error handling and automatic
        // retries in Lambda", asynchronous invocation): a transient error is
        // returned so that the retry finishes the restore.
        Err(e) if retryable(&e) => Err(e),
        // A permanent error (AccessDenied, a resource gone) would fail the
        // same way on each retry: the outcome is recorded now, with what
        // was left and what to do, and the invocation ends.
        Err(e) => match progress.failed(&e) {
            Some(report) => {
                error!(error_type = e.error_type(), error = %e, execution = %report.execution_arn, reason = %report.reason, "repair failed: outcome recorded");
                Ok(report)
            }
            None => Err(e),
        },
        Ok(report) => Ok(report),
    };
    let outcome = match outcome {
        // A record lost to a transient error: the retry (the restore is
        // idempotent) records it.
        Ok(report) => match record(ctx, &report).await {
            Err(e) if retryable(&e) => Err(e),
            _ => Ok(report),
        },
        Err(e) => Err(e),
    };
    respond("repair", outcome)
}

fn retryable(e: &CanaryError) -> bool {
    matches!(e.kind(), ErrorKind::Retryable | ErrorKind::Throttled)
}

/// What the repair knew and did before an error: the failed outcome says
/// what was left and what to do.
#[derive(Debug, Default)]
pub struct Progress {
    event: Option<StatusEvent>,
    plan: Option<Deployment>,
    live: Option<Slot>,
    /// The weight change back was sent (it may have been written even when
    /// the call, or the INSYNC wait after it, failed).
    weight_change_sent: bool,
    done: Vec<String>,
}

impl Progress {
    /// The recorded outcome of a repair that failed with a permanent error
    /// (`None` before the event named a deployment execution).
    pub fn failed(&self, e: &CanaryError) -> Option<RepairReport> {
        let ev = self.event.as_ref()?;
        let mut r = report(ev, "failed", String::new());
        r.recorded = true;
        let done = match (self.done.is_empty(), self.weight_change_sent, self.live) {
            (false, _, _) => self.done.join("; "),
            (true, true, Some(live)) => format!(
                "the change of all traffic back to the {live} slot was sent but not confirmed \
                 (it may have been written)"
            ),
            _ => "nothing was changed".to_string(),
        };
        let todo = match (&self.plan, self.live) {
            (Some(p), Some(_)) if !self.done.is_empty() => format!(
                "left: the new task set {} (externalId {}) in the {} slot; to do: fix the cause, \
                 then delete that task set (or invoke the repair function again with the execution's status change event)",
                p.new_task_set.id, p.id, p.new_slot
            ),
            (Some(p), Some(live)) => format!(
                "left: traffic may still be split, and the new task set {} (externalId {}) may \
                 still run in the {} slot; to do: fix the cause, then put 100 % on the {live} slot \
                 (weight 0 on {}) and delete that task set by hand, or invoke the repair function \
                 again with the execution's status change event",
                p.new_task_set.id, p.id, p.new_slot, p.new_slot
            ),
            _ => "left: traffic and task sets as the execution left them; to do: fix the cause, \
                  then invoke the repair function again with the execution's status change event, \
                  or restore by hand (100 % on \
                  the slot that was live, delete the task set whose externalId is the execution's \
                  name)"
                .to_string(),
        };
        r.reason = format!(
            "repair failed: {} ({}); before it {done}; {todo}",
            e,
            e.error_type()
        );
        Some(r)
    }
}

/// Writes the outcome where engineers look (see [`sfn::record_repair`]):
/// every outcome for a deployment except "it passed its own rollback"
/// (nothing happened). A failed record is logged; a transient failure is
/// returned (the invocation fails and Lambda's retry records it), a
/// permanent one is not (the log line holds the whole report).
async fn record(ctx: &Context, report: &RepairReport) -> Result<()> {
    if !report.recorded {
        return Ok(());
    }
    let Some(sm) = ctx.settings.state_machine_arn.as_deref() else {
        return Ok(());
    };
    let repairs = ctx
        .settings
        .repairs_state_machine_arn
        .clone()
        .unwrap_or_else(|| sfn::repairs_state_machine_arn(sm));
    let name = report
        .execution_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let doc = match serde_json::to_value(report) {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "repair report not serializable");
            return Ok(());
        }
    };
    match sfn::record_repair(&ctx.clients.sfn, &repairs, &name, &doc).await {
        Ok(true) => info!(record = %name, state_machine = %repairs, "repair outcome recorded"),
        Ok(false) => {
            info!(record = %name, "repair outcome already recorded (or nowhere to record)")
        }
        Err(e) => {
            error!(error_type = e.error_type(), error = %e, record = %name, report = %doc, "repair outcome not recorded");
            return Err(e);
        }
    }
    Ok(())
}

/// The fields of the EventBridge event we use (Step Functions Developer
/// Guide, "Automating Step Functions event delivery with EventBridge":
/// `detail.executionArn`, `stateMachineArn`, `name`, `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub status: String,
}

pub fn parse_event(v: &serde_json::Value) -> Result<StatusEvent> {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str());
    if s("/source") != Some("aws.states")
        || s("/detail-type") != Some("Step Functions Execution Status Change")
    {
        return Err(CanaryError::invalid(
            "not a Step Functions Execution Status Change event (source aws.states)",
        ));
    }
    let field = |p: &str, name: &str| {
        s(p).map(str::to_string)
            .ok_or_else(|| CanaryError::invalid(format!("event has no detail.{name}")))
    };
    Ok(StatusEvent {
        execution_arn: field("/detail/executionArn", "executionArn")?,
        state_machine_arn: field("/detail/stateMachineArn", "stateMachineArn")?,
        status: field("/detail/status", "status")?,
    })
}

fn report(ev: &StatusEvent, action: &str, reason: impl Into<String>) -> RepairReport {
    RepairReport {
        execution_arn: ev.execution_arn.clone(),
        status: ev.status.clone(),
        action: action.into(),
        reason: reason.into(),
        weights: None,
        drain: None,
        deleted_task_set: None,
        recorded: false,
    }
}

fn left(ev: &StatusEvent, reason: String) -> RepairReport {
    info!(execution = %ev.execution_arn, status = %ev.status, %reason, "repair: left alone");
    report(ev, "left", reason)
}

pub async fn run(ctx: &Context, payload: &serde_json::Value) -> Result<RepairReport> {
    run_tracked(ctx, payload, &mut Progress::default()).await
}

/// [`run`], noting in `progress` what it learnt and did (for the outcome
/// of a failure).
pub async fn run_tracked(
    ctx: &Context,
    payload: &serde_json::Value,
    progress: &mut Progress,
) -> Result<RepairReport> {
    let ev = parse_event(payload)?;
    let sm = ctx.settings.state_machine_arn.as_deref().ok_or_else(|| {
        CanaryError::invalid("STATE_MACHINE_ARN is not set for the repair function")
    })?;
    if ev.state_machine_arn != sm {
        return Ok(left(
            &ev,
            format!("an execution of {}, not of {sm}", ev.state_machine_arn),
        ));
    }
    progress.event = Some(ev.clone());
    // The event says what happened; the execution itself is read again.
    let exec = match sfn::describe_execution(&ctx.clients.sfn, &ev.execution_arn).await {
        Ok(exec) => exec,
        // An execution that sent the event but cannot be found (a Standard
        // execution stays readable for 90 days after it closed, Step
        // Functions Developer Guide, quotas: a very late redelivery, or
        // another account's event): nothing is known, so nothing is
        // touched and nothing is recorded against a deployment.
        Err(CanaryError::TargetNotFound(why)) => {
            return Ok(left(
                &ev,
                format!(
                    "the execution cannot be read ({why}): nothing is guessed, nothing touched"
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let is_deployment = exec
        .input
        .as_deref()
        .and_then(|i| serde_json::from_str::<DeploymentRequest>(i).ok())
        .is_some();
    if !is_deployment {
        return Ok(left(
            &ev,
            "its input is not a deployment request: not a deployment".into(),
        ));
    }
    let facts = sfn::history_facts(&ctx.clients.sfn, &ev.execution_arn).await?;
    let decision = plan::repair_decision(
        &exec.status,
        &facts.entered,
        facts.plan.as_ref().map(|p| &p.live_slot),
    );
    let own_path_done = plan::phase(&facts.entered) == plan::Phase::Done;
    let plan = match (&decision, facts.plan) {
        (RepairDecision::Leave(why), _) => {
            let mut r = left(&ev, why.clone());
            r.recorded = !own_path_done;
            return Ok(r);
        }
        (_, None) => return Ok(left(&ev, "no plan in its history".into())),
        (_, Some(p)) => p,
    };
    progress.plan = Some(plan.clone());
    progress.live = Some(plan.live_slot);
    if let Some(why) = moved_on(ctx, sm, &ev.execution_arn, &plan).await? {
        let mut r = left(&ev, why);
        r.recorded = true;
        return Ok(r);
    }
    let mut out = report(&ev, "restored", String::new());
    out.recorded = true;
    match decision {
        RepairDecision::Leave(_) => {}
        RepairDecision::Restore {
            live,
            traffic_moved,
            promotion_tried,
        } => {
            if traffic_moved && !plan.first_deployment {
                progress.weight_change_sent = true;
                let w = set_weight::run(
                    ctx,
                    &SetWeightRequest {
                        target: plan.target.clone(),
                        slot: live,
                        percent: 100,
                        ttl_seconds: Some(plan.strategy.original_ttl_seconds).filter(|t| *t > 0),
                        mark_primary: plan.old_task_set.clone(),
                        wait_insync: Some(true),
                        label: Some("repair".into()),
                        alarms: None,
                        since: None,
                        rollback: None,
                        rollback_bound: plan.rollback_bound.clone(),
                        execution: None,
                        drain: Some(DrainRequest {
                            slot: plan.new_slot,
                            served_before: false,
                            promotion_tried,
                            strategy: plan.strategy.clone(),
                            first_shift: None,
                        }),
                    },
                )
                .await?;
                info!(execution = %ev.execution_arn, blue = w.weights.blue, green = w.weights.green, changed = w.changed, "repair: traffic back on the live slot");
                out.weights = Some(w.weights);
                progress
                    .done
                    .push(format!("all traffic went back to the {live} slot"));
                if let Some(d) = &w.drain {
                    wait_until(&d.until).await?;
                }
                out.drain = w.drain;
            }
            // A task the stopped execution had in flight still runs: StopExecution
            // does not stop a Lambda invocation it started (Step Functions
            // Developer Guide, "Stopping an execution": in-progress tasks are not
            // cancelled). A promotion in flight may so have marked the new task
            // set PRIMARY after the step above read it; the drain wait above
            // outlasts such a straggler's calls, so the old task set is made
            // PRIMARY again here, right before the delete that needs it.
            if let Some(old) = &plan.old_task_set {
                if !plan.first_deployment {
                    reassert_primary(ctx, &plan.target, old).await?;
                }
            }
            let deleted = delete_taskset::run(
                ctx,
                &DeleteTaskSetRequest {
                    target: plan.target.clone(),
                    slot: plan.new_slot,
                    task_set: plan.new_task_set.clone(),
                    first_deployment: plan.first_deployment,
                    deployment_id: Some(plan.id.clone()),
                },
            )
            .await?;
            out.deleted_task_set = Some(deleted.task_set_id.clone());
            out.reason = format!(
                "{} ended {} without its own rollback; {}the new task set {} {}",
                plan.id,
                exec.status,
                if traffic_moved && !plan.first_deployment {
                    format!("all traffic went back to the {live} slot and ")
                } else {
                    String::new()
                },
                deleted.task_set_id,
                if deleted.deleted {
                    "was deleted"
                } else {
                    "was already gone"
                }
            );
        }
        RepairDecision::Finish { .. } => {
            out.action = "finished".into();
            if let Some(until) = &facts.promotion_drain_until {
                wait_until(until).await?;
            }
            let Some(old) = plan.old_task_set.clone() else {
                return Ok(left(
                    &ev,
                    "promoted a first deployment: nothing left".into(),
                ));
            };
            let deleted = delete_taskset::run(
                ctx,
                &DeleteTaskSetRequest {
                    target: plan.target.clone(),
                    slot: plan.live_slot,
                    task_set: old,
                    first_deployment: false,
                    deployment_id: None,
                },
            )
            .await?;
            out.deleted_task_set = Some(deleted.task_set_id.clone());
            out.reason = format!(
                "{} was promoted before it ended {}; the old task set {} {}",
                plan.id,
                exec.status,
                deleted.task_set_id,
                if deleted.deleted {
                    "was deleted after its drain"
                } else {
                    "was already gone"
                }
            );
        }
    }
    info!(execution = %ev.execution_arn, action = %out.action, reason = %out.reason, "repair: done");
    Ok(out)
}

/// Marks `old` PRIMARY unless it is (a no-op read when it is).
async fn reassert_primary(ctx: &Context, target: &Target, old: &TaskSetRef) -> Result<()> {
    match ecs::describe_task_set(&ctx.clients.ecs, &target.cluster, &target.service, &old.arn)
        .await?
    {
        Some(info) if !info.view.status.is_primary() => {
            ecs::mark_primary(
                &ctx.clients.ecs,
                &target.cluster,
                &target.service,
                &info.view.arn,
            )
            .await?;
            info!(task_set = %info.view.id, "repair: the old task set is PRIMARY again (a task of the stopped execution had promoted the new one)");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Another running deployment of the same service, or a lock held by
/// another deployment, means the world moved on.
async fn moved_on(
    ctx: &Context,
    sm: &str,
    ours: &str,
    plan: &Deployment,
) -> Result<Option<String>> {
    let mut others = Vec::new();
    for arn in sfn::running_executions(&ctx.clients.sfn, sm).await? {
        if arn == ours {
            continue;
        }
        let other = match sfn::describe_execution(&ctx.clients.sfn, &arn).await {
            Ok(o) => o,
            Err(CanaryError::TargetNotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let same_service = other
            .input
            .as_deref()
            .and_then(|i| serde_json::from_str::<DeploymentRequest>(i).ok())
            .is_some_and(|r| {
                r.target.cluster == plan.target.cluster && r.target.service == plan.target.service
            });
        if same_service {
            others.push(other.name);
        }
    }
    let lock = route53::read_lock(&ctx.clients.route53, &plan.target).await?;
    let owner = lock
        .as_ref()
        .and_then(|l| DeploymentLock::parse(&l.value))
        .map(|l| l.owner);
    Ok(plan::world_moved_on(&plan.id, owner.as_deref(), &others))
}

/// Sleeps until an RFC 3339 instant (at most [`MAX_DRAIN_WAIT`]).
async fn wait_until(until: &str) -> Result<()> {
    let t = time::parse("drain.until", until)?;
    let now = time::now();
    let secs = time::seconds_between(now, t).saturating_add(1);
    let wait = Duration::from_secs(secs).min(MAX_DRAIN_WAIT);
    if wait >= MAX_DRAIN_WAIT {
        warn!(
            until,
            "drain longer than the function may wait: waiting what it can"
        );
    }
    info!(
        until,
        seconds = wait.as_secs(),
        "repair: waiting for the drain"
    );
    tokio::time::sleep(wait).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> StatusEvent {
        StatusEvent {
            execution_arn: "arn:aws:states:us-east-1:1:execution:sm:orders-v2".into(),
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:sm".into(),
            status: "ABORTED".into(),
        }
    }

    #[test]
    fn a_failure_before_the_event_is_known_is_not_recorded() {
        let e = CanaryError::AwsError("states:DescribeExecution: AccessDenied: no".into());
        assert!(Progress::default().failed(&e).is_none());
    }

    #[test]
    fn a_failed_repair_says_what_was_left_and_what_to_do() {
        let p = Progress {
            event: Some(ev()),
            ..Progress::default()
        };
        let e = CanaryError::AwsError("states:GetExecutionHistory: AccessDenied: no".into());
        let Some(r) = p.failed(&e) else {
            panic!("no report")
        };
        assert_eq!(r.action, "failed");
        assert!(r.recorded);
        for word in [
            "states:GetExecutionHistory",
            "AccessDenied",
            "nothing was changed",
            "left:",
            "to do:",
        ] {
            assert!(r.reason.contains(word), "{word}: {}", r.reason);
        }
    }

    #[test]
    fn a_sent_weight_change_is_never_reported_as_nothing_changed() {
        let p = Progress {
            event: Some(ev()),
            live: Some(Slot::Blue),
            weight_change_sent: true,
            ..Progress::default()
        };
        let e = CanaryError::AwsError("route53:GetChange: AccessDenied: no".into());
        let Some(r) = p.failed(&e) else {
            panic!("no report")
        };
        assert!(!r.reason.contains("nothing was changed"), "{}", r.reason);
        assert!(r.reason.contains("may have been written"), "{}", r.reason);
    }

    #[test]
    fn only_transient_errors_are_left_to_lambda_retries() {
        assert!(retryable(&CanaryError::Retryable("x".into())));
        assert!(retryable(&CanaryError::Throttled("x".into())));
        assert!(!retryable(&CanaryError::AwsError("x".into())));
    }
}
