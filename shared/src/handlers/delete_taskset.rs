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
/// weight; a task set that is already gone is a success (a retry).
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
    if info.view.status == "PRIMARY" {
        return Err(CanaryError::UnsafeDelete(format!(
            "task set {} is PRIMARY; promote another task set first",
            info.view.id
        )));
    }
    let records = route53::read_records(&ctx.clients.route53, t).await?;
    let weight = records.weights.get(req.slot);
    if weight > 0 {
        return Err(CanaryError::UnsafeDelete(format!(
            "the {} slot still has weight {weight} (blue {} / green {}); move its traffic away first",
            req.slot, records.weights.blue, records.weights.green
        )));
    }
    let deleted =
        ecs::delete_task_set(&ctx.clients.ecs, &t.cluster, &t.service, &info.view.arn).await?;
    info!(task_set = %info.view.id, slot = %req.slot, deleted, "task set deleted");
    Ok(DeleteReport {
        task_set_id: info.view.id,
        deleted,
    })
}
