//! `check-health` against mocked ECS, Cloud Map and CloudWatch: readiness of
//! the new task set (and `NotReady` after its deadline), and the alarm gate
//! (state now and history since the weight change).

mod common;

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsError;
use aws_sdk_ecs::operation::describe_task_sets::DescribeTaskSetsError;
use aws_sdk_ecs::types::error::{ClusterNotFoundException, ServerException};
use aws_sdk_servicediscovery::operation::list_instances::ListInstancesError;
use aws_sdk_servicediscovery::types::error::ServiceNotFound;
use aws_smithy_mocks::mock;
use aws_smithy_types::DateTime;
use canary_engine::handlers::check_health;
use canary_engine::model::{
    AlarmGate, CheckReport, CheckRequest, GateReport, InsufficientData, ReadinessReport, Slot,
};
use canary_engine::time;
use common::cloudmap::{HealthStatus, Inst};
use common::*;

fn readiness(waiting_since: &str) -> CheckRequest {
    CheckRequest::Readiness {
        target: target(),
        slot: Slot::Green,
        task_set: task_set_ref(NEW_TS),
        waiting_since: waiting_since.into(),
        timeout_seconds: 600,
    }
}

fn just_now() -> String {
    time::format(time::now())
}

/// Long past the 600 s deadline.
const LONG_AGO: &str = "2026-01-01T00:00:00Z";

#[allow(
    clippy::panic,
    reason = "a test helper: the wrong report fails the test"
)]
fn ready_report(r: CheckReport) -> ReadinessReport {
    match r {
        CheckReport::Readiness(r) => r,
        other => panic!("expected a readiness report, got {other:?}"),
    }
}

#[allow(
    clippy::panic,
    reason = "a test helper: the wrong report fails the test"
)]
fn gate_report(r: CheckReport) -> GateReport {
    match r {
        CheckReport::Gate(g) => g,
        other => panic!("expected a gate report, got {other:?}"),
    }
}

fn alarms(names: &[&str], since: &str) -> CheckRequest {
    CheckRequest::Alarms {
        alarms: AlarmGate {
            names: names.iter().map(|n| n.to_string()).collect(),
            insufficient_data: InsufficientData::Pass,
            metric_delay_seconds: None,
        },
        since: since.into(),
        task_token: None,
        label: Some("step 2 of 3 (50%)".into()),
        rollback: None,
        execution: None,
        bake_seconds: None,
    }
}

const SINCE: &str = "2026-11-27T10:20:00Z";

// ------------------------------------------------------------------ readiness

#[tokio::test]
async fn a_steady_task_set_with_healthy_instances_is_ready() {
    // The green slot also holds a stray instance of another task set: only
    // the new task set's own instances count.
    let mut insts = cloudmap::of_task_set(DEPLOYMENT_ID, "new", 2, 0);
    insts.push(Inst {
        id: "stray-0".into(),
        external_id: Some("some-older-deployment".into()),
        status: Some(HealthStatus::Unhealthy),
    });
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![
            ecs::live_blue(),
            ecs::new_green(),
        ])])
        .instances(&cloudmap::instances(Slot::Green, insts))
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(r.ready, "{r:?}");
    assert_eq!(r.task_set_id, task_set_id(NEW_TS));
    assert_eq!(r.stability_status, "STEADY_STATE");
    assert_eq!(
        (r.desired_count, r.running_count, r.pending_count),
        (2, 2, 0)
    );
    assert_eq!((r.healthy_instances, r.unhealthy_instances), (2, 0));
    assert!(r.waited_seconds < 60);
}

#[tokio::test]
async fn a_task_set_still_starting_is_not_ready_yet() {
    let mut starting = ecs::new_green();
    starting.running_count = 1;
    starting.pending_count = 1;
    starting.stability_status = Some(ecs::StabilityStatus::Stabilizing);
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![starting])])
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 1))
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(!r.ready);
    assert!(r.reason.contains("STABILIZING"), "{}", r.reason);
    assert_eq!(r.running_count, 1);
}

#[tokio::test]
async fn unhealthy_instances_are_not_ready() {
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .instances(&cloudmap::instances(
            Slot::Green,
            cloudmap::of_task_set(DEPLOYMENT_ID, "new", 1, 1),
        ))
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(!r.ready);
    assert_eq!((r.healthy_instances, r.unhealthy_instances), (1, 1));
}

/// Issue 12 item 8: a Cloud Map service without a health check reports
/// UNKNOWN for every instance (the seed's own slots are such services); its
/// registered instances count, ECS's STEADY_STATE vouches for the tasks.
#[tokio::test]
async fn without_a_health_check_unknown_instances_are_ready() {
    let insts = (0..2)
        .map(|i| Inst {
            id: format!("new-{i}"),
            external_id: Some(DEPLOYMENT_ID.into()),
            status: Some(HealthStatus::UnknownValue),
        })
        .collect();
    let i = cloudmap::instances(Slot::Green, insts);
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        // GetService without HealthCheckConfig / HealthCheckCustomConfig.
        .cloudmap(&[
            &i.list,
            &i.health,
            &i.operations,
            &cloudmap::get_service(Slot::Green, 10),
        ])
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(r.ready, "{r:?}");
    assert_eq!((r.healthy_instances, r.unhealthy_instances), (2, 0));
}

/// Issue 12 item 9: healthy instances whose registration Cloud Map is still
/// processing do not resolve yet: not ready until the operation succeeds.
#[tokio::test]
async fn healthy_instances_still_registering_are_not_ready() {
    use aws_sdk_servicediscovery::operation::list_operations::{
        ListOperationsInput, ListOperationsOutput,
    };
    use aws_sdk_servicediscovery::types::{OperationStatus, OperationSummary};
    let asked = Seen::<ListOperationsInput>::new();
    let operations = {
        let asked = asked.clone();
        mock!(aws_sdk_servicediscovery::Client::list_operations).then_compute_output(move |req| {
            asked.push(req);
            ListOperationsOutput::builder()
                .operations(
                    OperationSummary::builder()
                        .id("op-register-new-1")
                        .status(OperationStatus::Pending)
                        .build(),
                )
                .build()
        })
    };
    let i = cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2);
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .cloudmap(&[&operations, &i.list, &i.health, &i.service])
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(!r.ready, "{r:?}");
    assert!(r.reason.contains("registration"), "{}", r.reason);
    // Asked about this slot's service's unfinished registrations only.
    let q = asked.only();
    let filters: Vec<_> = q
        .filters()
        .iter()
        .map(|f| (f.name().as_str().to_string(), f.values().to_vec()))
        .collect();
    assert_eq!(
        filters,
        vec![
            ("SERVICE_ID".to_string(), vec![GREEN_SRV.to_string()]),
            (
                "STATUS".to_string(),
                vec!["SUBMITTED".to_string(), "PENDING".to_string()]
            ),
            ("TYPE".to_string(), vec!["REGISTER_INSTANCE".to_string()]),
        ]
    );
}

/// With a (custom) health check, an instance whose status is not known yet
/// (UNKNOWN, or no entry at all) is not healthy yet.
#[tokio::test]
async fn with_a_health_check_unknown_or_missing_status_is_not_ready() {
    let insts = vec![
        Inst {
            id: "new-0".into(),
            external_id: Some(DEPLOYMENT_ID.into()),
            status: Some(HealthStatus::UnknownValue),
        },
        Inst {
            id: "new-1".into(),
            external_id: Some(DEPLOYMENT_ID.into()),
            status: None,
        },
    ];
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .instances(&cloudmap::instances(Slot::Green, insts))
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );

    assert!(!r.ready, "{r:?}");
    assert_eq!((r.healthy_instances, r.unhealthy_instances), (0, 2));
}

#[tokio::test]
async fn the_same_check_twice_gives_the_same_answer_and_changes_nothing() {
    // Only read operations have rules: any write would panic.
    let describe = ecs::describe_task_sets(vec![ecs::new_green()]);
    let ctx = Mocks::new()
        .ecs(&[&describe])
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .context();
    let req = readiness(LONG_AGO);

    let first = ready_report(check_health::run(&ctx, &req).await.unwrap());
    let second = ready_report(check_health::run(&ctx, &req).await.unwrap());

    assert!(first.ready && second.ready);
    assert_eq!(first.reason, second.reason);
    assert_eq!(describe.num_calls(), 2);
}

#[tokio::test]
async fn a_ready_task_set_after_the_deadline_is_still_ready() {
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .context();

    let r = ready_report(check_health::run(&ctx, &readiness(LONG_AGO)).await.unwrap());
    assert!(r.ready);
}

#[tokio::test]
async fn not_ready_after_the_deadline_is_not_ready() {
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .instances(&cloudmap::instances(
            Slot::Green,
            cloudmap::of_task_set(DEPLOYMENT_ID, "new", 0, 2),
        ))
        .context();

    let e = err(check_health::run(&ctx, &readiness(LONG_AGO)).await);
    assert_eq!(e.error_type(), "NotReady");
    assert!(e.to_string().contains("limit 600s"), "{e}");
    assert!(
        e.to_string().contains("0 of 2 Cloud Map instances healthy"),
        "{e}"
    );
}

#[tokio::test]
async fn readiness_invalid_input_makes_no_aws_call() {
    let ctx = Mocks::new().context();
    assert_eq!(
        err_type(check_health::run(&ctx, &readiness("yesterday")).await),
        "InvalidInput"
    );
    let CheckRequest::Readiness { mut target, .. } = readiness(LONG_AGO) else {
        unreachable!()
    };
    target.record_name = BLUE_DNS.into();
    let req = CheckRequest::Readiness {
        target,
        slot: Slot::Green,
        task_set: task_set_ref(NEW_TS),
        waiting_since: LONG_AGO.into(),
        timeout_seconds: 600,
    };
    assert_eq!(
        err_type(check_health::run(&ctx, &req).await),
        "InvalidInput"
    );
}

#[tokio::test]
async fn a_task_set_missing_long_after_its_creation_is_task_set_not_found() {
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::live_blue()])])
        .context();
    let created = canary_engine::time::format(aws_smithy_types::DateTime::from_secs(
        canary_engine::time::now().secs() - 61,
    ));

    assert_eq!(
        err_type(check_health::run(&ctx, &readiness(&created)).await),
        "TaskSetNotFound"
    );
}

#[tokio::test]
async fn a_task_set_missing_just_after_its_creation_is_not_ready_yet() {
    // ECS reads are eventually consistent: DescribeTaskSets may call a task
    // set MISSING right after CreateTaskSet. That is "poll again", not
    // TaskSetNotFound (whose clean-up would call it "already gone" and
    // leave it running).
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::live_blue()])])
        .context();

    let r = ready_report(
        check_health::run(&ctx, &readiness(&just_now()))
            .await
            .unwrap(),
    );
    assert!(!r.ready);
    assert_eq!(r.stability_status, "MISSING");
    assert!(r.reason.contains("eventually consistent"), "{}", r.reason);
}

#[tokio::test]
async fn a_missing_cluster_or_cloud_map_service_is_target_not_found() {
    let no_cluster = mock!(aws_sdk_ecs::Client::describe_task_sets).then_error(|| {
        DescribeTaskSetsError::ClusterNotFoundException(
            ClusterNotFoundException::builder()
                .message("Cluster not found.")
                .meta(meta("ClusterNotFoundException"))
                .build(),
        )
    });
    let ctx = Mocks::new().ecs(&[&no_cluster]).context();
    assert_eq!(
        err_type(check_health::run(&ctx, &readiness(&just_now())).await),
        "TargetNotFound"
    );

    let no_service = mock!(aws_sdk_servicediscovery::Client::list_instances).then_error(|| {
        ListInstancesError::ServiceNotFound(
            ServiceNotFound::builder()
                .message("Service not found")
                .meta(meta("ServiceNotFound"))
                .build(),
        )
    });
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .cloudmap(&[&no_service])
        .context();
    assert_eq!(
        err_type(check_health::run(&ctx, &readiness(&just_now())).await),
        "TargetNotFound"
    );
}

#[tokio::test]
async fn an_ecs_server_error_is_retryable() {
    let describe = mock!(aws_sdk_ecs::Client::describe_task_sets).then_error(|| {
        DescribeTaskSetsError::ServerException(
            ServerException::builder()
                .message("Service Unavailable.")
                .meta(meta("ServerException"))
                .build(),
        )
    });
    let ctx = Mocks::new().ecs(&[&describe]).context();
    assert_eq!(
        err_type(check_health::run(&ctx, &readiness(&just_now())).await),
        "Retryable"
    );
}

// ------------------------------------------------------------------ alarm gate

#[tokio::test]
async fn quiet_alarms_pass_the_gate() {
    let seen = Seen::new();
    let h1 = cw::history(ALARM, Vec::new(), &seen);
    let h2 = cw::history(OTHER_ALARM, Vec::new(), &seen);
    let ctx = Mocks::new()
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(OTHER_ALARM, "OK"), cw::alarm(ALARM, "OK")]),
            &h1,
            &h2,
        ])
        .context();

    let g = gate_report(
        check_health::run(&ctx, &alarms(&[ALARM, OTHER_ALARM], SINCE))
            .await
            .unwrap(),
    );

    assert!(g.passed);
    assert_eq!(g.since, SINCE);
    assert_eq!(g.label.as_deref(), Some("step 2 of 3 (50%)"));
    // Reported in the order the input named them.
    let names: Vec<_> = g.alarms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, [ALARM, OTHER_ALARM]);
    assert!(g
        .alarms
        .iter()
        .all(|a| a.state == "OK" && !a.fired_in_window));
    assert!(g.insufficient_data.is_empty());
    // The history was read from the window start.
    let reqs = seen.all();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        // From a little before the window start (clock slack between
        // CloudWatch and the function).
        assert_eq!(
            r.start_date().map(|d| d.secs()),
            Some(
                time::parse("since", SINCE).unwrap().secs()
                    - canary_engine::plan::ALARM_CLOCK_SLACK_SECONDS
            )
        );
        assert_eq!(
            r.history_item_type(),
            Some(&aws_sdk_cloudwatch::types::HistoryItemType::StateUpdate)
        );
        // Without AlarmTypes naming CompositeAlarm, DescribeAlarmHistory
        // returns metric alarms only (CloudWatch API Reference,
        // DescribeAlarmHistory): a composite gate alarm's flip is unseen.
        use aws_sdk_cloudwatch::types::AlarmType;
        assert_eq!(
            r.alarm_types(),
            [AlarmType::CompositeAlarm, AlarmType::MetricAlarm].as_slice()
        );
    }
}

#[tokio::test]
async fn no_alarms_pass_without_any_call() {
    let ctx = Mocks::new().context();
    let g = gate_report(check_health::run(&ctx, &alarms(&[], SINCE)).await.unwrap());
    assert!(g.passed);
    assert!(g.alarms.is_empty());
}

#[tokio::test]
async fn an_alarm_in_alarm_now_is_alarm_firing() {
    let seen = Seen::new();
    let ctx = Mocks::new()
        .cloudwatch(&[
            &cw::describe_alarms(vec![
                cw::alarm(ALARM, "ALARM"),
                cw::alarm(OTHER_ALARM, "OK"),
            ]),
            &cw::history(OTHER_ALARM, Vec::new(), &seen),
        ])
        .context();

    let e = err(check_health::run(&ctx, &alarms(&[ALARM, OTHER_ALARM], SINCE)).await);

    assert_eq!(e.error_type(), "AlarmFiring");
    assert!(
        e.to_string().contains(&format!("{ALARM} is in ALARM")),
        "{e}"
    );
    assert!(e.to_string().contains("step 2 of 3 (50%)"), "{e}");
    assert!(!e.to_string().contains(OTHER_ALARM), "{e}");
}

#[tokio::test]
async fn an_alarm_that_fired_during_the_window_is_alarm_firing() {
    // OK now, but the history shows OK -> ALARM -> OK since the weight change.
    let seen = Seen::new();
    let ctx = Mocks::new()
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(
                ALARM,
                vec![
                    cw::transition(ALARM, "ALARM", "OK"),
                    cw::transition(ALARM, "OK", "ALARM"),
                ],
                &seen,
            ),
        ])
        .context();

    let e = err(check_health::run(&ctx, &alarms(&[ALARM], SINCE)).await);

    assert_eq!(e.error_type(), "AlarmFiring");
    assert!(
        e.to_string().contains("was in ALARM during the bake"),
        "{e}"
    );
    assert_eq!(seen.all().len(), 1);
}

#[tokio::test]
async fn history_without_alarm_passes() {
    let ctx = Mocks::new()
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(
                ALARM,
                vec![cw::transition(ALARM, "INSUFFICIENT_DATA", "OK")],
                &Seen::new(),
            ),
        ])
        .context();

    let g = gate_report(
        check_health::run(&ctx, &alarms(&[ALARM], SINCE))
            .await
            .unwrap(),
    );
    assert!(g.passed);
}

#[tokio::test]
async fn insufficient_data_passes_or_fails_as_configured() {
    let mocks = || {
        Mocks::new()
            .cloudwatch(&[
                &cw::describe_alarms(vec![cw::alarm(ALARM, "INSUFFICIENT_DATA")]),
                &cw::history(ALARM, Vec::new(), &Seen::new()),
            ])
            .context()
    };

    let g = gate_report(
        check_health::run(&mocks(), &alarms(&[ALARM], SINCE))
            .await
            .unwrap(),
    );
    assert!(g.passed);
    assert_eq!(g.insufficient_data, [ALARM]);

    let strict = CheckRequest::Alarms {
        alarms: AlarmGate {
            names: vec![ALARM.into()],
            insufficient_data: InsufficientData::Fail,
            metric_delay_seconds: None,
        },
        since: SINCE.into(),
        task_token: None,
        label: None,
        rollback: None,
        execution: None,
        bake_seconds: None,
    };
    let e = err(check_health::run(&mocks(), &strict).await);
    assert_eq!(e.error_type(), "AlarmFiring");
    assert!(e.to_string().contains("INSUFFICIENT_DATA"), "{e}");
}

#[tokio::test]
async fn the_bake_start_runs_the_same_check() {
    // The bake's payload as the state machine sends it (fixture).
    let req: CheckRequest = serde_json::from_value(fixture("check-health.bake.json")).unwrap();
    let CheckRequest::Alarms {
        alarms: gate,
        task_token,
        rollback,
        ..
    } = &req
    else {
        panic!("the bake fixture is not an alarms check: {req:?}")
    };
    assert!(task_token.is_some() && rollback.is_some());
    let existing = gate.names.iter().map(|n| cw::alarm(n, "OK")).collect();
    let mut rules = vec![cw::describe_alarms(existing)];
    rules.extend(
        gate.names
            .iter()
            .map(|n| cw::history(n, Vec::new(), &Seen::new())),
    );
    let refs: Vec<_> = rules.iter().collect();
    let ctx = Mocks::new().cloudwatch(&refs).context();

    let g = gate_report(check_health::run(&ctx, &req).await.unwrap());
    assert!(g.passed);
    assert_eq!(g.alarms.len(), gate.names.len());
}

#[tokio::test]
async fn alarms_invalid_input_makes_no_aws_call() {
    let ctx = Mocks::new().context();
    assert_eq!(
        err_type(check_health::run(&ctx, &alarms(&[ALARM], "10 minutes ago")).await),
        "InvalidInput"
    );
    assert_eq!(
        err_type(check_health::run(&ctx, &alarms(&[ALARM, ALARM], SINCE)).await),
        "InvalidInput"
    );
    assert_eq!(
        err_type(check_health::run(&ctx, &alarms(&[" "], SINCE)).await),
        "InvalidInput"
    );
}

#[tokio::test]
async fn a_missing_alarm_is_target_not_found() {
    let ctx = Mocks::new()
        .cloudwatch(&[&cw::describe_alarms(vec![cw::alarm(ALARM, "OK")])])
        .context();

    let e = err(check_health::run(&ctx, &alarms(&[ALARM, "orders-typo"], SINCE)).await);
    assert_eq!(e.error_type(), "TargetNotFound");
    assert!(e.to_string().contains("orders-typo"), "{e}");
}

// ------------------------------------------------------------------ CloudWatch limits (issue 12 item 13)

/// Throttling that outlasts the gate's own patient retry is `Throttled`, a
/// name the state machine retries on its own schedule, not `Retryable`
/// (whose six retries ended in a rollback of a healthy deployment).
#[tokio::test]
async fn cloudwatch_throttling_that_outlasts_the_patient_retry_is_throttled() {
    let describe = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_error(|| DescribeAlarmsError::generic(meta("Throttling")));
    let ctx = Mocks::new().cloudwatch(&[&describe]).context();

    let e = err(check_health::run(&ctx, &alarms(&[ALARM], SINCE)).await);

    assert_eq!(e.error_type(), "Throttled");
    // 1 call + the patient retries of the test settings (8).
    assert_eq!(describe.num_calls(), 9);
}

/// An alarm quiet now whose state last changed before the window cannot
/// have been in ALARM during it: no DescribeAlarmHistory call at all (no
/// history rule here, so a call would fail the test). One DescribeAlarms
/// call covers every alarm.
#[tokio::test]
async fn quiet_alarms_unchanged_since_before_the_window_cost_one_call() {
    let before = DateTime::from_secs(time::parse("since", SINCE).unwrap().secs() - 3600);
    let mut a = cw::alarm(ALARM, "OK");
    a.state_updated_timestamp = Some(before);
    let mut b = cw::alarm(OTHER_ALARM, "INSUFFICIENT_DATA");
    b.state_updated_timestamp = Some(before);
    b.state_transitioned_timestamp = Some(before);
    let describe = cw::describe_alarms(vec![a, b]);
    let ctx = Mocks::new().cloudwatch(&[&describe]).context();

    let g = gate_report(
        check_health::run(&ctx, &alarms(&[ALARM, OTHER_ALARM], SINCE))
            .await
            .unwrap(),
    );

    assert!(g.passed);
    assert_eq!(describe.num_calls(), 1);
}

/// An alarm whose state changed inside the window still has its history read.
#[tokio::test]
async fn an_alarm_changed_inside_the_window_has_its_history_read() {
    let inside = DateTime::from_secs(time::parse("since", SINCE).unwrap().secs() + 30);
    let mut a = cw::alarm(ALARM, "OK");
    a.state_updated_timestamp = Some(inside);
    let seen = Seen::new();
    let ctx = Mocks::new()
        .cloudwatch(&[
            &cw::describe_alarms(vec![a]),
            &cw::history(
                ALARM,
                vec![
                    cw::transition(ALARM, "ALARM", "OK"),
                    cw::transition(ALARM, "OK", "ALARM"),
                ],
                &seen,
            ),
        ])
        .context();

    let e = err(check_health::run(&ctx, &alarms(&[ALARM], SINCE)).await);

    assert_eq!(e.error_type(), "AlarmFiring");
    assert_eq!(seen.all().len(), 1);
}

/// Twenty deployments' gates at once against an account whose CloudWatch
/// throttles: the first 40 calls (DescribeAlarms and DescribeAlarmHistory)
/// are refused with Throttling. Every gate still passes, by its own
/// patient retry, and none ends `Retryable` / `Throttled`.
#[tokio::test]
async fn twenty_concurrent_gates_ride_out_throttling() {
    use aws_sdk_cloudwatch::operation::describe_alarm_history::{
        DescribeAlarmHistoryError, DescribeAlarmHistoryOutput,
    };
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_smithy_mocks::MockResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let refused = Arc::new(AtomicUsize::new(0));
    let throttle = {
        let refused = Arc::clone(&refused);
        move || refused.fetch_add(1, Ordering::SeqCst) < 40
    };
    let t1 = throttle.clone();
    let describe =
        mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_compute_response(move |_| {
            if t1() {
                MockResponse::Error(DescribeAlarmsError::generic(meta("Throttling")))
            } else {
                MockResponse::Output(
                    DescribeAlarmsOutput::builder()
                        .metric_alarms(cw::alarm(ALARM, "OK"))
                        .build(),
                )
            }
        });
    let t2 = throttle.clone();
    let history = mock!(aws_sdk_cloudwatch::Client::describe_alarm_history).then_compute_response(
        move |_| {
            if t2() {
                MockResponse::Error(DescribeAlarmHistoryError::generic(meta("Throttling")))
            } else {
                MockResponse::Output(DescribeAlarmHistoryOutput::builder().build())
            }
        },
    );
    let ctx = Mocks::new()
        .cloudwatch(&[&describe, &history])
        .settings(canary_engine::runtime::Settings {
            cloudwatch: canary_engine::aws::cloudwatch::Pacing {
                interval: std::time::Duration::ZERO,
                throttle_retries: 8,
                throttle_base: std::time::Duration::from_millis(2),
                throttle_cap: std::time::Duration::from_millis(20),
                throttle_budget: std::time::Duration::from_secs(5),
            },
            ..settings()
        })
        .context();

    let mut gates = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let ctx = ctx.clone();
        gates.spawn(async move { check_health::run(&ctx, &alarms(&[ALARM], SINCE)).await });
    }
    let mut passed = 0;
    while let Some(joined) = gates.join_next().await {
        let g = gate_report(joined.unwrap().unwrap());
        assert!(g.passed);
        passed += 1;
    }
    assert_eq!(passed, 20);
    assert!(
        refused.load(Ordering::SeqCst) >= 40 + 40,
        "every gate made its calls"
    );
}

#[tokio::test]
async fn the_lambda_entry_point_takes_the_fixtures() {
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::new_green()])])
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .cloudwatch(&[
            &cw::describe_alarms(vec![
                cw::alarm(ALARM, "OK"),
                cw::alarm(OTHER_ALARM, "INSUFFICIENT_DATA"),
            ]),
            &cw::history(ALARM, Vec::new(), &Seen::new()),
            &cw::history(OTHER_ALARM, Vec::new(), &Seen::new()),
        ])
        .context();
    let event = |name| lambda_runtime::LambdaEvent::new(fixture(name), Default::default());

    let r = ready_report(
        check_health::handle(&ctx, event("check-health.readiness.json"))
            .await
            .unwrap(),
    );
    assert!(r.ready);
    let g = gate_report(
        check_health::handle(&ctx, event("check-health.alarms.json"))
            .await
            .unwrap(),
    );
    let sample: GateReport = serde_json::from_value(fixture("gate-report.json")).unwrap();
    assert_eq!(
        (g.passed, &g.insufficient_data, &g.label),
        (sample.passed, &sample.insufficient_data, &sample.label)
    );
}
