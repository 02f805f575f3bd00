//! Pure decisions, no I/O: input validation, which slot is live and which is
//! idle, the weights for a step, whether a task set is ready, whether the
//! alarm gate passes. Everything here is tested directly.

use std::collections::HashSet;

use crate::model::{
    AlarmDetection, AlarmGate, AlarmReport, Approval, ApprovalInput, CapacityProviderItem,
    DeploymentRequest, DrainRequest, InsufficientData, KeepAliveBound, RollbackBound, Slot, Slots,
    Strategy, StrategyInput, Target, TaskSetNetwork, Weights,
};
use crate::states::{Readiness, StabilityStatus, StateValue, TaskSetStatus};
use crate::{CanaryError, Result};

pub const DEFAULT_STEPS: [u8; 3] = [10, 50, 100];
pub const DEFAULT_BAKE_SECONDS: u32 = 300;
pub const DEFAULT_READY_TIMEOUT_SECONDS: u32 = 600;
pub const DEFAULT_READY_POLL_SECONDS: u32 = 15;
/// Added to CNAME TTL + Cloud Map TTL before the old task set is deleted, so
/// resolvers that fetched an answer just before the switch have let it go.
pub const DRAIN_MARGIN_SECONDS: u32 = 10;
/// The highest CNAME TTL we write: the TTL bounds how fast a rollback reaches
/// clients, and 300 s (the seed article's value) is already a 5-minute rollback.
pub const MAX_TTL_SECONDS: u32 = 300;
/// The TTL both weighted records carry from the first weight shift to the
/// final weights: a rollback reaches a client at most this long after
/// Route 53 has propagated it.
pub const DEFAULT_DEPLOYMENT_TTL_SECONDS: u32 = 5;
/// The refused-above bound on "decision -> every client" (issue 13).
pub const DEFAULT_MAX_ROLLBACK_SECONDS: u32 = 90;
/// How long an approval wait lasts when `strategy.approval.timeoutSeconds`
/// is not given: an hour, long enough for someone to look at the dashboards.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u32 = 3_600;
/// Route 53 propagates a change to all its authoritative servers "within 60
/// seconds" (Route 53 FAQ; Developer Guide, "Checking the status of your
/// change": GetChange turns INSYNC when every server has it).
pub const ROUTE53_PROPAGATION_SECONDS: u32 = 60;
/// How long after a request its metric can be evaluated when the input does
/// not say (`alarms.metricDelaySeconds`): the CloudWatch agent collects and
/// publishes metrics every 60 s by default (CloudWatch User Guide, "Manually
/// create or edit the CloudWatch agent configuration file":
/// `metrics_collection_interval`, "The default value is 60"; its
/// `force_flush_interval` is also 60 s). An application that puts its own
/// metrics more often (the local clients: every 10 s) says so.
pub const DEFAULT_METRIC_DELAY_SECONDS: u32 = 60;
/// A metric delay above an hour is a typo (and no bake would cover it).
pub const MAX_METRIC_DELAY_SECONDS: u32 = 3_600;
/// Bakes, timeouts and drains longer than a day are almost surely a typo.
pub const MAX_WAIT_SECONDS: u32 = 86_400;
pub const MAX_ALARMS: usize = 100;
/// Route 53 allows at most 100 weighted records per name; we use two, but a
/// canary of more than 20 steps is a typo, not a strategy.
pub const MAX_STEPS: usize = 20;
/// A Standard execution fails outright (no Catch runs, the task set is
/// orphaned) when its history reaches 25,000 events (Step Functions quotas).
pub const EXECUTION_HISTORY_LIMIT: u32 = 25_000;
/// Events one readiness poll adds to the history: the check Task (entered,
/// scheduled, started, succeeded, exited), the Choice (entered, exited) and
/// the Wait (entered, exited). tests/statemachine counts them in the ASL and
/// holds this number to it.
pub const READINESS_EVENTS_PER_POLL: u32 = 9;
/// Readiness may spend at most a fifth of the history: the steps, bakes,
/// rollback and retries (3 events each, up to 6 per poll: still under 15,000
/// events at this count) need the rest.
pub const MAX_READY_POLLS: u32 = EXECUTION_HISTORY_LIMIT / 5 / READINESS_EVENTS_PER_POLL;
/// Events one baked canary step adds to the history: More steps? and
/// Prepare next step (2 each), Shift traffic (5), its Deployment Step
/// Started event (5), First shift? and Bake this step? (2 each), the bake
/// (6: it waits for a token), the gate (5) and its Deployment Step Passed
/// event (5). tests/statemachine measures it in a run and holds this number
/// to it; MAX_STEPS steps stay far below what readiness leaves.
pub const CANARY_STEP_EVENTS: u32 = 34;
/// ECS allows 5 task sets per service, DRAINING ones included (ECS quotas).
pub const MAX_TASK_SETS_PER_SERVICE: usize = 5;
/// ECS takes at most 20 capacity providers in a strategy, weights 0..=1000,
/// base 0..=100000 (CapacityProviderStrategyItem).
pub const MAX_CAPACITY_PROVIDERS: usize = 20;

// ------------------------------------------------------------------ validation

/// Checks everything about a request that can be checked without AWS.
pub fn validate_request(req: &DeploymentRequest) -> Result<()> {
    validate_target(&req.target)?;
    match (&req.image, &req.task_definition) {
        (Some(image), None) => validate_image(image)?,
        (None, Some(td)) => require_non_empty("taskDefinition", td)?,
        (Some(_), Some(_)) => {
            return Err(CanaryError::invalid(
                "give either image or taskDefinition, not both",
            ))
        }
        (None, None) => {
            return Err(CanaryError::invalid(
                "nothing to deploy: give image (e.g. \"repo/app:v2\") or taskDefinition",
            ))
        }
    }
    validate_strategy(&req.strategy)?;
    validate_alarms(&req.alarms)
}

fn require_non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(CanaryError::invalid(format!("{field} must not be empty")));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(CanaryError::invalid(format!(
            "{field} must not contain whitespace: {value:?}"
        )));
    }
    Ok(())
}

pub fn validate_target(t: &Target) -> Result<()> {
    require_non_empty("target.cluster", &t.cluster)?;
    require_non_empty("target.service", &t.service)?;
    require_non_empty("target.container", &t.container)?;
    validate_zone_id(&t.hosted_zone_id)?;
    validate_dns_name("target.recordName", &t.record_name)?;
    for slot in [Slot::Blue, Slot::Green] {
        let c = t.slots.get(slot);
        require_non_empty(
            &format!("target.slots.{slot}.setIdentifier"),
            &c.set_identifier,
        )?;
        if c.set_identifier.len() > 128 {
            return Err(CanaryError::invalid(format!(
                "target.slots.{slot}.setIdentifier is longer than 128 characters"
            )));
        }
        cloudmap_service_id(&c.registry_arn).map_err(|_| {
            CanaryError::invalid(format!(
                "target.slots.{slot}.registryArn must be a Cloud Map service ARN \
                 (arn:aws:servicediscovery:<region>:<account>:service/srv-...), got {:?}",
                c.registry_arn
            ))
        })?;
        validate_dns_name(&format!("target.slots.{slot}.dnsName"), &c.dns_name)?;
    }
    if let Some(n) = &t.network {
        if n.subnets.is_empty() {
            return Err(CanaryError::invalid(
                "target.network.subnets must list at least one subnet",
            ));
        }
        for (i, id) in n.subnets.iter().chain(&n.security_groups).enumerate() {
            require_non_empty(&format!("target.network id #{}", i + 1), id)?;
        }
        if let Some(lt) = n.launch_type.as_deref() {
            if !["FARGATE", "EC2"].contains(&lt) {
                return Err(CanaryError::invalid(format!(
                    "target.network.launchType must be FARGATE or EC2 (awsvpc networking), got {lt:?}"
                )));
            }
        }
        if let Some(cps) = &n.capacity_provider_strategy {
            validate_capacity_providers(cps, n.launch_type.is_some())?;
        }
    }
    let (b, g) = (&t.slots.blue, &t.slots.green);
    if b.set_identifier == g.set_identifier {
        return Err(CanaryError::invalid(
            "blue and green must have different setIdentifiers",
        ));
    }
    if b.registry_arn == g.registry_arn {
        return Err(CanaryError::invalid(
            "blue and green must be different Cloud Map services (registryArn)",
        ));
    }
    if same_dns_name(&b.dns_name, &g.dns_name) {
        return Err(CanaryError::invalid(
            "blue and green must point at different DNS names",
        ));
    }
    if same_dns_name(&t.record_name, &b.dns_name) || same_dns_name(&t.record_name, &g.dns_name) {
        return Err(CanaryError::invalid(
            "target.recordName must differ from the slots' DNS names (a CNAME to itself)",
        ));
    }
    Ok(())
}

fn validate_capacity_providers(cps: &[CapacityProviderItem], has_launch_type: bool) -> Result<()> {
    if has_launch_type {
        return Err(CanaryError::invalid(
            "target.network: give launchType or capacityProviderStrategy, not both \
             (CreateTaskSet refuses both)",
        ));
    }
    if cps.is_empty() || cps.len() > MAX_CAPACITY_PROVIDERS {
        return Err(CanaryError::invalid(format!(
            "target.network.capacityProviderStrategy must list 1..={MAX_CAPACITY_PROVIDERS} \
             capacity providers (omit it for the cluster's default strategy)"
        )));
    }
    for c in cps {
        require_non_empty(
            "target.network.capacityProviderStrategy[].capacityProvider",
            &c.capacity_provider,
        )?;
        if c.weight.is_some_and(|w| !(0..=1000).contains(&w))
            || c.base.is_some_and(|b| !(0..=100_000).contains(&b))
        {
            return Err(CanaryError::invalid(format!(
                "target.network.capacityProviderStrategy: {} needs weight 0..=1000 and base 0..=100000",
                c.capacity_provider
            )));
        }
    }
    Ok(())
}

fn validate_zone_id(id: &str) -> Result<()> {
    let bare = id.strip_prefix("/hostedzone/").unwrap_or(id);
    if bare.is_empty() || bare.len() > 32 || !bare.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CanaryError::invalid(format!(
            "target.hostedZoneId must be a Route 53 hosted zone id like Z0123456789ABC, got {id:?}"
        )));
    }
    Ok(())
}

fn validate_dns_name(field: &str, name: &str) -> Result<()> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').count() >= 2
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(CanaryError::invalid(format!(
            "{field} must be a DNS name like my-cname.ns-1, got {name:?}"
        )))
    }
}

/// DNS names compare case-insensitively and without the trailing dot that
/// Route 53 adds.
pub fn same_dns_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The Cloud Map service id (`srv-...`) at the end of a service ARN.
pub fn cloudmap_service_id(arn: &str) -> Result<&str> {
    let is_arn = arn.starts_with("arn:") && arn.contains(":servicediscovery:");
    match arn.rsplit_once(":service/") {
        Some((_, id)) if is_arn && id.starts_with("srv-") && id.len() > 4 && !id.contains('/') => {
            Ok(id)
        }
        _ => Err(CanaryError::invalid(format!(
            "not a Cloud Map service ARN: {arn:?}"
        ))),
    }
}

/// Accepts `[registry[:port]/]path[:tag][@sha256:<64 hex>]` as Docker does,
/// lower-case path components, tag up to 128 characters.
pub fn validate_image(image: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(CanaryError::invalid(format!(
            "image {image:?} is not an image reference ({why}); expected e.g. \
             123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2"
        )))
    };
    if image.is_empty() || image.len() > 1024 {
        return bad("empty or longer than 1024 characters");
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:");
        if !hex.is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())) {
            return bad("digest must be sha256:<64 hex digits>");
        }
    }
    // A tag is the part after the last ':' when that part has no '/'
    // (otherwise the ':' belonged to a registry port).
    let (name, tag) = match name_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let valid = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return bad("bad tag");
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !host_ok {
                return bad("bad registry host");
            }
            parts.remove(0);
        }
    }
    let path_ok = !parts.is_empty()
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
    if !path_ok {
        return bad("repository path must be lower-case letters, digits and . _ - separated by /");
    }
    Ok(())
}

pub fn validate_ttl(field: &str, ttl: u32) -> Result<()> {
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(CanaryError::invalid(format!(
            "{field} must be 1..={MAX_TTL_SECONDS} seconds (the TTL bounds how fast a rollback \
             reaches clients), got {ttl}"
        )));
    }
    Ok(())
}

fn validate_wait(field: &str, secs: u32, min: u32) -> Result<()> {
    if !(min..=MAX_WAIT_SECONDS).contains(&secs) {
        return Err(CanaryError::invalid(format!(
            "strategy.{field} must be {min}..={MAX_WAIT_SECONDS} seconds, got {secs}"
        )));
    }
    Ok(())
}

pub fn validate_steps(steps: &[u8]) -> Result<()> {
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(CanaryError::invalid(format!(
            "strategy.steps must list 1..={MAX_STEPS} percentages ending at 100, got {steps:?}"
        )));
    }
    if let Some(bad) = steps.iter().find(|p| **p == 0 || **p > 100) {
        return Err(CanaryError::invalid(format!(
            "strategy.steps: each step is a percentage 1..=100, got {bad}"
        )));
    }
    if !steps.windows(2).all(|w| w[0] < w[1]) {
        return Err(CanaryError::invalid(format!(
            "strategy.steps must be strictly increasing, got {steps:?}"
        )));
    }
    if steps.last() != Some(&100) {
        return Err(CanaryError::invalid(format!(
            "strategy.steps must end at 100 (the last step moves all traffic), got {steps:?}"
        )));
    }
    Ok(())
}

pub fn validate_strategy(s: &StrategyInput) -> Result<()> {
    if let Some(steps) = &s.steps {
        validate_steps(steps)?;
    }
    if let Some(v) = s.bake_seconds {
        validate_wait("bakeSeconds", v, 0)?;
    }
    if let Some(v) = s.ready_timeout_seconds {
        validate_wait("readyTimeoutSeconds", v, 1)?;
    }
    if let Some(v) = s.ready_poll_seconds {
        // 0 would poll as fast as Step Functions runs: thousands of history
        // events a minute.
        validate_wait("readyPollSeconds", v, 1)?;
    }
    let timeout = s
        .ready_timeout_seconds
        .unwrap_or(DEFAULT_READY_TIMEOUT_SECONDS);
    if let Some(poll) = s.ready_poll_seconds {
        if poll > timeout {
            return Err(CanaryError::invalid(format!(
                "strategy.readyPollSeconds ({poll}) is longer than readyTimeoutSeconds ({timeout})"
            )));
        }
        let polls = ready_polls(timeout, poll);
        if polls > MAX_READY_POLLS {
            return Err(CanaryError::invalid(format!(
                "strategy.readyTimeoutSeconds {timeout} with readyPollSeconds {poll} is {polls} \
                 readiness checks, {} execution history events; at most {MAX_READY_POLLS} checks \
                 fit (an execution fails outright at {EXECUTION_HISTORY_LIMIT} events): poll at \
                 least every {}s",
                u64::from(polls) * u64::from(READINESS_EVENTS_PER_POLL),
                min_ready_poll_seconds(timeout)
            )));
        }
    }
    if let Some(v) = s.drain_seconds {
        validate_wait("drainSeconds", v, 0)?;
    }
    if s.unsafe_short_drain == Some(true) && s.drain_seconds.is_none() {
        return Err(CanaryError::invalid(
            "strategy.unsafeShortDrain needs strategy.drainSeconds (the drain to use instead of \
             the exact one)",
        ));
    }
    if let Some(v) = s.ttl_seconds {
        validate_ttl("strategy.ttlSeconds", v)?;
    }
    if let Some(v) = s.deployment_ttl_seconds {
        validate_ttl("strategy.deploymentTtlSeconds", v)?;
    }
    if let Some(v) = s.max_rollback_seconds {
        validate_wait("maxRollbackSeconds", v, 1)?;
    }
    if let Some(v) = s.client_max_connection_age_seconds {
        validate_wait("clientMaxConnectionAgeSeconds", v, 1)?;
    }
    if let Some(a) = &s.approval {
        let steps = s.steps.as_deref().unwrap_or(&DEFAULT_STEPS);
        validate_approval(a, steps)?;
    }
    Ok(())
}

/// `strategy.approval`: each pause names a step of `steps` by its
/// percentage, once; the wait is 1 s..=a day (the registry record and the
/// task's timeout both end with it).
pub fn validate_approval(a: &ApprovalInput, steps: &[u8]) -> Result<()> {
    if a.before_steps.is_empty() {
        return Err(CanaryError::invalid(format!(
            "strategy.approval.beforeSteps is empty: name the steps to pause before by their \
             percentage, one of {steps:?} (or leave strategy.approval out)"
        )));
    }
    let mut seen = HashSet::new();
    for p in &a.before_steps {
        if !steps.contains(p) {
            return Err(CanaryError::invalid(format!(
                "strategy.approval.beforeSteps: {p} is not a step; name steps by their \
                 percentage, one of {steps:?}"
            )));
        }
        if !seen.insert(p) {
            return Err(CanaryError::invalid(format!(
                "strategy.approval.beforeSteps lists {p} twice"
            )));
        }
    }
    if let Some(v) = a.timeout_seconds {
        validate_wait("approval.timeoutSeconds", v, 1)?;
    }
    Ok(())
}

/// `strategy.approval` with its defaults, or `None` when not asked for.
pub fn complete_approval(a: Option<&ApprovalInput>) -> Option<Approval> {
    a.map(|a| Approval {
        before_steps: a.before_steps.clone(),
        timeout_seconds: a
            .timeout_seconds
            .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
        on_timeout: a.on_timeout.unwrap_or_default(),
    })
}

pub fn validate_alarms(a: &AlarmGate) -> Result<()> {
    if a.names.len() > MAX_ALARMS {
        return Err(CanaryError::invalid(format!(
            "alarms.names lists {} alarms; at most {MAX_ALARMS}",
            a.names.len()
        )));
    }
    let mut seen = HashSet::new();
    for name in &a.names {
        if name.trim().is_empty() || name.len() > 255 {
            return Err(CanaryError::invalid(format!(
                "alarms.names: {name:?} is not an alarm name (1..=255 characters)"
            )));
        }
        if !seen.insert(name) {
            return Err(CanaryError::invalid(format!(
                "alarms.names lists {name:?} twice"
            )));
        }
    }
    if let Some(d) = a.metric_delay_seconds {
        if d > MAX_METRIC_DELAY_SECONDS {
            return Err(CanaryError::invalid(format!(
                "alarms.metricDelaySeconds is {d}; at most {MAX_METRIC_DELAY_SECONDS} (the \
                 application's metric publish interval + CloudWatch ingestion)"
            )));
        }
    }
    Ok(())
}

/// `alarms.metricDelaySeconds`, or its default.
pub fn metric_delay_seconds(a: &AlarmGate) -> u32 {
    a.metric_delay_seconds
        .unwrap_or(DEFAULT_METRIC_DELAY_SECONDS)
}

/// Fills the strategy's defaults. `record_ttl` is the weighted records'
/// current TTL, `cloudmap_ttl` the longest TTL of the slots' Cloud Map records.
///
/// TTLs: the canary steps write `deploymentTtlSeconds` (default 5 s, never
/// longer than the records' TTL unless asked for); the promotion (and a
/// first deployment) writes `ttlSeconds` (default: the records' TTL, so a
/// user who sets it changes the TTL for good, as before); a rollback writes
/// the records' TTL before the deployment back.
pub fn complete_strategy(s: &StrategyInput, record_ttl: u32, cloudmap_ttl: u32) -> Strategy {
    let ttl = s.ttl_seconds.unwrap_or(record_ttl);
    let deployment_ttl = s
        .deployment_ttl_seconds
        .unwrap_or_else(|| DEFAULT_DEPLOYMENT_TTL_SECONDS.min(record_ttl.max(1)));
    // The longest a drain can be after the final change is INSYNC: clients
    // may hold answers given under any TTL the records had.
    let bound = DrainTerms {
        cname_ttls: vec![record_ttl, deployment_ttl, ttl],
        cloudmap_ttl,
        margin: DRAIN_MARGIN_SECONDS,
    }
    .seconds();
    let unsafe_short = s.unsafe_short_drain.unwrap_or(false);
    let drain_seconds = match s.drain_seconds {
        Some(d) if unsafe_short => d,
        Some(d) => d.max(bound),
        None => bound,
    };
    Strategy {
        steps: s.steps.clone().unwrap_or_else(|| DEFAULT_STEPS.to_vec()),
        bake_seconds: s.bake_seconds.unwrap_or(DEFAULT_BAKE_SECONDS),
        ready_timeout_seconds: s
            .ready_timeout_seconds
            .unwrap_or(DEFAULT_READY_TIMEOUT_SECONDS),
        ready_poll_seconds: s.ready_poll_seconds.unwrap_or_else(|| {
            default_ready_poll_seconds(
                s.ready_timeout_seconds
                    .unwrap_or(DEFAULT_READY_TIMEOUT_SECONDS),
            )
        }),
        drain_seconds,
        ttl_seconds: ttl,
        deployment_ttl_seconds: deployment_ttl,
        original_ttl_seconds: record_ttl,
        cloudmap_ttl_seconds: cloudmap_ttl,
        drain_override_seconds: s.drain_seconds,
        unsafe_short_drain: unsafe_short,
        max_rollback_seconds: s
            .max_rollback_seconds
            .unwrap_or(DEFAULT_MAX_ROLLBACK_SECONDS),
        client_max_connection_age_seconds: s.client_max_connection_age_seconds,
        approval: complete_approval(s.approval.as_ref()),
    }
}

// ------------------------------------------------------------------ rollback bound

/// "Decision -> clients" at create: Route 53's documented propagation bound
/// (no INSYNC is measured yet) plus the CNAME TTL in force during the
/// deployment for new connections; keep-alive connections as
/// [`KeepAliveBound`] says. Alarm detection is reported per alarm, apart.
pub fn rollback_bound(s: &Strategy, detection: Vec<AlarmDetection>) -> RollbackBound {
    let ttl = if s.deployment_ttl_seconds == 0 {
        s.ttl_seconds
    } else {
        s.deployment_ttl_seconds
    };
    bound_from_terms(
        ROUTE53_PROPAGATION_SECONDS,
        "documented",
        ttl,
        Some((
            s.client_max_connection_age_seconds,
            rollback_drain_seconds(s),
        )),
        detection,
    )
}

/// The exact drain of the new slot after a rollback during the canary,
/// counted from the rollback's INSYNC ([`exact_drain`] with the new slot's
/// only exposure, the deployment TTL): deployment TTL + Cloud Map TTL +
/// margin, lengthened (or, with `unsafeShortDrain`, replaced) by
/// `strategy.drainSeconds`.
pub fn rollback_drain_seconds(s: &Strategy) -> u32 {
    let ttl = if s.deployment_ttl_seconds == 0 {
        s.ttl_seconds
    } else {
        s.deployment_ttl_seconds
    };
    let computed = drain_seconds(ttl, s.cloudmap_ttl_seconds);
    match s.drain_override_seconds {
        Some(m) if s.unsafe_short_drain => m,
        Some(m) => computed.max(m),
        None => computed,
    }
}

/// The bound with a measured INSYNC time counted: when a change took longer
/// to be INSYNC than the bound's propagation term, that time replaces it
/// (source `measured`); a shorter one proves nothing about the next change
/// and leaves the bound as it is.
pub fn with_measured_insync(b: &RollbackBound, measured: u32) -> RollbackBound {
    if measured <= b.propagation_seconds {
        return b.clone();
    }
    bound_from_terms(
        measured,
        "measured",
        b.ttl_seconds,
        b.keep_alive
            .as_ref()
            .map(|k| (k.connection_age_seconds, k.drain_after_insync_seconds)),
        b.detection.clone(),
    )
}

/// The bound from its terms. `keep_alive`: the clients' maximum connection
/// age (if known) and the new slot's drain after the rollback's INSYNC.
///
/// New connections: propagation + TTL (the last stale answer expires then).
/// Keep-alive: a connection opened on such an answer just before it expired
/// lives up to the connection age more, so propagation + TTL + age; but
/// the drain deletes the canary's task set at propagation + drain, which
/// ends every connection to it: the smaller of the two. Age unknown: the
/// drain.
fn bound_from_terms(
    propagation: u32,
    source: &str,
    ttl: u32,
    keep_alive: Option<(Option<u32>, u32)>,
    detection: Vec<AlarmDetection>,
) -> RollbackBound {
    let seconds = propagation.saturating_add(ttl);
    let mut statement = format!(
        "a rollback reaches new connections within {seconds} s of its decision (Route 53 \
         propagation {propagation} s {source} + CNAME TTL {ttl} s)"
    );
    let keep_alive = keep_alive.map(|(age, drain_after_insync)| {
        let drain = propagation.saturating_add(drain_after_insync);
        let by_age = age.map(|a| seconds.saturating_add(a));
        let (k, term) = match by_age {
            Some(a) if a < drain => (a, "connectionAge"),
            _ => (drain, "drain"),
        };
        let clause = match (age, term) {
            (Some(a), "connectionAge") => format!(
                "; keep-alive connections within {k} s ({seconds} s + max connection age {a} s)"
            ),
            (Some(a), _) => format!(
                "; keep-alive connections within {k} s, when the drain deletes the canary \
                 (propagation {propagation} s + drain {drain_after_insync} s; sooner than \
                 {seconds} s + max connection age {a} s)"
            ),
            (None, _) => format!(
                "; keep-alive connections stay on the canary until the drain deletes it, {k} s \
                 after the decision (propagation {propagation} s + drain {drain_after_insync} s; \
                 strategy.clientMaxConnectionAgeSeconds bounds it sooner)"
            ),
        };
        statement.push_str(&clause);
        KeepAliveBound {
            seconds: k,
            connection_age_seconds: age,
            drain_seconds: drain,
            drain_after_insync_seconds: drain_after_insync,
            term: term.to_string(),
        }
    });
    if !detection.is_empty() {
        let terms: Vec<String> = detection
            .iter()
            .map(|d| match d.seconds {
                Some(s) => format!("{} {s} s", d.alarm),
                None => format!("{} unknown", d.alarm),
            })
            .collect();
        statement.push_str(&format!("; bad version -> decision: {}", terms.join(", ")));
    }
    RollbackBound {
        seconds,
        propagation_seconds: propagation,
        propagation_source: source.to_string(),
        ttl_seconds: ttl,
        detection,
        keep_alive,
        statement,
    }
}

/// Refuses a deployment whose decision -> clients bound exceeds
/// `strategy.maxRollbackSeconds`, naming each term and the setting to change.
pub fn check_rollback_bound(bound: &RollbackBound, max: u32) -> Result<()> {
    if bound.seconds <= max {
        return Ok(());
    }
    Err(CanaryError::TargetMisconfigured(format!(
        "a rollback could take {}s to reach every client (Route 53 propagation {}s {} + CNAME \
         TTL during the deployment {}s), more than strategy.maxRollbackSeconds {max}s; lower \
         strategy.deploymentTtlSeconds or raise strategy.maxRollbackSeconds",
        bound.seconds, bound.propagation_seconds, bound.propagation_source, bound.ttl_seconds
    )))
}

/// How many readiness checks a wait of `timeout` polled every `poll` runs at
/// most: one at the start, one after each poll until the deadline.
pub fn ready_polls(timeout: u32, poll: u32) -> u32 {
    timeout.div_ceil(poll.max(1)).saturating_add(1)
}

/// The shortest poll interval that keeps `timeout` within [`MAX_READY_POLLS`].
pub fn min_ready_poll_seconds(timeout: u32) -> u32 {
    timeout.div_ceil(MAX_READY_POLLS - 1).max(1)
}

/// The default poll interval grows with a long timeout so the history bound
/// holds without the user computing it.
pub fn default_ready_poll_seconds(timeout: u32) -> u32 {
    DEFAULT_READY_POLL_SECONDS.max(min_ready_poll_seconds(timeout))
}

/// What the wait before deleting a task set that lost its traffic must
/// cover, counted from the moment the weight change that took its traffic is
/// INSYNC (every Route 53 server answers the new weights): a client may hold
/// a CNAME answer that leads to the slot for the longest CNAME TTL in force
/// while the slot had weight, then the slot's A records for their TTL.
///
/// Today the CNAME TTLs are the records' TTL before the deployment and the
/// TTL it writes. Issue 13's exact drain grows this into the instants the
/// slot's weight was last above zero with the TTL in force at each, plus the
/// measured INSYNC time; [`DrainTerms::explain`] is what the history shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainTerms {
    /// Every CNAME TTL under which an answer naming the slot may have been given.
    pub cname_ttls: Vec<u32>,
    /// The slot's Cloud Map record TTL (its A records).
    pub cloudmap_ttl: u32,
    /// Resolver and clock slack.
    pub margin: u32,
}

impl DrainTerms {
    pub fn longest_cname_ttl(&self) -> u32 {
        self.cname_ttls.iter().copied().max().unwrap_or(0)
    }

    pub fn seconds(&self) -> u32 {
        self.longest_cname_ttl()
            .saturating_add(self.cloudmap_ttl)
            .saturating_add(self.margin)
    }

    /// One sentence naming each term.
    pub fn explain(&self) -> String {
        format!(
            "{}s = longest CNAME TTL in force {}s (of {:?}) + Cloud Map TTL {}s + margin {}s, \
             from the moment the change is INSYNC",
            self.seconds(),
            self.longest_cname_ttl(),
            self.cname_ttls,
            self.cloudmap_ttl,
            self.margin
        )
    }
}

/// How long to wait after the last weight change before deleting a task set
/// when one CNAME TTL was ever in force.
pub fn drain_seconds(cname_ttl: u32, cloudmap_ttl: u32) -> u32 {
    DrainTerms {
        cname_ttls: vec![cname_ttl],
        cloudmap_ttl,
        margin: DRAIN_MARGIN_SECONDS,
    }
    .seconds()
}

/// A span during which DNS answers naming a slot were given under one TTL:
/// answers may have been given until `end` (epoch seconds), each held `ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub end: i64,
    pub ttl: u32,
    /// What the span is, for the explanation.
    pub what: String,
}

/// The end of a change's span: its INSYNC instant when GetChange said so,
/// else the request plus Route 53's documented propagation bound (or the
/// call's end, if later).
pub fn change_end(requested: i64, ended: i64, insync: bool) -> i64 {
    if insync {
        ended
    } else {
        ended.max(requested.saturating_add(i64::from(ROUTE53_PROPAGATION_SECONDS)))
    }
}

/// The exact drain: the instant no client can still hold an answer that
/// leads to the slot. Every span's end + its TTL (a resolver may have
/// cached the CNAME until then), the latest of them, + the slot's Cloud Map
/// TTL (an A record fetched just before the CNAME expired) + margin.
/// `minimum` (strategy.drainSeconds, counted from `change_end`) may only
/// lengthen it unless `unsafe_short`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactDrain {
    pub exposures: Vec<Exposure>,
    pub cloudmap_ttl: u32,
    pub margin: u32,
    /// The end of the change that took the slot's last traffic.
    pub change_end: i64,
    pub minimum: Option<u32>,
    pub unsafe_short: bool,
}

impl ExactDrain {
    fn computed(&self) -> i64 {
        let latest = self
            .exposures
            .iter()
            .map(|e| e.end.saturating_add(i64::from(e.ttl)))
            .max()
            .unwrap_or(self.change_end);
        latest
            .max(self.change_end)
            .saturating_add(i64::from(self.cloudmap_ttl))
            .saturating_add(i64::from(self.margin))
    }

    /// Epoch seconds the task set may be deleted at.
    pub fn until(&self) -> i64 {
        let computed = self.computed();
        match self.minimum {
            Some(m) if self.unsafe_short => self.change_end.saturating_add(i64::from(m)),
            Some(m) => computed.max(self.change_end.saturating_add(i64::from(m))),
            None => computed,
        }
    }

    /// Seconds from the change's end to [`ExactDrain::until`].
    pub fn seconds(&self) -> u32 {
        u32::try_from(self.until().saturating_sub(self.change_end).max(0)).unwrap_or(u32::MAX)
    }

    /// How the instant was derived, term by term (relative to the change's end).
    pub fn explain(&self) -> String {
        let rel = |t: i64| t.saturating_sub(self.change_end);
        let spans: Vec<String> = self
            .exposures
            .iter()
            .map(|e| {
                format!(
                    "{} until {:+}s held {}s -> {:+}s",
                    e.what,
                    rel(e.end),
                    e.ttl,
                    rel(e.end.saturating_add(i64::from(e.ttl)))
                )
            })
            .collect();
        let mut out = format!(
            "delete {}s after the change was INSYNC: latest of [{}] + Cloud Map TTL {}s + margin \
             {}s = {:+}s",
            self.seconds(),
            spans.join("; "),
            self.cloudmap_ttl,
            self.margin,
            rel(self.computed())
        );
        match self.minimum {
            Some(m) if self.unsafe_short => out.push_str(&format!(
                "; strategy.drainSeconds {m}s used instead (unsafeShortDrain)"
            )),
            Some(m) => out.push_str(&format!(
                "; strategy.drainSeconds {m}s may only lengthen it"
            )),
            None => {}
        }
        out
    }
}

/// The exact drain of the slot losing its traffic with a change that
/// requested at `requested` and ended at `ended` (`insync`).
///
/// - The slot that served before the deployment had weight under the
///   original TTL until the first shift was INSYNC (answers before the first
///   shift), then under the deployment TTL until this change.
/// - The new slot only ever had weight under the deployment TTL (the first
///   shift writes weights and TTL in one batch), and under `ttlSeconds` too
///   if the promotion wrote before a rollback.
pub fn exact_drain(d: &DrainRequest, requested: i64, ended: i64, insync: bool) -> ExactDrain {
    let s = &d.strategy;
    let end = change_end(requested, ended, insync);
    // Older plans had no deployment TTL: every step wrote ttlSeconds.
    let deployment_ttl = if s.deployment_ttl_seconds == 0 {
        s.ttl_seconds
    } else {
        s.deployment_ttl_seconds
    };
    let original = if s.original_ttl_seconds == 0 {
        s.ttl_seconds
    } else {
        s.original_ttl_seconds
    };
    let mut exposures = Vec::new();
    if d.served_before {
        let first_end = d
            .first_shift
            .as_ref()
            .and_then(|f| {
                let req = crate::time::parse("firstShift.requestedAt", &f.requested_at)
                    .or_else(|_| crate::time::parse("firstShift.changedAt", &f.changed_at))
                    .ok()?;
                let chg = crate::time::parse("firstShift.changedAt", &f.changed_at).ok()?;
                Some(change_end(req.secs(), chg.secs(), f.insync))
            })
            .unwrap_or(end);
        exposures.push(Exposure {
            end: first_end.min(end),
            ttl: original,
            what: "answers before the first shift (original TTL)".into(),
        });
    }
    exposures.push(Exposure {
        end,
        ttl: deployment_ttl,
        what: "answers during the canary (deployment TTL)".into(),
    });
    if !d.served_before && d.promotion_tried {
        exposures.push(Exposure {
            end,
            ttl: s.ttl_seconds,
            what: "answers after the promotion's write (ttlSeconds)".into(),
        });
    }
    ExactDrain {
        exposures,
        cloudmap_ttl: s.cloudmap_ttl_seconds,
        margin: DRAIN_MARGIN_SECONDS,
        change_end: end,
        minimum: s.drain_override_seconds,
        unsafe_short: s.unsafe_short_drain,
    }
}

// ------------------------------------------------------------------ slots

/// A task set as far as slot decisions care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSetView {
    pub id: String,
    pub arn: String,
    /// `PRIMARY`, `ACTIVE` or `DRAINING`.
    pub status: TaskSetStatus,
    pub external_id: Option<String>,
    /// The Cloud Map services it registers into.
    pub registry_arns: Vec<String>,
    pub task_definition: String,
    pub created_at: Option<String>,
}

/// Which slot a task set serves, from its service registry.
pub fn slot_of(slots: &Slots, ts: &TaskSetView) -> Option<Slot> {
    [Slot::Blue, Slot::Green].into_iter().find(|s| {
        ts.registry_arns
            .iter()
            .any(|r| r == &slots.get(*s).registry_arn)
    })
}

/// What `create-taskset` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotDecision {
    /// Create the new task set in `new_slot`; `old` serves `live_slot`.
    Deploy {
        live_slot: Slot,
        new_slot: Slot,
        old: TaskSetView,
    },
    /// The service has no task set: create the first one in blue.
    First,
    /// This deployment already created its task set (a retry): return it.
    Resume {
        live_slot: Slot,
        new_slot: Slot,
        old: Option<TaskSetView>,
        new: TaskSetView,
    },
}

/// Decides live and idle slot from the service's task sets and the current
/// weights. Refuses while another deployment is in progress.
pub fn decide_slots(
    slots: &Slots,
    task_sets: &[TaskSetView],
    weights: Weights,
    deployment_id: &str,
) -> Result<SlotDecision> {
    let live: Vec<&TaskSetView> = task_sets
        .iter()
        .filter(|t| !t.status.is_draining())
        .collect();
    let mut placed = Vec::with_capacity(live.len());
    for ts in &live {
        let slot = slot_of(slots, ts).ok_or_else(|| {
            CanaryError::TargetMisconfigured(format!(
                "task set {} registers into {:?}, which is neither slot's Cloud Map service",
                ts.id, ts.registry_arns
            ))
        })?;
        placed.push((slot, *ts));
    }

    if let Some((new_slot, new)) = placed
        .iter()
        .find(|(_, t)| t.external_id.as_deref() == Some(deployment_id))
    {
        let old = placed
            .iter()
            .find(|(s, t)| *s != *new_slot && t.id != new.id)
            .map(|(_, t)| (*t).clone());
        return Ok(SlotDecision::Resume {
            live_slot: new_slot.other(),
            new_slot: *new_slot,
            old,
            new: (*new).clone(),
        });
    }

    match placed.as_slice() {
        [] => Ok(SlotDecision::First),
        [(slot, old)] => {
            if weights.get(slot.other()) != 0 {
                return Err(CanaryError::DeploymentInProgress(format!(
                    "traffic is split (blue {}, green {}) although only the {slot} slot has a \
                     task set ({}); finish or roll back the other deployment first",
                    weights.blue, weights.green, old.id
                )));
            }
            Ok(SlotDecision::Deploy {
                live_slot: *slot,
                new_slot: slot.other(),
                old: (*old).clone(),
            })
        }
        many => Err(CanaryError::DeploymentInProgress(format!(
            "the service has {} task sets ({}); another deployment is under way",
            many.len(),
            many.iter()
                .map(|(s, t)| format!("{} in {s}", t.external_id.as_deref().unwrap_or(&t.id)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Refuses a new task set when the service already has the five ECS
/// allows (DRAINING ones count: ECS quotas), naming them, before ECS answers
/// CreateTaskSet with an unexplained InvalidParameterException.
pub fn check_task_set_room(task_sets: &[TaskSetView]) -> Result<()> {
    if task_sets.len() < MAX_TASK_SETS_PER_SERVICE {
        return Ok(());
    }
    let named: Vec<String> = task_sets
        .iter()
        .map(|t| match &t.external_id {
            Some(x) => format!("{} ({}, {x})", t.id, t.status),
            None => format!("{} ({})", t.id, t.status),
        })
        .collect();
    Err(CanaryError::TooManyTaskSets(format!(
        "the service has {} task sets and ECS allows {MAX_TASK_SETS_PER_SERVICE} (DRAINING ones \
         count): {}; delete the stale ones (aws ecs delete-task-set --force) or wait until the \
         DRAINING ones are gone",
        task_sets.len(),
        named.join(", ")
    )))
}

// ------------------------------------------------------------------ placement

/// Where a new task set runs: exactly one of a launch type and a capacity
/// provider strategy, or neither (the cluster's default capacity provider
/// strategy). CreateTaskSet refuses both at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    LaunchType(String),
    CapacityProviders(Vec<CapacityProviderItem>),
    ClusterDefault,
}

/// What a task set (or service) reports, reduced to one placement: a
/// non-empty capacity provider strategy wins over a launch type, because
/// ECS may report the launch type a strategy resolved to next to it, and
/// copying both would make every later CreateTaskSet fail.
pub fn placement_of(launch_type: Option<&str>, cps: &[CapacityProviderItem]) -> Placement {
    if !cps.is_empty() {
        Placement::CapacityProviders(cps.to_vec())
    } else if let Some(lt) = launch_type.filter(|l| !l.is_empty()) {
        Placement::LaunchType(lt.to_string())
    } else {
        Placement::ClusterDefault
    }
}

/// The placement of a first task set: the input's `target.network` says
/// (launchType or capacityProviderStrategy); without it, what the service
/// itself was created with; without that, the cluster's default strategy
/// (never a forced FARGATE).
pub fn first_placement(network: Option<&TaskSetNetwork>, service: Placement) -> Placement {
    match network {
        Some(n) => {
            let cps = n.capacity_provider_strategy.as_deref().unwrap_or_default();
            match placement_of(n.launch_type.as_deref(), cps) {
                Placement::ClusterDefault => service,
                chosen => chosen,
            }
        }
        None => service,
    }
}

// ------------------------------------------------------------------ deployment lock

/// The first label of the lock record: a TXT record
/// `_ecs-dns-canary-lock.<recordName>` in the user's hosted zone.
pub const LOCK_LABEL: &str = "_ecs-dns-canary-lock";
/// How long a lock whose owner shows no task set still holds: longer than
/// ECS takes to show a new task set in DescribeServices (eventually
/// consistent reads: seconds) plus create-taskset's own run time, shorter
/// than any real deployment (its readiness wait alone takes longer). After
/// it, an owner without a task set has ended (failed and cleaned up) or
/// crashed before creating one.
pub const LOCK_GRACE_SECONDS: i64 = 120;

/// Why one deployment per service holds even when ECS reads are stale.
///
/// The overlap check reads DescribeServices, which is eventually consistent:
/// a rival's task set created a moment ago may not be listed, so two
/// deployments (one ECR push of `v2` and `latest` is two events) can both
/// pick the same idle slot. Reading until stable cannot prove a rival's
/// absence, so the lock is an atomic conditional write instead: a Route 53
/// change batch is applied entirely or not at all, `CREATE` fails when the
/// record exists and `DELETE` fails unless the record's value matches
/// exactly (Route 53 API Reference, ChangeResourceRecordSets). Acquiring is
/// `CREATE` (no lock yet) or `DELETE <value read> + CREATE <ours>` in one
/// batch (a compare-and-swap over a finished owner): of two deployments
/// racing, exactly one change succeeds. The record lives in the zone the
/// user already gives us, so no new resource is needed; it costs one read
/// and one write per deployment against Route 53's 5 requests/s (a
/// throttled call is `Retryable`).
///
/// There is no release step: a lock is free once its owner is visibly done
/// (its task set is the only one left: promoted, or it is gone after
/// [`LOCK_GRACE_SECONDS`]: failed and cleaned up, or crashed before
/// creating). A crash therefore blocks the service for at most the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLock {
    pub owner: String,
    /// Epoch seconds when it was taken.
    pub acquired_at: i64,
}

impl DeploymentLock {
    /// The TXT value (quoted, as Route 53 stores TXT strings).
    pub fn value(&self) -> String {
        format!("\"owner={} at={}\"", self.owner, self.acquired_at)
    }

    /// Reads a TXT value written by [`DeploymentLock::value`].
    pub fn parse(value: &str) -> Option<Self> {
        let inner = value.trim().trim_matches('"');
        let mut owner = None;
        let mut at = None;
        for part in inner.split_whitespace() {
            if let Some(o) = part.strip_prefix("owner=") {
                owner = Some(o.to_string());
            } else if let Some(a) = part.strip_prefix("at=") {
                at = a.parse().ok();
            }
        }
        Some(Self {
            owner: owner.filter(|o| !o.is_empty())?,
            acquired_at: at?,
        })
    }
}

/// The lock record's name for a target's record name.
pub fn lock_record_name(record_name: &str) -> String {
    format!("{LOCK_LABEL}.{}", record_name.trim_end_matches('.'))
}

/// What create-taskset does about the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAction {
    /// No lock: CREATE ours.
    Create,
    /// Ours already (a retry): nothing to write.
    Held,
    /// The owner is done: swap its value for ours in one batch.
    TakeOver,
    /// Another deployment holds it: refuse (`DeploymentInProgress`).
    Refuse(String),
}

/// Decides from the lock read (`None`: no record; `Some(None)`: a value this
/// version cannot read, taken over like a finished owner) and the service's
/// task sets whether this deployment may take the lock.
pub fn decide_lock(
    existing: Option<Option<&DeploymentLock>>,
    ours: &str,
    now: i64,
    task_sets: &[TaskSetView],
) -> LockAction {
    let lock = match existing {
        None => return LockAction::Create,
        Some(None) => return LockAction::TakeOver,
        Some(Some(l)) => l,
    };
    if lock.owner == ours {
        return LockAction::Held;
    }
    let live: Vec<&TaskSetView> = task_sets
        .iter()
        .filter(|t| !t.status.is_draining())
        .collect();
    let owned: Vec<&&TaskSetView> = live
        .iter()
        .filter(|t| t.external_id.as_deref() == Some(lock.owner.as_str()))
        .collect();
    let age = now.saturating_sub(lock.acquired_at);
    if !owned.is_empty() {
        if live.len() == 1 && owned.iter().all(|t| t.status.is_primary()) {
            // Its task set is the only one and PRIMARY: promoted (a first
            // deployment's lone task set is not PRIMARY until it has all
            // the traffic); the deployment is over.
            return LockAction::TakeOver;
        }
        return LockAction::Refuse(format!(
            "deployment {} holds the service's lock (taken {age}s ago) and its task set is \
             not promoted yet; wait for it to finish or roll it back",
            lock.owner
        ));
    }
    if age < LOCK_GRACE_SECONDS {
        return LockAction::Refuse(format!(
            "deployment {} took the service's lock {age}s ago and its task set may not be \
             visible yet (ECS reads are eventually consistent); try again in {}s if it ended",
            lock.owner,
            LOCK_GRACE_SECONDS - age
        ));
    }
    LockAction::TakeOver
}

/// Two create-taskset calls for one service can overlap: both read one task
/// set, both create theirs. Each re-reads the service after creating; the
/// task set created later (then the larger id) yields. Returns the rival
/// `ours` must yield to, if any. `others` are the service's task sets other
/// than ours and the live one, with their creation instants.
pub fn rival_to_yield_to<'a, T: Ord>(
    ours: (&T, &str),
    others: &'a [(T, TaskSetView)],
) -> Option<&'a TaskSetView> {
    others
        .iter()
        .filter(|(t, v)| !v.status.is_draining() && (t, v.id.as_str()) < ours)
        .map(|(_, v)| v)
        .next()
}

// ------------------------------------------------------------------ delete

/// What delete-taskset knows when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteInputs<'a> {
    pub task_set: &'a TaskSetView,
    pub slot: Slot,
    /// The records' weights (read unless this is a first deployment's undo).
    pub weights: Option<Weights>,
    /// `Some(id)` when the request is the undo of deployment `id`'s failed
    /// first deployment.
    pub first_deployment_id: Option<&'a str>,
    /// The service's other task sets that are not DRAINING (read only for a
    /// first deployment's undo).
    pub other_task_sets: &'a [TaskSetView],
}

/// Whether deleting the task set can drop traffic that something serves.
/// A task set that is PRIMARY, or whose slot still has weight, is refused;
/// except the task set of a failed first deployment, which is deleted
/// whatever the weights say: the service had no task set before the
/// deployment (so nobody was served), and the deletion puts it back exactly
/// as it was, weights untouched. That exception holds only for the task set
/// carrying that deployment's id while it is the service's only task set.
pub fn may_delete(i: &DeleteInputs<'_>) -> Result<()> {
    let ts = i.task_set;
    if let Some(id) = i.first_deployment_id {
        if ts.external_id.as_deref() != Some(id) {
            return Err(CanaryError::UnsafeDelete(format!(
                "task set {} was not created by deployment {id} (its externalId is {:?}); \
                 only a first deployment's own task set is deleted while its slot has weight",
                ts.id, ts.external_id
            )));
        }
        if let Some(other) = i.other_task_sets.iter().find(|o| !o.status.is_draining()) {
            return Err(CanaryError::UnsafeDelete(format!(
                "task set {} is not the service's only task set ({} is {}): this is not a first \
                 deployment any more",
                ts.id, other.id, other.status
            )));
        }
        return Ok(());
    }
    if ts.status.is_primary() {
        return Err(CanaryError::UnsafeDelete(format!(
            "task set {} is PRIMARY; promote another task set first",
            ts.id
        )));
    }
    let Some(w) = i.weights else {
        return Err(CanaryError::UnsafeDelete(format!(
            "the weights of the {} slot are unknown",
            i.slot
        )));
    };
    let weight = w.get(i.slot);
    if weight > 0 {
        return Err(CanaryError::UnsafeDelete(format!(
            "the {} slot still has weight {weight} (blue {} / green {}); move its traffic away first",
            i.slot, w.blue, w.green
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------ weights

/// `slot` gets `percent` of the traffic, the other slot the rest. Route 53
/// weights are the percentages themselves: they always sum to 100, so the
/// group is never all-zero.
pub fn weights_for(slot: Slot, percent: u8) -> Result<Weights> {
    if percent > 100 {
        return Err(CanaryError::invalid(format!(
            "percent must be 0..=100, got {percent}"
        )));
    }
    let rest = 100 - percent;
    Ok(match slot {
        Slot::Blue => Weights {
            blue: percent,
            green: rest,
        },
        Slot::Green => Weights {
            blue: rest,
            green: percent,
        },
    })
}

/// The slots that would receive traffic with these weights.
pub fn weighted_slots(w: Weights) -> Vec<Slot> {
    [Slot::Blue, Slot::Green]
        .into_iter()
        .filter(|s| w.get(*s) > 0)
        .collect()
}

// ------------------------------------------------------------------ readiness

/// What readiness needs to know about a task set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessInputs {
    pub stability_status: StabilityStatus,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub healthy_instances: u32,
    pub unhealthy_instances: u32,
    /// RegisterInstance operations of the slot's Cloud Map service still
    /// SUBMITTED or PENDING.
    pub pending_registrations: u32,
}

/// Ready means ECS calls the task set steady, every desired task runs, and
/// Cloud Map has at least max(1, desired) healthy instances of it: a failed
/// task set still resolves (Cloud Map returns up to 8 unhealthy records when
/// none is healthy), so DNS alone proves nothing.
pub fn readiness(r: &ReadinessInputs) -> Readiness {
    let need = u32::try_from(r.desired.max(1)).unwrap_or(1);
    if r.stability_status != StabilityStatus::SteadyState {
        return Readiness::NotReady {
            reason: format!(
                "ECS reports {} ({} of {} tasks running, {} pending)",
                r.stability_status.as_str(),
                r.running,
                r.desired,
                r.pending
            ),
        };
    }
    if r.running < r.desired {
        return Readiness::NotReady {
            reason: format!("{} of {} tasks running", r.running, r.desired),
        };
    }
    // RegisterInstance is asynchronous: until its operation succeeds the
    // slot's DNS name does not answer with the instance (AWS Cloud Map API
    // Reference, RegisterInstance and GetOperation). Healthy is not yet
    // resolvable; moving weight then would send clients to a name that
    // answers with nothing new (or nothing at all).
    if r.pending_registrations > 0 {
        return Readiness::NotReady {
            reason: format!(
                "{} Cloud Map registration(s) of the slot still in progress: its name does not \
                 resolve to the new instances yet",
                r.pending_registrations
            ),
        };
    }
    if r.healthy_instances < need {
        return Readiness::NotReady {
            reason: format!(
                "{} of {need} Cloud Map instances healthy ({} unhealthy)",
                r.healthy_instances, r.unhealthy_instances
            ),
        };
    }
    Readiness::Ready {
        reason: format!(
            "{} tasks running, {} Cloud Map instances healthy",
            r.running, r.healthy_instances
        ),
    }
}

/// How long a task set may be MISSING from DescribeTaskSets after its
/// creation before it counts as gone: ECS reads are eventually consistent
/// (a new task set can be missing for a moment), and TaskSetNotFound sends
/// the execution to clean-up, whose delete would then call it "already gone"
/// and leave it running. Bounded: after this, MISSING is believed.
pub const NEW_TASK_SET_VISIBILITY_GRACE_SECONDS: u64 = 60;

/// `Some(reason)`: a MISSING task set `waited` seconds after its creation is
/// probably not visible yet: poll again. `None`: it is gone.
pub fn missing_task_set(waited: u64) -> Option<String> {
    (waited < NEW_TASK_SET_VISIBILITY_GRACE_SECONDS).then(|| {
        format!(
            "ECS does not list the task set yet ({waited}s after its creation; reads are \
             eventually consistent, up to {NEW_TASK_SET_VISIBILITY_GRACE_SECONDS}s is waited for)"
        )
    })
}

/// How a slot's Cloud Map service learns whether an instance is healthy
/// (its `HealthCheckConfig` / `HealthCheckCustomConfig`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// No health check configuration: Cloud Map never knows, reports every
    /// instance `UNKNOWN` and its DNS answers every registered instance
    /// (AWS Cloud Map Developer Guide, "Cloud Map service health check
    /// configuration"; DiscoverInstances ignores the health filter there).
    None,
    /// `HealthCheckCustomConfig`: ECS reports each task's health
    /// (UpdateInstanceCustomHealthStatus) from its container health check.
    Custom,
    /// `HealthCheckConfig`: a Route 53 health check probes each instance.
    Route53,
}

/// An instance's status as GetInstancesHealthStatus reports it (`Missing`:
/// the instance is listed but has no status entry yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    Healthy,
    Unhealthy,
    Unknown,
    Missing,
}

/// Whether one registered instance counts as ready to take traffic.
///
/// - No health check: Cloud Map cannot tell (every instance is `UNKNOWN`
///   and DNS serves them all), so a registered instance counts: whether its
///   task is healthy is ECS's word, and readiness also asks ECS for
///   `STEADY_STATE` (which includes passing container health checks).
/// - Custom or Route 53 health check: only `HEALTHY` counts. `UNKNOWN` or no
///   status yet means the first check has not reported: not ready yet (the
///   safe reading; AWS documents no guarantee about the initial status).
pub fn counts_as_healthy(kind: HealthCheckKind, status: InstanceStatus) -> bool {
    match kind {
        HealthCheckKind::None => true,
        HealthCheckKind::Custom | HealthCheckKind::Route53 => status == InstanceStatus::Healthy,
    }
}

// ------------------------------------------------------------------ alarm gate

/// An alarm as observed: its state now and whether it was in ALARM at some
/// moment of the watched window (from its history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmObservation {
    pub name: String,
    /// The SDK's `Unknown` variant when DescribeAlarms sent none (or a value
    /// this SDK does not know): neither ALARM nor INSUFFICIENT_DATA.
    pub state: StateValue,
    pub reason: String,
    pub fired_in_window: bool,
}

/// Seconds the alarm history is read before the window's start: CloudWatch's
/// clock and the function's differ a little.
pub const ALARM_CLOCK_SLACK_SECONDS: i64 = 5;

/// Whether the gate must read an alarm's history to know if it was in ALARM
/// since `from` (epoch seconds). An alarm in ALARM now fails the gate anyway;
/// one whose last state update (`last_change`, from DescribeAlarms'
/// StateUpdatedTimestamp / StateTransitionedTimestamp) is before `from` has
/// held its present, non-ALARM state through the whole window. Without a
/// timestamp, read the history.
pub fn needs_history(state: &StateValue, last_change: Option<i64>, from: i64) -> bool {
    if *state == StateValue::Alarm {
        return false;
    }
    last_change.is_none_or(|t| t >= from)
}

/// Error codes with which AWS says "too many requests".
pub fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "RequestThrottled"
        )
    )
}

/// Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS
/// Architecture Blog): a wait in `[0, min(cap, base * 2^attempt))` chosen by
/// `random`.
pub fn backoff(
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    random: u64,
) -> std::time::Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.min(20)))
        .min(cap);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis(random % ms)
}

/// The gate's verdict over the observed alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVerdict {
    pub passed: bool,
    pub reports: Vec<AlarmReport>,
    pub insufficient_data: Vec<String>,
    /// Why the gate failed, one sentence naming each culprit.
    pub failure: Option<String>,
}

pub fn gate_verdict(observed: &[AlarmObservation], policy: InsufficientData) -> GateVerdict {
    let mut culprits = Vec::new();
    let mut insufficient = Vec::new();
    for a in observed {
        if a.state == StateValue::Alarm {
            culprits.push(format!("{} is in ALARM ({})", a.name, a.reason));
        } else if a.fired_in_window {
            culprits.push(format!(
                "{} was in ALARM during the bake (now {})",
                a.name,
                a.state.as_str()
            ));
        } else if a.state == StateValue::InsufficientData {
            match policy {
                InsufficientData::Pass => insufficient.push(a.name.clone()),
                InsufficientData::Fail => culprits.push(format!(
                    "{} has INSUFFICIENT_DATA and insufficientData is \"fail\"",
                    a.name
                )),
            }
        }
    }
    let reports = observed
        .iter()
        .map(|a| AlarmReport {
            name: a.name.clone(),
            state: a.state.as_str().to_string(),
            fired_in_window: a.fired_in_window || a.state == StateValue::Alarm,
            reason: a.reason.clone(),
        })
        .collect();
    GateVerdict {
        passed: culprits.is_empty(),
        reports,
        insufficient_data: insufficient,
        failure: (!culprits.is_empty()).then(|| culprits.join("; ")),
    }
}

// ------------------------------------------------------------------ bake vs alarms

/// What an alarm needs to see a regression, as read from DescribeAlarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmWindow {
    /// A metric alarm: its Period and EvaluationPeriods.
    Metric {
        period: u32,
        evaluation_periods: u32,
    },
    /// A composite alarm: the windows of the children it names that could be
    /// read (a child that is itself composite counts by its own children,
    /// one level deep; unreadable children are left out).
    Composite(Vec<AlarmWindow>),
    /// Nothing to compute from (a metric-math alarm without a period).
    Unknown,
}

/// Seconds from a regression to the alarm going ALARM, worst case:
///
/// - Period x (EvaluationPeriods + 1): periods are aligned on the clock
///   (CloudWatch aggregates by period start), and a regression that starts
///   inside a period dilutes it, so the alarm is sure to see it only in the
///   EvaluationPeriods whole periods after that one;
/// - the metric delay: the last request of those periods reaches CloudWatch
///   only when the application publishes it (`alarms.metricDelaySeconds`,
///   [`DEFAULT_METRIC_DELAY_SECONDS`]);
/// - the evaluation interval: alarms of 10 and 30 s periods are evaluated
///   every 10 s, others every minute (CloudWatch User Guide, "Alarm
///   evaluation"; aws-facts.md).
///
/// The local world measured 11.6-38.4 s from a bad version's first request
/// to ALARM for a 10-s, 1-period alarm on clients that publish every 10 s:
/// this gives 40 s (the formula before, Period x EvaluationPeriods + 10 s,
/// gave 20 s). A composite is as slow as its slowest child. `None`: not
/// computable.
pub fn alarm_horizon_seconds(w: &AlarmWindow, metric_delay: u32) -> Option<u32> {
    alarm_horizon(w, metric_delay).map(|h| h.seconds())
}

/// The terms of [`alarm_horizon_seconds`] for one metric alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmHorizon {
    pub period: u32,
    /// EvaluationPeriods + 1 (the period the regression starts in).
    pub periods: u32,
    pub evaluation_interval: u32,
    pub metric_delay: u32,
}

impl AlarmHorizon {
    pub fn seconds(&self) -> u32 {
        self.period
            .saturating_mul(self.periods)
            .saturating_add(self.evaluation_interval)
            .saturating_add(self.metric_delay)
    }

    /// "40s = 2 x 10s periods + 10s evaluation + 10s metric delay".
    pub fn explain(&self) -> String {
        format!(
            "{}s = {} x {}s periods (evaluation periods + the one a regression starts in) + {}s \
             evaluation + {}s metric delay",
            self.seconds(),
            self.periods,
            self.period,
            self.evaluation_interval,
            self.metric_delay
        )
    }
}

/// The slowest metric alarm's horizon in `w` (a composite: its children).
pub fn alarm_horizon(w: &AlarmWindow, metric_delay: u32) -> Option<AlarmHorizon> {
    match w {
        AlarmWindow::Metric {
            period,
            evaluation_periods,
        } => Some(AlarmHorizon {
            period: *period,
            periods: (*evaluation_periods).max(1).saturating_add(1),
            evaluation_interval: if *period < 60 { 10 } else { 60 },
            metric_delay,
        }),
        AlarmWindow::Composite(children) => children
            .iter()
            .filter_map(|c| alarm_horizon(c, metric_delay))
            .max_by_key(AlarmHorizon::seconds),
        AlarmWindow::Unknown => None,
    }
}

/// The alarm names a composite alarm's rule refers to:
/// `ALARM("a") OR OK(b) AND INSUFFICIENT_DATA("c d")` gives a, b, c d.
/// A reference may also be an alarm ARN (its last `:alarm:` part is the name).
pub fn composite_children(rule: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for func in ["ALARM(", "OK(", "INSUFFICIENT_DATA("] {
        let mut rest = rule;
        while let Some(at) = rest.find(func) {
            // "OK(" inside "...LOOK(" is not a function: require a boundary.
            let boundary = rest[..at]
                .chars()
                .last()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
            let after = &rest[at + func.len()..];
            let Some(end) = after.find(')') else { break };
            if boundary {
                let inner = after[..end].trim().trim_matches('"').trim();
                let name = inner
                    .rsplit_once(":alarm:")
                    .map_or(inner, |(_, n)| n)
                    .to_string();
                if !name.is_empty() && !out.contains(&name) {
                    out.push(name);
                }
            }
            rest = &after[end..];
        }
    }
    out
}

/// Refuses a bake shorter than a gate alarm needs to see a regression
/// ([`alarm_horizon_seconds`], the metric delay included): a regression
/// whose alarm fires after the last gate can no longer roll back once the
/// old task set is deleted. `allow_short` (the explicit
/// `strategy.allowShortBake`) accepts it. Alarms whose window cannot be
/// computed do not bound the bake (they are named in the log).
pub fn check_bake(
    bake_seconds: u32,
    windows: &[(String, AlarmWindow)],
    allow_short: bool,
    metric_delay: u32,
) -> Result<()> {
    if allow_short {
        return Ok(());
    }
    let short: Vec<String> = windows
        .iter()
        .filter_map(|(name, w)| {
            alarm_horizon(w, metric_delay)
                .filter(|h| h.seconds() > bake_seconds)
                .map(|h| format!("{name} needs {}", h.explain()))
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(CanaryError::BakeTooShort(format!(
        "strategy.bakeSeconds is {bake_seconds}s but {}: an alarm could fire after the last gate, \
         when the old task set is gone; lengthen the bake, set alarms.metricDelaySeconds if the \
         application publishes its metrics sooner than {metric_delay}s, or set \
         strategy.allowShortBake: true",
        short.join("; ")
    )))
}

// ------------------------------------------------------------------ slot registries

/// What a slot's Cloud Map service is, for the checks below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryShape {
    /// `DNS_PRIVATE`, `DNS_PUBLIC` or `HTTP`.
    pub namespace_type: String,
    /// The DNS record types of the service (`A`, `AAAA`, `SRV`, `CNAME`).
    pub record_types: Vec<String>,
}

/// A slot works only if its Cloud Map service answers A records in a private
/// DNS namespace: the weighted CNAME points at that name, and a name with
/// only SRV (or no DNS at all, an HTTP namespace) resolves to nothing, an
/// outage at the first weight shift.
pub fn check_slot_registry(slot: Slot, r: &RegistryShape) -> Result<()> {
    if r.namespace_type != "DNS_PRIVATE" {
        return Err(CanaryError::TargetMisconfigured(format!(
            "the {slot} slot's Cloud Map service is in a {} namespace; it must be in a private \
             DNS namespace (DNS_PRIVATE) for the CNAME to resolve",
            if r.namespace_type.is_empty() {
                "typeless"
            } else {
                r.namespace_type.as_str()
            }
        )));
    }
    if !r.record_types.iter().any(|t| t == "A") {
        return Err(CanaryError::TargetMisconfigured(format!(
            "the {slot} slot's Cloud Map service has DNS records {:?} but no A record: the \
             CNAME to it would resolve to nothing",
            r.record_types
        )));
    }
    Ok(())
}

/// The task definition facts the service registry depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNetworking {
    /// `awsvpc`, `bridge`, `host` or `none` (absent = bridge on EC2).
    pub network_mode: String,
    /// (container name, container port) of every port mapping.
    pub ports: Vec<(String, i32)>,
}

/// The containerName / containerPort the new task set's service registry
/// carries. ECS needs both for bridge and host networking and for SRV
/// records (ECS ServiceRegistry reference); with awsvpc and A records only
/// they are optional. `copied` is what the live task set's registry has;
/// it must still match a port mapping of the new task definition. Without
/// it, `container` (the deployed container) and its first mapped port.
pub fn registry_ports(
    td: &TaskNetworking,
    any_srv: bool,
    container: &str,
    copied: Option<(String, i32)>,
) -> Result<Option<(String, i32)>> {
    let mode = if td.network_mode.is_empty() {
        "bridge"
    } else {
        td.network_mode.as_str()
    };
    let needed = any_srv || mode == "bridge" || mode == "host";
    if let Some((name, port)) = copied {
        if td.ports.iter().any(|(n, p)| *n == name && *p == port) {
            return Ok(Some((name, port)));
        }
        if needed {
            return Err(CanaryError::TargetMisconfigured(format!(
                "the live task set registers container {name} port {port} in Cloud Map, but the \
                 new task definition maps no such port ({mode} networking needs it)"
            )));
        }
        return Ok(None);
    }
    if !needed {
        return Ok(None);
    }
    match td.ports.iter().find(|(n, _)| n == container) {
        Some((n, p)) => Ok(Some((n.clone(), *p))),
        None => {
            Err(CanaryError::TargetMisconfigured(format!(
            "the task definition uses {mode} networking{} so Cloud Map needs a container port, \
             but container {container:?} has no port mapping",
            if any_srv { " and a slot has SRV records," } else { "," }
        )))
        }
    }
}

// ------------------------------------------------------------------ abort and repair

/// The state names of `statemachine/deployment.asl.json` that abort and
/// repair decide on (tests/statemachine checks each exists).
pub mod states {
    pub const CREATE: &str = "Create task set in idle slot";
    pub const READINESS: [&str; 5] = [
        // The Deployment Started event: the plan exists, traffic has not moved.
        "Announce deployment started",
        "Check new task set readiness",
        "New task set ready?",
        "Wait for new task set",
        "First deployment?",
    ];
    pub const FIRST_SHIFT: &str = "Send all traffic to first task set";
    /// The approval wait: a bake-like task on a token (check-health
    /// registers it in the bake registry, so alarm events end it too).
    pub const APPROVAL: &str = "Wait for approval";
    pub const CANARY: [&str; 17] = [
        "Start canary",
        "More steps?",
        "Prepare next step",
        // `strategy.approval` configured: the same step, plus whether to pause.
        "Prepare next step (approval)",
        "Approval before this step?",
        "Announce waiting for approval",
        APPROVAL,
        // Timed out with `onTimeout: approve`: on to the shift.
        "Approval timed out",
        "Shift traffic",
        "Announce step started",
        "First shift?",
        "Remember first shift",
        "Bake this step?",
        "Bake",
        "Check alarms",
        "Announce step passed",
        // `promote --full` passed the gate: on its way to promotion, which
        // has not started (abort still stops it, repair still restores).
        "Promote requested",
    ];
    pub const SHIFT: &str = "Shift traffic";
    pub const PROMOTE: &str = "Promote new task set";
    pub const PROMOTED: [&str; 2] = ["Drain old task set", "Delete old task set"];
    pub const ROLLING_BACK: [&str; 12] = [
        "Alarm fired",
        "Step failed",
        "Promotion failed",
        "Aborted by engineer",
        "Rejected by engineer",
        "Not approved in time",
        "New task set not ready",
        "First traffic shift failed",
        "Roll back traffic",
        "Announce rollback",
        "Drain new task set",
        "Delete new task set",
    ];
    /// End states reached through the execution's own rollback or cleanup
    /// (or its success): nothing is left for a repair. The `Announce ...`
    /// states here send the final deployment event: the work is done.
    pub const DONE: [&str; 8] = [
        "Deployment complete",
        "Deployment failed",
        "Could not create task set",
        "Old task set not deleted",
        "Announce success",
        "Announce failure",
        "Announce create failure",
        "Announce old task set kept",
    ];
    /// End states where the execution's own rollback or cleanup failed.
    pub const OWN_PATH_FAILED: [&str; 4] = [
        "Rollback failed",
        "Cleanup failed",
        "Announce rollback failure",
        "Announce cleanup failure",
    ];
}

/// Where an execution is, from the last state it entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No state yet, or create-taskset has not answered.
    Creating,
    /// The new task set is being waited for; traffic has not moved.
    Readiness,
    /// A service's first deployment is sending it all traffic.
    FirstShift,
    /// Canary steps: shift, bake, gate.
    Canary,
    /// The promotion's weight change is in flight.
    Promoting,
    /// Promoted: draining or deleting the old task set.
    Promoted,
    /// On its own rollback or pre-traffic cleanup path.
    RollingBack,
    /// Ended through its own path (success, rollback done, refused).
    Done,
    /// Ended because its own rollback or cleanup failed.
    OwnPathFailed,
    /// A state this version does not know.
    Unknown(String),
}

/// The phase from the states entered, oldest first.
pub fn phase(entered: &[String]) -> Phase {
    let Some(last) = entered.last().map(String::as_str) else {
        return Phase::Creating;
    };
    if last == states::CREATE {
        Phase::Creating
    } else if states::READINESS.contains(&last) {
        Phase::Readiness
    } else if last == states::FIRST_SHIFT {
        Phase::FirstShift
    } else if states::CANARY.contains(&last) {
        Phase::Canary
    } else if last == states::PROMOTE {
        Phase::Promoting
    } else if states::PROMOTED.contains(&last) {
        Phase::Promoted
    } else if states::ROLLING_BACK.contains(&last) {
        Phase::RollingBack
    } else if states::DONE.contains(&last) {
        Phase::Done
    } else if states::OWN_PATH_FAILED.contains(&last) {
        Phase::OwnPathFailed
    } else {
        Phase::Unknown(last.to_string())
    }
}

/// What `ecs-dns-canary abort` does to a running execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortAction {
    /// Baking: fail the bake's task token with `Aborted`; the execution
    /// takes its own rollback path at once.
    FailToken,
    /// No token to fail (creating, readiness, shift, gate): StopExecution
    /// with `RolledBackOnAbort`; the repair function rolls back.
    Stop,
    /// Nothing changed; the text says why.
    Refuse(String),
}

/// Decides the abort from the execution's phase and whether it waits on a
/// bake's task token now.
pub fn abort_action(phase: &Phase, baking: bool) -> AbortAction {
    match phase {
        Phase::Canary if baking => AbortAction::FailToken,
        Phase::Creating | Phase::Readiness | Phase::Canary => AbortAction::Stop,
        Phase::FirstShift | Phase::Promoting | Phase::Promoted => AbortAction::Refuse(
            "the deployment is promoting or promoted (the new task set takes all traffic): \
             an abort changes nothing now; deploy the previous version to go back"
                .into(),
        ),
        Phase::RollingBack => {
            AbortAction::Refuse("the deployment is already rolling back: nothing to abort".into())
        }
        Phase::Done | Phase::OwnPathFailed => {
            AbortAction::Refuse("the deployment has ended: nothing to abort".into())
        }
        Phase::Unknown(s) => AbortAction::Refuse(format!(
            "the execution is in state {s:?}, which this version does not know: nothing changed"
        )),
    }
}

/// What `ecs-dns-canary approve` / `reject` do to a running execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalAnswer {
    /// The execution waits in **Wait for approval**: answer its token.
    Answer,
    /// Nothing changed; the text says why.
    Refuse(String),
}

/// Decides an approve or reject from the execution's phase and the state of
/// the task token it waits on now (`None`: no token). A bake's token is
/// never answered: `promote` ends a bake, `abort` rolls it back.
pub fn approval_answer(phase: &Phase, token_state: Option<&str>) -> ApprovalAnswer {
    match (phase, token_state) {
        (Phase::Canary, Some(states::APPROVAL)) => ApprovalAnswer::Answer,
        (_, Some(other)) => ApprovalAnswer::Refuse(format!(
            "the execution is in {other}, not waiting for approval: nothing changed \
             (`promote` ends a bake, `abort` rolls back)"
        )),
        (Phase::Done | Phase::OwnPathFailed, None) => {
            ApprovalAnswer::Refuse("the deployment has ended: nothing to approve or reject".into())
        }
        (Phase::RollingBack, None) => ApprovalAnswer::Refuse(
            "the deployment is rolling back: nothing to approve or reject".into(),
        ),
        (_, None) => ApprovalAnswer::Refuse(
            "the execution is not waiting for approval now: nothing changed (try again when \
             `watch` shows it waiting)"
                .into(),
        ),
    }
}

/// The cause a reject writes on the approval wait's token.
pub fn reject_cause(caller: &str, reason: &str) -> String {
    format!("rejected by {caller} during {}: {reason}", states::APPROVAL)
}

/// The cause an abort writes (token failure or StopExecution).
pub fn abort_cause(caller: &str, reason: &str, state: Option<&str>) -> String {
    match state {
        Some(s) => format!("aborted by {caller} during {s}: {reason}"),
        None => format!("aborted by {caller}: {reason}"),
    }
}

/// What the repair function does for an execution that ended ABORTED,
/// TIMED_OUT or FAILED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairDecision {
    /// Nothing to do; the text says why (logged, and the report's reason).
    Leave(String),
    /// Undo the deployment: all traffic back to `live` (only when traffic may
    /// have moved, through set-weight's rollback request: INSYNC confirmed,
    /// exact drain), wait for the drain, delete the new task set.
    Restore {
        live: Slot,
        traffic_moved: bool,
        promotion_tried: bool,
    },
    /// Promoted before it stopped: the new slot has all traffic; wait for
    /// the promotion's drain and delete the old task set.
    Finish { drain_until: Option<String> },
}

/// Decides the repair from the execution's status, the states it entered
/// and whether its plan (create-taskset's answer) is in the history.
pub fn repair_decision(status: &str, entered: &[String], plan: Option<&Slot>) -> RepairDecision {
    if !matches!(status, "ABORTED" | "TIMED_OUT" | "FAILED") {
        return RepairDecision::Leave(format!("the execution is {status}: nothing to repair"));
    }
    let ph = phase(entered);
    let entered_any = |names: &[&str]| entered.iter().any(|e| names.contains(&e.as_str()));
    match ph {
        Phase::Done => {
            return RepairDecision::Leave(
                "the execution passed its own rollback or cleanup: nothing to repair".into(),
            )
        }
        Phase::Promoted => return RepairDecision::Finish { drain_until: None },
        _ => {}
    }
    let Some(live) = plan else {
        return RepairDecision::Leave(
            "the execution ended before create-taskset answered: no plan in its history, \
             nothing is guessed (a task set it may have created carries its name as externalId)"
                .into(),
        );
    };
    RepairDecision::Restore {
        live: *live,
        traffic_moved: entered_any(&[states::SHIFT, states::PROMOTE, states::FIRST_SHIFT]),
        promotion_tried: entered_any(&[states::PROMOTE]),
    }
}

/// Whether the service's world moved on since the execution ended: another
/// deployment of the service runs, or holds the service's lock. `Some(why)`
/// means leave everything alone.
pub fn world_moved_on(
    ours: &str,
    lock_owner: Option<&str>,
    others_running: &[String],
) -> Option<String> {
    if let Some(other) = others_running.first() {
        return Some(format!(
            "deployment {other} of the same service is running: the world moved on, \
             nothing touched"
        ));
    }
    match lock_owner {
        Some(owner) if owner != ours => Some(format!(
            "deployment {owner} holds the service's lock since: the world moved on, nothing touched"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
