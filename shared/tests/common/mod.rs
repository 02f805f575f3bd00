//! Builders shared by the handler tests: one target (the `orders` service of
//! the `shop` cluster), its weighted records, task sets, Cloud Map instances,
//! alarms, executions, and a [`Context`] whose SDK clients answer from
//! `aws-smithy-mocks` rules.
//!
//! Every mock client runs in `RuleMode::MatchAny` and panics on a call that no
//! rule matches, so a test that gives no rule for an operation also proves
//! the handler never made that call. The SDK's own retries are off: an error
//! a rule returns reaches the handler as it would once the SDK's retries had
//! run out.

// Each test binary uses its own subset of these builders. Clippy's
// allow-*-in-tests covers `#[test]` functions, not their helpers: here too a
// builder that cannot build is a failed test, not a run-time failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use canary_engine::model::{Slot, SlotConfig, Slots, Target, TaskSetRef};
use canary_engine::runtime::{Clients, Context, Settings};
use canary_engine::CanaryError;

// ------------------------------------------------------------------ names

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const CLUSTER: &str = "shop";
pub const SERVICE: &str = "orders";
pub const CONTAINER: &str = "app";
pub const ZONE: &str = "Z04512345EXAMPLE0001";
pub const RECORD: &str = "orders.shop.internal";
pub const BLUE_SET_ID: &str = "orders-blue";
pub const GREEN_SET_ID: &str = "orders-green";
pub const BLUE_SRV: &str = "srv-blue4example0001";
pub const GREEN_SRV: &str = "srv-green4example001";
pub const NAMESPACE_ID: &str = "ns-shop0001";
pub const BLUE_DNS: &str = "orders-blue.shop.local";
pub const GREEN_DNS: &str = "orders-green.shop.local";
pub const DEPLOYMENT_ID: &str = "orders-v2-20261127T101542Z";
pub const OLD_DEPLOYMENT_ID: &str = "orders-v1-20261120T080000Z";
pub const OLD_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:v1";
pub const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:v2";
pub const SIDECAR_IMAGE: &str = "public.ecr.aws/aws-observability/aws-otel-collector:v0.41.0";
pub const STATE_MACHINE_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:ecs-dns-canary";
pub const ALARM: &str = "orders-5xx";
pub const OTHER_ALARM: &str = "orders-latency-p99";

pub fn registry_arn(slot: Slot) -> String {
    let id = match slot {
        Slot::Blue => BLUE_SRV,
        Slot::Green => GREEN_SRV,
    };
    format!("arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/{id}")
}

pub fn service_id(slot: Slot) -> &'static str {
    match slot {
        Slot::Blue => BLUE_SRV,
        Slot::Green => GREEN_SRV,
    }
}

pub fn dns_name(slot: Slot) -> &'static str {
    match slot {
        Slot::Blue => BLUE_DNS,
        Slot::Green => GREEN_DNS,
    }
}

pub fn set_identifier(slot: Slot) -> &'static str {
    match slot {
        Slot::Blue => BLUE_SET_ID,
        Slot::Green => GREEN_SET_ID,
    }
}

pub fn target() -> Target {
    let slot = |s: Slot| SlotConfig {
        set_identifier: set_identifier(s).into(),
        registry_arn: registry_arn(s),
        dns_name: dns_name(s).into(),
    };
    Target {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        container: CONTAINER.into(),
        hosted_zone_id: ZONE.into(),
        record_name: RECORD.into(),
        slots: Slots {
            blue: slot(Slot::Blue),
            green: slot(Slot::Green),
        },
        network: None,
    }
}

pub fn task_definition_arn(revision: i32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{SERVICE}:{revision}")
}

pub fn task_set_id(n: u64) -> String {
    format!("ecs-svc/{n:019}")
}

pub fn task_set_arn(n: u64) -> String {
    format!(
        "arn:aws:ecs:{REGION}:{ACCOUNT}:task-set/{CLUSTER}/{SERVICE}/{}",
        task_set_id(n)
    )
}

pub fn task_set_ref(n: u64) -> TaskSetRef {
    TaskSetRef {
        id: task_set_id(n),
        arn: task_set_arn(n),
    }
}

/// The task set serving before the deployment.
pub const OLD_TS: u64 = 1_111_111_111_111_111_111;
/// The task set the deployment creates.
pub const NEW_TS: u64 = 2_222_222_222_222_222_222;

// ------------------------------------------------------------------ context

/// Settings for tests: INSYNC polls 1 ms apart, give up after 200 ms.
pub fn settings() -> Settings {
    Settings {
        insync_poll: Duration::from_millis(1),
        insync_timeout: Duration::from_millis(200),
        state_machine_arn: Some(STATE_MACHINE_ARN.into()),
        repairs_state_machine_arn: None,
        // No spacing, throttling waits of at most a few ms.
        cloudwatch: canary_engine::aws::cloudwatch::Pacing {
            interval: Duration::ZERO,
            throttle_retries: 8,
            throttle_base: Duration::from_millis(1),
            throttle_cap: Duration::from_millis(4),
            throttle_budget: Duration::from_millis(500),
        },
        bake_table: None,
    }
}

/// The mock rules of each SDK client; [`Mocks::context`] builds the clients.
#[derive(Default)]
pub struct Mocks {
    ecs: Vec<Rule>,
    route53: Vec<Rule>,
    cloudmap: Vec<Rule>,
    cloudwatch: Vec<Rule>,
    sfn: Vec<Rule>,
    dynamodb: Vec<Rule>,
    settings: Option<Settings>,
}

impl Mocks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ecs(mut self, rules: &[&Rule]) -> Self {
        self.ecs.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    pub fn route53(mut self, rules: &[&Rule]) -> Self {
        self.route53.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    pub fn cloudmap(mut self, rules: &[&Rule]) -> Self {
        self.cloudmap.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    /// Both Cloud Map rules of one slot's instances.
    pub fn instances(self, i: &Instances) -> Self {
        self.cloudmap(&[&i.list, &i.health, &i.service, &i.operations])
    }

    pub fn cloudwatch(mut self, rules: &[&Rule]) -> Self {
        self.cloudwatch.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    pub fn sfn(mut self, rules: &[&Rule]) -> Self {
        self.sfn.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    pub fn dynamodb(mut self, rules: &[&Rule]) -> Self {
        self.dynamodb.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    pub fn settings(mut self, s: Settings) -> Self {
        self.settings = Some(s);
        self
    }

    pub fn context(&self) -> Context {
        use aws_sdk_ecs::config::retry::RetryConfig;
        let no_retry = RetryConfig::disabled;
        Context {
            clients: Clients {
                ecs: mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &self.ecs, |c| c
                    .retry_config(no_retry())),
                route53: mock_client!(aws_sdk_route53, RuleMode::MatchAny, &self.route53, |c| c
                    .retry_config(no_retry())),
                cloudmap: mock_client!(
                    aws_sdk_servicediscovery,
                    RuleMode::MatchAny,
                    &self.cloudmap,
                    |c| c.retry_config(no_retry())
                ),
                cloudwatch: mock_client!(
                    aws_sdk_cloudwatch,
                    RuleMode::MatchAny,
                    &self.cloudwatch,
                    |c| c.retry_config(no_retry())
                ),
                sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &self.sfn, |c| c
                    .retry_config(no_retry())),
                dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &self.dynamodb, |c| c
                    .retry_config(no_retry())),
            },
            settings: self.settings.clone().unwrap_or_else(settings),
        }
    }
}

/// The requests a rule received, in order.
#[derive(Debug)]
pub struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Seen<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, t: &T) {
        self.0.lock().unwrap().push(t.clone());
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    /// The one request received; fails the test unless there was exactly one.
    pub fn only(&self) -> T {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one request");
        all.into_iter().next().unwrap()
    }
}

/// Error metadata as the SDK's deserializers fill it from a service error.
pub fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("mocked {code}"))
        .build()
}

/// The `error_type` of a failed call; fails the test on success.
pub fn err_type<T: Debug>(r: Result<T, CanaryError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.error_type(),
    }
}

/// The error of a failed call; fails the test on success.
pub fn err<T: Debug>(r: Result<T, CanaryError>) -> CanaryError {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

// ------------------------------------------------------------------ Route 53

pub mod r53 {
    use super::*;
    use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsInput;
    use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
    use aws_sdk_route53::operation::get_change::GetChangeOutput;
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    pub use aws_sdk_route53::types::{ChangeAction, RrType};
    use aws_sdk_route53::types::{ChangeInfo, ChangeStatus, ResourceRecord, ResourceRecordSet};
    use aws_sdk_route53::Client;

    pub const CHANGE_ID: &str = "/change/C0451EXAMPLE0001";

    /// One record of the weighted group.
    pub fn record(
        set_id: &str,
        rtype: RrType,
        value: &str,
        weight: Option<i64>,
        ttl: i64,
    ) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(format!("{RECORD}."))
            .r#type(rtype)
            .set_identifier(set_id)
            .set_weight(weight)
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap()
    }

    /// Both weighted CNAMEs as a correctly set-up service has them.
    pub fn records(blue: i64, green: i64, ttl: i64) -> Vec<ResourceRecordSet> {
        vec![
            record(BLUE_SET_ID, RrType::Cname, BLUE_DNS, Some(blue), ttl),
            record(GREEN_SET_ID, RrType::Cname, GREEN_DNS, Some(green), ttl),
        ]
    }

    /// ListResourceRecordSets answers with these records (every call).
    pub fn list(records: Vec<ResourceRecordSet>) -> Rule {
        mock!(Client::list_resource_record_sets)
            .match_requests(|r| r.hosted_zone_id() == Some(ZONE))
            .then_output(move || {
                ListResourceRecordSetsOutput::builder()
                    .set_resource_record_sets(Some(records.clone()))
                    .is_truncated(false)
                    .max_items(20)
                    .build()
                    .unwrap()
            })
    }

    /// ChangeResourceRecordSets accepts the batch (PENDING) and records it.
    pub fn change(seen: &Seen<ChangeResourceRecordSetsInput>) -> Rule {
        let seen = seen.clone();
        mock!(Client::change_resource_record_sets).then_compute_output(move |req| {
            seen.push(req);
            ChangeResourceRecordSetsOutput::builder()
                .change_info(change_info(ChangeStatus::Pending))
                .build()
        })
    }

    pub fn change_info(status: ChangeStatus) -> ChangeInfo {
        ChangeInfo::builder()
            .id(CHANGE_ID)
            .status(status)
            .submitted_at(DateTime::from_secs(1_795_000_000))
            .build()
            .unwrap()
    }

    pub fn get_change(status: ChangeStatus) -> Rule {
        mock!(Client::get_change).then_output(move || {
            GetChangeOutput::builder()
                .change_info(change_info(status.clone()))
                .build()
        })
    }

    /// The (weight, ttl) a batch gives each set identifier, and its actions.
    pub fn upserts(req: &ChangeResourceRecordSetsInput) -> Vec<(ChangeAction, String, i64, i64)> {
        req.change_batch()
            .map(|b| b.changes())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let r = c.resource_record_set().unwrap();
                (
                    c.action().clone(),
                    r.set_identifier().unwrap_or_default().to_string(),
                    r.weight().unwrap_or(-1),
                    r.ttl().unwrap_or(-1),
                )
            })
            .collect()
    }
}

// ------------------------------------------------------------------ Cloud Map

/// The two Cloud Map rules that describe one slot's instances.
pub struct Instances {
    pub list: Rule,
    pub health: Rule,
    /// GetService: the slot's service with `HealthCheckCustomConfig` (as ECS
    /// service discovery sets it up), so the statuses above count.
    pub service: Rule,
    /// ListOperations: no registration in progress.
    pub operations: Rule,
}

pub mod cloudmap {
    use super::*;
    use aws_sdk_servicediscovery::operation::get_instances_health_status::GetInstancesHealthStatusOutput;
    use aws_sdk_servicediscovery::operation::get_service::GetServiceOutput;
    use aws_sdk_servicediscovery::operation::list_instances::ListInstancesOutput;
    pub use aws_sdk_servicediscovery::types::HealthStatus;
    use aws_sdk_servicediscovery::types::{DnsConfig, DnsRecord, InstanceSummary, RecordType};
    use aws_sdk_servicediscovery::Client;

    /// One registered instance: its task set's external id and health.
    #[derive(Debug, Clone)]
    pub struct Inst {
        pub id: String,
        pub external_id: Option<String>,
        pub status: Option<HealthStatus>,
    }

    /// `healthy` + `unhealthy` instances of one task set.
    pub fn of_task_set(
        external_id: &str,
        prefix: &str,
        healthy: usize,
        unhealthy: usize,
    ) -> Vec<Inst> {
        (0..healthy + unhealthy)
            .map(|i| Inst {
                id: format!("{prefix}-{i}"),
                external_id: Some(external_id.to_string()),
                status: Some(if i < healthy {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unhealthy
                }),
            })
            .collect()
    }

    /// ListInstances and GetInstancesHealthStatus of one slot's service.
    pub fn instances(slot: Slot, insts: Vec<Inst>) -> Instances {
        let id = service_id(slot);
        let listed = insts.clone();
        let list = mock!(Client::list_instances)
            .match_requests(move |r| r.service_id() == Some(id))
            .then_output(move || {
                let summaries = listed
                    .iter()
                    .map(|i| {
                        let mut b = InstanceSummary::builder()
                            .id(&i.id)
                            .attributes("AWS_INSTANCE_IPV4", "10.0.1.17");
                        if let Some(ext) = &i.external_id {
                            b = b.attributes("ECS_TASK_SET_EXTERNAL_ID", ext);
                        }
                        b.build()
                    })
                    .collect();
                ListInstancesOutput::builder()
                    .set_instances(Some(summaries))
                    .build()
            });
        let health = mock!(Client::get_instances_health_status)
            .match_requests(move |r| r.service_id() == Some(id))
            .then_output(move || {
                let status: HashMap<String, HealthStatus> = insts
                    .iter()
                    .filter_map(|i| i.status.clone().map(|s| (i.id.clone(), s)))
                    .collect();
                GetInstancesHealthStatusOutput::builder()
                    .set_status(Some(status))
                    .build()
            });
        let service = mock!(Client::get_service)
            .match_requests(move |r| r.id() == Some(id))
            .then_output(move || {
                GetServiceOutput::builder()
                    .service(
                        aws_sdk_servicediscovery::types::Service::builder()
                            .id(id)
                            .arn(registry_arn(slot))
                            .name(format!("orders-{slot}"))
                            .namespace_id(NAMESPACE_ID)
                            .health_check_custom_config(
                                aws_sdk_servicediscovery::types::HealthCheckCustomConfig::builder()
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let operations = mock!(Client::list_operations).then_output(|| {
            aws_sdk_servicediscovery::operation::list_operations::ListOperationsOutput::builder()
                .build()
        });
        Instances {
            list,
            health,
            service,
            operations,
        }
    }

    /// A slot whose service has `healthy` healthy instances of `external_id`.
    pub fn healthy(slot: Slot, external_id: &str, healthy: usize) -> Instances {
        instances(slot, of_task_set(external_id, slot.as_str(), healthy, 0))
    }

    /// GetNamespace of the slots' namespace (`shop.local`).
    pub fn get_namespace() -> Rule {
        mock!(Client::get_namespace)
            .match_requests(|r| r.id() == Some(NAMESPACE_ID))
            .then_output(|| {
                aws_sdk_servicediscovery::operation::get_namespace::GetNamespaceOutput::builder()
                    .namespace(
                        aws_sdk_servicediscovery::types::Namespace::builder()
                            .id(NAMESPACE_ID)
                            .name("shop.local")
                            .r#type(aws_sdk_servicediscovery::types::NamespaceType::DnsPrivate)
                            .build(),
                    )
                    .build()
            })
    }

    /// GetService of one slot, its DNS records with this TTL.
    pub fn get_service(slot: Slot, ttl: i64) -> Rule {
        let id = service_id(slot);
        mock!(Client::get_service)
            .match_requests(move |r| r.id() == Some(id))
            .then_output(move || {
                GetServiceOutput::builder()
                    .service(
                        aws_sdk_servicediscovery::types::Service::builder()
                            .id(id)
                            .arn(registry_arn(slot))
                            .name(format!("orders-{slot}"))
                            .namespace_id(NAMESPACE_ID)
                            .dns_config(
                                DnsConfig::builder()
                                    .dns_records(
                                        DnsRecord::builder()
                                            .r#type(RecordType::A)
                                            .ttl(ttl)
                                            .build()
                                            .unwrap(),
                                    )
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .build()
            })
    }
}

// ------------------------------------------------------------------ ECS

pub mod ecs {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::describe_task_sets::DescribeTaskSetsOutput;
    pub use aws_sdk_ecs::types::{
        AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition,
        DeploymentController, DeploymentControllerType, Failure, LaunchType, NetworkConfiguration,
        NetworkMode, Scale, ScaleUnit, Service, ServiceRegistry, StabilityStatus, TaskDefinition,
        TaskSet,
    };
    use aws_sdk_ecs::Client;

    pub fn network(subnet: &str) -> NetworkConfiguration {
        NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .subnets(subnet)
                    .security_groups("sg-0orders")
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    /// A task set of the `orders` service as DescribeServices reports it.
    pub fn task_set(
        n: u64,
        slot: Slot,
        status: &str,
        external_id: Option<&str>,
        revision: i32,
    ) -> TaskSet {
        TaskSet::builder()
            .id(task_set_id(n))
            .task_set_arn(task_set_arn(n))
            .service_arn(service_arn())
            .cluster_arn(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"))
            .status(status)
            .set_external_id(external_id.map(str::to_string))
            .task_definition(task_definition_arn(revision))
            .computed_desired_count(2)
            .running_count(2)
            .pending_count(0)
            .created_at(DateTime::from_secs(1_795_000_000))
            .launch_type(LaunchType::Fargate)
            .platform_version("1.4.0")
            .network_configuration(network("subnet-0template"))
            .service_registries(
                ServiceRegistry::builder()
                    .registry_arn(registry_arn(slot))
                    .container_name(CONTAINER)
                    .container_port(8080)
                    .build(),
            )
            .scale(
                Scale::builder()
                    .unit(ScaleUnit::Percent)
                    .value(100.0)
                    .build(),
            )
            .stability_status(StabilityStatus::SteadyState)
            .build()
    }

    /// The serving task set before a deployment: PRIMARY in blue, revision 5.
    pub fn live_blue() -> TaskSet {
        task_set(OLD_TS, Slot::Blue, "PRIMARY", Some(OLD_DEPLOYMENT_ID), 5)
    }

    /// The task set this deployment creates: ACTIVE in green, revision 6.
    pub fn new_green() -> TaskSet {
        task_set(NEW_TS, Slot::Green, "ACTIVE", Some(DEPLOYMENT_ID), 6)
    }

    pub fn service_arn() -> String {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE}")
    }

    pub fn service(controller: DeploymentControllerType, task_sets: Vec<TaskSet>) -> Service {
        Service::builder()
            .service_arn(service_arn())
            .service_name(SERVICE)
            .status("ACTIVE")
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(controller)
                    .build()
                    .unwrap(),
            )
            .network_configuration(network("subnet-0service"))
            .set_task_sets(Some(task_sets))
            .build()
    }

    /// DescribeServices answers with the EXTERNAL `orders` service and these task sets.
    pub fn describe_services(task_sets: Vec<TaskSet>) -> Rule {
        describe_service(service(DeploymentControllerType::External, task_sets))
    }

    pub fn describe_service(svc: Service) -> Rule {
        mock!(Client::describe_services)
            .match_requests(|r| {
                r.cluster() == Some(CLUSTER) && r.services() == [SERVICE.to_string()].as_slice()
            })
            .then_output(move || {
                DescribeServicesOutput::builder()
                    .services(svc.clone())
                    .build()
            })
    }

    /// DescribeTaskSets answers with the requested ones among `existing`
    /// (ECS reports the others as failures, which the handlers ignore).
    pub fn describe_task_sets(existing: Vec<TaskSet>) -> Rule {
        mock!(Client::describe_task_sets).then_compute_output(move |req| {
            let wanted = req.task_sets();
            let found: Vec<TaskSet> = existing
                .iter()
                .filter(|t| {
                    wanted
                        .iter()
                        .any(|w| Some(w.as_str()) == t.task_set_arn() || Some(w.as_str()) == t.id())
                })
                .cloned()
                .collect();
            let missing: Vec<Failure> = wanted
                .iter()
                .filter(|w| {
                    !found
                        .iter()
                        .any(|t| t.task_set_arn() == Some(w.as_str()) || t.id() == Some(w.as_str()))
                })
                .map(|w| Failure::builder().arn(w).reason("MISSING").build())
                .collect();
            DescribeTaskSetsOutput::builder()
                .set_task_sets(Some(found))
                .set_failures(Some(missing))
                .build()
        })
    }

    /// A task definition revision of the `orders` family: the app container
    /// with `image` and an unchanged sidecar.
    pub fn task_definition(revision: i32, image: &str) -> TaskDefinition {
        TaskDefinition::builder()
            .task_definition_arn(task_definition_arn(revision))
            .family(SERVICE)
            .revision(revision)
            .task_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/orders-task"))
            .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/orders-exec"))
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("512")
            .memory("1024")
            .container_definitions(
                ContainerDefinition::builder()
                    .name(CONTAINER)
                    .image(image)
                    .essential(true)
                    .memory(768)
                    .port_mappings(
                        aws_sdk_ecs::types::PortMapping::builder()
                            .container_port(8080)
                            .build(),
                    )
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("otel")
                    .image(SIDECAR_IMAGE)
                    .essential(false)
                    .memory(256)
                    .build(),
            )
            .build()
    }

    /// DescribeTaskDefinition answers `name` (an ARN or a family) with `td`.
    pub fn describe_task_definition(name: &str, td: TaskDefinition) -> Rule {
        let name = name.to_string();
        mock!(Client::describe_task_definition)
            .match_requests(move |r| r.task_definition() == Some(name.as_str()))
            .then_output(move || {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(td.clone())
                    .build()
            })
    }
}

// ------------------------------------------------------------------ CloudWatch

pub mod cw {
    use super::*;
    use aws_sdk_cloudwatch::operation::describe_alarm_history::{
        DescribeAlarmHistoryInput, DescribeAlarmHistoryOutput,
    };
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{AlarmHistoryItem, HistoryItemType, MetricAlarm, StateValue};
    use aws_sdk_cloudwatch::Client;

    pub fn alarm(name: &str, state: &str) -> MetricAlarm {
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_arn(format!(
                "arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
            ))
            .state_value(StateValue::from(state))
            .state_reason(format!("Threshold Crossed: {name} is {state}"))
            .build()
    }

    /// DescribeAlarms answers with the requested ones among `existing`.
    pub fn describe_alarms(existing: Vec<MetricAlarm>) -> Rule {
        mock!(Client::describe_alarms).then_compute_output(move |req| {
            let wanted = req.alarm_names();
            DescribeAlarmsOutput::builder()
                .set_metric_alarms(Some(
                    existing
                        .iter()
                        .filter(|a| wanted.iter().any(|w| Some(w.as_str()) == a.alarm_name()))
                        .cloned()
                        .collect(),
                ))
                .build()
        })
    }

    /// A StateUpdate history item from `from` to `to`, as CloudWatch writes it.
    pub fn transition(name: &str, from: &str, to: &str) -> AlarmHistoryItem {
        AlarmHistoryItem::builder()
            .alarm_name(name)
            .alarm_type(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            .timestamp(DateTime::from_secs(1_795_000_100))
            .history_item_type(HistoryItemType::StateUpdate)
            .history_summary(format!("Alarm updated from {from} to {to}"))
            .history_data(format!(
                r#"{{"version":"1.0","oldState":{{"stateValue":"{from}","stateReason":"r"}},"newState":{{"stateValue":"{to}","stateReason":"r"}}}}"#
            ))
            .build()
    }

    /// DescribeAlarmHistory of `name` answers with `items` and records the request.
    pub fn history(
        name: &str,
        items: Vec<AlarmHistoryItem>,
        seen: &Seen<DescribeAlarmHistoryInput>,
    ) -> Rule {
        let name = name.to_string();
        let seen = seen.clone();
        mock!(Client::describe_alarm_history)
            .match_requests(move |r| r.alarm_name() == Some(name.as_str()))
            .then_compute_output(move |req| {
                seen.push(req);
                DescribeAlarmHistoryOutput::builder()
                    .set_alarm_history_items(Some(items.clone()))
                    .build()
            })
    }
}

// ------------------------------------------------------------------ Step Functions

pub mod sfn {
    use super::*;
    use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    pub use aws_sdk_sfn::types::HistoryEventType;
    use aws_sdk_sfn::types::{
        ExecutionListItem, ExecutionStatus, HistoryEvent, StateEnteredEventDetails,
        TaskScheduledEventDetails,
    };
    use aws_sdk_sfn::Client;

    pub fn execution_arn(name: &str) -> String {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:ecs-dns-canary:{name}")
    }

    /// ListExecutions (RUNNING) of the state machine answers with these names.
    pub fn list_running(names: &[&str]) -> Rule {
        let items: Vec<ExecutionListItem> = names
            .iter()
            .map(|n| {
                ExecutionListItem::builder()
                    .execution_arn(execution_arn(n))
                    .state_machine_arn(STATE_MACHINE_ARN)
                    .name(*n)
                    .status(ExecutionStatus::Running)
                    .start_date(DateTime::from_secs(1_795_000_000))
                    .build()
                    .unwrap()
            })
            .collect();
        mock!(Client::list_executions)
            .match_requests(|r| {
                r.state_machine_arn() == Some(STATE_MACHINE_ARN)
                    && r.status_filter() == Some(&ExecutionStatus::Running)
            })
            .then_output(move || {
                ListExecutionsOutput::builder()
                    .set_executions(Some(items.clone()))
                    .build()
                    .unwrap()
            })
    }

    fn event(id: i64, t: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .previous_event_id(id - 1)
            .timestamp(DateTime::from_secs(1_795_000_000 + id))
            .r#type(t)
    }

    /// The newest events of an execution that is baking, newest first as
    /// `reverseOrder` returns them: the bake's TaskScheduled carries
    /// `parameters` = `{"FunctionName": ..., "Payload": payload}`.
    pub fn baking(payload: &serde_json::Value) -> Vec<HistoryEvent> {
        let parameters = serde_json::json!({
            "FunctionName": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:check-health"),
            "Payload": payload,
        })
        .to_string();
        vec![
            event(23, HistoryEventType::TaskSubmitted).build().unwrap(),
            event(22, HistoryEventType::TaskStarted).build().unwrap(),
            event(21, HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource("invoke.waitForTaskToken")
                        .region(REGION)
                        .parameters(parameters)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            event(20, HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name("Bake")
                        .input("{}")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ]
    }

    /// The newest events of an execution whose forward step is in flight:
    /// the "Shift traffic" task's TaskScheduled carries set-weight's payload.
    pub fn shifting(payload: &serde_json::Value) -> Vec<HistoryEvent> {
        let parameters = serde_json::json!({
            "FunctionName": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:set-weight"),
            "Payload": payload,
        })
        .to_string();
        vec![
            event(17, HistoryEventType::TaskStarted).build().unwrap(),
            event(16, HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource("invoke")
                        .region(REGION)
                        .parameters(parameters)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            event(15, HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name("Shift traffic")
                        .input("{}")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ]
    }

    /// The newest events of an execution waiting between steps (not baking).
    pub fn waiting() -> Vec<HistoryEvent> {
        vec![
            event(12, HistoryEventType::WaitStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name("Wait for readiness")
                        .input("{}")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            event(11, HistoryEventType::TaskStateExited)
                .build()
                .unwrap(),
        ]
    }

    /// The events after the bake's token was failed: the bake is over.
    pub fn bake_failed(mut bake: Vec<HistoryEvent>) -> Vec<HistoryEvent> {
        bake.insert(0, event(24, HistoryEventType::TaskFailed).build().unwrap());
        bake
    }

    /// GetExecutionHistory of one execution answers with `events`.
    pub fn history(name: &str, events: Vec<HistoryEvent>) -> Rule {
        let arn = execution_arn(name);
        mock!(Client::get_execution_history)
            .match_requests(move |r| r.execution_arn() == Some(arn.as_str()))
            .then_output(move || {
                GetExecutionHistoryOutput::builder()
                    .set_events(Some(events.clone()))
                    .build()
                    .unwrap()
            })
    }
}

// ------------------------------------------------------------------ fixtures

/// A JSON file under the repository's `tests/fixtures/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}
