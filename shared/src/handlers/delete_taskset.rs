//! `delete-taskset`: removes a task set that no longer takes traffic.

use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::info;

use super::{parse, respond};
use crate::aws::{ecs, route53};
use crate::model::{DeleteReport, DeleteTaskSetRequest};
use crate::plan::{self, slot_of};
use crate::runtime::Context;
use crate::{CanaryError, Result};

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<DeleteReport, Diagnostic> {
    let outcome = match parse::<DeleteTaskSetRequest>(event.payload) {
        Ok(req) => run(ctx, &req).await,
        Err(e) => Err(e),
    };
    respond("delete-taskset", outcome)
}

/// Refuses to delete the PRIMARY task set or one whose slot still has
/// weight ([`plan::may_delete`]; a failed first deployment's own task set is
/// the one exception); a task set that is already gone is a success (a retry).
pub async fn run(ctx: &Context, req: &DeleteTaskSetRequest) -> Result<DeleteReport> {
    plan::validate_target(&req.target)?;
    let t = &req.target;
    let Some(info) =
        ecs::describe_task_set(&ctx.clients.ecs, &t.cluster, &t.service, &req.task_set.arn).await?
    else {
        info!(task_set = %req.task_set.id, "already gone");
        return Ok(DeleteReport {
            task_set_id: req.task_set.id.clone(),
            deleted: false,
        });
    };
    if slot_of(&t.slots, &info.view) != Some(req.slot) {
        return Err(CanaryError::invalid(format!(
            "task set {} is not in the {} slot",
            info.view.id, req.slot
        )));
    }
    let first = match (req.first_deployment, req.deployment_id.as_deref()) {
        (false, _) => None,
        (true, Some(id)) => Some(id),
        (true, None) => {
            return Err(CanaryError::invalid(
                "firstDeployment needs deploymentId (the deployment that created the task set)",
            ))
        }
    };
    let (weights, others) = match first {
        // Only the service's task sets matter for a first deployment's undo.
        Some(_) => {
            let service = ecs::describe_service(&ctx.clients.ecs, &t.cluster, &t.service).await?;
            let others: Vec<_> = service
                .task_sets
                .into_iter()
                .map(|ts| ts.view)
                .filter(|v| v.id != info.view.id)
                .collect();
            (None, others)
        }
        // A PRIMARY task set is refused whatever the weights are.
        None if info.view.status.is_primary() => (None, Vec::new()),
        None => {
            let records = route53::read_records(&ctx.clients.route53, t).await?;
            (Some(records.weights), Vec::new())
        }
    };
    plan::may_delete(&plan::DeleteInputs {
        task_set: &info.view,
        slot: req.slot,
        weights,
        first_deployment_id: first,
        other_task_sets: &others,
    })?;
    let deleted =
        ecs::delete_task_set(&ctx.clients.ecs, &t.cluster, &t.service, &info.view.arn).await?;
    info!(task_set = %info.view.id, slot = %req.slot, deleted, first_deployment = first.is_some(), "task set deleted");
    Ok(DeleteReport {
        task_set_id: info.view.id,
        deleted,
    })
}
