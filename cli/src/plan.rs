//! `plan`: what a deployment would do, and every reason it would be refused,
//! without changing anything. The checks and decisions are create-taskset's
//! own ([`canary_engine::handlers::create_taskset::observe`], the function
//! the handler runs before its first write), made here with read-only calls
//! (Describe/List/Get on ECS, Route 53, Cloud Map, CloudWatch); this module
//! only adds the arithmetic of the steps and durations and the printing.

use std::io::Write;

use aws_config::{BehaviorVersion, Region};
use canary_engine::handlers::create_taskset::{observe, Observation, Refusal, Refusals};
use canary_engine::model::{CreateTaskSetRequest, DeploymentRequest, Slot, Strategy, Weights};
use canary_engine::plan::{weights_for, ROUTE53_PROPAGATION_SECONDS};
use canary_engine::runtime::Clients;
use serde::Serialize;
use serde_json::Value;

use crate::args::{GlobalArgs, PlanArgs};
use crate::deploy::derive_name;
use crate::error::{CliError, Result};
use crate::output::print_json;

/// Exit code of `plan` for each `error_type` create-taskset would refuse
/// with (the first refusal decides). 0: a deployment would start.
pub const REFUSAL_EXIT_CODES: &[(&str, u8)] = &[
    ("InvalidInput", 10),
    ("TargetNotFound", 11),
    ("TargetMisconfigured", 12),
    ("DeploymentInProgress", 13),
    ("TooManyTaskSets", 14),
    ("BakeTooShort", 15),
    ("AlarmFiring", 16),
    ("Throttled", 17),
    ("Retryable", 18),
    ("AwsError", 19),
];

/// Any other `error_type` (none today).
pub const EXIT_OTHER_REFUSAL: u8 = 20;

/// The exit code for a refusal's `error_type`.
pub fn exit_code_for(error_type: &str) -> u8 {
    REFUSAL_EXIT_CODES
        .iter()
        .find(|(t, _)| *t == error_type)
        .map_or(EXIT_OTHER_REFUSAL, |(_, c)| *c)
}

/// One canary step: the weights it writes and the bake after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPlan {
    pub step: usize,
    pub percent: u8,
    pub weights: Weights,
    pub bake_seconds: u32,
    /// `strategy.approval` pauses before this step's shift for up to this
    /// long (`ecs-dns-canary approve` / `reject` answer it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_timeout_seconds: Option<u32>,
}

/// The steps as set-weight would write them, the new slot getting `percent`.
pub fn steps_plan(strategy: &Strategy, new_slot: Slot) -> Vec<StepPlan> {
    strategy
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            weights_for(new_slot, *p).ok().map(|weights| StepPlan {
                step: i + 1,
                percent: *p,
                weights,
                bake_seconds: strategy.bake_seconds,
                approval_timeout_seconds: strategy
                    .approval
                    .as_ref()
                    .filter(|a| a.before_steps.contains(p))
                    .map(|a| a.timeout_seconds),
            })
        })
        .collect()
}

/// How long the deployment can take, term by term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    pub ready_timeout_seconds: u32,
    pub bake_seconds_total: u32,
    /// Weight changes: one per step, and the promotion's.
    pub weight_changes: u32,
    /// Route 53's documented propagation, counted once per weight change.
    pub propagation_seconds_each: u32,
    /// The longest drain before the old task set is deleted.
    pub drain_seconds: u32,
    pub worst_case_seconds: u32,
    pub explain: String,
}

/// The worst case of a successful deployment: readiness up to its timeout,
/// each step's weight change INSYNC after Route 53's documented 60 s and its
/// bake, the promotion's change, and the longest drain. (A first deployment
/// makes one change and no drain.)
pub fn durations(strategy: &Strategy, first_deployment: bool) -> Durations {
    let steps = u32::try_from(strategy.steps.len()).unwrap_or(u32::MAX);
    let (changes, bakes, drain) = if first_deployment {
        (1, 0, 0)
    } else {
        (
            steps.saturating_add(1),
            steps.saturating_mul(strategy.bake_seconds),
            strategy.drain_seconds,
        )
    };
    let propagation = changes.saturating_mul(ROUTE53_PROPAGATION_SECONDS);
    let total = strategy
        .ready_timeout_seconds
        .saturating_add(bakes)
        .saturating_add(propagation)
        .saturating_add(drain);
    Durations {
        ready_timeout_seconds: strategy.ready_timeout_seconds,
        bake_seconds_total: bakes,
        weight_changes: changes,
        propagation_seconds_each: ROUTE53_PROPAGATION_SECONDS,
        drain_seconds: drain,
        worst_case_seconds: total,
        explain: format!(
            "{total} s = readiness up to {} s + bakes {bakes} s + {changes} weight change(s) x \
             {ROUTE53_PROPAGATION_SECONDS} s Route 53 propagation + drain up to {drain} s",
            strategy.ready_timeout_seconds
        ),
    }
}

/// What `plan` prints (`--json`: this document).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    pub would_start: bool,
    pub exit_code: u8,
    /// The first refusal's `error_type` (what create-taskset would answer).
    pub error_type: Option<String>,
    pub steps: Vec<StepPlan>,
    pub durations: Option<Durations>,
    #[serde(flatten)]
    pub observation: Observation,
}

impl PlanReport {
    pub fn new(observation: Observation) -> Self {
        let would_start = observation.would_start();
        let error_type = observation.refusals.first().map(|r| r.error_type.clone());
        let exit_code = match (&error_type, would_start) {
            (Some(t), _) => exit_code_for(t),
            (None, true) => crate::error::EXIT_OK,
            (None, false) => EXIT_OTHER_REFUSAL,
        };
        let steps = match (&observation.strategy, observation.new_slot) {
            (Some(s), Some(slot)) if observation.first_deployment == Some(false) => {
                steps_plan(s, slot)
            }
            _ => Vec::new(),
        };
        let durations = observation
            .strategy
            .as_ref()
            .map(|s| durations(s, observation.first_deployment.unwrap_or(false)));
        Self {
            would_start,
            exit_code,
            error_type,
            steps,
            durations,
            observation,
        }
    }
}

/// The engine's clients on the same endpoint and region as the other commands.
pub async fn clients(global: &GlobalArgs) -> Clients {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Clients::from_config(&loader.load().await)
}

/// Reads the file, builds create-taskset's exact payload
/// (`{"deploymentId": <execution name>, "request": <input>}`) and observes.
pub async fn run(
    global: &GlobalArgs,
    a: &PlanArgs,
    now: aws_smithy_types::DateTime,
) -> Result<PlanReport> {
    let text = std::fs::read_to_string(&a.file).map_err(|source| CliError::ReadFile {
        path: a.file.clone(),
        source,
    })?;
    let refused = |e: canary_engine::CanaryError| {
        let mut o = Observation::default();
        o.refusals.push(Refusal::from(&e));
        o.first_error = Some(e);
        o
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => crate::deploy::apply(v, &a.overrides),
        Err(e) => {
            return Ok(PlanReport::new(refused(
                canary_engine::CanaryError::invalid(e.to_string()),
            )))
        }
    };
    let name = match &a.name {
        Some(n) => n.clone(),
        None => serde_json::from_value::<DeploymentRequest>(value.clone())
            .map(|r| derive_name(&r, now))
            .unwrap_or_else(|_| "plan".into()),
    };
    let payload = serde_json::json!({"deploymentId": name, "request": value});
    let req: CreateTaskSetRequest = match canary_engine::handlers::parse(payload) {
        Ok(r) => r,
        Err(e) => return Ok(PlanReport::new(refused(e))),
    };
    let clients = clients(global).await;
    let mut observation = observe(&clients, &req, Refusals::All).await;
    observation.deployment_id = name;
    Ok(PlanReport::new(observation))
}

fn slot_weights(w: Weights) -> String {
    format!("blue {} / green {}", w.blue, w.green)
}

/// The text form.
pub fn render(p: &PlanReport) -> String {
    let o = &p.observation;
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    let verdict = match (&p.error_type, p.would_start) {
        (None, true) => "a deployment would start".to_string(),
        (Some(t), _) => format!("create-taskset would refuse: {t} (exit {})", p.exit_code),
        (None, false) => format!("no deployment would start (exit {})", p.exit_code),
    };
    line(format!("plan for {}: {verdict}", o.deployment_id));
    if let (Some(w), Some(ttl)) = (o.record_weights, o.record_ttl_seconds) {
        line(format!("records now: {}, TTL {ttl} s", slot_weights(w)));
    }
    for ts in &o.task_sets {
        line(format!(
            "task set {} {} in {} ({}), externalId {}",
            ts.id,
            ts.status,
            ts.slot.map_or("no slot", |s| s.as_str()),
            ts.task_definition,
            ts.external_id.as_deref().unwrap_or("-")
        ));
    }
    match (o.live_slot, o.new_slot, o.first_deployment) {
        (_, Some(new), Some(true)) => line(format!(
            "slots: first deployment: the new task set goes to {new} and gets 100 % at once"
        )),
        (Some(live), Some(new), _) => line(format!(
            "slots: live {live}{}, idle {new} (the new task set goes there)",
            o.old_task_set
                .as_ref()
                .map(|t| format!(" (task set {t})"))
                .unwrap_or_default()
        )),
        _ => {}
    }
    if let Some(t) = &o.existing_task_set {
        line(format!(
            "this deployment id already created task set {t}: a retry returns it"
        ));
    }
    if let Some(td) = &o.task_definition {
        let what = match td.action.as_str() {
            "reuse" => format!("reuses revision {}", td.revision.as_deref().unwrap_or("?")),
            "register" => format!(
                "registers {}",
                td.revision.as_deref().unwrap_or("a new revision")
            ),
            _ => "deployed as is".to_string(),
        };
        line(format!("task definition: {} -> {what}", td.base));
        match &td.new_image {
            Some(new) => line(format!(
                "  container {}: image {} -> {new} (nothing else changes)",
                td.container,
                td.old_image.as_deref().unwrap_or("?")
            )),
            None => line(format!(
                "  container {}: image {}",
                td.container,
                td.old_image.as_deref().unwrap_or("?")
            )),
        }
    }
    if !p.steps.is_empty() {
        line("steps:".into());
        for st in &p.steps {
            if let Some(t) = st.approval_timeout_seconds {
                line(format!(
                    "        wait for `approve` (up to {t} s) before step {}",
                    st.step
                ));
            }
            line(format!(
                "  {}/{}  {:>3} %  weights {}  then bake {} s and the alarm gate",
                st.step,
                p.steps.len(),
                st.percent,
                slot_weights(st.weights),
                st.bake_seconds
            ));
        }
    }
    if let Some(d) = &p.durations {
        line(format!("worst case: {}", d.explain));
    }
    if let Some(st) = &o.strategy {
        line(format!(
            "TTLs: records {} s now, {} s from the first shift, {} s after promotion \
             (a rollback restores {} s); Cloud Map {} s; drain up to {} s",
            st.original_ttl_seconds,
            st.deployment_ttl_seconds,
            st.ttl_seconds,
            st.original_ttl_seconds,
            st.cloudmap_ttl_seconds,
            st.drain_seconds
        ));
    }
    if let Some(b) = &o.rollback_bound {
        line(format!("rollback: {}", b.statement));
    }
    if !o.alarms.is_empty() {
        line("gate alarms:".into());
        for a in &o.alarms {
            let fits = match (a.detection_seconds, a.fits_bake) {
                (Some(d), Some(true)) => format!("sees a regression in {d} s: fits the bake"),
                (Some(d), Some(false)) if o.short_bake_allowed => format!(
                    "sees a regression in {d} s: longer than the bake \
                     (accepted: strategy.allowShortBake)"
                ),
                (Some(d), Some(false)) => {
                    format!("sees a regression in {d} s: LONGER than the bake")
                }
                _ => "detection time unknown".to_string(),
            };
            line(format!("  {}  {}  {fits}", a.name, a.state));
        }
    }
    if let Some(lock) = &o.lock {
        line(format!("deployment lock: {lock}"));
    }
    if !o.refusals.is_empty() {
        line(format!("refusals ({}):", o.refusals.len()));
        for r in &o.refusals {
            line(format!("  ✗ {}: {}", r.error_type, r.message));
        }
    }
    s
}

/// Prints the plan as text or one JSON document.
pub fn print(out: &mut dyn Write, p: &PlanReport, json: bool) -> Result<()> {
    if json {
        return print_json(out, p);
    }
    write!(out, "{}", render(p))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_engine::plan::complete_strategy;

    fn strategy(steps: Vec<u8>, bake: u32) -> Strategy {
        let input = canary_engine::model::StrategyInput {
            steps: Some(steps),
            bake_seconds: Some(bake),
            ..Default::default()
        };
        complete_strategy(&input, 10, 1)
    }

    #[test]
    fn steps_give_the_new_slot_its_percent_and_the_live_slot_the_rest() {
        let s = strategy(vec![10, 50, 100], 30);
        let plan = steps_plan(&s, Slot::Green);
        let got: Vec<(u8, u8, u8)> = plan
            .iter()
            .map(|p| (p.percent, p.weights.blue, p.weights.green))
            .collect();
        assert_eq!(got, vec![(10, 90, 10), (50, 50, 50), (100, 0, 100)]);
        assert!(plan.iter().all(|p| p.bake_seconds == 30));
        assert!(plan.iter().all(|p| p.approval_timeout_seconds.is_none()));
        assert_eq!(steps_plan(&s, Slot::Blue)[0].weights.blue, 10);
        let input = canary_engine::model::StrategyInput {
            steps: Some(vec![10, 50, 100]),
            approval: Some(canary_engine::model::ApprovalInput {
                before_steps: vec![100],
                timeout_seconds: Some(600),
                on_timeout: None,
            }),
            ..Default::default()
        };
        let paused: Vec<Option<u32>> = steps_plan(&complete_strategy(&input, 10, 1), Slot::Green)
            .iter()
            .map(|p| p.approval_timeout_seconds)
            .collect();
        assert_eq!(paused, vec![None, None, Some(600)]);
    }

    #[test]
    fn the_worst_case_adds_readiness_bakes_propagation_and_drain() {
        let s = strategy(vec![10, 50, 100], 30);
        let d = durations(&s, false);
        // 3 steps + promotion = 4 changes; drain = max TTL 10 + Cloud Map 1 + 10.
        assert_eq!(d.weight_changes, 4);
        assert_eq!(d.drain_seconds, 21);
        assert_eq!(d.worst_case_seconds, 600 + 90 + 4 * 60 + 21);
        assert!(
            d.explain.starts_with("951 s = readiness up to 600 s"),
            "{}",
            d.explain
        );
        let first = durations(&s, true);
        assert_eq!(first.worst_case_seconds, 600 + 60);
    }

    #[test]
    fn each_refusal_has_its_own_documented_exit_code() {
        let codes: Vec<u8> = REFUSAL_EXIT_CODES.iter().map(|(_, c)| *c).collect();
        let mut unique = codes.clone();
        unique.dedup();
        assert_eq!(codes, unique);
        assert!(codes.iter().all(|c| *c >= 10 && *c != EXIT_OTHER_REFUSAL));
        assert_eq!(exit_code_for("TargetNotFound"), 11);
        assert_eq!(exit_code_for("SomethingNew"), EXIT_OTHER_REFUSAL);
        // Every name is one the engine has.
        for (t, _) in REFUSAL_EXIT_CODES {
            assert!(canary_engine::CanaryError::ALL_TYPES.contains(t), "{t}");
        }
    }

    #[test]
    fn overrides_replace_the_image_and_the_strategy_in_the_json() {
        let a = crate::args::Overrides {
            image: Some("repo/app:v3".into()),
            task_definition: None,
            steps: Some(vec![100]),
            bake: Some(0),
        };
        let v = crate::deploy::apply(
            serde_json::json!({"taskDefinition": "app:3", "strategy": {"bakeSeconds": 60}}),
            &a,
        );
        assert_eq!(
            v,
            serde_json::json!({"image": "repo/app:v3", "strategy": {"steps": [100], "bakeSeconds": 0}})
        );
        // Not an object: left for the engine's parser to refuse.
        assert_eq!(crate::deploy::apply(Value::Null, &a), Value::Null);
    }

    #[test]
    fn a_refused_input_reports_its_error_type_and_exit_code() {
        let mut o = Observation::default();
        let e = canary_engine::CanaryError::BakeTooShort("x".into());
        o.refusals.push(Refusal::from(&e));
        let p = PlanReport::new(o);
        assert!(!p.would_start);
        assert_eq!(
            (p.error_type.as_deref(), p.exit_code),
            (Some("BakeTooShort"), 15)
        );
        assert!(render(&p).contains("✗ BakeTooShort: bake too short: x"));
    }
}
