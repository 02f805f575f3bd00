//! `create-taskset`: validates the whole deployment, decides the idle slot and
//! creates the new task set there. Its answer is the plan every later state
//! works from. Everything is checked before anything is changed: the
//! checks and decisions are one read-only function, [`observe`], which the
//! CLI's `plan` command runs too; [`run`] makes the writes after it.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tracing::{info, warn};

use super::{parse, respond};
use crate::aws::{cloudmap, cloudwatch, ecs, route53};
use crate::model::{
    AlarmDetection, CreateTaskSetRequest, Deployment, RollbackBound, Slot, Strategy, Target,
    TaskSetRef, Weights,
};
use crate::plan::{self, complete_strategy, decide_slots, SlotDecision, MAX_TTL_SECONDS};
use crate::runtime::{Clients, Context};
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

/// How [`observe`] treats a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusals {
    /// Stop at the first, with no AWS call after it: what create-taskset does.
    First,
    /// Go on where the remaining checks do not depend on the refused one, so
    /// every reason is named (`ecs-dns-canary plan`). A refused input ends
    /// the observation; a service, records, slot decision or task definition
    /// that could not be read or decided skips the checks that need it.
    All,
}

/// One reason create-taskset would refuse, with its stable `error_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub error_type: String,
    pub message: String,
}

impl From<&CanaryError> for Refusal {
    fn from(e: &CanaryError) -> Self {
        Self {
            error_type: e.error_type().to_string(),
            message: e.to_string(),
        }
    }
}

/// A gate alarm as create-taskset saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSeen {
    pub name: String,
    pub state: String,
    pub reason: String,
    /// Seconds from a regression to ALARM (Period x EvaluationPeriods +
    /// evaluation interval); `None`: not computable or not read.
    pub detection_seconds: Option<u32>,
    /// Whether that fits in the bake (`None`: unknown).
    pub fits_bake: Option<bool>,
}

/// A task set of the service as create-taskset saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSetSeen {
    pub id: String,
    pub status: String,
    pub external_id: Option<String>,
    pub slot: Option<Slot>,
    pub task_definition: String,
}

/// The task definition the deployment would run: only the container's
/// image differs from the one it starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionChange {
    /// What it starts from: the live task set's, the input's `taskDefinition`,
    /// or (first deployment) the service's.
    pub base: String,
    pub container: String,
    pub old_image: Option<String>,
    /// `None`: `taskDefinition` is deployed as is.
    pub new_image: Option<String>,
    /// `asIs`, `reuse` (the family's latest revision is already exactly the
    /// new definition) or `register` (a new revision).
    pub action: String,
    /// The revision reused, or the one that would be registered (`family:N`).
    pub revision: Option<String>,
}

/// Everything create-taskset reads and decides before its first write. The
/// handler writes from it; `ecs-dns-canary plan` prints it.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub deployment_id: String,
    /// The strategy with its defaults filled (needs the records' TTL).
    pub strategy: Option<Strategy>,
    pub record_weights: Option<Weights>,
    pub record_ttl_seconds: Option<u32>,
    pub cloudmap_ttl_seconds: Option<u32>,
    pub rollback_bound: Option<RollbackBound>,
    pub alarms: Vec<AlarmSeen>,
    /// `strategy.allowShortBake`: a bake shorter than an alarm needs is accepted.
    pub short_bake_allowed: bool,
    pub task_sets: Vec<TaskSetSeen>,
    pub live_slot: Option<Slot>,
    pub new_slot: Option<Slot>,
    pub first_deployment: Option<bool>,
    pub old_task_set: Option<String>,
    /// This deployment id already has its task set (a retry would return it).
    pub existing_task_set: Option<String>,
    pub task_definition: Option<TaskDefinitionChange>,
    /// What the deployment lock check found.
    pub lock: Option<String>,
    /// Every reason to refuse, in the order create-taskset checks them; the
    /// first is the one it answers.
    pub refusals: Vec<Refusal>,
    /// The first refusal itself: what create-taskset answers.
    #[serde(skip)]
    pub first_error: Option<CanaryError>,
    #[serde(skip)]
    ready: Option<Ready>,
}

impl Observation {
    /// True when create-taskset would go on to its writes.
    pub fn would_start(&self) -> bool {
        self.refusals.is_empty() && self.ready.is_some()
    }
}

/// What the writes need, decided before them.
#[derive(Debug, Clone)]
struct Ready {
    strategy: Strategy,
    bound: RollbackBound,
    service: ecs::ServiceInfo,
    live_slot: Slot,
    new_slot: Slot,
    old: Option<plan::TaskSetView>,
    next: Next,
}

#[derive(Debug, Clone)]
enum Next {
    /// An earlier try created the task set.
    Resume(plan::TaskSetView),
    Create(Box<Create>),
}

#[derive(Debug, Clone)]
struct Create {
    base_td: ecs::LoadedTaskDefinition,
    next_td: Option<ecs::LoadedTaskDefinition>,
    template: Option<aws_sdk_ecs::types::TaskSet>,
    network: Option<aws_sdk_ecs::types::NetworkConfiguration>,
    placement: plan::Placement,
    registry_ports: Option<(String, i32)>,
    lock_read: Option<route53::LockRecord>,
    lock_action: plan::LockAction,
}

/// Refusals met so far; in [`Refusals::First`] mode the first one ends the
/// observation at once.
struct Collector {
    mode: Refusals,
    found: Vec<CanaryError>,
}

impl Collector {
    fn refuse(&mut self, e: CanaryError) -> Result<()> {
        match self.mode {
            Refusals::First => Err(e),
            Refusals::All => {
                self.found.push(e);
                Ok(())
            }
        }
    }

    fn check(&mut self, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e) => self.refuse(e),
        }
    }

    /// A value a later check needs: on error, refused and `None`.
    fn value<T>(&mut self, r: Result<T>) -> Result<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) => self.refuse(e).map(|()| None),
        }
    }
}

/// The read-only half of create-taskset: every check it makes before any
/// write, with read-only AWS calls only (Describe/List/Get), in the order
/// the handler has always made them. `create-taskset` runs it with
/// [`Refusals::First`]; `ecs-dns-canary plan` with [`Refusals::All`].
pub async fn observe(clients: &Clients, req: &CreateTaskSetRequest, mode: Refusals) -> Observation {
    let mut out = Observation {
        deployment_id: req.deployment_id.clone(),
        ..Observation::default()
    };
    let mut col = Collector {
        mode,
        found: Vec::new(),
    };
    let ready = observe_into(clients, req, mode, &mut col, &mut out).await;
    match ready {
        Ok(Some(r)) if col.found.is_empty() => out.ready = Some(r),
        Ok(_) => {}
        Err(e) => col.found.push(e),
    }
    out.refusals = col.found.iter().map(Refusal::from).collect();
    out.first_error = col.found.into_iter().next();
    out
}

async fn observe_into(
    clients: &Clients,
    req: &CreateTaskSetRequest,
    mode: Refusals,
    col: &mut Collector,
    out: &mut Observation,
) -> Result<Option<Ready>> {
    col.check(validate_deployment_id(&req.deployment_id))?;
    let r = &req.request;
    if let Err(e) = plan::validate_request(r) {
        // The rest would check an input that is not what it claims to be.
        col.refuse(e)?;
        return Ok(None);
    }
    let t = &r.target;
    let c = clients;
    out.short_bake_allowed = r.strategy.allow_short_bake.unwrap_or(false);

    let service = col.value(ecs::describe_service(&c.ecs, &t.cluster, &t.service).await)?;
    let records = col.value(route53::read_records(&c.route53, t).await)?;
    if let Some(records) = &records {
        out.record_weights = Some(records.weights);
        out.record_ttl_seconds = Some(records.ttl);
    }
    if let Some(service) = &service {
        out.task_sets = service
            .task_sets
            .iter()
            .map(|ts| TaskSetSeen {
                id: ts.view.id.clone(),
                status: ts.view.status.to_string(),
                external_id: ts.view.external_id.clone(),
                slot: plan::slot_of(&t.slots, &ts.view),
                task_definition: ts.view.task_definition.clone(),
            })
            .collect();
    }
    // Each slot's registry must be the Cloud Map service its record points
    // at: otherwise the new task set registers where no record sends traffic.
    let mut cloudmap_ttl = 0;
    let mut any_srv = false;
    for slot in [Slot::Blue, Slot::Green] {
        let cfg = t.slots.get(slot);
        let Some(found) =
            col.value(cloudmap::slot_service(&c.cloudmap, &cfg.registry_arn).await)?
        else {
            continue;
        };
        if !plan::same_dns_name(&found.dns_name, &cfg.dns_name) {
            col.refuse(CanaryError::TargetMisconfigured(format!(
                "the {slot} slot's registryArn is Cloud Map service {}, but its dnsName is {}",
                found.dns_name, cfg.dns_name
            )))?;
        }
        col.check(plan::check_slot_registry(slot, &found.shape))?;
        any_srv |= found.shape.record_types.iter().any(|t| t == "SRV");
        cloudmap_ttl = cloudmap_ttl.max(found.ttl);
    }
    out.cloudmap_ttl_seconds = Some(cloudmap_ttl);
    let mut strategy = None;
    if let Some(records) = &records {
        if r.strategy.ttl_seconds.is_none() && records.ttl > MAX_TTL_SECONDS {
            col.refuse(CanaryError::TargetMisconfigured(format!(
                "the weighted records of {} have TTL {}s: a rollback would take that long to \
                 reach clients; set strategy.ttlSeconds (at most {MAX_TTL_SECONDS})",
                t.record_name, records.ttl
            )))?;
        }
        let s = complete_strategy(&r.strategy, records.ttl, cloudmap_ttl);
        // Decision -> every client, refused above strategy.maxRollbackSeconds
        // before anything is written. (No INSYNC time is measured yet at
        // create: the documented propagation bound counts.)
        col.check(plan::check_rollback_bound(
            &plan::rollback_bound(&s, Vec::new()),
            s.max_rollback_seconds,
        ))?;
        strategy = Some(s);
    }
    // The bake does not depend on the records' TTL.
    let bake_seconds = strategy.as_ref().map_or_else(
        || complete_strategy(&r.strategy, MAX_TTL_SECONDS, cloudmap_ttl).bake_seconds,
        |s| s.bake_seconds,
    );
    let mut detection = Vec::new();
    // The plan states the metric delay it counted (the input's or the default).
    let metric_delay = plan::metric_delay_seconds(&r.alarms);

    if !r.alarms.names.is_empty() {
        // Refuse to start while a gate alarm is already firing: the first
        // step would only roll back.
        let observed =
            col.value(cloudwatch::observe(&c.cloudwatch, &r.alarms.names, time::now()).await)?;
        if let Some(observed) = &observed {
            out.alarms = observed
                .iter()
                .map(|o| AlarmSeen {
                    name: o.name.clone(),
                    state: o.state.as_str().to_string(),
                    reason: o.reason.clone(),
                    detection_seconds: None,
                    fits_bake: None,
                })
                .collect();
            let verdict = plan::gate_verdict(observed, r.alarms.insufficient_data);
            if let Some(failure) = verdict.failure {
                col.refuse(CanaryError::AlarmFiring(format!("not starting: {failure}")))?;
            }
        }
        if let Some(windows) =
            col.value(cloudwatch::alarm_windows(&c.cloudwatch, &r.alarms.names).await)?
        {
            detection = windows
                .iter()
                .map(|(name, w)| AlarmDetection {
                    alarm: name.clone(),
                    seconds: plan::alarm_horizon_seconds(w, metric_delay),
                })
                .collect();
            for a in &mut out.alarms {
                if let Some(d) = detection.iter().find(|d| d.alarm == a.name) {
                    a.detection_seconds = d.seconds;
                    a.fits_bake = d.seconds.map(|s| s <= bake_seconds);
                }
            }
            col.check(plan::check_bake(
                bake_seconds,
                &windows,
                r.strategy.allow_short_bake.unwrap_or(false),
                metric_delay,
            ))?;
        }
    }

    let bound = strategy
        .as_ref()
        .map(|s| plan::rollback_bound(s, detection));
    if let Some(bound) = &bound {
        info!(seconds = bound.seconds, statement = %bound.statement, "rollback bound");
    }
    out.strategy.clone_from(&strategy);
    out.rollback_bound.clone_from(&bound);
    // Everything below decides from the service and its records.
    let (Some(service), Some(records), Some(strategy), Some(bound)) =
        (service, records, strategy, bound)
    else {
        return Ok(None);
    };

    let views: Vec<_> = service.task_sets.iter().map(|ts| ts.view.clone()).collect();
    // Where the new task set goes and what it copies: the live task set's
    // definition and networking, or (first deployment) the input's.
    let Some(decision) = col.value(decide_slots(
        &t.slots,
        &views,
        records.weights,
        &req.deployment_id,
    ))?
    else {
        return Ok(None);
    };
    let (live_slot, new_slot, old) = match decision {
        SlotDecision::Resume {
            live_slot,
            new_slot,
            old,
            new,
        } => {
            out.live_slot = Some(live_slot);
            out.new_slot = Some(new_slot);
            out.first_deployment = Some(old.is_none());
            out.old_task_set = old.as_ref().map(|o| o.id.clone());
            out.existing_task_set = Some(new.id.clone());
            return Ok(Some(Ready {
                strategy,
                bound,
                service,
                live_slot,
                new_slot,
                old,
                next: Next::Resume(new),
            }));
        }
        SlotDecision::Deploy {
            live_slot,
            new_slot,
            old,
        } => (live_slot, new_slot, Some(old)),
        SlotDecision::First => (Slot::Green, Slot::Blue, None),
    };
    out.live_slot = Some(live_slot);
    out.new_slot = Some(new_slot);
    out.first_deployment = Some(old.is_none());
    out.old_task_set = old.as_ref().map(|o| o.id.clone());
    // Room for one more task set (ECS counts DRAINING ones too).
    col.check(plan::check_task_set_room(&views))?;
    let base = match (&r.task_definition, &old) {
        (Some(td), _) => td.clone(),
        (None, Some(old)) => old.task_definition.clone(),
        (None, None) => match service.task_definition.clone() {
            Some(td) => td,
            None => {
                col.refuse(CanaryError::invalid(
                    "the service has no task set and no task definition to start from: \
                     give taskDefinition for its first deployment",
                ))?;
                return Ok(None);
            }
        },
    };
    let template = old
        .as_ref()
        .and_then(|o| service.task_sets.iter().find(|ts| ts.view.id == o.id))
        .map(|ts| ts.raw.clone());
    let network = match (&old, &t.network) {
        (None, Some(n)) => match col.value(ecs::network_from_input(n))? {
            Some((n, _)) => Some(n),
            None => return Ok(None),
        },
        _ => None,
    };
    // Exactly one of launch type and capacity providers: the live task
    // set's, or (first deployment) the input's, the service's, or neither.
    let placement = match &template {
        Some(ts) => ecs::placement(ts.launch_type(), ts.capacity_provider_strategy()),
        None => plan::first_placement(t.network.as_ref(), service.placement.clone()),
    };
    // Everything is read and checked before the first write.
    let Some(base_td) = col.value(ecs::load_task_definition(&c.ecs, &base).await)? else {
        return Ok(None);
    };
    let next_td = match r.image.as_deref() {
        Some(image) => match col.value(ecs::with_image(&base_td, &t.container, image))? {
            Some(next) => Some(next),
            None => return Ok(None),
        },
        None => None,
    };
    let mut change = TaskDefinitionChange {
        base: base_td.arn().to_string(),
        container: t.container.clone(),
        old_image: ecs::container_image(&base_td, &t.container),
        new_image: r.image.clone(),
        action: "asIs".into(),
        revision: Some(base_td.arn().to_string()),
    };
    if let (Some(next), Refusals::All) = (&next_td, mode) {
        // Only the plan asks now; create-taskset asks when it registers.
        match ecs::reusable_revision(&c.ecs, next).await {
            ecs::Revision::Reuse(arn) => {
                change.action = "reuse".into();
                change.revision = Some(arn);
            }
            ecs::Revision::Register(name) => {
                change.action = "register".into();
                change.revision = name;
            }
        }
    }
    out.task_definition = Some(change);
    let copied_ports = template
        .as_ref()
        .and_then(|ts| ts.service_registries().first())
        .and_then(|reg| Some((reg.container_name()?.to_string(), reg.container_port()?)));
    let registry_ports = col.value(plan::registry_ports(
        &next_td.as_ref().unwrap_or(&base_td).networking(),
        any_srv,
        &t.container,
        copied_ports,
    ))?;
    // The service's deployment lock: read and decide here, taken (one
    // conditional Route 53 change) as the first write.
    let lock = col.value(observe_lock(clients, t, &req.deployment_id, &views).await)?;
    if let Some((_, action)) = &lock {
        out.lock = Some(match action {
            plan::LockAction::Create => "free: would be taken".into(),
            plan::LockAction::Held => "already held by this deployment".into(),
            plan::LockAction::TakeOver => {
                "left by a finished deployment: would be taken over".into()
            }
            plan::LockAction::Refuse(why) => why.clone(),
        });
        if let plan::LockAction::Refuse(why) = action {
            col.refuse(CanaryError::DeploymentInProgress(why.clone()))?;
        }
    }
    let (Some(registry_ports), Some((lock_read, lock_action))) = (registry_ports, lock) else {
        return Ok(None);
    };
    Ok(Some(Ready {
        strategy,
        bound,
        service,
        live_slot,
        new_slot,
        old,
        next: Next::Create(Box::new(Create {
            base_td,
            next_td,
            template,
            network,
            placement,
            registry_ports,
            lock_read,
            lock_action,
        })),
    }))
}

pub async fn run(ctx: &Context, req: &CreateTaskSetRequest) -> Result<Deployment> {
    let observed = observe(&ctx.clients, req, Refusals::First).await;
    if let Some(e) = observed.first_error {
        return Err(e);
    }
    let Some(ready) = observed.ready else {
        return Err(CanaryError::AwsError(
            "create-taskset decided nothing and named no reason (a bug)".into(),
        ));
    };
    let t = &req.request.target;
    let c = &ctx.clients;
    let Ready {
        strategy,
        bound,
        service,
        live_slot,
        new_slot,
        old,
        next,
    } = ready;
    let to_ref = |v: &plan::TaskSetView| TaskSetRef {
        id: v.id.clone(),
        arn: v.arn.clone(),
    };
    let plan = |new: TaskSetRef, task_definition_arn: String, created_at: String| Deployment {
        id: req.deployment_id.clone(),
        target: t.clone(),
        strategy: strategy.clone(),
        // The plan states the metric delay it counted (the input's or the default).
        alarms: {
            let mut alarms = req.request.alarms.clone();
            alarms.metric_delay_seconds = Some(plan::metric_delay_seconds(&alarms));
            alarms
        },
        live_slot,
        new_slot,
        first_deployment: old.is_none(),
        old_task_set: old.as_ref().map(to_ref),
        new_task_set: new,
        task_definition_arn,
        created_at,
        rollback_bound: Some(bound.clone()),
    };
    let create = match next {
        Next::Resume(new) => {
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
            return Ok(plan(to_ref(&new), td, created));
        }
        Next::Create(create) => create,
    };
    // The first write: take the service's deployment lock (one conditional
    // Route 53 change; see plan::DeploymentLock for why it holds when
    // DescribeServices does not show a rival's task set yet).
    take_deployment_lock(
        ctx,
        t,
        &req.deployment_id,
        create.lock_read.as_ref(),
        &create.lock_action,
    )
    .await?;
    let td = match &create.next_td {
        Some(next) => ecs::register_revision(&c.ecs, next).await?,
        None => create.base_td.arn().to_string(),
    };
    let created = ecs::create_task_set(
        &c.ecs,
        &ecs::NewTaskSet {
            cluster: &t.cluster,
            service: &t.service,
            task_definition: &td,
            external_id: &req.deployment_id,
            registry_arn: &t.slots.get(new_slot).registry_arn,
            template: create.template.as_ref(),
            network_configuration: create
                .network
                .as_ref()
                .or(service.network_configuration.as_ref()),
            placement: create.placement.clone(),
            registry_ports: create.registry_ports.clone(),
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
    Ok(plan(to_ref(&created.view), td, time::format(time::now())))
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

/// Reads the service's deployment lock and decides what taking it means.
async fn observe_lock(
    clients: &Clients,
    t: &Target,
    deployment_id: &str,
    views: &[plan::TaskSetView],
) -> Result<(Option<route53::LockRecord>, plan::LockAction)> {
    let now = time::now().secs();
    let read = route53::read_lock(&clients.route53, t).await?;
    let parsed = read.as_ref().map(|r| plan::DeploymentLock::parse(&r.value));
    let action = plan::decide_lock(
        parsed.as_ref().map(Option::as_ref),
        deployment_id,
        now,
        views,
    );
    Ok((read, action))
}

/// Takes the service's deployment lock as [`observe_lock`] decided, or
/// refuses `DeploymentInProgress`.
async fn take_deployment_lock(
    ctx: &Context,
    t: &Target,
    deployment_id: &str,
    read: Option<&route53::LockRecord>,
    action: &plan::LockAction,
) -> Result<()> {
    let r53 = &ctx.clients.route53;
    let ours = plan::DeploymentLock {
        owner: deployment_id.to_string(),
        acquired_at: time::now().secs(),
    };
    let previous = match action {
        plan::LockAction::Held => return Ok(()),
        plan::LockAction::Refuse(why) => {
            return Err(CanaryError::DeploymentInProgress(why.clone()))
        }
        plan::LockAction::Create => None,
        plan::LockAction::TakeOver => read,
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
