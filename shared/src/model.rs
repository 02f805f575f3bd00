//! The types that cross the state machine boundary: the deployment input an
//! engineer (or EventBridge) writes, and each function's request and answer.
//! All JSON is camelCase; unknown fields are refused so a typo is an
//! `InvalidInput`, not a silently ignored setting.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::states::RollbackAction;

/// One of the two traffic slots of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one slot's traffic goes: its weighted record and its Cloud Map service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotConfig {
    /// `SetIdentifier` of this slot's weighted CNAME record.
    pub set_identifier: String,
    /// ARN of the slot's Cloud Map service (the task set registers into it).
    pub registry_arn: String,
    /// The DNS name the CNAME points at, e.g. `service-blue.ns-2`.
    pub dns_name: String,
}

/// The two slots of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slots {
    pub blue: SlotConfig,
    pub green: SlotConfig,
}

impl Slots {
    pub fn get(&self, slot: Slot) -> &SlotConfig {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }
}

/// The static description of one deployable service. The per-service
/// template's outputs are exactly these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// ECS cluster name or ARN.
    pub cluster: String,
    /// ECS service name or ARN (EXTERNAL deployment controller).
    pub service: String,
    /// The container whose image a deployment replaces.
    pub container: String,
    /// The private hosted zone that holds the weighted CNAMEs.
    pub hosted_zone_id: String,
    /// The name clients call, e.g. `my-cname.ns-1`.
    pub record_name: String,
    pub slots: Slots,
    /// Networking for the service's *first* task set. Later task sets copy
    /// the live one's; an EXTERNAL-controller service holds none itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<TaskSetNetwork>,
}

/// `awsvpc` networking and launch type of a first task set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSetNetwork {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
    /// `FARGATE` or `EC2`; ECS Anywhere (`EXTERNAL`) has no awsvpc. Give
    /// at most one of this and `capacityProviderStrategy` (CreateTaskSet
    /// refuses both); with neither, the cluster's default capacity provider
    /// strategy places the first task set.
    #[serde(default)]
    pub launch_type: Option<String>,
    /// Capacity providers for the first task set, instead of a launch type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderItem>>,
}

/// One item of an ECS capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProviderItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: Option<i32>,
    #[serde(default)]
    pub base: Option<i32>,
}

/// How traffic moves. Defaults are filled in by `create-taskset`, which
/// returns the complete plan for the rest of the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrategyInput {
    /// Percentages of traffic on the new slot, strictly increasing, ending at
    /// 100. `[100]` is blue/green. Default `[10, 50, 100]`.
    pub steps: Option<Vec<u8>>,
    /// Bake time after each step, seconds. Default 300.
    pub bake_seconds: Option<u32>,
    /// How long the new task set may take to become ready. Default 600.
    pub ready_timeout_seconds: Option<u32>,
    /// Seconds between readiness checks. Default 15.
    pub ready_poll_seconds: Option<u32>,
    /// A drain counted from the final weight change's INSYNC that may only
    /// lengthen the exact drain (see `unsafeShortDrain`). Default: none, the
    /// exact drain decides.
    pub drain_seconds: Option<u32>,
    /// Let `drainSeconds` shorten the exact drain. Default false.
    #[serde(default)]
    pub unsafe_short_drain: Option<bool>,
    /// TTL the weighted records keep after a successful promotion
    /// (1..=300). Default: the TTL they had before the deployment. A
    /// rollback always restores the TTL they had before.
    pub ttl_seconds: Option<u32>,
    /// TTL both weighted records carry from the first weight shift until the
    /// final weights (1..=300). Default 5 (or the records' TTL if shorter).
    #[serde(default)]
    pub deployment_ttl_seconds: Option<u32>,
    /// Refuse the deployment when a rollback could take longer than this to
    /// reach every client (Route 53 propagation + the deployment TTL).
    /// Default 90.
    #[serde(default)]
    pub max_rollback_seconds: Option<u32>,
    /// Accept a bake shorter than a gate alarm can see a regression in
    /// (Period x EvaluationPeriods + evaluation delay). Default false: such a
    /// deployment is refused with `BakeTooShort`.
    #[serde(default)]
    pub allow_short_bake: Option<bool>,
    /// The longest a keep-alive client keeps one connection (its pool's
    /// maximum connection age, or a server-side MAX_CONNECTION_AGE). It
    /// bounds how long keep-alive clients stay on a rolled-back canary
    /// (`rollbackBound.keepAlive`). Default: unknown; they then stay until
    /// the drain deletes the canary's task set.
    #[serde(default)]
    pub client_max_connection_age_seconds: Option<u32>,
    /// Pause for an engineer's approval before some steps. Default: none,
    /// the deployment never pauses.
    #[serde(default)]
    pub approval: Option<ApprovalInput>,
}

/// `strategy.approval` as written: before which steps the execution waits
/// for `ecs-dns-canary approve` (or `reject`), and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalInput {
    /// The steps to pause before, named by their percentage in
    /// `strategy.steps` (e.g. `[100]`: approve before all traffic moves).
    pub before_steps: Vec<u8>,
    /// How long one pause waits for an answer. Default 3600.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// What no answer within `timeoutSeconds` means. Default `rollback`.
    #[serde(default)]
    pub on_timeout: Option<OnApprovalTimeout>,
}

/// What an approval wait that nobody answered leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum OnApprovalTimeout {
    /// Roll back: the execution ends `RolledBackOnApprovalTimeout`.
    #[default]
    Rollback,
    /// Go on as if approved.
    Approve,
}

/// The complete approval settings the state machine reads
/// (`$.deployment.strategy.approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    pub before_steps: Vec<u8>,
    pub timeout_seconds: u32,
    pub on_timeout: OnApprovalTimeout,
}

/// The complete strategy, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    pub steps: Vec<u8>,
    pub bake_seconds: u32,
    pub ready_timeout_seconds: u32,
    pub ready_poll_seconds: u32,
    /// The longest the drain can be, counted from the final change's INSYNC
    /// (every TTL ever in force + Cloud Map TTL + margin, or the override).
    /// The wait itself is the exact drain set-weight computes.
    pub drain_seconds: u32,
    /// TTL written with the promotion's (or a first deployment's) weights.
    pub ttl_seconds: u32,
    /// TTL written with every canary step's weights (0 in older histories).
    #[serde(default)]
    pub deployment_ttl_seconds: u32,
    /// The records' TTL before the deployment; a rollback restores it.
    #[serde(default)]
    pub original_ttl_seconds: u32,
    /// The longest TTL of the slots' Cloud Map A records.
    #[serde(default)]
    pub cloudmap_ttl_seconds: u32,
    /// `strategy.drainSeconds` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_override_seconds: Option<u32>,
    #[serde(default)]
    pub unsafe_short_drain: bool,
    #[serde(default)]
    pub max_rollback_seconds: u32,
    /// `strategy.clientMaxConnectionAgeSeconds` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_max_connection_age_seconds: Option<u32>,
    /// Absent when the deployment never pauses: the state machine then
    /// takes the same states as before approvals existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// What `INSUFFICIENT_DATA` means for the alarm gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum InsufficientData {
    /// Not a reason to roll back; reported in the gate's answer. (Default: a
    /// new alarm starts in INSUFFICIENT_DATA and must not block every deploy.)
    #[default]
    Pass,
    /// Treated like ALARM: no data, no promotion.
    Fail,
}

/// The CloudWatch alarms that gate a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmGate {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub insufficient_data: InsufficientData,
    /// Seconds from a request to its metric being in CloudWatch for the
    /// alarms to evaluate: the application's publish interval + ingestion.
    /// Counted in the bake floor and in each alarm's detection time.
    /// Default 60 (the CloudWatch agent's `metrics_collection_interval`);
    /// create-taskset writes the value it used into the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_delay_seconds: Option<u32>,
}

/// The execution input: what an engineer writes by hand (or the EventBridge
/// input transformer builds from an ECR push event). Exactly one of `image`
/// and `taskDefinition` is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentRequest {
    pub target: Target,
    /// New image for `target.container`; a new task definition revision is
    /// registered from the live one with only this changed.
    #[serde(default)]
    pub image: Option<String>,
    /// A ready task definition (ARN or family:revision) to deploy as is.
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub strategy: StrategyInput,
    #[serde(default)]
    pub alarms: AlarmGate,
}

/// Identifies one ECS task set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSetRef {
    pub id: String,
    pub arn: String,
}

// ---------------------------------------------------------------- create-taskset

/// Input of `create-taskset`. The state machine passes the execution name as
/// `deploymentId`, so a retried call finds the task set it already made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTaskSetRequest {
    pub deployment_id: String,
    pub request: DeploymentRequest,
}

/// Output of `create-taskset`: the complete, validated plan that every later
/// state works from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub id: String,
    pub target: Target,
    pub strategy: Strategy,
    pub alarms: AlarmGate,
    /// The slot serving traffic before this deployment (rollback goes here).
    pub live_slot: Slot,
    /// The slot the new task set was created in.
    pub new_slot: Slot,
    /// The task set serving before; `None` on a service's first deployment.
    pub old_task_set: Option<TaskSetRef>,
    pub new_task_set: TaskSetRef,
    pub task_definition_arn: String,
    /// True when the service had no task set: there is no old slot to canary
    /// against, so traffic goes straight to the new slot once it is ready.
    pub first_deployment: bool,
    /// When the new task set was created (RFC 3339); readiness deadline base.
    pub created_at: String,
    /// How long a rollback takes to reach every client once decided, and
    /// how long the alarms take to decide (absent in older histories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_bound: Option<RollbackBound>,
}

/// "A rollback reaches new connections within `seconds` s of its decision":
/// Route 53 propagation + the CNAME TTL in force during the deployment. The
/// Cloud Map TTL is not a term: once a client's CNAME answer expires its
/// next lookup names the old slot, whatever it cached for the new one's A
/// records (that TTL delays the deletion of a task set, not the return).
/// Keep-alive connections follow connections, not weights: `keepAlive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackBound {
    pub seconds: u32,
    pub propagation_seconds: u32,
    /// `documented` (Route 53's 60 s) or `measured` (an INSYNC time seen).
    pub propagation_source: String,
    pub ttl_seconds: u32,
    /// Per gate alarm: seconds from a regression to ALARM (Period x
    /// (EvaluationPeriods + 1) + evaluation interval + metric delay;
    /// `None`: not computable).
    #[serde(default)]
    pub detection: Vec<AlarmDetection>,
    /// Clients that keep connections alive (absent in older histories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAliveBound>,
    /// The sentence the console and the CLI show.
    pub statement: String,
}

/// When keep-alive clients are off a rolled-back canary: a connection does
/// not follow the weights; it ends at its maximum age or when the canary's
/// task set is deleted (ECS stops its tasks, which close their connections).
/// Stated for a rollback during the canary; after a failed promotion the
/// new slot's drain also covers `ttlSeconds` (the history's `drain.explain`
/// says so), and the tasks' own stop comes on top of `drainSeconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeepAliveBound {
    /// Seconds from the decision: the smaller of `rollbackBound.seconds` +
    /// the connection age (a connection opened on an answer just before it
    /// expired lives that long) and `drainSeconds`.
    pub seconds: u32,
    /// `strategy.clientMaxConnectionAgeSeconds` (absent: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_age_seconds: Option<u32>,
    /// Seconds from the decision until the rollback's drain deletes the
    /// canary's task set: propagation + the exact drain of the new slot.
    pub drain_seconds: u32,
    /// The exact drain of the new slot after a rollback, counted from its
    /// INSYNC (deployment TTL + Cloud Map TTL + margin, or the override).
    pub drain_after_insync_seconds: u32,
    /// `connectionAge` or `drain`: which term bounds it.
    pub term: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmDetection {
    pub alarm: String,
    #[serde(default)]
    pub seconds: Option<u32>,
}

// ---------------------------------------------------------------- check-health

/// Input of `check-health`, tagged by `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "check", rename_all = "camelCase", deny_unknown_fields)]
pub enum CheckRequest {
    /// Is the task set ready to take traffic?
    #[serde(rename_all = "camelCase")]
    Readiness {
        target: Target,
        slot: Slot,
        task_set: TaskSetRef,
        /// Start of the wait (RFC 3339); with `timeoutSeconds` the deadline.
        waiting_since: String,
        timeout_seconds: u32,
    },
    /// The alarm gate: are the alarms quiet now, and were they quiet at
    /// every moment since `since`?
    #[serde(rename_all = "camelCase")]
    Alarms {
        alarms: AlarmGate,
        /// RFC 3339 instant the watched window starts (the weight change).
        since: String,
        /// Present when called as the start of a bake
        /// (`lambda:invoke.waitForTaskToken`); the alarm-rollback function
        /// fails this token to end the bake early. Not used by the check.
        #[serde(default)]
        task_token: Option<String>,
        /// Context for logs and the console (e.g. "step 2 of 3 (50%)").
        #[serde(default)]
        label: Option<String>,
        /// Where traffic goes if this bake is ended by an alarm event: read
        /// from the execution history by the alarm-rollback function.
        #[serde(default)]
        rollback: Option<RollbackPlan>,
        /// The execution (`$$.Execution.Id`) of a bake: with `bakeSeconds`
        /// and the function's `BAKE_TABLE`, check-health records the bake
        /// in the bake registry under each alarm (see `aws::bakes`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution: Option<String>,
        /// The bake's length: the record expires when the bake ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bake_seconds: Option<u64>,
    },
}

/// How to undo a deployment's traffic shift: give `slot` all traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackPlan {
    pub target: Target,
    /// The slot that was live before the deployment.
    pub slot: Slot,
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
}

/// Answer of a readiness check. `ready: false` means "poll again"; after the
/// deadline the function fails with `NotReady` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessReport {
    pub ready: bool,
    pub task_set_id: String,
    pub stability_status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub healthy_instances: u32,
    pub unhealthy_instances: u32,
    pub waited_seconds: u64,
    /// One sentence a person reads in the console.
    pub reason: String,
}

/// One alarm as the gate saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmReport {
    pub name: String,
    pub state: String,
    /// True when the alarm was in ALARM at some moment since the window start.
    pub fired_in_window: bool,
    pub reason: String,
}

/// Answer of a passing alarm gate (a failing gate is the `AlarmFiring` error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub passed: bool,
    pub since: String,
    /// The instant (RFC 3339) taken just before the alarms were read: what
    /// happened after it may be unseen, so the next window starts here.
    /// (Empty in histories recorded before it existed: the CLI reads those.)
    #[serde(default)]
    pub observed_at: String,
    pub checked_at: String,
    pub alarms: Vec<AlarmReport>,
    /// Alarms in INSUFFICIENT_DATA that were let pass under `insufficientData: pass`.
    pub insufficient_data: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Output of `check-health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CheckReport {
    Readiness(ReadinessReport),
    Gate(GateReport),
}

// ---------------------------------------------------------------- set-weight

/// Input of `set-weight`: give `slot` `percent` of the traffic and the other
/// slot the rest, in one Route 53 change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetWeightRequest {
    pub target: Target,
    pub slot: Slot,
    pub percent: u8,
    /// TTL for both records; default keeps the current one.
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
    /// Mark this task set (which must be in `slot`) PRIMARY after the change.
    #[serde(default)]
    pub mark_primary: Option<TaskSetRef>,
    /// Wait for the change to be INSYNC (default true).
    #[serde(default)]
    pub wait_insync: Option<bool>,
    /// Context for logs and the console (e.g. "step 1 of 3").
    #[serde(default)]
    pub label: Option<String>,
    /// The deployment's alarm gate, given for a forward canary step. The call
    /// then checks the alarms over `[since, now]` after reading the records
    /// and writes only if the records are still as it read them, so a
    /// forward change can never land after a rollback (see
    /// [`crate::handlers::traffic::shift`]).
    #[serde(default)]
    pub alarms: Option<AlarmGate>,
    /// Start of the alarm window (RFC 3339): the previous gate's
    /// `observedAt`, or the moment the canary started.
    #[serde(default)]
    pub since: Option<String>,
    /// Where alarm-rollback sends all traffic if a watched alarm fires while
    /// this call is in flight (read from the execution history).
    #[serde(default)]
    pub rollback: Option<RollbackPlan>,
    /// Given with the final weights (promotion, rollback): compute when the
    /// slot losing its traffic may be deleted (the answer's `drain`).
    #[serde(default)]
    pub drain: Option<DrainRequest>,
    /// The deployment's rollback bound so far (create-taskset's, then each
    /// set-weight's answer): the answer's `rollbackBound` counts this
    /// change's measured INSYNC time when it is longer than the bound's
    /// propagation term.
    #[serde(default)]
    pub rollback_bound: Option<RollbackBound>,
    /// The execution (`$$.Execution.Id`) of a guarded forward step: with
    /// `BAKE_TABLE`, set-weight records the step in the bake registry while
    /// it is in flight, so alarm-rollback finds it by alarm name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// What set-weight needs to compute the exact drain of `slot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainRequest {
    /// The slot that loses its traffic with this change.
    pub slot: Slot,
    /// True for the slot that served before the deployment (answers given
    /// before the first shift carry the original TTL).
    pub served_before: bool,
    /// True when the promotion may have written its TTL before a rollback
    /// (the new slot then also had weight under `strategy.ttlSeconds`).
    #[serde(default)]
    pub promotion_tried: bool,
    pub strategy: Strategy,
    /// The first canary step's change (absent: not known, the original TTL
    /// is counted up to this change).
    #[serde(default)]
    pub first_shift: Option<ShiftTimes>,
}

/// When a weight change was requested and when it was seen INSYNC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftTimes {
    #[serde(default)]
    pub requested_at: String,
    pub changed_at: String,
    pub insync: bool,
}

/// The instant a task set that lost its traffic may be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    /// RFC 3339, whole seconds (the drain Wait's TimestampPath).
    pub until: String,
    /// Seconds from this change's end to `until`.
    pub seconds: u32,
    /// How it was derived, term by term.
    pub explain: String,
}

/// Route 53 weights of both records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    pub blue: u8,
    pub green: u8,
}

impl Weights {
    pub fn get(&self, slot: Slot) -> u8 {
        match slot {
            Slot::Blue => self.blue,
            Slot::Green => self.green,
        }
    }
}

/// Output of `set-weight`: the weights left in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightReport {
    pub weights: Weights,
    pub ttl_seconds: u32,
    /// False when the records already had these weights (a retry).
    pub changed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// True only when GetChange answered INSYNC for this call's change
    /// (with the weights already in place, for an identical re-write).
    pub insync: bool,
    /// When the change was requested (RFC 3339), before the records were
    /// read: the earliest instant clients may see the new weights.
    /// (Empty in histories recorded before it existed: the CLI reads those.)
    #[serde(default)]
    pub requested_at: String,
    /// When the call ended (RFC 3339): INSYNC when `insync`, so the drain
    /// of a task set that lost its traffic counts from here.
    pub changed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_task_set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The exact drain, when the request asked for it (written as null
    /// otherwise: the state machine's ResultSelector picks it).
    #[serde(default)]
    pub drain: Option<DrainReport>,
    /// Seconds from this call's Route 53 write to GetChange's INSYNC, as
    /// measured (rounded up); null when no INSYNC was seen.
    #[serde(default)]
    pub insync_seconds: Option<u32>,
    /// The request's `rollbackBound` with this change's measured INSYNC
    /// time counted when longer than its propagation term (written as null
    /// when the request gave none: the state machine carries it).
    #[serde(default)]
    pub rollback_bound: Option<RollbackBound>,
}

// ---------------------------------------------------------------- delete-taskset

/// Input of `delete-taskset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteTaskSetRequest {
    pub target: Target,
    /// The slot the task set serves; its record must have weight 0.
    pub slot: Slot,
    pub task_set: TaskSetRef,
    /// True when this is the clean-up of a service's failed *first*
    /// deployment (the plan's `firstDeployment`): its task set may then be
    /// deleted although its slot has weight (the service template gives blue
    /// 100 before any task set exists), because the service had no task set
    /// before and deleting it restores exactly that. Checked: the task set
    /// must carry `deploymentId` and be the service's only task set.
    #[serde(default)]
    pub first_deployment: bool,
    /// The deployment that created the task set (the execution name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

/// Output of `delete-taskset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteReport {
    pub task_set_id: String,
    /// False when it was already gone (a retry): still a success.
    pub deleted: bool,
}

// ---------------------------------------------------------------- alarm-rollback

/// What the alarm-rollback function did for one running execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionAction {
    pub execution_arn: String,
    /// `notBaking`, `notWatching`, `rolledBack`, `bakeEnded` (no rollback plan
    /// in the bake: only the token was failed) or `failed`.
    pub action: RollbackAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// True when the bake's task token was failed, so the execution takes
    /// its rollback path now.
    pub bake_ended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Output of `alarm-rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRollbackReport {
    pub alarm_name: String,
    pub state: String,
    pub executions: Vec<ExecutionAction>,
    /// How the bakes were found: `registry` (one Query by alarm name; only
    /// the bakes watching the alarm are listed) or `historyScan` (every
    /// running execution, the fallback). Absent for a non-ALARM event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
}

// ---------------------------------------------------------------- repair

/// Output of `repair` (also logged as its outcome line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    pub execution_arn: String,
    /// The status the event reported (ABORTED, TIMED_OUT, FAILED).
    pub status: String,
    /// `left` (nothing done, see `reason`), `restored` (traffic back on the
    /// live slot, new task set deleted), `finished` (promoted: old task set
    /// deleted) or `failed`.
    pub action: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_task_set: Option<String>,
    /// Whether the outcome is worth a record (a deployment the repair acted
    /// on or left for a reason an engineer should see).
    #[serde(default, skip_serializing)]
    pub recorded: bool,
}
