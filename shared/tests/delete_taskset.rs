//! `delete-taskset` against mocked ECS and Route 53: deletes a task set whose
//! slot has no weight, treats an already-gone one as success, refuses
//! anything that would drop traffic.

mod common;

use aws_sdk_ecs::operation::delete_task_set::{
    DeleteTaskSetError, DeleteTaskSetInput, DeleteTaskSetOutput,
};
use aws_sdk_ecs::operation::describe_task_sets::DescribeTaskSetsError;
use aws_sdk_ecs::types::error::{
    ClusterNotFoundException, ServerException, ServiceNotFoundException, TaskSetNotFoundException,
};
use aws_smithy_mocks::{mock, Rule};
use canary_engine::handlers::delete_taskset;
use canary_engine::model::{DeleteTaskSetRequest, Slot};
use common::*;

/// Deleting the old task set (blue) after the promotion.
fn request() -> DeleteTaskSetRequest {
    DeleteTaskSetRequest {
        target: target(),
        slot: Slot::Blue,
        task_set: task_set_ref(OLD_TS),
        first_deployment: false,
        deployment_id: None,
    }
}

/// The old task set after the promotion: ACTIVE, no longer PRIMARY.
fn demoted_blue() -> ecs::TaskSet {
    ecs::task_set(OLD_TS, Slot::Blue, "ACTIVE", Some(OLD_DEPLOYMENT_ID), 5)
}

fn promoted_green() -> ecs::TaskSet {
    ecs::task_set(NEW_TS, Slot::Green, "PRIMARY", Some(DEPLOYMENT_ID), 6)
}

fn delete_ok(seen: &Seen<DeleteTaskSetInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_ecs::Client::delete_task_set).then_compute_output(move |req| {
        seen.push(req);
        DeleteTaskSetOutput::builder()
            .task_set(ecs::task_set(
                OLD_TS,
                Slot::Blue,
                "DRAINING",
                Some(OLD_DEPLOYMENT_ID),
                5,
            ))
            .build()
    })
}

#[tokio::test]
async fn deletes_a_task_set_whose_slot_has_no_weight() {
    let seen = Seen::new();
    let delete = delete_ok(&seen);
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .route53(&[&r53::list(r53::records(0, 100, 60))])
        .context();

    let report = delete_taskset::run(&ctx, &request()).await.unwrap();

    let req = seen.only();
    assert_eq!(req.cluster(), Some(CLUSTER));
    assert_eq!(req.service(), Some(SERVICE));
    assert_eq!(req.task_set(), Some(task_set_arn(OLD_TS).as_str()));
    // A task set still running tasks is deleted too (they drain).
    assert_eq!(req.force(), Some(true));
    assert!(report.deleted);
    assert_eq!(report.task_set_id, task_set_id(OLD_TS));
}

#[tokio::test]
async fn retry_of_an_already_gone_task_set_succeeds_without_deleting() {
    let delete = delete_ok(&Seen::new());
    let list = r53::list(r53::records(0, 100, 60));
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![promoted_green()]), &delete])
        .route53(&[&list])
        .context();

    let report = delete_taskset::run(&ctx, &request()).await.unwrap();

    assert!(!report.deleted);
    assert_eq!(report.task_set_id, task_set_id(OLD_TS));
    assert_eq!(delete.num_calls(), 0);
    assert_eq!(list.num_calls(), 0);
}

#[tokio::test]
async fn a_task_set_that_vanishes_between_describe_and_delete_is_still_success() {
    let delete = mock!(aws_sdk_ecs::Client::delete_task_set).then_error(|| {
        DeleteTaskSetError::TaskSetNotFoundException(
            TaskSetNotFoundException::builder()
                .message("The specified task set does not exist.")
                .meta(meta("TaskSetNotFoundException"))
                .build(),
        )
    });
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .route53(&[&r53::list(r53::records(0, 100, 60))])
        .context();

    let report = delete_taskset::run(&ctx, &request()).await.unwrap();

    assert!(!report.deleted);
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test]
async fn deleting_the_new_task_set_after_a_rollback() {
    let seen = Seen::new();
    let delete = delete_ok(&seen);
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![ecs::live_blue(), ecs::new_green()]),
            &delete,
        ])
        .route53(&[&r53::list(r53::records(100, 0, 60))])
        .context();
    let req = DeleteTaskSetRequest {
        target: target(),
        slot: Slot::Green,
        task_set: task_set_ref(NEW_TS),
        first_deployment: false,
        deployment_id: None,
    };

    let report = delete_taskset::run(&ctx, &req).await.unwrap();

    assert!(report.deleted);
    assert_eq!(seen.only().task_set(), Some(task_set_arn(NEW_TS).as_str()));
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn invalid_input_makes_no_aws_call() {
    let ctx = Mocks::new().context();
    let mut req = request();
    req.target.slots.blue.registry_arn = "srv-blue".into();
    assert_eq!(
        err_type(delete_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
    let mut req = request();
    req.target.cluster = String::new();
    assert_eq!(
        err_type(delete_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
}

#[tokio::test]
async fn a_task_set_in_the_other_slot_is_invalid_input() {
    let delete = delete_ok(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .context();
    let mut req = request();
    req.slot = Slot::Green;

    assert_eq!(
        err_type(delete_taskset::run(&ctx, &req).await),
        "InvalidInput"
    );
    assert_eq!(delete.num_calls(), 0);
}

#[tokio::test]
async fn the_primary_task_set_is_unsafe_to_delete() {
    let delete = delete_ok(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![ecs::live_blue(), ecs::new_green()]),
            &delete,
        ])
        .context();

    let e = err(delete_taskset::run(&ctx, &request()).await);
    assert_eq!(e.error_type(), "UnsafeDelete");
    assert!(e.to_string().contains("PRIMARY"), "{e}");
    assert_eq!(delete.num_calls(), 0);
}

#[tokio::test]
async fn a_slot_with_weight_is_unsafe_to_delete() {
    let delete = delete_ok(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .route53(&[&r53::list(r53::records(10, 90, 60))])
        .context();

    let e = err(delete_taskset::run(&ctx, &request()).await);
    assert_eq!(e.error_type(), "UnsafeDelete");
    assert!(e.to_string().contains("weight 10"), "{e}");
    assert_eq!(delete.num_calls(), 0);
}

#[tokio::test]
async fn a_missing_cluster_or_service_is_target_not_found() {
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
        err_type(delete_taskset::run(&ctx, &request()).await),
        "TargetNotFound"
    );

    let no_service = mock!(aws_sdk_ecs::Client::describe_task_sets).then_error(|| {
        DescribeTaskSetsError::ServiceNotFoundException(
            ServiceNotFoundException::builder()
                .message("Service not found.")
                .meta(meta("ServiceNotFoundException"))
                .build(),
        )
    });
    let ctx = Mocks::new().ecs(&[&no_service]).context();
    assert_eq!(
        err_type(delete_taskset::run(&ctx, &request()).await),
        "TargetNotFound"
    );
}

#[tokio::test]
async fn a_missing_weighted_record_is_target_not_found() {
    let delete = delete_ok(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .route53(&[&r53::list(Vec::new())])
        .context();

    assert_eq!(
        err_type(delete_taskset::run(&ctx, &request()).await),
        "TargetNotFound"
    );
    assert_eq!(delete.num_calls(), 0);
}

#[tokio::test]
async fn an_ecs_server_error_is_retryable() {
    let delete = mock!(aws_sdk_ecs::Client::delete_task_set).then_error(|| {
        DeleteTaskSetError::ServerException(
            ServerException::builder()
                .message("Service Unavailable. Please try again later.")
                .meta(meta("ServerException"))
                .build(),
        )
    });
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![demoted_blue(), promoted_green()]),
            &delete,
        ])
        .route53(&[&r53::list(r53::records(0, 100, 60))])
        .context();

    assert_eq!(
        err_type(delete_taskset::run(&ctx, &request()).await),
        "Retryable"
    );
}

#[tokio::test]
async fn ecs_throttling_is_retryable() {
    // ECS (awsJson1_1) names the error in the body's __type.
    let describe = mock!(aws_sdk_ecs::Client::describe_task_sets)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .build();
    let ctx = Mocks::new().ecs(&[&describe]).context();

    let e = err(delete_taskset::run(&ctx, &request()).await);
    assert_eq!(e.error_type(), "Retryable", "{e}");
}

#[tokio::test]
async fn the_lambda_entry_point_takes_the_fixture_and_names_errors() {
    // The fixture deletes the old (blue) task set; here it is still PRIMARY.
    let ctx = Mocks::new()
        .ecs(&[&ecs::describe_task_sets(vec![
            ecs::live_blue(),
            ecs::new_green(),
        ])])
        .context();
    let event = lambda_runtime::LambdaEvent::new(
        fixture("delete-taskset.request.json"),
        Default::default(),
    );

    let diagnostic = delete_taskset::handle(&ctx, event).await.unwrap_err();
    assert_eq!(diagnostic.error_type, "UnsafeDelete");
}

/// Issue 12 item 2: the service's first task set never became ready. It sits
/// in blue, which the service template already gave weight 100; the clean-up
/// deletes it without reading or touching the records.
#[tokio::test]
async fn a_failed_first_deployment_deletes_its_task_set_in_the_weighted_slot() {
    let first = ecs::task_set(NEW_TS, Slot::Blue, "ACTIVE", Some(DEPLOYMENT_ID), 1);
    let seen = Seen::new();
    let delete = delete_ok(&seen);
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![first.clone()]),
            &ecs::describe_services(vec![first]),
            &delete,
        ])
        .context();
    let req = DeleteTaskSetRequest {
        target: target(),
        slot: Slot::Blue,
        task_set: task_set_ref(NEW_TS),
        first_deployment: true,
        deployment_id: Some(DEPLOYMENT_ID.into()),
    };

    let report = delete_taskset::run(&ctx, &req).await.unwrap();

    assert!(report.deleted);
    assert_eq!(seen.only().task_set(), Some(task_set_arn(NEW_TS).as_str()));
}

#[tokio::test]
async fn a_first_deployment_undo_refuses_once_another_task_set_exists() {
    let first = ecs::task_set(NEW_TS, Slot::Blue, "ACTIVE", Some(DEPLOYMENT_ID), 1);
    let delete = delete_ok(&Seen::new());
    let ctx = Mocks::new()
        .ecs(&[
            &ecs::describe_task_sets(vec![first.clone()]),
            &ecs::describe_services(vec![first, ecs::live_blue()]),
            &delete,
        ])
        .context();
    let req = DeleteTaskSetRequest {
        target: target(),
        slot: Slot::Blue,
        task_set: task_set_ref(NEW_TS),
        first_deployment: true,
        deployment_id: Some(DEPLOYMENT_ID.into()),
    };

    assert_eq!(
        err_type(delete_taskset::run(&ctx, &req).await),
        "UnsafeDelete"
    );
    assert_eq!(delete.num_calls(), 0);
}
