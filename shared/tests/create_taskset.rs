//! `create-taskset` against mocked ECS, Route 53, Cloud Map and CloudWatch:
//! the new task set goes to the idle slot with externalId = deployment id; a
//! retry returns the task set it already made; every named error.

mod common;

use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_sdk_ecs::operation::create_task_set::{
    CreateTaskSetError, CreateTaskSetInput, CreateTaskSetOutput,
};
use aws_sdk_ecs::operation::describe_services::{DescribeServicesError, DescribeServicesOutput};
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
};
use aws_sdk_ecs::types::error::{ClientException, ClusterNotFoundException, ServerException};
use aws_sdk_route53::types::ResourceRecordSet;
use aws_sdk_servicediscovery::operation::get_service::GetServiceError;
use aws_sdk_servicediscovery::types::error::ServiceNotFound;
use aws_smithy_mocks::{mock, Rule};
use canary_engine::handlers::create_taskset;
use canary_engine::model::{
    AlarmGate, CreateTaskSetRequest, DeploymentRequest, Slot, Strategy, StrategyInput,
};
use canary_engine::runtime::Context;
use common::ecs::{DeploymentControllerType, ScaleUnit, TaskSet};
use common::*;

fn request() -> CreateTaskSetRequest {
    CreateTaskSetRequest {
        deployment_id: DEPLOYMENT_ID.into(),
        request: DeploymentRequest {
            target: target(),
            image: Some(NEW_IMAGE.into()),
            task_definition: None,
            strategy: StrategyInput::default(),
            alarms: AlarmGate {
                names: vec![ALARM.into()],
                ..AlarmGate::default()
            },
        },
    }
}

/// Every AWS answer a deployment reads, as fields a test can replace, and
/// the two writes it may make (recorded).
struct Aws {
    describe_services: Rule,
    records: Rule,
    blue_service: Rule,
    green_service: Rule,
    namespace: Rule,
    alarms: Rule,
    history: Rule,
    td_base: Rule,
    td_latest: Rule,
    register: Rule,
    create: Rule,
    registered: Seen<RegisterTaskDefinitionInput>,
    created: Seen<CreateTaskSetInput>,
    /// The deployment lock record, as Route 53 holds it.
    lock: LockStore,
    lock_list: Rule,
    lock_change: Rule,
}

/// The lock record `_ecs-dns-canary-lock.<record>` (TXT value, TTL) with
/// Route 53's conditional semantics: a batch is applied whole or not at
/// all, CREATE fails when the record exists, DELETE unless it matches.
type LockStore = std::sync::Arc<std::sync::Mutex<Option<(String, i64)>>>;

// A rule that cannot build its answer is a failed test.
#[allow(clippy::unwrap_used)]
fn lock_rules(store: &LockStore) -> (Rule, Rule) {
    use aws_sdk_route53::operation::change_resource_record_sets::{
        ChangeResourceRecordSetsError, ChangeResourceRecordSetsOutput,
    };
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::{ChangeInfo, ChangeStatus, ResourceRecord, RrType};
    let name = format!("_ecs-dns-canary-lock.{RECORD}.");
    let (list_store, change_store) = (store.clone(), store.clone());
    let list_name = name.clone();
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(|r| r.start_record_type() == Some(&RrType::Txt))
        .then_compute_output(move |_| {
            let held = list_store.lock().unwrap().clone();
            ListResourceRecordSetsOutput::builder()
                .set_resource_record_sets(Some(
                    held.map(|(value, ttl)| {
                        aws_sdk_route53::types::ResourceRecordSet::builder()
                            .name(&list_name)
                            .r#type(RrType::Txt)
                            .ttl(ttl)
                            .resource_records(
                                ResourceRecord::builder().value(value).build().unwrap(),
                            )
                            .build()
                            .unwrap()
                    })
                    .into_iter()
                    .collect(),
                ))
                .is_truncated(false)
                .max_items(1)
                .build()
                .unwrap()
        });
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| {
            r.change_batch().is_some_and(|b| {
                b.changes().iter().all(|c| {
                    c.resource_record_set()
                        .is_some_and(|s| s.r#type() == &RrType::Txt)
                })
            })
        })
        .then_compute_response(move |req| {
            let mut held = change_store.lock().unwrap();
            let mut next = held.clone();
            for c in req.change_batch().unwrap().changes() {
                let set = c.resource_record_set().unwrap();
                let value = set.resource_records()[0].value().to_string();
                let ttl = set.ttl().unwrap();
                let ok = match c.action() {
                    aws_sdk_route53::types::ChangeAction::Create => next.is_none(),
                    aws_sdk_route53::types::ChangeAction::Delete => {
                        next.as_ref() == Some(&(value.clone(), ttl))
                    }
                    _ => false,
                };
                if !ok {
                    let msg = format!(
                        "Tried to {} resource record set [name='{name}', type='TXT'] but it {}",
                        c.action().as_str().to_lowercase(),
                        if next.is_some() {
                            "already exists"
                        } else {
                            "was not found"
                        }
                    );
                    return aws_smithy_mocks::MockResponse::Error(
                        ChangeResourceRecordSetsError::generic(
                            aws_smithy_types::error::ErrorMetadata::builder()
                                .code("InvalidChangeBatch")
                                .message(msg)
                                .build(),
                        ),
                    );
                }
                next = match c.action() {
                    aws_sdk_route53::types::ChangeAction::Create => Some((value, ttl)),
                    _ => None,
                };
            }
            *held = next;
            aws_smithy_mocks::MockResponse::Output(
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(
                        ChangeInfo::builder()
                            .id("/change/CLOCK")
                            .status(ChangeStatus::Pending)
                            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
        });
    (list, change)
}

impl Aws {
    /// The service runs `task_sets`; the records say `blue`/`green` (TTL 60);
    /// the live revision is 5 with the old image and is the family's latest.
    fn new(task_sets: Vec<TaskSet>, blue: i64, green: i64) -> Self {
        Self::with_records(task_sets, r53::records(blue, green, 60))
    }

    fn with_records(task_sets: Vec<TaskSet>, records: Vec<ResourceRecordSet>) -> Self {
        let registered = Seen::new();
        let created = Seen::new();
        let register = {
            let seen = registered.clone();
            mock!(aws_sdk_ecs::Client::register_task_definition).then_compute_output(move |req| {
                seen.push(req);
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(ecs::task_definition(6, NEW_IMAGE))
                    .build()
            })
        };
        let create = {
            let seen = created.clone();
            mock!(aws_sdk_ecs::Client::create_task_set).then_compute_output(move |req| {
                seen.push(req);
                let mut ts = ecs::task_set(NEW_TS, Slot::Green, "ACTIVE", None, 0);
                ts.external_id = req.external_id().map(str::to_string);
                ts.task_definition = req.task_definition().map(str::to_string);
                ts.service_registries = Some(req.service_registries().to_vec());
                ts.stability_status = Some(ecs::StabilityStatus::Stabilizing);
                ts.running_count = 0;
                CreateTaskSetOutput::builder().task_set(ts).build()
            })
        };
        let lock = LockStore::default();
        let (lock_list, lock_change) = lock_rules(&lock);
        Self {
            lock,
            lock_list,
            lock_change,
            describe_services: ecs::describe_services(task_sets),
            records: r53::list(records),
            blue_service: cloudmap::get_service(Slot::Blue, 10),
            green_service: cloudmap::get_service(Slot::Green, 10),
            namespace: cloudmap::get_namespace(),
            alarms: cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            history: cw::history(ALARM, Vec::new(), &Seen::new()),
            td_base: ecs::describe_task_definition(
                &task_definition_arn(5),
                ecs::task_definition(5, OLD_IMAGE),
            ),
            td_latest: ecs::describe_task_definition(SERVICE, ecs::task_definition(5, OLD_IMAGE)),
            register,
            create,
            registered,
            created,
        }
    }

    /// A normal deployment: blue live with all traffic.
    fn blue_live() -> Self {
        Self::new(vec![ecs::live_blue()], 100, 0)
    }

    fn alarms(mut self, existing: Vec<MetricAlarm>) -> Self {
        self.alarms = cw::describe_alarms(existing);
        self
    }

    fn context(&self) -> Context {
        Mocks::new()
            .ecs(&[
                &self.describe_services,
                &self.td_base,
                &self.td_latest,
                &self.register,
                &self.create,
            ])
            .route53(&[&self.lock_list, &self.records, &self.lock_change])
            .cloudmap(&[&self.blue_service, &self.green_service, &self.namespace])
            .cloudwatch(&[&self.alarms, &self.history])
            .context()
    }

    fn nothing_written(&self) {
        assert_eq!(
            self.register.num_calls(),
            0,
            "RegisterTaskDefinition called"
        );
        assert_eq!(self.create.num_calls(), 0, "CreateTaskSet called");
        assert_eq!(self.lock_change.num_calls(), 0, "deployment lock written");
    }
}

fn default_strategy(ttl: u32) -> Strategy {
    Strategy {
        steps: vec![10, 50, 100],
        bake_seconds: 300,
        ready_timeout_seconds: 600,
        ready_poll_seconds: 15,
        // CNAME TTL + Cloud Map TTL (10) + 10 s margin.
        drain_seconds: ttl.max(5) + 20,
        ttl_seconds: ttl,
        deployment_ttl_seconds: ttl.min(5),
        original_ttl_seconds: ttl,
        cloudmap_ttl_seconds: 10,
        drain_override_seconds: None,
        unsafe_short_drain: false,
        max_rollback_seconds: 90,
        client_max_connection_age_seconds: None,
        approval: None,
    }
}

#[tokio::test]
async fn creates_the_new_task_set_in_the_idle_slot() {
    let aws = Aws::blue_live();

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    // A new revision of the live task definition with only the image changed.
    let reg = aws.registered.only();
    assert_eq!(reg.family(), Some(SERVICE));
    let live = ecs::task_definition(5, OLD_IMAGE);
    let containers = reg.container_definitions();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].name(), Some(CONTAINER));
    assert_eq!(containers[0].image(), Some(NEW_IMAGE));
    assert_eq!(containers[1], live.container_definitions()[1]);
    assert_eq!((reg.cpu(), reg.memory()), (live.cpu(), live.memory()));
    assert_eq!(reg.task_role_arn(), live.task_role_arn());
    assert_eq!(reg.execution_role_arn(), live.execution_role_arn());
    assert_eq!(reg.network_mode(), live.network_mode());
    assert_eq!(
        reg.requires_compatibilities(),
        live.requires_compatibilities()
    );

    // The task set: idle (green) slot's registry, externalId = deployment id, 100 %.
    let c = aws.created.only();
    assert_eq!(c.cluster(), Some(CLUSTER));
    assert_eq!(c.service(), Some(SERVICE));
    assert_eq!(c.external_id(), Some(DEPLOYMENT_ID));
    assert_eq!(c.client_token(), Some(DEPLOYMENT_ID));
    assert_eq!(c.task_definition(), Some(task_definition_arn(6).as_str()));
    let registries = c.service_registries();
    assert_eq!(registries.len(), 1);
    assert_eq!(
        registries[0].registry_arn(),
        Some(registry_arn(Slot::Green).as_str())
    );
    // Registry ports and networking are copied from the live task set.
    assert_eq!(registries[0].container_name(), Some(CONTAINER));
    assert_eq!(registries[0].container_port(), Some(8080));
    let scale = c.scale().unwrap();
    assert_eq!(
        (scale.unit(), scale.value()),
        (Some(&ScaleUnit::Percent), 100.0)
    );
    assert_eq!(c.launch_type(), Some(&ecs::LaunchType::Fargate));
    assert_eq!(c.platform_version(), Some("1.4.0"));
    assert_eq!(
        c.network_configuration(),
        Some(&ecs::network("subnet-0template"))
    );

    // The plan every later state works from.
    assert_eq!(d.id, DEPLOYMENT_ID);
    assert_eq!(d.target, target());
    assert_eq!((d.live_slot, d.new_slot), (Slot::Blue, Slot::Green));
    assert_eq!(d.old_task_set, Some(task_set_ref(OLD_TS)));
    assert_eq!(d.new_task_set, task_set_ref(NEW_TS));
    assert_eq!(d.task_definition_arn, task_definition_arn(6));
    assert!(!d.first_deployment);
    assert_eq!(d.strategy, default_strategy(60));
    assert_eq!(d.alarms.names, [ALARM]);
    canary_engine::time::parse("createdAt", &d.created_at).unwrap();
}

#[tokio::test]
async fn retry_returns_the_task_set_it_already_made() {
    // The state after a first call: our task set exists in green.
    let aws = Aws::new(vec![ecs::live_blue(), ecs::new_green()], 100, 0);

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    aws.nothing_written();
    assert_eq!(aws.td_base.num_calls() + aws.td_latest.num_calls(), 0);
    assert_eq!((d.live_slot, d.new_slot), (Slot::Blue, Slot::Green));
    assert_eq!(d.new_task_set, task_set_ref(NEW_TS));
    assert_eq!(d.old_task_set, Some(task_set_ref(OLD_TS)));
    assert_eq!(d.task_definition_arn, task_definition_arn(6));
    assert!(!d.first_deployment);
    // The readiness deadline counts from when the task set was really created.
    assert_eq!(
        d.created_at,
        canary_engine::time::format(aws_smithy_types::DateTime::from_secs(1_795_000_000))
    );
    assert_eq!(d.strategy, default_strategy(60));
}

#[tokio::test]
async fn retry_after_registering_reuses_the_revision() {
    // The first try registered revision 6 and then failed to create the task set.
    let mut aws = Aws::blue_live();
    aws.td_latest = ecs::describe_task_definition(SERVICE, ecs::task_definition(6, NEW_IMAGE));

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    assert_eq!(aws.register.num_calls(), 0);
    assert_eq!(
        aws.created.only().task_definition(),
        Some(task_definition_arn(6).as_str())
    );
    assert_eq!(d.task_definition_arn, task_definition_arn(6));
}

#[tokio::test]
async fn a_given_task_definition_is_deployed_as_is() {
    let mut aws = Aws::blue_live();
    aws.td_base = ecs::describe_task_definition("orders:7", ecs::task_definition(7, NEW_IMAGE));
    let mut req = request();
    req.request.image = None;
    req.request.task_definition = Some("orders:7".into());

    let d = create_taskset::run(&aws.context(), &req).await.unwrap();

    assert_eq!(aws.register.num_calls(), 0);
    assert_eq!(
        aws.created.only().task_definition(),
        Some(task_definition_arn(7).as_str())
    );
    assert_eq!(d.task_definition_arn, task_definition_arn(7));
}

#[tokio::test]
async fn with_green_live_the_new_task_set_goes_to_blue() {
    let green_live = ecs::task_set(OLD_TS, Slot::Green, "PRIMARY", Some(OLD_DEPLOYMENT_ID), 5);
    let aws = Aws::new(vec![green_live], 0, 100);

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    assert_eq!((d.live_slot, d.new_slot), (Slot::Green, Slot::Blue));
    assert_eq!(
        aws.created.only().service_registries()[0].registry_arn(),
        Some(registry_arn(Slot::Blue).as_str())
    );
}

#[tokio::test]
async fn a_draining_task_set_does_not_count() {
    let draining = ecs::task_set(NEW_TS + 1, Slot::Green, "DRAINING", Some("older"), 4);
    let aws = Aws::new(vec![ecs::live_blue(), draining], 100, 0);

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    assert_eq!(d.new_slot, Slot::Green);
    assert_eq!(aws.create.num_calls(), 1);
}

#[tokio::test]
async fn a_ttl_in_the_strategy_replaces_the_records_ttl() {
    let aws = Aws::with_records(vec![ecs::live_blue()], r53::records(100, 0, 3600));
    let mut req = request();
    req.request.strategy.ttl_seconds = Some(30);

    let d = create_taskset::run(&aws.context(), &req).await.unwrap();

    // Resolvers may still hold answers given under the old TTL of 3600 s:
    // the drain covers them (issue 12 item 14).
    let want = Strategy {
        drain_seconds: 3600 + 10 + 10,
        original_ttl_seconds: 3600,
        ..default_strategy(30)
    };
    assert_eq!(d.strategy, want);
}

#[tokio::test]
async fn the_first_deployment_adopts_the_service_into_blue() {
    let mut svc = ecs::service(DeploymentControllerType::External, Vec::new());
    svc.task_definition = Some(task_definition_arn(1));
    let mut aws = Aws::new(Vec::new(), 100, 0);
    aws.describe_services = ecs::describe_service(svc);
    aws.td_base =
        ecs::describe_task_definition(&task_definition_arn(1), ecs::task_definition(1, OLD_IMAGE));
    aws.td_latest = ecs::describe_task_definition(SERVICE, ecs::task_definition(1, OLD_IMAGE));

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    assert_eq!(
        aws.registered.only().container_definitions()[0].image(),
        Some(NEW_IMAGE)
    );
    let c = aws.created.only();
    assert_eq!(
        c.service_registries()[0].registry_arn(),
        Some(registry_arn(Slot::Blue).as_str())
    );
    assert_eq!(c.external_id(), Some(DEPLOYMENT_ID));
    // No task set to copy from: the service's own networking.
    assert_eq!(
        c.network_configuration(),
        Some(&ecs::network("subnet-0service"))
    );
    assert!(d.first_deployment);
    assert_eq!((d.live_slot, d.new_slot), (Slot::Green, Slot::Blue));
    assert_eq!(d.old_task_set, None);
}

#[tokio::test]
async fn retry_of_a_first_deployment_returns_its_task_set() {
    let ours = ecs::task_set(NEW_TS, Slot::Blue, "ACTIVE", Some(DEPLOYMENT_ID), 2);
    let aws = Aws::new(vec![ours], 100, 0);

    let d = create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    aws.nothing_written();
    assert!(d.first_deployment);
    assert_eq!((d.live_slot, d.new_slot), (Slot::Green, Slot::Blue));
    assert_eq!(d.new_task_set, task_set_ref(NEW_TS));
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn invalid_input_makes_no_aws_call() {
    let ctx = Mocks::new().context();
    let mut req = request();
    req.deployment_id = "has spaces".into();
    assert_eq!(
        err_type(create_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
    let mut req = request();
    req.request.task_definition = Some("orders:7".into());
    assert_eq!(
        err_type(create_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
    let mut req = request();
    req.request.strategy.steps = Some(vec![10, 50]);
    assert_eq!(
        err_type(create_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
    let mut req = request();
    req.request.image = Some("Orders:V2".into());
    assert_eq!(
        err_type(create_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
}

#[tokio::test]
async fn a_first_deployment_without_a_task_definition_is_invalid_input() {
    // The service has no task set and no service-level task definition, and
    // the request gives only an image: nothing to copy the image into.
    let aws = Aws::new(Vec::new(), 100, 0);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "InvalidInput");
    assert!(e.to_string().contains("taskDefinition"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn another_deployments_task_set_is_deployment_in_progress() {
    let other = ecs::task_set(NEW_TS, Slot::Green, "ACTIVE", Some("orders-v3-other"), 7);
    let aws = Aws::new(vec![ecs::live_blue(), other], 100, 0);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "DeploymentInProgress");
    assert!(e.to_string().contains("orders-v3-other"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn split_weights_are_deployment_in_progress() {
    let aws = Aws::new(vec![ecs::live_blue()], 90, 10);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "DeploymentInProgress");
    assert!(e.to_string().contains("split"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_service_not_on_the_external_controller_is_target_misconfigured() {
    let mut aws = Aws::blue_live();
    aws.describe_services = ecs::describe_service(ecs::service(
        DeploymentControllerType::Ecs,
        vec![ecs::live_blue()],
    ));

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("EXTERNAL"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn swapped_set_identifiers_are_target_misconfigured() {
    let swapped = vec![
        r53::record(BLUE_SET_ID, r53::RrType::Cname, GREEN_DNS, Some(100), 60),
        r53::record(GREEN_SET_ID, r53::RrType::Cname, BLUE_DNS, Some(0), 60),
    ];
    let aws = Aws::with_records(vec![ecs::live_blue()], swapped);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("swapped"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn different_ttls_are_target_misconfigured() {
    let records = vec![
        r53::record(BLUE_SET_ID, r53::RrType::Cname, BLUE_DNS, Some(100), 60),
        r53::record(GREEN_SET_ID, r53::RrType::Cname, GREEN_DNS, Some(0), 30),
    ];
    let aws = Aws::with_records(vec![ecs::live_blue()], records);

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "TargetMisconfigured"
    );
    aws.nothing_written();
}

#[tokio::test]
async fn a_record_ttl_over_300_without_a_strategy_ttl_is_target_misconfigured() {
    let aws = Aws::with_records(vec![ecs::live_blue()], r53::records(100, 0, 3600));

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("ttlSeconds"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_task_set_outside_both_slots_is_target_misconfigured() {
    let mut stray = ecs::live_blue();
    stray.service_registries = Some(vec![ecs::ServiceRegistry::builder()
        .registry_arn("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-elsewhere00001")
        .build()]);
    let aws = Aws::new(vec![stray], 100, 0);

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "TargetMisconfigured"
    );
    aws.nothing_written();
}

#[tokio::test]
async fn a_task_definition_without_the_container_is_target_misconfigured() {
    let mut aws = Aws::blue_live();
    let mut td = ecs::task_definition(5, OLD_IMAGE);
    td.container_definitions = Some(vec![ecs::ContainerDefinition::builder()
        .name("web")
        .image(OLD_IMAGE)
        .build()]);
    aws.td_base = ecs::describe_task_definition(&task_definition_arn(5), td);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("\"web\""), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_missing_cluster_is_target_not_found() {
    let mut aws = Aws::blue_live();
    aws.describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_error(|| {
        DescribeServicesError::ClusterNotFoundException(
            ClusterNotFoundException::builder()
                .message("Cluster not found.")
                .meta(meta("ClusterNotFoundException"))
                .build(),
        )
    });

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "TargetNotFound"
    );
}

#[tokio::test]
async fn a_missing_service_is_target_not_found() {
    let mut aws = Aws::blue_live();
    aws.describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .failures(
                ecs::Failure::builder()
                    .arn(ecs::service_arn())
                    .reason("MISSING")
                    .build(),
            )
            .build()
    });

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetNotFound");
    assert!(e.to_string().contains(SERVICE), "{e}");
}

#[tokio::test]
async fn a_missing_cloud_map_service_is_target_not_found() {
    let mut aws = Aws::blue_live();
    aws.green_service = mock!(aws_sdk_servicediscovery::Client::get_service).then_error(|| {
        GetServiceError::ServiceNotFound(
            ServiceNotFound::builder()
                .message("Service not found")
                .meta(meta("ServiceNotFound"))
                .build(),
        )
    });

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetNotFound");
    assert!(e.to_string().contains(GREEN_SRV), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_registry_that_is_not_the_records_target_is_misconfigured() {
    // The green slot names a Cloud Map service whose DNS name is not the one
    // its record points at: the new task set would register where no record
    // sends traffic.
    let mut aws = Aws::blue_live();
    aws.green_service = mock!(aws_sdk_servicediscovery::Client::get_service).then_output(|| {
        aws_sdk_servicediscovery::operation::get_service::GetServiceOutput::builder()
            .service(
                aws_sdk_servicediscovery::types::Service::builder()
                    .id(GREEN_SRV)
                    .name("payments-green")
                    .namespace_id(NAMESPACE_ID)
                    .build(),
            )
            .build()
    });

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("payments-green.shop.local"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_missing_alarm_is_target_not_found() {
    let aws = Aws::blue_live().alarms(Vec::new());

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "TargetNotFound"
    );
    aws.nothing_written();
}

#[tokio::test]
async fn a_missing_task_definition_is_target_not_found() {
    let mut aws = Aws::blue_live();
    aws.td_base = mock!(aws_sdk_ecs::Client::describe_task_definition).then_error(|| {
        DescribeTaskDefinitionError::ClientException(
            ClientException::builder()
                .message("Unable to describe task definition.")
                .meta(meta("ClientException"))
                .build(),
        )
    });

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "TargetNotFound"
    );
    aws.nothing_written();
}

#[tokio::test]
async fn an_alarm_already_firing_refuses_to_start() {
    let aws = Aws::blue_live().alarms(vec![cw::alarm(ALARM, "ALARM")]);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "AlarmFiring");
    assert!(e.to_string().contains(ALARM), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn an_ecs_server_error_on_create_is_retryable() {
    let mut aws = Aws::blue_live();
    aws.create = mock!(aws_sdk_ecs::Client::create_task_set).then_error(|| {
        CreateTaskSetError::ServerException(
            ServerException::builder()
                .message("Service Unavailable.")
                .meta(meta("ServerException"))
                .build(),
        )
    });

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "Retryable"
    );
}

#[tokio::test]
async fn ecs_throttling_is_retryable() {
    let mut aws = Aws::blue_live();
    aws.describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .then_error(|| DescribeServicesError::generic(meta("ThrottlingException")));

    assert_eq!(
        err_type(create_taskset::run(&aws.context(), &request()).await),
        "Retryable"
    );
    aws.nothing_written();
}

#[tokio::test]
async fn the_lambda_entry_point_returns_the_sample_deployment() {
    // The fixture input gates on two alarms and bakes 600 s.
    let aws = Aws::blue_live().alarms(vec![cw::alarm(ALARM, "OK"), cw::alarm(OTHER_ALARM, "OK")]);
    let other_history = cw::history(OTHER_ALARM, Vec::new(), &Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &aws.describe_services,
            &aws.td_base,
            &aws.td_latest,
            &aws.register,
            &aws.create,
        ])
        .route53(&[&aws.lock_list, &aws.records, &aws.lock_change])
        .cloudmap(&[&aws.blue_service, &aws.green_service, &aws.namespace])
        .cloudwatch(&[&aws.alarms, &aws.history, &other_history])
        .context();
    let event = lambda_runtime::LambdaEvent::new(
        fixture("create-taskset.request.json"),
        Default::default(),
    );

    let d = create_taskset::handle(&ctx, event).await.unwrap();

    let mut sample: canary_engine::model::Deployment =
        serde_json::from_value(fixture("deployment.json")).unwrap();
    sample.created_at = d.created_at.clone();
    assert_eq!(d, sample);
}

// ------------------------------------------------------------ issue 12

#[tokio::test]
async fn a_sixth_task_set_is_too_many_task_sets_naming_them() {
    // The live one and four DRAINING leftovers: ECS would refuse a sixth
    // with an InvalidParameterException that names nothing.
    let mut sets = vec![ecs::live_blue()];
    for i in 1..=4u64 {
        sets.push(ecs::task_set(
            NEW_TS + i,
            Slot::Green,
            "DRAINING",
            Some(&format!("orders-old-{i}")),
            4,
        ));
    }
    let aws = Aws::new(sets, 100, 0);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TooManyTaskSets");
    for i in 1..=4u64 {
        assert!(e.to_string().contains(&task_set_id(NEW_TS + i)), "{e}");
    }
    aws.nothing_written();
}

#[tokio::test]
async fn capacity_providers_are_copied_without_the_launch_type() {
    // ECS reports the launch type a capacity provider strategy resolved to
    // next to the strategy; CreateTaskSet refuses both.
    let mut live = ecs::live_blue();
    live.capacity_provider_strategy = Some(vec![
        aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
            .capacity_provider("FARGATE_SPOT")
            .weight(3)
            .base(1)
            .build()
            .unwrap(),
    ]);
    let aws = Aws::new(vec![live], 100, 0);

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    let c = aws.created.only();
    assert_eq!(c.launch_type(), None);
    let cps = c.capacity_provider_strategy();
    assert_eq!(cps.len(), 1);
    assert_eq!(
        (cps[0].capacity_provider(), cps[0].weight(), cps[0].base()),
        ("FARGATE_SPOT", 3, 1)
    );
}

#[tokio::test]
async fn a_first_deployment_does_not_force_fargate() {
    let mut svc = ecs::service(DeploymentControllerType::External, Vec::new());
    svc.task_definition = Some(task_definition_arn(1));
    let mut aws = Aws::new(Vec::new(), 100, 0);
    aws.describe_services = ecs::describe_service(svc);
    aws.td_base =
        ecs::describe_task_definition(&task_definition_arn(1), ecs::task_definition(1, OLD_IMAGE));
    let mut req = request();
    req.request.target.network = Some(canary_engine::model::TaskSetNetwork {
        subnets: vec!["subnet-0input".into()],
        security_groups: vec!["sg-0input".into()],
        assign_public_ip: false,
        launch_type: None,
        capacity_provider_strategy: None,
    });

    create_taskset::run(&aws.context(), &req).await.unwrap();

    // Neither: the cluster's default capacity provider strategy applies.
    let c = aws.created.only();
    assert_eq!(c.launch_type(), None);
    assert!(c.capacity_provider_strategy().is_empty());
}

#[tokio::test]
async fn a_first_deployment_takes_the_inputs_capacity_providers() {
    let mut svc = ecs::service(DeploymentControllerType::External, Vec::new());
    svc.task_definition = Some(task_definition_arn(1));
    let mut aws = Aws::new(Vec::new(), 100, 0);
    aws.describe_services = ecs::describe_service(svc);
    aws.td_base =
        ecs::describe_task_definition(&task_definition_arn(1), ecs::task_definition(1, OLD_IMAGE));
    let mut req = request();
    req.request.target.network = Some(canary_engine::model::TaskSetNetwork {
        subnets: vec!["subnet-0input".into()],
        security_groups: vec![],
        assign_public_ip: false,
        launch_type: None,
        capacity_provider_strategy: Some(vec![canary_engine::model::CapacityProviderItem {
            capacity_provider: "orders-asg".into(),
            weight: Some(1),
            base: None,
        }]),
    });

    create_taskset::run(&aws.context(), &req).await.unwrap();

    let c = aws.created.only();
    assert_eq!(c.launch_type(), None);
    assert_eq!(
        c.capacity_provider_strategy()[0].capacity_provider(),
        "orders-asg"
    );
}

fn metric_alarm(name: &str, period: i32, evaluation_periods: i32) -> MetricAlarm {
    let mut a = cw::alarm(name, "OK");
    a.period = Some(period);
    a.evaluation_periods = Some(evaluation_periods);
    a
}

#[tokio::test]
async fn a_bake_shorter_than_an_alarm_can_see_is_bake_too_short() {
    // 300 s x (1 + 1) + 60 s evaluation + 60 s metric delay > the default
    // 300 s bake.
    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 300, 1)]);

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "BakeTooShort");
    assert!(e.to_string().contains(ALARM), "{e}");
    aws.nothing_written();

    // The explicit option accepts it; a long enough bake needs none.
    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 300, 1)]);
    let mut req = request();
    req.request.strategy.allow_short_bake = Some(true);
    create_taskset::run(&aws.context(), &req).await.unwrap();
    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 300, 1)]);
    let mut req = request();
    req.request.strategy.bake_seconds = Some(720);
    let d = create_taskset::run(&aws.context(), &req).await.unwrap();
    // The plan states the metric delay it counted, and the detection time.
    assert_eq!(d.alarms.metric_delay_seconds, Some(60));
    let detection = d.rollback_bound.unwrap().detection;
    assert_eq!(detection[0].seconds, Some(720));
}

/// Issue 11 follow-up: `alarms.metricDelaySeconds` is a term of the bake
/// floor (an application that publishes every 10 s needs less than the
/// CloudWatch agent's default 60 s).
#[tokio::test]
async fn the_metric_delay_is_a_term_of_the_bake_floor() {
    // 60 s x 2 + 60 s evaluation + 10 s metric delay = 190 s.
    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 60, 1)]);
    let mut req = request();
    req.request.strategy.bake_seconds = Some(189);
    req.request.alarms.metric_delay_seconds = Some(10);
    let e = err(create_taskset::run(&aws.context(), &req).await);
    assert_eq!(e.error_type(), "BakeTooShort");
    assert!(e.to_string().contains("10s metric delay"), "{e}");
    aws.nothing_written();

    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 60, 1)]);
    req.request.strategy.bake_seconds = Some(190);
    let d = create_taskset::run(&aws.context(), &req).await.unwrap();
    assert_eq!(d.alarms.metric_delay_seconds, Some(10));

    // By default (60 s) the same bake is too short.
    let aws = Aws::blue_live().alarms(vec![metric_alarm(ALARM, 60, 1)]);
    req.request.alarms.metric_delay_seconds = None;
    let e = err(create_taskset::run(&aws.context(), &req).await);
    assert!(e.to_string().contains("needs 240s"), "{e}");
}

#[tokio::test]
async fn a_composite_gate_alarm_is_found_and_bounded_by_its_children() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, StateValue};
    const COMPOSITE: &str = "orders-health";
    let mut aws = Aws::blue_live();
    // DescribeAlarms returns composite alarms only when AlarmTypes names them.
    aws.alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_compute_output(|req| {
        let wanted = req.alarm_names();
        let composites = req.alarm_types().contains(&AlarmType::CompositeAlarm);
        let mut out = DescribeAlarmsOutput::builder();
        if wanted.iter().any(|w| w == COMPOSITE) && composites {
            out = out.composite_alarms(
                CompositeAlarm::builder()
                    .alarm_name(COMPOSITE)
                    .state_value(StateValue::Ok)
                    .state_reason("all children OK")
                    .alarm_rule(format!(r#"ALARM("{ALARM}") OR ALARM("{OTHER_ALARM}")"#))
                    .build(),
            );
        }
        for (name, period, n) in [(ALARM, 60, 3), (OTHER_ALARM, 60, 10)] {
            if wanted.iter().any(|w| w == name) {
                out = out.metric_alarms(metric_alarm(name, period, n));
            }
        }
        out.build()
    });
    aws.history = cw::history(COMPOSITE, Vec::new(), &Seen::new());
    let mut req = request();
    req.request.alarms.names = vec![COMPOSITE.into()];

    // The slower child (60 s x (10 + 1) + 60 s + 60 s metric delay) bounds the bake.
    let e = err(create_taskset::run(&aws.context(), &req).await);
    assert_eq!(e.error_type(), "BakeTooShort");
    assert!(e.to_string().contains("orders-health needs 780s"), "{e}");
    aws.nothing_written();

    req.request.strategy.bake_seconds = Some(780);
    create_taskset::run(&aws.context(), &req).await.unwrap();
}

#[tokio::test]
async fn a_slot_with_only_srv_records_is_target_misconfigured() {
    use aws_sdk_servicediscovery::types::{DnsConfig, DnsRecord, RecordType};
    let mut aws = Aws::blue_live();
    aws.green_service = mock!(aws_sdk_servicediscovery::Client::get_service).then_output(|| {
        aws_sdk_servicediscovery::operation::get_service::GetServiceOutput::builder()
            .service(
                aws_sdk_servicediscovery::types::Service::builder()
                    .id(GREEN_SRV)
                    .name("orders-green")
                    .namespace_id(NAMESPACE_ID)
                    .dns_config(
                        DnsConfig::builder()
                            .dns_records(
                                DnsRecord::builder()
                                    .r#type(RecordType::Srv)
                                    .ttl(10)
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    });

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("no A record"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn a_slot_outside_a_private_dns_namespace_is_target_misconfigured() {
    let mut aws = Aws::blue_live();
    aws.namespace = mock!(aws_sdk_servicediscovery::Client::get_namespace).then_output(|| {
        aws_sdk_servicediscovery::operation::get_namespace::GetNamespaceOutput::builder()
            .namespace(
                aws_sdk_servicediscovery::types::Namespace::builder()
                    .id(NAMESPACE_ID)
                    .name("shop.local")
                    .r#type(aws_sdk_servicediscovery::types::NamespaceType::DnsPublic)
                    .build(),
            )
            .build()
    });

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("DNS_PUBLIC"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn bridge_networking_registers_the_containers_port() {
    // First deployment, bridge networking: Cloud Map needs containerName and
    // containerPort, which no live task set can lend.
    let mut svc = ecs::service(DeploymentControllerType::External, Vec::new());
    svc.task_definition = Some(task_definition_arn(1));
    let mut td = ecs::task_definition(1, OLD_IMAGE);
    td.network_mode = Some(ecs::NetworkMode::Bridge);
    let mut aws = Aws::new(Vec::new(), 100, 0);
    aws.describe_services = ecs::describe_service(svc.clone());
    aws.td_base = ecs::describe_task_definition(&task_definition_arn(1), td.clone());

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();
    let reg = aws.created.only().service_registries()[0].clone();
    assert_eq!(
        (reg.container_name(), reg.container_port()),
        (Some(CONTAINER), Some(8080))
    );

    // The same without a port mapping: refused before any write.
    let mut no_port = td;
    let mut containers = no_port.container_definitions.clone().unwrap();
    containers[0].port_mappings = None;
    no_port.container_definitions = Some(containers);
    let mut aws = Aws::new(Vec::new(), 100, 0);
    aws.describe_services = ecs::describe_service(svc);
    aws.td_base = ecs::describe_task_definition(&task_definition_arn(1), no_port);
    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("port mapping"), "{e}");
    aws.nothing_written();
}

#[tokio::test]
async fn the_revision_copies_every_field_register_task_definition_accepts() {
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::types::{
        CpuArchitecture, EphemeralStorage, IpcMode, OsFamily, PidMode, ProxyConfiguration,
        ProxyConfigurationType, RuntimePlatform, Tag, TaskDefinitionField,
        TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, Volume,
    };
    let mut full = ecs::task_definition(5, OLD_IMAGE);
    full.volumes = Some(vec![Volume::builder().name("scratch").build()]);
    full.placement_constraints = Some(vec![TaskDefinitionPlacementConstraint::builder()
        .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
        .expression("attribute:ecs.availability-zone in [us-east-1a]")
        .build()]);
    full.pid_mode = Some(PidMode::Task);
    full.ipc_mode = Some(IpcMode::Task);
    full.proxy_configuration = Some(
        ProxyConfiguration::builder()
            .r#type(ProxyConfigurationType::Appmesh)
            .container_name("otel")
            .build()
            .unwrap(),
    );
    full.ephemeral_storage = Some(EphemeralStorage::builder().size_in_gib(50).build());
    full.runtime_platform = Some(
        RuntimePlatform::builder()
            .cpu_architecture(CpuArchitecture::Arm64)
            .operating_system_family(OsFamily::Linux)
            .build(),
    );
    full.enable_fault_injection = Some(true);
    let tags = vec![
        Tag::builder().key("team").value("orders").build(),
        Tag::builder().key("cost-center").value("42").build(),
    ];
    let mut aws = Aws::blue_live();
    // Tags come back only with include=TAGS, as DescribeTaskDefinition does.
    let name = task_definition_arn(5);
    let (td, t) = (full.clone(), tags.clone());
    aws.td_base = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(move |r| r.task_definition() == Some(name.as_str()))
        .then_compute_output(move |r| {
            let with_tags = r.include().contains(&TaskDefinitionField::Tags);
            DescribeTaskDefinitionOutput::builder()
                .task_definition(td.clone())
                .set_tags(with_tags.then(|| t.clone()))
                .build()
        });
    aws.td_latest = ecs::describe_task_definition(SERVICE, full.clone());

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    let reg = aws.registered.only();
    assert_eq!(reg.family(), full.family());
    assert_eq!(reg.task_role_arn(), full.task_role_arn());
    assert_eq!(reg.execution_role_arn(), full.execution_role_arn());
    assert_eq!(reg.network_mode(), full.network_mode());
    assert_eq!(reg.volumes(), full.volumes());
    assert_eq!(reg.placement_constraints(), full.placement_constraints());
    assert_eq!(
        reg.requires_compatibilities(),
        full.requires_compatibilities()
    );
    assert_eq!((reg.cpu(), reg.memory()), (full.cpu(), full.memory()));
    assert_eq!(reg.pid_mode(), full.pid_mode());
    assert_eq!(reg.ipc_mode(), full.ipc_mode());
    assert_eq!(reg.proxy_configuration(), full.proxy_configuration());
    assert_eq!(reg.ephemeral_storage(), full.ephemeral_storage());
    assert_eq!(reg.runtime_platform(), full.runtime_platform());
    assert_eq!(reg.enable_fault_injection(), Some(true));
    assert_eq!(reg.tags(), tags.as_slice());
    assert_eq!(reg.container_definitions()[0].image(), Some(NEW_IMAGE));
    assert_eq!(
        reg.container_definitions()[1],
        full.container_definitions()[1]
    );
}

// ------------------------------------------------------------ the lock (issue 12, item 6)

fn lock_of(owner: &str, at: i64) -> (String, i64) {
    (
        canary_engine::plan::DeploymentLock {
            owner: owner.into(),
            acquired_at: at,
        }
        .value(),
        60,
    )
}

#[tokio::test]
async fn a_deployment_takes_the_lock_before_its_first_write() {
    let aws = Aws::blue_live();

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    let held = aws.lock.lock().unwrap().clone().unwrap();
    let lock = canary_engine::plan::DeploymentLock::parse(&held.0).unwrap();
    assert_eq!(lock.owner, DEPLOYMENT_ID);
    assert_eq!(aws.lock_change.num_calls(), 1);
    // A retry finds the task set and leaves the lock alone.
    let retry = Aws::new(vec![ecs::live_blue(), ecs::new_green()], 100, 0);
    *retry.lock.lock().unwrap() = Some(held);
    create_taskset::run(&retry.context(), &request())
        .await
        .unwrap();
    assert_eq!(retry.lock_change.num_calls(), 0);
}

#[tokio::test]
async fn a_rival_whose_task_set_ecs_does_not_show_yet_still_blocks() {
    // The rival took the lock 3 s ago and created its task set, but
    // DescribeServices (eventually consistent) shows only the live one.
    let aws = Aws::blue_live();
    let now = canary_engine::time::now().secs();
    *aws.lock.lock().unwrap() = Some(lock_of("orders-latest-rival", now - 3));

    let e = err(create_taskset::run(&aws.context(), &request()).await);
    assert_eq!(e.error_type(), "DeploymentInProgress");
    assert!(e.to_string().contains("orders-latest-rival"), "{e}");
    aws.nothing_written();
    assert_eq!(aws.register.num_calls(), 0);
}

#[tokio::test]
async fn two_deployments_with_stale_reads_cannot_both_go_ahead() {
    // One ECR push of v2 and latest: two executions at once, each reading a
    // service that shows only the live task set (neither sees the other's).
    let aws = Aws::blue_live();
    let ctx = aws.context();
    let mut other = request();
    other.deployment_id = "orders-latest-20261127T101542Z".into();

    let first = request();
    let (a, b) = tokio::join!(
        create_taskset::run(&ctx, &first),
        create_taskset::run(&ctx, &other)
    );

    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let loser = if a.is_ok() { b } else { a };
    assert_eq!(err_type(loser), "DeploymentInProgress");
    assert_eq!(aws.create.num_calls(), 1, "both created a task set");
}

#[tokio::test]
async fn the_lock_of_a_finished_deployment_is_taken_over_atomically() {
    // The previous deployment's task set is the only one: it is over.
    let aws = Aws::blue_live();
    let now = canary_engine::time::now().secs();
    let previous = lock_of(OLD_DEPLOYMENT_ID, now - 3);
    *aws.lock.lock().unwrap() = Some(previous);

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();

    let held = aws.lock.lock().unwrap().clone().unwrap();
    assert_eq!(
        canary_engine::plan::DeploymentLock::parse(&held.0)
            .unwrap()
            .owner,
        DEPLOYMENT_ID
    );
    assert_eq!(aws.create.num_calls(), 1);
}

#[tokio::test]
async fn the_lock_of_a_crashed_deployment_expires_after_the_grace() {
    let aws = Aws::blue_live();
    let now = canary_engine::time::now().secs();
    *aws.lock.lock().unwrap() = Some(lock_of(
        "orders-crashed",
        now - canary_engine::plan::LOCK_GRACE_SECONDS - 1,
    ));

    create_taskset::run(&aws.context(), &request())
        .await
        .unwrap();
    assert_eq!(aws.create.num_calls(), 1);
}

/// Issue 13 item 4: a deployment whose rollback could take longer than
/// strategy.maxRollbackSeconds to reach clients is refused before any write.
#[tokio::test]
async fn a_rollback_bound_over_the_maximum_is_refused_before_any_write() {
    let aws = Aws::with_records(vec![ecs::live_blue()], r53::records(100, 0, 300));
    let mut req = request();
    req.request.strategy.deployment_ttl_seconds = Some(60);

    let err = create_taskset::run(&aws.context(), &req)
        .await
        .err()
        .unwrap();

    assert_eq!(err.error_type(), "TargetMisconfigured");
    let msg = err.to_string();
    for term in [
        "120s",
        "propagation 60s",
        "TTL during the deployment 60s",
        "strategy.maxRollbackSeconds 90s",
        "strategy.deploymentTtlSeconds",
    ] {
        assert!(msg.contains(term), "{term} missing: {msg}");
    }
    aws.nothing_written();

    // Raising the maximum lets the same deployment through, with the bound stated.
    let aws = Aws::with_records(vec![ecs::live_blue()], r53::records(100, 0, 300));
    req.request.strategy.max_rollback_seconds = Some(120);
    let d = create_taskset::run(&aws.context(), &req).await.unwrap();
    let bound = d.rollback_bound.unwrap();
    assert_eq!(bound.seconds, 120);
    assert!(bound
        .statement
        .starts_with("a rollback reaches new connections within 120 s of its decision"));
    // Keep-alive clients: until the drain (60 + 60 + 10 + 10 s) unless the
    // input names their connection age.
    let k = bound.keep_alive.unwrap();
    assert_eq!((k.seconds, k.term.as_str()), (140, "drain"));
    assert_eq!(
        (
            d.strategy.deployment_ttl_seconds,
            d.strategy.original_ttl_seconds
        ),
        (60, 300)
    );
}

// ------------------------------------------------------------ observe (plan)

#[tokio::test]
async fn observe_all_names_every_refusal_in_create_tasksets_order_and_writes_nothing() {
    // Records TTL 3600 (no strategy TTL), traffic split, and an alarm window
    // longer than the bake: three reasons.
    let aws = Aws::with_records(vec![ecs::live_blue()], r53::records(90, 10, 3600))
        .alarms(vec![metric_alarm(ALARM, 300, 1)]);
    let ctx = aws.context();

    let all =
        create_taskset::observe(&ctx.clients, &request(), create_taskset::Refusals::All).await;
    let types: Vec<&str> = all.refusals.iter().map(|r| r.error_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "TargetMisconfigured",
            "BakeTooShort",
            "DeploymentInProgress"
        ]
    );
    assert!(!all.would_start());
    assert_eq!(all.alarms[0].fits_bake, Some(false));
    aws.nothing_written();

    // create-taskset answers the first, and stops there.
    let e = err(create_taskset::run(&ctx, &request()).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert_eq!(
        all.first_error.map(|e| e.error_type()),
        Some("TargetMisconfigured")
    );
    aws.nothing_written();
}

#[tokio::test]
async fn observe_all_of_a_good_deployment_shows_the_slots_and_the_revision_to_register() {
    let aws = Aws::blue_live();
    let ctx = aws.context();

    let o = create_taskset::observe(&ctx.clients, &request(), create_taskset::Refusals::All).await;
    assert!(o.would_start(), "{:?}", o.refusals);
    assert_eq!(
        (o.live_slot, o.new_slot),
        (Some(Slot::Blue), Some(Slot::Green))
    );
    assert_eq!(o.first_deployment, Some(false));
    let td = o.task_definition.clone().unwrap();
    assert_eq!(td.old_image.as_deref(), Some(OLD_IMAGE));
    assert_eq!(td.new_image.as_deref(), Some(NEW_IMAGE));
    assert_eq!(td.action, "register");
    assert!(td.revision.as_deref().unwrap().ends_with(":6"), "{td:?}");
    assert_eq!(o.lock.as_deref(), Some("free: would be taken"));
    aws.nothing_written();
}
