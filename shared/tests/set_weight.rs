//! `set-weight` against mocked Route 53, Cloud Map and ECS: one batch with
//! both UPSERTs, no write when the weights are in place, every named error.

mod common;

use aws_sdk_route53::operation::change_resource_record_sets::{
    ChangeResourceRecordSetsError, ChangeResourceRecordSetsInput,
};
use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsError;
use aws_sdk_route53::types::error::{NoSuchHostedZone, PriorRequestNotComplete};
use aws_sdk_route53::types::ChangeStatus;
use aws_sdk_servicediscovery::operation::list_instances::ListInstancesError;
use aws_sdk_servicediscovery::types::error::ServiceNotFound;
use aws_smithy_mocks::mock;
use canary_engine::handlers::set_weight;
use canary_engine::model::{AlarmGate, RollbackPlan, SetWeightRequest, Slot, Weights};
use canary_engine::time;
use common::r53::{ChangeAction, RrType};
use common::*;

fn request(slot: Slot, percent: u8) -> SetWeightRequest {
    SetWeightRequest {
        target: target(),
        slot,
        percent,
        ttl_seconds: None,
        mark_primary: None,
        wait_insync: None,
        label: Some("step 1 of 3 (10%)".into()),
        alarms: None,
        since: None,
        rollback: None,
        drain: None,
        rollback_bound: None,
        execution: None,
    }
}

const SINCE: &str = "2026-11-27T10:15:00Z";

/// A forward canary step as the state machine sends it: with its alarm
/// guard (window from `SINCE`) and the rollback plan alarm-rollback reads.
fn guarded(percent: u8) -> SetWeightRequest {
    SetWeightRequest {
        alarms: Some(AlarmGate {
            names: vec![ALARM.into()],
            insufficient_data: Default::default(),
            metric_delay_seconds: None,
        }),
        since: Some(SINCE.into()),
        rollback: Some(RollbackPlan {
            target: target(),
            slot: Slot::Blue,
            ttl_seconds: Some(60),
        }),
        ..request(Slot::Green, percent)
    }
}

/// Both slots have healthy instances.
fn healthy_slots(m: Mocks) -> Mocks {
    m.instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
}

#[tokio::test]
async fn a_step_writes_both_records_in_one_batch_and_waits_for_insync() {
    let seen = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&seen);
    let insync = r53::get_change(ChangeStatus::Insync);
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change, &insync])
        .context();

    let report = set_weight::run(&ctx, &request(Slot::Green, 10))
        .await
        .unwrap();

    assert_eq!(change.num_calls(), 1);
    let req = seen.only();
    assert_eq!(req.hosted_zone_id(), Some(ZONE));
    assert_eq!(
        r53::upserts(&req),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 90, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 10, 60),
        ]
    );
    for c in req.change_batch().unwrap().changes() {
        let r = c.resource_record_set().unwrap();
        assert_eq!(r.name(), RECORD);
        assert_eq!(r.r#type(), &RrType::Cname);
        let want = if r.set_identifier() == Some(BLUE_SET_ID) {
            BLUE_DNS
        } else {
            GREEN_DNS
        };
        assert_eq!(r.resource_records()[0].value(), want);
    }
    assert_eq!(insync.num_calls(), 1);
    assert_eq!(
        report.weights,
        Weights {
            blue: 90,
            green: 10
        }
    );
    assert_eq!(report.ttl_seconds, 60);
    assert!(report.changed);
    assert!(report.insync);
    assert_eq!(report.change_id.as_deref(), Some(r53::CHANGE_ID));
    assert_eq!(report.label.as_deref(), Some("step 1 of 3 (10%)"));
    assert_eq!(report.primary_task_set, None);
    canary_engine::time::parse("changedAt", &report.changed_at).unwrap();
}

#[tokio::test]
async fn a_given_ttl_is_written_on_both_records() {
    let seen = Seen::new();
    let change = r53::change(&seen);
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(90, 10, 300)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .context();
    let mut req = request(Slot::Green, 50);
    req.ttl_seconds = Some(30);

    let report = set_weight::run(&ctx, &req).await.unwrap();

    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 50, 30),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 50, 30),
        ]
    );
    assert_eq!(report.ttl_seconds, 30);
}

#[tokio::test]
async fn polls_get_change_until_insync() {
    let get_change = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .output(|| {
            aws_sdk_route53::operation::get_change::GetChangeOutput::builder()
                .change_info(r53::change_info(ChangeStatus::Pending))
                .build()
        })
        .times(2)
        .output(|| {
            aws_sdk_route53::operation::get_change::GetChangeOutput::builder()
                .change_info(r53::change_info(ChangeStatus::Insync))
                .build()
        })
        .build();
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &r53::change(&Seen::new()),
            &get_change,
        ])
        .context();

    let report = set_weight::run(&ctx, &request(Slot::Green, 10))
        .await
        .unwrap();

    assert_eq!(get_change.num_calls(), 3);
    assert!(report.insync);
}

#[tokio::test]
async fn without_wait_insync_it_does_not_poll() {
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &r53::change(&Seen::new()),
        ])
        .context();
    let mut req = request(Slot::Green, 10);
    req.wait_insync = Some(false);

    let report = set_weight::run(&ctx, &req).await.unwrap();

    assert!(report.changed);
    assert!(!report.insync);
}

/// Issue 12 item 5: weights in place say nothing about Route 53's servers
/// (alarm-rollback wrote them without waiting, or an earlier try's GetChange
/// polling ran out). A call that must confirm INSYNC writes the same records
/// again and polls that change, instead of reporting INSYNC unasked.
#[tokio::test]
async fn weights_in_place_are_confirmed_insync_by_an_identical_write() {
    // The state after a first call that set green 10 %.
    let seen = Seen::new();
    let change = r53::change(&seen);
    let get_change = r53::get_change(ChangeStatus::Insync);
    let ctx = Mocks::new()
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change, &get_change])
        .context();

    let report = set_weight::run(&ctx, &request(Slot::Green, 10))
        .await
        .unwrap();

    // The same values, so no traffic moves (and no health check is needed).
    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 90, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 10, 60),
        ]
    );
    assert!(
        get_change.num_calls() >= 1,
        "INSYNC reported without GetChange"
    );
    assert!(report.insync);
    assert!(!report.changed);
    assert_eq!(report.change_id.as_deref(), Some(r53::CHANGE_ID));
    assert_eq!(
        report.weights,
        Weights {
            blue: 90,
            green: 10
        }
    );
    assert_eq!(report.ttl_seconds, 60);
}

#[tokio::test]
async fn weights_in_place_without_wait_insync_write_nothing_and_claim_nothing() {
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .context();
    let mut req = request(Slot::Green, 10);
    req.wait_insync = Some(false);

    let report = set_weight::run(&ctx, &req).await.unwrap();

    assert_eq!(change.num_calls(), 0);
    assert!(!report.changed);
    assert!(!report.insync);
}

#[tokio::test]
async fn a_different_ttl_alone_is_a_change() {
    let seen = Seen::new();
    let change = r53::change(&seen);
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(90, 10, 300)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .context();
    let mut req = request(Slot::Green, 10);
    req.ttl_seconds = Some(60);

    let report = set_weight::run(&ctx, &req).await.unwrap();

    assert_eq!(change.num_calls(), 1);
    assert!(report.changed);
    assert_eq!(report.ttl_seconds, 60);
}

#[tokio::test]
async fn promote_moves_all_traffic_and_marks_the_task_set_primary() {
    let seen = Seen::new();
    let change = r53::change(&seen);
    let primary_seen = Seen::new();
    let primary = {
        let s = primary_seen.clone();
        mock!(aws_sdk_ecs::Client::update_service_primary_task_set).then_compute_output(
            move |req| {
                s.push(req);
                aws_sdk_ecs::operation::update_service_primary_task_set::UpdateServicePrimaryTaskSetOutput::builder()
                    .task_set(ecs::task_set(NEW_TS, Slot::Green, "PRIMARY", Some(DEPLOYMENT_ID), 6))
                    .build()
            },
        )
    };
    // Only the green slot gets weight: blue (0 %) needs no healthy instance.
    let ctx = Mocks::new()
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .route53(&[
            &r53::list(r53::records(50, 50, 60)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .ecs(&[
            &ecs::describe_task_sets(vec![ecs::live_blue(), ecs::new_green()]),
            &primary,
        ])
        .context();
    let mut req = request(Slot::Green, 100);
    req.mark_primary = Some(task_set_ref(NEW_TS));
    req.label = Some("promote".into());

    let report = set_weight::run(&ctx, &req).await.unwrap();

    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 0, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 100, 60),
        ]
    );
    let p = primary_seen.only();
    assert_eq!(p.cluster(), Some(CLUSTER));
    assert_eq!(p.service(), Some(SERVICE));
    assert_eq!(p.primary_task_set(), Some(task_set_arn(NEW_TS).as_str()));
    assert_eq!(
        report.primary_task_set.as_deref(),
        Some(task_set_arn(NEW_TS).as_str())
    );
    assert_eq!(
        report.weights,
        Weights {
            blue: 0,
            green: 100
        }
    );
}

#[tokio::test]
async fn promote_retried_after_it_succeeded_changes_nothing() {
    let change = r53::change(&Seen::new());
    let primary = mock!(aws_sdk_ecs::Client::update_service_primary_task_set).then_output(|| {
        aws_sdk_ecs::operation::update_service_primary_task_set::UpdateServicePrimaryTaskSetOutput::builder().build()
    });
    let promoted = ecs::task_set(NEW_TS, Slot::Green, "PRIMARY", Some(DEPLOYMENT_ID), 6);
    let demoted = ecs::task_set(OLD_TS, Slot::Blue, "ACTIVE", Some(OLD_DEPLOYMENT_ID), 5);
    let ctx = Mocks::new()
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .route53(&[
            &r53::list(r53::records(0, 100, 60)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .ecs(&[&ecs::describe_task_sets(vec![demoted, promoted]), &primary])
        .context();
    let mut req = request(Slot::Green, 100);
    req.mark_primary = Some(task_set_ref(NEW_TS));

    let report = set_weight::run(&ctx, &req).await.unwrap();

    // Only the identical write that confirms INSYNC.
    assert_eq!(change.num_calls(), 1);
    assert!(report.insync);
    assert_eq!(primary.num_calls(), 0);
    assert!(!report.changed);
    assert_eq!(
        report.primary_task_set.as_deref(),
        Some(task_set_arn(NEW_TS).as_str())
    );
}

#[tokio::test]
async fn rollback_needs_only_the_live_slot_healthy() {
    // The new slot has no healthy instance (that may be why we roll back).
    let seen = Seen::new();
    let change = r53::change(&seen);
    let ctx = Mocks::new()
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .instances(&cloudmap::instances(
            Slot::Green,
            cloudmap::of_task_set(DEPLOYMENT_ID, "green", 0, 2),
        ))
        .route53(&[
            &r53::list(r53::records(50, 50, 60)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .context();

    let report = set_weight::run(&ctx, &request(Slot::Blue, 100))
        .await
        .unwrap();

    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 100, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 0, 60),
        ]
    );
    assert_eq!(
        report.weights,
        Weights {
            blue: 100,
            green: 0
        }
    );
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn invalid_input_makes_no_aws_call() {
    // No rule at all: any AWS call would panic the test.
    let ctx = Mocks::new().context();
    let mut too_much = request(Slot::Green, 101);
    assert_eq!(
        err_type(set_weight::run(&ctx, &too_much).await),
        "InvalidInput"
    );
    too_much.percent = 10;
    too_much.ttl_seconds = Some(0);
    assert_eq!(
        err_type(set_weight::run(&ctx, &too_much).await),
        "InvalidInput"
    );
    let mut req = request(Slot::Green, 10);
    req.target.slots.green.set_identifier = BLUE_SET_ID.into();
    assert_eq!(err_type(set_weight::run(&ctx, &req).await), "InvalidInput");
    let mut req = request(Slot::Green, 10);
    req.target.hosted_zone_id = "not a zone".into();
    assert_eq!(err_type(set_weight::run(&ctx, &req).await), "InvalidInput");
}

#[tokio::test]
async fn invalid_percent_with_mark_primary_makes_no_aws_call() {
    let ctx = Mocks::new().context();
    let mut req = request(Slot::Green, 101);
    req.mark_primary = Some(task_set_ref(NEW_TS));
    assert_eq!(err_type(set_weight::run(&ctx, &req).await), "InvalidInput");
}

#[tokio::test]
async fn a_malformed_payload_is_invalid_input() {
    let mut payload = serde_json::to_value(request(Slot::Green, 10)).unwrap();
    payload["percent"] = serde_json::json!(300);
    let parsed: Result<SetWeightRequest, _> = canary_engine::handlers::parse(payload.clone());
    assert_eq!(err_type(parsed), "InvalidInput");
    payload["percent"] = serde_json::json!(10);
    payload["weight"] = serde_json::json!(10);
    let parsed: Result<SetWeightRequest, _> = canary_engine::handlers::parse(payload);
    assert_eq!(err_type(parsed), "InvalidInput");
}

#[tokio::test]
async fn mark_primary_of_a_task_set_in_the_other_slot_is_invalid_input() {
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![
            ecs::live_blue(),
            ecs::new_green(),
        ])])
        .route53(&[&change])
        .context();
    let mut req = request(Slot::Green, 100);
    req.mark_primary = Some(task_set_ref(OLD_TS));

    assert_eq!(err_type(set_weight::run(&ctx, &req).await), "InvalidInput");
    assert_eq!(change.num_calls(), 0);
}

#[tokio::test]
async fn a_missing_hosted_zone_is_target_not_found() {
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_error(|| {
        ListResourceRecordSetsError::NoSuchHostedZone(
            NoSuchHostedZone::builder()
                .message("No hosted zone found with ID: Z04512345EXAMPLE0001")
                .meta(meta("NoSuchHostedZone"))
                .build(),
        )
    });
    let ctx = Mocks::new().route53(&[&list]).context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "TargetNotFound");
    assert!(e.to_string().contains(ZONE), "{e}");
}

#[tokio::test]
async fn a_missing_record_is_target_not_found() {
    let only_blue = vec![r53::record(
        BLUE_SET_ID,
        RrType::Cname,
        BLUE_DNS,
        Some(100),
        60,
    )];
    let ctx = Mocks::new().route53(&[&r53::list(only_blue)]).context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "TargetNotFound");
    assert!(e.to_string().contains(GREEN_SET_ID), "{e}");
}

#[tokio::test]
async fn a_missing_cloud_map_service_is_target_not_found() {
    let list = mock!(aws_sdk_servicediscovery::Client::list_instances).then_error(|| {
        ListInstancesError::ServiceNotFound(
            ServiceNotFound::builder()
                .message("Service not found")
                .meta(meta("ServiceNotFound"))
                .build(),
        )
    });
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .cloudmap(&[&list])
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "TargetNotFound"
    );
    assert_eq!(change.num_calls(), 0);
}

#[tokio::test]
async fn swapped_set_identifiers_are_target_misconfigured() {
    // The record named for blue points at green's DNS name and vice versa.
    let swapped = vec![
        r53::record(BLUE_SET_ID, RrType::Cname, GREEN_DNS, Some(100), 60),
        r53::record(GREEN_SET_ID, RrType::Cname, BLUE_DNS, Some(0), 60),
    ];
    let ctx = Mocks::new().route53(&[&r53::list(swapped)]).context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("swapped"), "{e}");
}

#[tokio::test]
async fn different_ttls_are_target_misconfigured() {
    let records = vec![
        r53::record(BLUE_SET_ID, RrType::Cname, BLUE_DNS, Some(100), 60),
        r53::record(GREEN_SET_ID, RrType::Cname, GREEN_DNS, Some(0), 300),
    ];
    let ctx = Mocks::new().route53(&[&r53::list(records)]).context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "TargetMisconfigured");
    assert!(e.to_string().contains("different TTLs"), "{e}");
}

#[tokio::test]
async fn records_that_are_not_weighted_cnames_are_target_misconfigured() {
    let a_record = vec![
        r53::record(BLUE_SET_ID, RrType::A, "10.0.1.17", Some(100), 60),
        r53::record(GREEN_SET_ID, RrType::Cname, GREEN_DNS, Some(0), 60),
    ];
    let ctx = Mocks::new().route53(&[&r53::list(a_record)]).context();
    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "TargetMisconfigured"
    );

    let unweighted = vec![
        r53::record(BLUE_SET_ID, RrType::Cname, BLUE_DNS, None, 60),
        r53::record(GREEN_SET_ID, RrType::Cname, GREEN_DNS, Some(0), 60),
    ];
    let ctx = Mocks::new().route53(&[&r53::list(unweighted)]).context();
    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "TargetMisconfigured"
    );
}

#[tokio::test]
async fn no_healthy_instances_refuses_without_writing() {
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .instances(&cloudmap::instances(
            Slot::Green,
            cloudmap::of_task_set(DEPLOYMENT_ID, "green", 0, 3),
        ))
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "NoHealthyInstances");
    assert!(e.to_string().contains("3 unhealthy"), "{e}");
    assert_eq!(change.num_calls(), 0);
}

#[tokio::test]
async fn an_empty_slot_is_no_healthy_instances() {
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .instances(&cloudmap::instances(Slot::Green, Vec::new()))
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "NoHealthyInstances"
    );
    assert_eq!(change.num_calls(), 0);
}

#[tokio::test]
async fn mark_primary_of_a_missing_task_set_is_task_set_not_found() {
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![ecs::live_blue()])])
        .route53(&[&change])
        .context();
    let mut req = request(Slot::Green, 100);
    req.mark_primary = Some(task_set_ref(NEW_TS));

    assert_eq!(
        err_type(set_weight::run(&ctx, &req).await),
        "TaskSetNotFound"
    );
    assert_eq!(change.num_calls(), 0);
}

#[tokio::test]
async fn throttling_is_retryable() {
    // Route 53 throttles with HTTP 400 and code Throttling.
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .sequence()
        .http_status(
            400,
            Some(
                r#"<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>8f6d1c1e</RequestId></ErrorResponse>"#
                    .into(),
            ),
        )
        .build();
    let ctx = Mocks::new().route53(&[&list]).context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "Retryable", "{e}");
    assert!(e.to_string().contains("Throttling"), "{e}");
}

#[tokio::test]
async fn a_5xx_is_retryable() {
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .sequence()
        .http_status(503, None)
        .build();
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "Retryable"
    );
}

#[tokio::test]
async fn prior_request_not_complete_is_retryable() {
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_error(|| {
        ChangeResourceRecordSetsError::PriorRequestNotComplete(
            PriorRequestNotComplete::builder()
                .message("The request was rejected because Route 53 was still processing a prior request.")
                .meta(meta("PriorRequestNotComplete"))
                .build(),
        )
    });
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    assert_eq!(
        err_type(set_weight::run(&ctx, &request(Slot::Green, 10)).await),
        "Retryable"
    );
}

#[tokio::test]
async fn a_change_never_insync_is_retryable_and_the_retry_confirms_it() {
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &r53::change(&Seen::new()),
            &r53::get_change(ChangeStatus::Pending),
        ])
        .settings(canary_engine::runtime::Settings {
            insync_poll: std::time::Duration::from_millis(2),
            insync_timeout: std::time::Duration::from_millis(20),
            ..settings()
        })
        .context();

    let e = err(set_weight::run(&ctx, &request(Slot::Green, 10)).await);
    assert_eq!(e.error_type(), "Retryable");
    assert!(e.to_string().contains("not INSYNC"), "{e}");

    // The retry sees the weights written and confirms them INSYNC by
    // GetChange (an identical write), not by assumption.
    let seen = Seen::new();
    let change = r53::change(&seen);
    let get_change = r53::get_change(ChangeStatus::Insync);
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change, &get_change])
        .context();
    let report = set_weight::run(&ctx, &request(Slot::Green, 10))
        .await
        .unwrap();
    assert!(!report.changed);
    assert!(report.insync);
    assert!(get_change.num_calls() >= 1);
    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 90, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 10, 60),
        ]
    );
}

#[tokio::test]
async fn retry_with_the_weights_in_place_needs_no_healthy_instances() {
    // The rollback (blue 100 %) already happened, e.g. by alarm-rollback;
    // the blue instances then turned unhealthy. Nothing is left to change,
    // so the execution's own rollback step must not end in RollbackFailed.
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .instances(&cloudmap::instances(
            Slot::Blue,
            cloudmap::of_task_set(OLD_DEPLOYMENT_ID, "blue", 0, 2),
        ))
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .context();

    let report = set_weight::run(&ctx, &request(Slot::Blue, 100))
        .await
        .unwrap();

    assert!(!report.changed);
    assert!(report.insync);
    // Only the identical write that confirms INSYNC.
    assert_eq!(change.num_calls(), 1);
}

#[tokio::test]
async fn the_lambda_entry_point_takes_the_fixture_and_names_errors() {
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &r53::change(&Seen::new()),
            &r53::get_change(ChangeStatus::Insync),
        ])
        .context();
    let event = |payload| lambda_runtime::LambdaEvent::new(payload, Default::default());

    let report = set_weight::handle(&ctx, event(fixture("set-weight.request.json")))
        .await
        .unwrap();
    let sample: canary_engine::model::WeightReport =
        serde_json::from_value(fixture("weight-report.json")).unwrap();
    assert_eq!(report.weights, sample.weights);
    assert_eq!(report.label, sample.label);

    let mut bad = fixture("set-weight.request.json");
    bad["percent"] = serde_json::json!("ten");
    let diagnostic = set_weight::handle(&ctx, event(bad)).await.unwrap_err();
    assert_eq!(diagnostic.error_type, "InvalidInput");
}

// ------------------------------------------------------------------ guarded steps (issue 12 item 4)

/// A forward step writes DELETE (the records as read) + CREATE (the new
/// weights) in one batch: Route 53 applies it only if nobody wrote between.
#[tokio::test]
async fn a_guarded_step_writes_only_if_the_records_are_as_read() {
    let seen = Seen::new();
    let change = r53::change(&seen);
    let history = Seen::new();
    let ctx = healthy_slots(Mocks::new())
        .route53(&[
            &r53::list(r53::records(100, 0, 60)),
            &change,
            &r53::get_change(ChangeStatus::Insync),
        ])
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(ALARM, Vec::new(), &history),
        ])
        .context();

    let report = set_weight::run(&ctx, &guarded(10)).await.unwrap();

    assert_eq!(
        r53::upserts(&seen.only()),
        vec![
            (ChangeAction::Delete, BLUE_SET_ID.into(), 100, 60),
            (ChangeAction::Delete, GREEN_SET_ID.into(), 0, 60),
            (ChangeAction::Create, BLUE_SET_ID.into(), 90, 60),
            (ChangeAction::Create, GREEN_SET_ID.into(), 10, 60),
        ]
    );
    assert!(report.changed && report.insync);
    // The window is read from the given start, before the request.
    let h = history.all();
    assert!(!h.is_empty());
    assert!(h
        .iter()
        .all(|r| r.start_date().map(|d| d.secs())
            <= Some(time::parse("since", SINCE).unwrap().secs())));
}

/// An alarm that went to ALARM and back since the window start (while the
/// previous change propagated, or before this retry): nothing is written.
#[tokio::test]
async fn a_guarded_step_sees_an_alarm_that_flipped_in_its_window_and_writes_nothing() {
    let change = r53::change(&Seen::new());
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(
                ALARM,
                vec![
                    cw::transition(ALARM, "ALARM", "OK"),
                    cw::transition(ALARM, "OK", "ALARM"),
                ],
                &Seen::new(),
            ),
        ])
        .context();

    let e = err(set_weight::run(&ctx, &guarded(50)).await);

    assert_eq!(e.error_type(), "AlarmFiring");
    assert!(e.to_string().contains(ALARM), "{e}");
    assert_eq!(change.num_calls(), 0);
}

/// alarm-rollback's UPSERT landed between the step's read and its write:
/// Route 53 refuses the whole batch, the step reports WeightsChanged.
#[tokio::test]
async fn a_guarded_step_overtaken_by_a_rollback_is_weights_changed() {
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_error(|| {
        ChangeResourceRecordSetsError::InvalidChangeBatch(
            aws_sdk_route53::types::error::InvalidChangeBatch::builder()
                .message("Tried to delete resource record set [name='orders.shop.internal.', type='CNAME', set-identifier='orders-blue'] but the values provided do not match the current values")
                .meta(meta("InvalidChangeBatch"))
                .build(),
        )
    });
    let ctx = healthy_slots(Mocks::new())
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(ALARM, Vec::new(), &Seen::new()),
        ])
        .context();

    let e = err(set_weight::run(&ctx, &guarded(50)).await);

    assert_eq!(e.error_type(), "WeightsChanged");
    assert_eq!(change.num_calls(), 1);
}

// ------------------------------------------------------------------ issue 13

fn strategy_300_to_5() -> canary_engine::model::Strategy {
    canary_engine::plan::complete_strategy(&Default::default(), 300, 10)
}

/// The promotion writes the final weights with the original TTL back and
/// answers the exact drain of the old slot, with how it was derived.
#[tokio::test]
async fn the_promotion_restores_the_ttl_and_answers_the_exact_drain() {
    use canary_engine::model::{DrainRequest, ShiftTimes};
    // (first shift known long ago, want seconds after the change):
    // long ago -> only the deployment TTL: 5 + 10 + 10; unknown -> the
    // original 300 counts up to this change: 300 + 10 + 10.
    for (first_shift, want) in [(true, 25), (false, 320)] {
        let seen = Seen::<ChangeResourceRecordSetsInput>::new();
        let change = r53::change(&seen);
        let ctx = healthy_slots(Mocks::new())
            .route53(&[
                &r53::list(r53::records(50, 50, 5)),
                &change,
                &r53::get_change(ChangeStatus::Insync),
            ])
            .context();
        let mut req = request(Slot::Green, 100);
        req.ttl_seconds = Some(300);
        req.drain = Some(DrainRequest {
            slot: Slot::Blue,
            served_before: true,
            promotion_tried: false,
            strategy: strategy_300_to_5(),
            first_shift: first_shift.then(|| ShiftTimes {
                requested_at: "2026-11-27T10:00:00Z".into(),
                changed_at: "2026-11-27T10:00:20Z".into(),
                insync: true,
            }),
        });

        let report = set_weight::run(&ctx, &req).await.unwrap();

        assert_eq!(
            r53::upserts(&seen.only()),
            vec![
                (ChangeAction::Upsert, BLUE_SET_ID.into(), 0, 300),
                (ChangeAction::Upsert, GREEN_SET_ID.into(), 100, 300),
            ],
            "final weights and the original TTL in one batch"
        );
        let drain = report.drain.unwrap();
        assert_eq!(drain.seconds, want, "{}", drain.explain);
        let until = time::parse("until", &drain.until).unwrap().secs();
        let changed = time::parse("changedAt", &report.changed_at).unwrap().secs();
        assert_eq!(until - changed, i64::from(want));
        assert!(
            drain.explain.contains("Cloud Map TTL 10s"),
            "{}",
            drain.explain
        );
        assert!(!drain.until.contains('.'), "whole seconds: {}", drain.until);
    }
}

/// A drain is only for the slot that loses all its traffic.
#[tokio::test]
async fn a_drain_for_the_slot_that_keeps_traffic_is_refused() {
    use canary_engine::model::DrainRequest;
    let ctx = Mocks::new().context();
    let mut req = request(Slot::Green, 100);
    req.drain = Some(DrainRequest {
        slot: Slot::Green,
        served_before: false,
        promotion_tried: false,
        strategy: strategy_300_to_5(),
        first_shift: None,
    });
    let err = set_weight::run(&ctx, &req).await.err().unwrap();
    assert_eq!(err.error_type(), "InvalidInput");
}

/// Issue 13 residue: set-weight measures how long its change took to be
/// INSYNC and carries the deployment's rollback bound forward with that
/// time counted when it is longer than the bound assumed.
#[tokio::test]
async fn the_measured_insync_time_is_carried_into_the_rollback_bound() {
    use canary_engine::model::{KeepAliveBound, RollbackBound};
    let ctx = || {
        healthy_slots(Mocks::new())
            .route53(&[
                &r53::list(r53::records(100, 0, 60)),
                &r53::change(&Seen::new()),
                &r53::get_change(ChangeStatus::Insync),
            ])
            .context()
    };
    // A bound that assumed 0 s of propagation: any measured time is longer
    // (a whole second at least: measurements are rounded up).
    let assumed = RollbackBound {
        seconds: 5,
        propagation_seconds: 0,
        propagation_source: "documented".into(),
        ttl_seconds: 5,
        detection: Vec::new(),
        keep_alive: Some(KeepAliveBound {
            seconds: 25,
            connection_age_seconds: None,
            drain_seconds: 25,
            drain_after_insync_seconds: 25,
            term: "drain".into(),
        }),
        statement: "a rollback reaches new connections within 5 s".into(),
    };
    let mut req = request(Slot::Green, 10);
    req.rollback_bound = Some(assumed.clone());
    let report = set_weight::run(&ctx(), &req).await.unwrap();
    let measured = report.insync_seconds.expect("INSYNC measured");
    assert!(measured >= 1, "{measured}");
    let b = report.rollback_bound.expect("the bound is carried");
    assert_eq!(b.propagation_source, "measured");
    assert_eq!(b.propagation_seconds, measured);
    assert_eq!(b.seconds, measured + 5);
    assert_eq!(b.keep_alive.map(|k| k.seconds), Some(measured + 25));
    assert!(b
        .statement
        .contains(&format!("propagation {measured} s measured")));

    // The documented 60 s is longer than this measurement: unchanged.
    let documented = RollbackBound {
        seconds: 65,
        propagation_seconds: 60,
        ..assumed
    };
    req.rollback_bound = Some(documented.clone());
    let report = set_weight::run(&ctx(), &req).await.unwrap();
    assert_eq!(report.rollback_bound, Some(documented));

    // Without a bound in the request the answer has none (written as null).
    req.rollback_bound = None;
    let report = set_weight::run(&ctx(), &req).await.unwrap();
    assert_eq!(report.rollback_bound, None);
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json.get("rollbackBound").is_some_and(|v| v.is_null()),
        "{json}"
    );
    assert!(json.get("insyncSeconds").is_some(), "{json}");
}
