//! `create-taskset`: validates the whole deployment, decides the idle slot and
//! creates the new task set there. Its answer is the plan every later state
//! works from. Everything is checked before anything is changed.

use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::{info, warn};

use super::{parse, respond};
use crate::aws::{cloudmap, cloudwatch, ecs, route53};
use crate::model::{AlarmDetection, CreateTaskSetRequest, Deployment, Slot, Target, TaskSetRef};
use crate::plan::{self, complete_strategy, decide_slots, SlotDecision, MAX_TTL_SECONDS};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<Deployment, Diagnostic> {
    let outcome = match parse::<CreateTaskSetRequest>(event.payload) {
        Ok(req) => run(ctx, &req).await,
        Err(e) => Err(e),
    };
    respond("create-taskset", outcome)
}

fn validate_deployment_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 80
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CanaryError::invalid(format!(
            "deploymentId must be 1..=80 characters of letters, digits, - _ . (got {id:?})"
        )))
    }
}

pub async fn run(ctx: &Context, req: &CreateTaskSetRequest) -> Result<Deployment> {
    validate_deployment_id(&req.deployment_id)?;
    let r = &req.request;
    plan::validate_request(r)?;
    let t = &r.target;
    let c = &ctx.clients;

    let service = ecs::describe_service(&c.ecs, &t.cluster, &t.service).await?;
    let records = route53::read_records(&c.route53, t).await?;
    // Each slot's registry must be the Cloud Map service its record points
    // at: otherwise the new task set registers where no record sends traffic.
    let mut cloudmap_ttl = 0;
    let mut any_srv = false;
    for slot in [Slot::Blue, Slot::Green] {
        let cfg = t.slots.get(slot);
        let found = cloudmap::slot_service(&c.cloudmap, &cfg.registry_arn).await?;
        if !plan::same_dns_name(&found.dns_name, &cfg.dns_name) {
            return Err(CanaryError::TargetMisconfigured(format!(
                "the {slot} slot's registryArn is Cloud Map service {}, but its dnsName is {}",
                found.dns_name, cfg.dns_name
            )));
        }
        plan::check_slot_registry(slot, &found.shape)?;
        any_srv |= found.shape.record_types.iter().any(|t| t == "SRV");
        cloudmap_ttl = cloudmap_ttl.max(found.ttl);
    }
    if r.strategy.ttl_seconds.is_none() && records.ttl > MAX_TTL_SECONDS {
        return Err(CanaryError::TargetMisconfigured(format!(
            "the weighted records of {} have TTL {}s: a rollback would take that long to reach \
             clients; set strategy.ttlSeconds (at most {MAX_TTL_SECONDS})",
            t.record_name, records.ttl
        )));
    }
    let strategy = complete_strategy(&r.strategy, records.ttl, cloudmap_ttl);
    // Decision -> every client, refused above strategy.maxRollbackSeconds
    // before anything is written. (No INSYNC time is measured yet at create:
    // the documented propagation bound counts.)
    plan::check_rollback_bound(
        &plan::rollback_bound(&strategy, Vec::new()),
        strategy.max_rollback_seconds,
    )?;
    let mut detection = Vec::new();
    // The plan states the metric delay it counted (the input's or the default).
    let metric_delay = plan::metric_delay_seconds(&r.alarms);
    let mut alarms = r.alarms.clone();
    alarms.metric_delay_seconds = Some(metric_delay);

    if !r.alarms.names.is_empty() {
        // Refuse to start while a gate alarm is already firing: the first
        // step would only roll back.
        let observed = cloudwatch::observe(&c.cloudwatch, &r.alarms.names, time::now()).await?;
        let verdict = plan::gate_verdict(&observed, r.alarms.insufficient_data);
        if let Some(failure) = verdict.failure {
            return Err(CanaryError::AlarmFiring(format!("not starting: {failure}")));
        }
        let windows = cloudwatch::alarm_windows(&c.cloudwatch, &r.alarms.names).await?;
        detection = windows
            .iter()
            .map(|(name, w)| AlarmDetection {
                alarm: name.clone(),
                seconds: plan::alarm_horizon_seconds(w, metric_delay),
            })
            .collect();
        plan::check_bake(
            strategy.bake_seconds,
            &windows,
            r.strategy.allow_short_bake.unwrap_or(false),
            metric_delay,
        )?;
    }

    let bound = plan::rollback_bound(&strategy, detection);
    info!(seconds = bound.seconds, statement = %bound.statement, "rollback bound");

    let views: Vec<_> = service.task_sets.iter().map(|ts| ts.view.clone()).collect();
    let to_ref = |v: &plan::TaskSetView| TaskSetRef {
        id: v.id.clone(),
        arn: v.arn.clone(),
    };
    let plan = |live_slot: Slot,
                new_slot: Slot,
                old: Option<TaskSetRef>,
                new: TaskSetRef,
                task_definition_arn: String,
                created_at: String| Deployment {
        id: req.deployment_id.clone(),
        target: t.clone(),
        strategy: strategy.clone(),
        alarms: alarms.clone(),
        live_slot,
        new_slot,
        first_deployment: old.is_none(),
        old_task_set: old,
        new_task_set: new,
        task_definition_arn,
        created_at,
        rollback_bound: Some(bound.clone()),
    };

    // Where the new task set goes and what it copies: the live task set's
    // definition and networking, or (first deployment) the input's.
    let (live_slot, new_slot, old) = match decide_slots(
        &t.slots,
        &views,
        records.weights,
        &req.deployment_id,
    )? {
        SlotDecision::Resume {
            live_slot,
            new_slot,
            old,
            new,
        } => {
            info!(task_set = %new.id, slot = %new_slot, "task set already created by an earlier try");
            // An earlier try may have failed in the race check itself: run it again.
            if let Some(ours) = service.task_sets.iter().find(|ts| ts.view.id == new.id) {
                yield_to_overlapping_deployment(ctx, t, ours, old.as_ref()).await?;
            }
            let created = new
                .created_at
                .clone()
                .unwrap_or_else(|| time::format(time::now()));
            let td = new.task_definition.clone();
            return Ok(plan(
                live_slot,
                new_slot,
                old.as_ref().map(to_ref),
                to_ref(&new),
                td,
                created,
            ));
        }
        SlotDecision::Deploy {
            live_slot,
            new_slot,
            old,
        } => (live_slot, new_slot, Some(old)),
        SlotDecision::First => (Slot::Green, Slot::Blue, None),
    };
    // Room for one more task set (ECS counts DRAINING ones too).
    plan::check_task_set_room(&views)?;
    let base = match (&r.task_definition, &old) {
        (Some(td), _) => td.as_str(),
        (None, Some(old)) => old.task_definition.as_str(),
        (None, None) => service.task_definition.as_deref().ok_or_else(|| {
            CanaryError::invalid(
                "the service has no task set and no task definition to start from: \
                 give taskDefinition for its first deployment",
            )
        })?,
    };
    let template = old
        .as_ref()
        .and_then(|o| service.task_sets.iter().find(|ts| ts.view.id == o.id))
        .map(|ts| &ts.raw);
    let network = match (&old, &t.network) {
        (None, Some(n)) => Some(ecs::network_from_input(n)?.0),
        _ => None,
    };
    // Exactly one of launch type and capacity providers: the live task
    // set's, or (first deployment) the input's, the service's, or neither.
    let placement = match template {
        Some(ts) => ecs::placement(ts.launch_type(), ts.capacity_provider_strategy()),
        None => plan::first_placement(t.network.as_ref(), service.placement.clone()),
    };
    // Everything is read and checked before the first write.
    let base_td = ecs::load_task_definition(&c.ecs, base).await?;
    let next_td = match r.image.as_deref() {
        Some(image) => Some(ecs::with_image(&base_td, &t.container, image)?),
        None => None,
    };
    let copied_ports = template
        .and_then(|ts| ts.service_registries().first())
        .and_then(|reg| Some((reg.container_name()?.to_string(), reg.container_port()?)));
    let registry_ports = plan::registry_ports(
        &next_td.as_ref().unwrap_or(&base_td).networking(),
        any_srv,
        &t.container,
        copied_ports,
    )?;
    // The first write: take the service's deployment lock (one conditional
    // Route 53 change; see plan::DeploymentLock for why it holds when
    // DescribeServices does not show a rival's task set yet).
    take_deployment_lock(ctx, t, &req.deployment_id, &views).await?;
    let td = match &next_td {
        Some(next) => ecs::register_revision(&c.ecs, next).await?,
        None => base_td.arn().to_string(),
    };
    let created = ecs::create_task_set(
        &c.ecs,
        &ecs::NewTaskSet {
            cluster: &t.cluster,
            service: &t.service,
            task_definition: &td,
            external_id: &req.deployment_id,
            registry_arn: &t.slots.get(new_slot).registry_arn,
            template,
            network_configuration: network.as_ref().or(service.network_configuration.as_ref()),
            placement,
            registry_ports,
        },
    )
    .await?;
    yield_to_overlapping_deployment(ctx, t, &created, old.as_ref()).await?;
    info!(
        task_set = %created.view.id,
        slot = %new_slot,
        live = %live_slot,
        first_deployment = old.is_none(),
        task_definition = %td,
        "task set created"
    );
    Ok(plan(
        live_slot,
        new_slot,
        old.as_ref().map(to_ref),
        to_ref(&created.view),
        td,
        time::format(time::now()),
    ))
}

/// Closes the race between two deployments of one service whose
/// create-taskset calls overlap (both read one task set, both create): each
/// re-reads the service after creating, and the later task set deletes
/// itself and fails `DeploymentInProgress`, so exactly one goes on.
async fn yield_to_overlapping_deployment(
    ctx: &Context,
    t: &Target,
    created: &ecs::TaskSetInfo,
    old: Option<&plan::TaskSetView>,
) -> Result<()> {
    let c = &ctx.clients;
    let (cluster, service) = (t.cluster.as_str(), t.service.as_str());
    let after = match ecs::describe_service(&c.ecs, cluster, service).await {
        Ok(after) => after,
        // A retry finds this task set by its externalId and checks again.
        Err(e @ CanaryError::Retryable(_)) => return Err(e),
        // Nothing will check again: take back what this call made, so the
        // failure leaves the service as it was.
        Err(e) => {
            let undone = ecs::delete_task_set(&c.ecs, cluster, service, &created.view.arn).await;
            let what = match undone {
                Ok(_) => format!("task set {} was deleted again", created.view.id),
                Err(d) => format!(
                    "task set {} is left behind: delete it ({d})",
                    created.view.id
                ),
            };
            warn!(task_set = %created.view.id, error = %e, %what, "re-read after CreateTaskSet failed");
            return Err(e.with_context(&what));
        }
    };
    let others: Vec<_> = after
        .task_sets
        .iter()
        .filter(|ts| ts.view.id != created.view.id && Some(&ts.view.id) != old.map(|o| &o.id))
        .map(|ts| (ts.raw.created_at().copied(), ts.view.clone()))
        .collect();
    let ours = (&created.raw.created_at().copied(), created.view.id.as_str());
    let Some(rival) = plan::rival_to_yield_to(ours, &others) else {
        return Ok(());
    };
    warn!(task_set = %created.view.id, rival = %rival.id, "another deployment created its task set first: yielding");
    ecs::delete_task_set(&c.ecs, cluster, service, &created.view.arn).await?;
    Err(CanaryError::DeploymentInProgress(format!(
        "deployment {} created task set {} at the same time; this one yielded and deleted its own ({})",
        rival.external_id.as_deref().unwrap_or("?"),
        rival.id,
        created.view.id
    )))
}

/// Takes the service's deployment lock or refuses `DeploymentInProgress`.
async fn take_deployment_lock(
    ctx: &Context,
    t: &Target,
    deployment_id: &str,
    views: &[plan::TaskSetView],
) -> Result<()> {
    let r53 = &ctx.clients.route53;
    let now = time::now().secs();
    let read = route53::read_lock(r53, t).await?;
    let parsed = read.as_ref().map(|r| plan::DeploymentLock::parse(&r.value));
    let action = plan::decide_lock(
        parsed.as_ref().map(Option::as_ref),
        deployment_id,
        now,
        views,
    );
    let ours = plan::DeploymentLock {
        owner: deployment_id.to_string(),
        acquired_at: now,
    };
    let previous = match action {
        plan::LockAction::Held => return Ok(()),
        plan::LockAction::Refuse(why) => return Err(CanaryError::DeploymentInProgress(why)),
        plan::LockAction::Create => None,
        plan::LockAction::TakeOver => read.as_ref(),
    };
    if route53::take_lock(r53, t, previous, &ours.value()).await? {
        return Ok(());
    }
    // Lost the race: read once more, a retry of our own earlier call may
    // have taken it (its answer lost).
    let again = route53::read_lock(r53, t).await?;
    let holder = again
        .as_ref()
        .and_then(|r| plan::DeploymentLock::parse(&r.value));
    match holder {
        Some(h) if h.owner == deployment_id => Ok(()),
        Some(h) => {
            warn!(holder = %h.owner, "another deployment took the service's lock first");
            Err(CanaryError::DeploymentInProgress(format!(
                "deployment {} took the service's lock at the same moment; this one stopped \
                 before changing anything",
                h.owner
            )))
        }
        None => Err(CanaryError::Retryable(
            "the service's deployment lock changed while taking it; try again".into(),
        )),
    }
}
