use super::*;
use crate::model::SlotConfig;

fn target() -> Target {
    Target {
        cluster: "demo".into(),
        service: "backend".into(),
        container: "app".into(),
        hosted_zone_id: "Z0123456789ABC".into(),
        record_name: "my-cname.ns-1".into(),
        slots: Slots {
            blue: SlotConfig {
                set_identifier: "blue".into(),
                registry_arn: "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-blue1"
                    .into(),
                dns_name: "service-blue.ns-2".into(),
            },
            green: SlotConfig {
                set_identifier: "green".into(),
                registry_arn: "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-green1"
                    .into(),
                dns_name: "service-green.ns-2".into(),
            },
        },
        network: None,
    }
}

fn request() -> DeploymentRequest {
    DeploymentRequest {
        target: target(),
        image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2".into()),
        task_definition: None,
        strategy: StrategyInput::default(),
        alarms: AlarmGate::default(),
    }
}

fn ts(id: &str, slot: Slot, status: &str, ext: Option<&str>) -> TaskSetView {
    let t = target();
    TaskSetView {
        id: id.into(),
        arn: format!("arn:aws:ecs:us-east-1:123456789012:task-set/demo/backend/{id}"),
        status: TaskSetStatus::parse(status),
        external_id: ext.map(str::to_string),
        registry_arns: vec![t.slots.get(slot).registry_arn.clone()],
        task_definition: "app:1".into(),
        created_at: None,
    }
}

fn err_type<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.error_type(),
    }
}

#[test]
fn a_good_request_passes() {
    assert_eq!(validate_request(&request()), Ok(()));
}

#[test]
fn image_and_task_definition_are_exclusive_and_one_is_required() {
    let mut r = request();
    r.task_definition = Some("app:3".into());
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.image = None;
    assert_eq!(validate_request(&r), Ok(()));
    r.task_definition = None;
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
}

#[test]
fn image_references() {
    for ok in [
        "nginx",
        "nginx:1.27",
        "library/nginx:latest",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v2",
        "localhost:5000/app:v_2",
        "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(validate_image(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "not an image",
        "App:v2",
        "app:",
        "app:-v2",
        "app@sha256:xyz",
        "registry.example.com/",
        "app:v2:v3/x",
        "app//x",
    ] {
        assert_eq!(err_type(validate_image(bad)), "InvalidInput", "{bad:?}");
    }
}

#[test]
fn steps_must_increase_and_end_at_100() {
    assert_eq!(validate_steps(&[10, 50, 100]), Ok(()));
    assert_eq!(validate_steps(&[100]), Ok(()));
    for bad in [
        &[][..],
        &[50, 10, 100],
        &[10, 10, 100],
        &[10, 50],
        &[0, 100],
        &[10, 101],
    ] {
        assert_eq!(err_type(validate_steps(bad)), "InvalidInput", "{bad:?}");
    }
}

#[test]
fn swapped_or_duplicate_slots_are_refused() {
    let mut r = request();
    r.target.slots.green = r.target.slots.blue.clone();
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    let mut r = request();
    r.target.slots.green.set_identifier = "blue".into();
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    let mut r = request();
    r.target.slots.blue.registry_arn = "srv-blue1".into();
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    let mut r = request();
    r.target.record_name = "service-blue.ns-2.".into();
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
}

#[test]
fn ttl_and_waits_are_bounded() {
    let mut r = request();
    r.strategy.ttl_seconds = Some(301);
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.strategy.ttl_seconds = Some(0);
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.strategy.ttl_seconds = Some(60);
    r.strategy.ready_poll_seconds = Some(700);
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.strategy.ready_poll_seconds = None;
    r.strategy.bake_seconds = Some(MAX_WAIT_SECONDS + 1);
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
}

#[test]
fn alarm_names_must_be_distinct() {
    let mut r = request();
    r.alarms.names = vec!["a".into(), "a".into()];
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.alarms.names = vec![" ".into()];
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
}

#[test]
fn zone_ids_and_registry_arns() {
    let mut r = request();
    r.target.hosted_zone_id = "/hostedzone/Z12".into();
    assert_eq!(validate_request(&r), Ok(()));
    r.target.hosted_zone_id = "zone 1".into();
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    assert_eq!(
        cloudmap_service_id("arn:aws:servicediscovery:us-east-1:1:service/srv-abc"),
        Ok("srv-abc")
    );
}

#[test]
fn defaults_fill_the_strategy_and_drain_covers_both_ttls() {
    let s = complete_strategy(&StrategyInput::default(), 10, 15);
    assert_eq!(s.steps, vec![10, 50, 100]);
    assert_eq!(s.bake_seconds, DEFAULT_BAKE_SECONDS);
    assert_eq!(s.ttl_seconds, 10);
    assert_eq!(s.drain_seconds, 10 + 15 + DRAIN_MARGIN_SECONDS);
    let s = complete_strategy(
        &StrategyInput {
            ttl_seconds: Some(30),
            drain_seconds: Some(0),
            ..Default::default()
        },
        10,
        15,
    );
    // drainSeconds may only lengthen the drain (issue 13)...
    assert_eq!(
        (s.ttl_seconds, s.drain_seconds),
        (30, 30 + 15 + DRAIN_MARGIN_SECONDS)
    );
    // ...unless unsafeShortDrain says otherwise.
    let s = complete_strategy(
        &StrategyInput {
            drain_seconds: Some(0),
            unsafe_short_drain: Some(true),
            ..Default::default()
        },
        10,
        15,
    );
    assert_eq!((s.drain_seconds, s.unsafe_short_drain), (0, true));
}

/// Issue 12 item 14: resolvers that cached the records under the old, longer
/// TTL still hold the old slot after a TTL change; the drain covers them.
#[test]
fn drain_covers_the_longest_ttl_any_client_may_hold() {
    // (records' TTL now, strategy.ttlSeconds, Cloud Map TTL) -> drain
    let cases = [
        (60, Some(5), 15, 60 + 15 + DRAIN_MARGIN_SECONDS),
        (5, Some(60), 15, 60 + 15 + DRAIN_MARGIN_SECONDS),
        (30, None, 10, 30 + 10 + DRAIN_MARGIN_SECONDS),
        (300, Some(1), 0, 300 + DRAIN_MARGIN_SECONDS),
    ];
    for (record_ttl, ttl, cloudmap_ttl, want) in cases {
        let s = complete_strategy(
            &StrategyInput {
                ttl_seconds: ttl,
                ..Default::default()
            },
            record_ttl,
            cloudmap_ttl,
        );
        assert_eq!(
            s.drain_seconds, want,
            "records TTL {record_ttl}, ttlSeconds {ttl:?}, Cloud Map TTL {cloudmap_ttl}"
        );
    }
    let terms = DrainTerms {
        cname_ttls: vec![60, 5],
        cloudmap_ttl: 15,
        margin: DRAIN_MARGIN_SECONDS,
    };
    assert_eq!(terms.seconds(), 85);
    assert!(terms.explain().contains("60"), "{}", terms.explain());
}

#[test]
fn one_task_set_with_all_weight_deploys_to_the_other_slot() {
    let t = target();
    let sets = [ts("ecs-svc/1", Slot::Blue, "PRIMARY", Some("d0"))];
    let d = decide_slots(
        &t.slots,
        &sets,
        Weights {
            blue: 100,
            green: 0,
        },
        "d1",
    );
    assert_eq!(
        d,
        Ok(SlotDecision::Deploy {
            live_slot: Slot::Blue,
            new_slot: Slot::Green,
            old: sets[0].clone()
        })
    );
    let sets = [ts("ecs-svc/2", Slot::Green, "PRIMARY", None)];
    let d = decide_slots(
        &t.slots,
        &sets,
        Weights {
            blue: 0,
            green: 100,
        },
        "d2",
    );
    assert!(matches!(
        d,
        Ok(SlotDecision::Deploy {
            new_slot: Slot::Blue,
            ..
        })
    ));
}

#[test]
fn no_task_set_is_a_first_deployment() {
    let t = target();
    assert_eq!(
        decide_slots(
            &t.slots,
            &[],
            Weights {
                blue: 100,
                green: 0
            },
            "d1"
        ),
        Ok(SlotDecision::First)
    );
}

#[test]
fn a_second_task_set_or_split_weights_mean_in_progress() {
    let t = target();
    let two = [
        ts("a", Slot::Blue, "PRIMARY", Some("d0")),
        ts("b", Slot::Green, "ACTIVE", Some("other")),
    ];
    assert_eq!(
        err_type(decide_slots(
            &t.slots,
            &two,
            Weights {
                blue: 100,
                green: 0
            },
            "d1"
        )),
        "DeploymentInProgress"
    );
    let one = [ts("a", Slot::Blue, "PRIMARY", Some("d0"))];
    assert_eq!(
        err_type(decide_slots(
            &t.slots,
            &one,
            Weights {
                blue: 90,
                green: 10
            },
            "d1"
        )),
        "DeploymentInProgress"
    );
}

#[test]
fn the_same_deployment_retried_resumes() {
    let t = target();
    let two = [
        ts("a", Slot::Blue, "PRIMARY", Some("d0")),
        ts("b", Slot::Green, "ACTIVE", Some("d1")),
    ];
    let d = decide_slots(
        &t.slots,
        &two,
        Weights {
            blue: 100,
            green: 0,
        },
        "d1",
    );
    assert_eq!(
        d,
        Ok(SlotDecision::Resume {
            live_slot: Slot::Blue,
            new_slot: Slot::Green,
            old: Some(two[0].clone()),
            new: two[1].clone()
        })
    );
}

#[test]
fn a_task_set_outside_both_slots_is_misconfigured() {
    let t = target();
    let mut stray = ts("x", Slot::Blue, "PRIMARY", None);
    stray.registry_arns = vec!["arn:aws:servicediscovery:us-east-1:1:service/srv-other".into()];
    assert_eq!(
        err_type(decide_slots(
            &t.slots,
            &[stray],
            Weights {
                blue: 100,
                green: 0
            },
            "d"
        )),
        "TargetMisconfigured"
    );
}

#[test]
fn weights_always_sum_to_100() {
    for p in 0..=100u8 {
        for slot in [Slot::Blue, Slot::Green] {
            let w = weights_for(slot, p).map_err(|e| e.to_string());
            let w = w
                .as_ref()
                .map(|w| (w.get(slot), u16::from(w.blue) + u16::from(w.green)));
            assert_eq!(w, Ok((p, 100)));
        }
    }
    assert_eq!(err_type(weights_for(Slot::Green, 101)), "InvalidInput");
    assert_eq!(
        weighted_slots(Weights {
            blue: 0,
            green: 100
        }),
        vec![Slot::Green]
    );
}

fn ready_inputs() -> ReadinessInputs {
    ReadinessInputs {
        stability_status: "STEADY_STATE".into(),
        desired: 2,
        running: 2,
        pending: 0,
        healthy_instances: 2,
        unhealthy_instances: 0,
        pending_registrations: 0,
    }
}

/// Issue 12 item 9: registered is not resolvable. While Cloud Map still
/// processes a RegisterInstance of the slot, its name does not answer with
/// the new instances yet: not ready, whatever the health says.
#[test]
fn pending_registrations_are_not_ready() {
    let mut r = ready_inputs();
    r.pending_registrations = 1;
    let verdict = readiness(&r);
    assert!(!verdict.is_ready());
    let reason = verdict.reason();
    assert!(reason.contains("registration"), "{reason}");
}

#[test]
fn readiness_needs_steady_running_and_healthy() {
    assert!(readiness(&ready_inputs()).is_ready());
    let mut r = ready_inputs();
    r.stability_status = "STABILIZING".into();
    assert!(!readiness(&r).is_ready());
    let mut r = ready_inputs();
    r.running = 1;
    assert!(!readiness(&r).is_ready());
    let mut r = ready_inputs();
    r.healthy_instances = 1;
    r.unhealthy_instances = 1;
    let verdict = readiness(&r);
    assert!(!verdict.is_ready());
    let reason = verdict.reason();
    assert!(reason.contains("1 of 2"), "{reason}");
    let mut r = ready_inputs();
    r.desired = 0;
    r.running = 0;
    r.healthy_instances = 0;
    assert!(
        !readiness(&r).is_ready(),
        "zero desired still needs one healthy instance"
    );
}

fn alarm(name: &str, state: &str, fired: bool) -> AlarmObservation {
    AlarmObservation {
        name: name.into(),
        state: state.into(),
        reason: "threshold crossed".into(),
        fired_in_window: fired,
    }
}

#[test]
fn gate_fails_on_alarm_now_or_in_window() {
    let v = gate_verdict(
        &[alarm("a", "OK", false), alarm("b", "OK", false)],
        InsufficientData::Pass,
    );
    assert!(v.passed);
    let v = gate_verdict(
        &[alarm("a", "OK", false), alarm("b", "ALARM", false)],
        InsufficientData::Pass,
    );
    assert!(!v.passed);
    assert!(v.failure.as_deref().unwrap_or("").contains("b is in ALARM"));
    let v = gate_verdict(&[alarm("a", "OK", true)], InsufficientData::Pass);
    assert!(!v.passed);
    assert!(v.reports[0].fired_in_window);
}

#[test]
fn insufficient_data_follows_the_policy() {
    let obs = [alarm("new", "INSUFFICIENT_DATA", false)];
    let v = gate_verdict(&obs, InsufficientData::Pass);
    assert!(v.passed);
    assert_eq!(v.insufficient_data, vec!["new".to_string()]);
    let v = gate_verdict(&obs, InsufficientData::Fail);
    assert!(!v.passed);
}

#[test]
fn first_task_set_network_is_checked() {
    use crate::model::TaskSetNetwork;
    let mut r = request();
    let net = TaskSetNetwork {
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        assign_public_ip: false,
        launch_type: None,
        capacity_provider_strategy: None,
    };
    r.target.network = Some(net.clone());
    assert_eq!(validate_request(&r), Ok(()));
    r.target.network = Some(TaskSetNetwork {
        subnets: vec![],
        ..net.clone()
    });
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.target.network = Some(TaskSetNetwork {
        launch_type: Some("EXTERNAL".into()),
        ..net
    });
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
}

#[test]
fn the_later_of_two_overlapping_task_sets_yields() {
    let rival = ts("b", Slot::Green, "ACTIVE", Some("other"));
    let others = [(10, rival.clone())];
    assert_eq!(rival_to_yield_to((&11, "a"), &others), Some(&rival));
    assert_eq!(rival_to_yield_to((&9, "a"), &others), None);
    // Same instant: the larger id yields.
    assert_eq!(rival_to_yield_to((&10, "c"), &others), Some(&rival));
    assert_eq!(rival_to_yield_to((&10, "a"), &others), None);
    let draining = [(1, ts("d", Slot::Green, "DRAINING", None))];
    assert_eq!(rival_to_yield_to((&11, "a"), &draining), None);
}

// ------------------------------------------------------------ issue 12 items

#[test]
fn readiness_polling_stays_far_below_the_history_limit() {
    // (timeout, poll, accepted): poll 0 was accepted before, and a day polled
    // every second is 86,401 checks, 777,609 events: the execution would die
    // at 25,000 with no Catch.
    let cases: &[(Option<u32>, Option<u32>, bool)] = &[
        (None, Some(0), false),
        (Some(86_400), Some(1), false),
        (Some(86_400), Some(15), false),
        (Some(86_400), Some(min_ready_poll_seconds(86_400)), true),
        (Some(600), Some(1), false),
        (Some(300), Some(1), true),
        (Some(600), Some(15), true),
        (None, None, true),
        (Some(86_400), None, true),
    ];
    for (timeout, poll, ok) in cases {
        let s = StrategyInput {
            ready_timeout_seconds: *timeout,
            ready_poll_seconds: *poll,
            ..StrategyInput::default()
        };
        assert_eq!(validate_strategy(&s).is_ok(), *ok, "{timeout:?} / {poll:?}");
        if *ok {
            let full = complete_strategy(&s, 60, 10);
            let polls = ready_polls(full.ready_timeout_seconds, full.ready_poll_seconds);
            assert!(polls <= MAX_READY_POLLS, "{timeout:?} / {poll:?}: {polls}");
            assert!(
                polls * READINESS_EVENTS_PER_POLL <= EXECUTION_HISTORY_LIMIT / 5,
                "{timeout:?} / {poll:?}"
            );
        }
    }
    // The longest canary (every step baked, its events included) fits in
    // what readiness leaves, with room for retries and the rollback.
    let steps = u32::try_from(MAX_STEPS).unwrap_or(u32::MAX);
    assert!(steps * CANARY_STEP_EVENTS <= EXECUTION_HISTORY_LIMIT / 5);
    // The default poll grows with a long timeout instead of refusing it.
    assert_eq!(default_ready_poll_seconds(600), DEFAULT_READY_POLL_SECONDS);
    assert!(default_ready_poll_seconds(86_400) > DEFAULT_READY_POLL_SECONDS);
}

#[test]
fn a_sixth_task_set_is_refused_naming_the_five() {
    let sets = |n: usize| -> Vec<TaskSetView> {
        (0..n)
            .map(|i| {
                let status = if i == 0 { "PRIMARY" } else { "DRAINING" };
                ts(
                    &format!("ecs-svc/{i}"),
                    Slot::Blue,
                    status,
                    Some(&format!("dep-{i}")),
                )
            })
            .collect()
    };
    for (n, ok) in [(0, true), (1, true), (4, true), (5, false), (6, false)] {
        let r = check_task_set_room(&sets(n));
        assert_eq!(r.is_ok(), ok, "{n} task sets");
        if let Err(e) = r {
            assert_eq!(e.error_type(), "TooManyTaskSets");
            let msg = e.to_string();
            for i in 0..n {
                assert!(msg.contains(&format!("ecs-svc/{i}")), "{msg}");
            }
            assert!(msg.contains("DRAINING"), "{msg}");
        }
    }
}

fn cp(name: &str) -> CapacityProviderItem {
    CapacityProviderItem {
        capacity_provider: name.into(),
        weight: Some(1),
        base: Some(0),
    }
}

#[test]
fn placement_is_exactly_one_of_launch_type_and_capacity_providers() {
    let spot = vec![cp("FARGATE_SPOT")];
    // (reported launch type, reported strategy, placement to copy)
    let cases: Vec<(Option<&str>, Vec<CapacityProviderItem>, Placement)> = vec![
        (
            Some("FARGATE"),
            vec![],
            Placement::LaunchType("FARGATE".into()),
        ),
        (Some("EC2"), vec![], Placement::LaunchType("EC2".into())),
        // ECS may report both: the strategy is what was asked for.
        (
            Some("FARGATE"),
            spot.clone(),
            Placement::CapacityProviders(spot.clone()),
        ),
        (
            None,
            spot.clone(),
            Placement::CapacityProviders(spot.clone()),
        ),
        (None, vec![], Placement::ClusterDefault),
        (Some(""), vec![], Placement::ClusterDefault),
    ];
    for (lt, cps, want) in cases {
        assert_eq!(placement_of(lt, &cps), want, "{lt:?} {cps:?}");
    }
}

#[test]
fn a_first_task_set_is_placed_by_the_input_then_the_service_then_the_cluster() {
    let net = |lt: Option<&str>, cps: Option<Vec<CapacityProviderItem>>| TaskSetNetwork {
        subnets: vec!["subnet-1".into()],
        security_groups: vec![],
        assign_public_ip: false,
        launch_type: lt.map(str::to_string),
        capacity_provider_strategy: cps,
    };
    let svc_ec2 = Placement::LaunchType("EC2".into());
    let cases = vec![
        // No input, no service choice: the cluster default, never a forced FARGATE.
        (None, Placement::ClusterDefault, Placement::ClusterDefault),
        (
            Some(net(None, None)),
            Placement::ClusterDefault,
            Placement::ClusterDefault,
        ),
        (Some(net(None, None)), svc_ec2.clone(), svc_ec2.clone()),
        (None, svc_ec2.clone(), svc_ec2.clone()),
        (
            Some(net(Some("FARGATE"), None)),
            svc_ec2.clone(),
            Placement::LaunchType("FARGATE".into()),
        ),
        (
            Some(net(None, Some(vec![cp("cp-ec2")]))),
            Placement::ClusterDefault,
            Placement::CapacityProviders(vec![cp("cp-ec2")]),
        ),
    ];
    for (n, svc, want) in cases {
        assert_eq!(first_placement(n.as_ref(), svc), want, "{n:?}");
    }
    // Both in the input is refused before any AWS call.
    let mut r = request();
    r.target.network = Some(net(Some("FARGATE"), Some(vec![cp("x")])));
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.target.network = Some(net(None, Some(vec![])));
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    r.target.network = Some(net(None, Some(vec![cp("x")])));
    assert_eq!(validate_request(&r), Ok(()));
}

#[test]
fn alarm_horizons() {
    let m = |period, evaluation_periods| AlarmWindow::Metric {
        period,
        evaluation_periods,
    };
    // Period x (EvaluationPeriods + 1) + evaluation interval + metric delay.
    let cases = vec![
        (m(10, 1), 0, Some(30)),
        // The demo's alarm on clients that publish every 10 s: it measured
        // up to 38.4 s from v3's first request to ALARM (the floor was 20 s).
        (m(10, 1), 10, Some(40)),
        (m(30, 3), 10, Some(140)),
        (m(60, 5), 60, Some(480)),
        (m(300, 1), 60, Some(720)),
        (AlarmWindow::Unknown, 60, None),
        (AlarmWindow::Composite(vec![]), 60, None),
        (
            AlarmWindow::Composite(vec![m(60, 1), m(300, 2), AlarmWindow::Unknown]),
            60,
            Some(1020),
        ),
    ];
    for (w, delay, want) in cases {
        assert_eq!(alarm_horizon_seconds(&w, delay), want, "{w:?} {delay}");
    }
}

/// Issue 11 follow-up: the bake floor counts the metric delay (the input,
/// or the CloudWatch agent's 60 s by default) and the period a regression
/// starts in.
#[test]
fn the_bake_floor_counts_the_metric_delay() {
    let alarms = vec![(
        "clients-5xx".to_string(),
        AlarmWindow::Metric {
            period: 10,
            evaluation_periods: 1,
        },
    )];
    // Before: 20 s (Period x EvaluationPeriods + 10 s) passed a 20-s bake
    // that the demo's alarm outlasted in 5 of 6 runs.
    assert_eq!(err_type(check_bake(20, &alarms, false, 10)), "BakeTooShort");
    assert_eq!(err_type(check_bake(39, &alarms, false, 10)), "BakeTooShort");
    assert_eq!(check_bake(40, &alarms, false, 10), Ok(()));
    // The default delay (60 s): 90 s.
    let delay = metric_delay_seconds(&AlarmGate::default());
    assert_eq!(delay, 60);
    let e = check_bake(40, &alarms, false, delay)
        .unwrap_err()
        .to_string();
    for term in [
        "clients-5xx needs 90s",
        "2 x 10s periods",
        "10s evaluation",
        "60s metric delay",
        "alarms.metricDelaySeconds",
        "strategy.allowShortBake",
    ] {
        assert!(e.contains(term), "{term} missing from {e}");
    }
    assert_eq!(check_bake(90, &alarms, false, delay), Ok(()));
    // Validated: at most an hour.
    let gate = |d| AlarmGate {
        metric_delay_seconds: Some(d),
        ..AlarmGate::default()
    };
    assert_eq!(validate_alarms(&gate(3_600)), Ok(()));
    assert_eq!(err_type(validate_alarms(&gate(3_601))), "InvalidInput");
}

#[test]
fn composite_rules_name_their_children() {
    let cases: &[(&str, &[&str])] = &[
        (r#"ALARM("a-5xx") OR ALARM("a-p99")"#, &["a-5xx", "a-p99"]),
        ("ALARM(a) AND NOT OK(b)", &["a", "b"]),
        (
            r#"INSUFFICIENT_DATA("x y") OR ALARM("arn:aws:cloudwatch:us-east-1:1:alarm:z")"#,
            &["z", "x y"],
        ),
        ("ALARM(a) OR ALARM(a)", &["a"]),
        ("TRUE", &[]),
        ("ALARM(LOOK(x))", &["LOOK(x"]),
    ];
    for (rule, want) in cases {
        let got = composite_children(rule);
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{rule}");
    }
}

#[test]
fn a_bake_shorter_than_an_alarm_can_see_is_refused_unless_allowed() {
    let w = |name: &str, period, n| {
        (
            name.to_string(),
            AlarmWindow::Metric {
                period,
                evaluation_periods: n,
            },
        )
    };
    let alarms = vec![w("fast", 10, 1), w("slow", 300, 1)];
    // (bake, allowShortBake, accepted): slow needs 300 x 2 + 60 + 60 s.
    for (bake, allow, ok) in [
        (300, false, false),
        (719, false, false),
        (720, false, true),
        (1, true, true),
        (0, false, false),
    ] {
        let r = check_bake(bake, &alarms, allow, 60);
        assert_eq!(r.is_ok(), ok, "bake {bake} allow {allow}");
        if let Err(e) = r {
            assert_eq!(e.error_type(), "BakeTooShort");
            assert!(e.to_string().contains("slow needs 720s"), "{e}");
            assert!(e.to_string().contains("allowShortBake"), "{e}");
        }
    }
    let unknown = vec![("math".to_string(), AlarmWindow::Unknown)];
    assert_eq!(check_bake(0, &unknown, false, 60), Ok(()));
}

#[test]
fn slot_registries_must_answer_a_records_in_a_private_namespace() {
    let shape = |ns: &str, records: &[&str]| RegistryShape {
        namespace_type: ns.into(),
        record_types: records.iter().map(|r| r.to_string()).collect(),
    };
    let cases = [
        (shape("DNS_PRIVATE", &["A"]), true),
        (shape("DNS_PRIVATE", &["A", "SRV"]), true),
        (shape("DNS_PRIVATE", &["SRV"]), false),
        (shape("DNS_PRIVATE", &["AAAA"]), false),
        (shape("DNS_PUBLIC", &["A"]), false),
        (shape("HTTP", &[]), false),
        (shape("", &["A"]), false),
    ];
    for (s, ok) in cases {
        let r = check_slot_registry(Slot::Green, &s);
        assert_eq!(r.is_ok(), ok, "{s:?}");
        if let Err(e) = r {
            assert_eq!(e.error_type(), "TargetMisconfigured");
            assert!(e.to_string().contains("green"), "{e}");
        }
    }
}

type PortsCase = (
    TaskNetworking,
    bool,
    Option<(String, i32)>,
    std::result::Result<Option<(String, i32)>, &'static str>,
);

#[test]
fn registry_ports_fit_the_network_mode_and_records() {
    let td = |mode: &str, ports: &[(&str, i32)]| TaskNetworking {
        network_mode: mode.into(),
        ports: ports.iter().map(|(c, p)| (c.to_string(), *p)).collect(),
    };
    let app = Some(("app".to_string(), 8080));
    // (task definition, any SRV, copied from the live task set, result)
    let cases: Vec<PortsCase> = vec![
        // awsvpc + A only: nothing needed.
        (td("awsvpc", &[]), false, None, Ok(None)),
        (td("awsvpc", &[("app", 8080)]), false, None, Ok(None)),
        (
            td("awsvpc", &[("app", 8080)]),
            false,
            app.clone(),
            Ok(app.clone()),
        ),
        // The copied port vanished but awsvpc does not need it: dropped.
        (td("awsvpc", &[("app", 9090)]), false, app.clone(), Ok(None)),
        // bridge / host / SRV need containerName + containerPort.
        (td("bridge", &[("app", 8080)]), false, None, Ok(app.clone())),
        (td("", &[("app", 8080)]), false, None, Ok(app.clone())),
        (
            td("host", &[("otel", 4317)]),
            false,
            None,
            Err("TargetMisconfigured"),
        ),
        (td("awsvpc", &[("app", 8080)]), true, None, Ok(app.clone())),
        (td("awsvpc", &[]), true, None, Err("TargetMisconfigured")),
        (
            td("bridge", &[("app", 9090)]),
            false,
            app.clone(),
            Err("TargetMisconfigured"),
        ),
        (
            td("bridge", &[("app", 8080)]),
            false,
            app.clone(),
            Ok(app.clone()),
        ),
    ];
    for (t, srv, copied, want) in cases {
        let got = registry_ports(&t, srv, "app", copied.clone());
        match want {
            Ok(w) => assert_eq!(got, Ok(w), "{t:?} srv={srv} {copied:?}"),
            Err(kind) => assert_eq!(err_type(got), kind, "{t:?} srv={srv} {copied:?}"),
        }
    }
}

type LockCase<'a> = (
    Option<Option<&'a DeploymentLock>>,
    Vec<TaskSetView>,
    &'static str,
);

#[test]
fn the_lock_is_taken_only_from_a_finished_or_vanished_owner() {
    let lock = |owner: &str, at: i64| DeploymentLock {
        owner: owner.into(),
        acquired_at: at,
    };
    let now = 10_000;
    let old_primary = ts("ecs-svc/1", Slot::Blue, "PRIMARY", Some("dep-a"));
    let a_new = ts("ecs-svc/2", Slot::Green, "ACTIVE", Some("dep-a"));
    let b_new = ts("ecs-svc/3", Slot::Green, "ACTIVE", Some("dep-b"));
    let fresh = lock("dep-a", now - 5);
    let stale = lock("dep-a", now - LOCK_GRACE_SECONDS);
    let ours = lock("dep-b", now - 5);
    // (lock read, task sets visible, action)
    let cases: Vec<LockCase> = vec![
        (None, vec![old_primary.clone()], "create"),
        (
            Some(Some(&ours)),
            vec![old_primary.clone(), b_new.clone()],
            "held",
        ),
        (Some(None), vec![old_primary.clone()], "takeover"),
        // The owner's deployment is promoted and alone: over.
        (Some(Some(&fresh)), vec![old_primary.clone()], "takeover"),
        // A first deployment's lone task set, not promoted yet: running.
        (Some(Some(&fresh)), vec![a_new.clone()], "refuse"),
        (Some(Some(&stale)), vec![a_new.clone()], "refuse"),
        // The owner's new task set is visible beside the old one: running.
        (
            Some(Some(&fresh)),
            vec![old_primary.clone(), a_new.clone()],
            "refuse",
        ),
        (
            Some(Some(&stale)),
            vec![old_primary.clone(), a_new.clone()],
            "refuse",
        ),
        // The owner's task set is not visible yet (eventual consistency):
        // the lock holds during the grace...
        (
            Some(Some(&fresh)),
            vec![ts("ecs-svc/0", Slot::Blue, "PRIMARY", Some("dep-z"))],
            "refuse",
        ),
        // ...and after it the owner ended (cleaned up) or crashed.
        (
            Some(Some(&stale)),
            vec![ts("ecs-svc/0", Slot::Blue, "PRIMARY", Some("dep-z"))],
            "takeover",
        ),
        // A DRAINING leftover of the owner does not count as running.
        (
            Some(Some(&stale)),
            vec![
                ts("ecs-svc/0", Slot::Blue, "PRIMARY", Some("dep-z")),
                ts("ecs-svc/4", Slot::Green, "DRAINING", Some("dep-a")),
            ],
            "takeover",
        ),
    ];
    for (i, (read, sets, want)) in cases.into_iter().enumerate() {
        let got = decide_lock(read, "dep-b", now, &sets);
        let kind = match &got {
            LockAction::Create => "create",
            LockAction::Held => "held",
            LockAction::TakeOver => "takeover",
            LockAction::Refuse(msg) => {
                assert!(msg.contains("dep-a"), "{msg}");
                "refuse"
            }
        };
        assert_eq!(kind, want, "case {i}: {got:?}");
    }
}

#[test]
fn lock_values_round_trip() {
    let l = DeploymentLock {
        owner: "orders-v2-20261127T101542Z".into(),
        acquired_at: 1_795_000_000,
    };
    assert_eq!(DeploymentLock::parse(&l.value()), Some(l.clone()));
    assert_eq!(DeploymentLock::parse("\"hello\""), None);
    assert_eq!(DeploymentLock::parse("\"owner= at=5\""), None);
    assert_eq!(
        lock_record_name("orders.shop.internal."),
        "_ecs-dns-canary-lock.orders.shop.internal"
    );
}

/// Issue 12 item 2: a failed first deployment's task set sits in the slot the
/// service template already gave weight 100; its clean-up deletes it without
/// touching the weights, and nothing else passes for such an undo.
#[test]
fn may_delete_table() {
    let w = |blue, green| Some(Weights { blue, green });
    let first = ts("ecs-svc/9", Slot::Blue, "ACTIVE", Some("d-first"));
    let first_primary = ts("ecs-svc/9", Slot::Blue, "PRIMARY", Some("d-first"));
    let old = ts("ecs-svc/1", Slot::Blue, "ACTIVE", Some("d0"));
    let old_primary = ts("ecs-svc/1", Slot::Blue, "PRIMARY", Some("d0"));
    let rival = ts("ecs-svc/2", Slot::Green, "ACTIVE", Some("d2"));
    let draining = ts("ecs-svc/3", Slot::Green, "DRAINING", Some("d3"));
    let none: [TaskSetView; 0] = [];
    // (task set, weights, first deployment id, other task sets) -> Ok?
    type Case<'a> = (
        &'a TaskSetView,
        Option<Weights>,
        Option<&'a str>,
        &'a [TaskSetView],
        bool,
    );
    let cases: Vec<Case<'_>> = vec![
        (&old, w(0, 100), None, &none, true),
        (&old, w(10, 90), None, &none, false),
        (&old_primary, w(0, 100), None, &none, false),
        (&old, None, None, &none, false),
        // The first deployment's undo: weight 100 from the template, ACTIVE or PRIMARY.
        (&first, None, Some("d-first"), &none, true),
        (&first_primary, None, Some("d-first"), &none, true),
        (
            &first,
            None,
            Some("d-first"),
            std::slice::from_ref(&draining),
            true,
        ),
        // ...but never another deployment's task set, nor one with company.
        (&old, None, Some("d-first"), &none, false),
        (
            &first,
            None,
            Some("d-first"),
            std::slice::from_ref(&rival),
            false,
        ),
        // Without the undo flag the first deployment's task set is refused as before.
        (&first, w(100, 0), None, &none, false),
    ];
    for (i, (task_set, weights, first_deployment_id, others, ok)) in cases.into_iter().enumerate() {
        let got = may_delete(&DeleteInputs {
            task_set,
            slot: Slot::Blue,
            weights,
            first_deployment_id,
            other_task_sets: others,
        });
        assert_eq!(got.is_ok(), ok, "case {i}: {got:?}");
        if let Err(e) = got {
            assert_eq!(e.error_type(), "UnsafeDelete", "case {i}");
        }
    }
}

/// Issue 12 item 8: what "healthy" means for each kind of Cloud Map service.
#[test]
fn counts_as_healthy_table() {
    use HealthCheckKind as K;
    use InstanceStatus as S;
    let cases = [
        (K::None, S::Unknown, true),
        (K::None, S::Missing, true),
        (K::None, S::Healthy, true),
        (K::Custom, S::Healthy, true),
        (K::Custom, S::Unknown, false),
        (K::Custom, S::Missing, false),
        (K::Custom, S::Unhealthy, false),
        (K::Route53, S::Healthy, true),
        (K::Route53, S::Unknown, false),
        (K::Route53, S::Missing, false),
        (K::Route53, S::Unhealthy, false),
    ];
    for (kind, status, want) in cases {
        assert_eq!(counts_as_healthy(kind, status), want, "{kind:?} {status:?}");
    }
}

/// Issue 12 item 13: the gate reads an alarm's history only when its state
/// changed inside the window.
#[test]
fn needs_history_table() {
    let from = 1_000;
    // (state now, last state change, needs history)
    let cases = [
        ("OK", Some(999), false),
        ("INSUFFICIENT_DATA", Some(10), false),
        ("OK", Some(1_000), true),
        ("OK", Some(1_500), true),
        ("OK", None, true),
        // In ALARM now fails the gate whatever the history says.
        ("ALARM", None, false),
        ("ALARM", Some(1_500), false),
    ];
    for (state, changed, want) in cases {
        assert_eq!(
            needs_history(&StateValue::from(state), changed, from),
            want,
            "{state} {changed:?}"
        );
    }
}

#[test]
fn backoff_is_full_jitter_under_a_growing_capped_ceiling() {
    use std::time::Duration;
    let (base, cap) = (Duration::from_millis(250), Duration::from_secs(5));
    for attempt in 0..12 {
        let ceiling = (base * 2u32.pow(attempt.min(10))).min(cap);
        for random in [0, 1, 7_919, u64::MAX] {
            let d = backoff(attempt, base, cap, random);
            assert!(d < ceiling, "attempt {attempt}: {d:?} >= {ceiling:?}");
        }
    }
    assert_eq!(backoff(3, Duration::ZERO, cap, 5), Duration::ZERO);
    assert!(is_throttling(Some("Throttling")));
    assert!(is_throttling(Some("ThrottlingException")));
    assert!(!is_throttling(Some("ValidationError")));
    assert!(!is_throttling(None));
}

// ------------------------------------------------------------------ issue 13

/// Item 1: the deployment TTL and how ttlSeconds combines with it.
#[test]
fn deployment_ttl_defaults_and_combinations() {
    // (records' TTL, ttlSeconds, deploymentTtlSeconds) -> (step TTL, promotion TTL, rollback TTL)
    let cases = [
        (300, None, None, (5, 300, 300)),
        (60, Some(30), None, (5, 30, 60)),
        (3, None, None, (3, 3, 3)),
        (300, None, Some(20), (20, 300, 300)),
        (10, Some(120), Some(30), (30, 120, 10)),
    ];
    for (record_ttl, ttl, dttl, want) in cases {
        let s = complete_strategy(
            &StrategyInput {
                ttl_seconds: ttl,
                deployment_ttl_seconds: dttl,
                ..Default::default()
            },
            record_ttl,
            15,
        );
        assert_eq!(
            (
                s.deployment_ttl_seconds,
                s.ttl_seconds,
                s.original_ttl_seconds
            ),
            want,
            "records {record_ttl}, ttlSeconds {ttl:?}, deploymentTtlSeconds {dttl:?}"
        );
        assert_eq!(s.max_rollback_seconds, DEFAULT_MAX_ROLLBACK_SECONDS);
    }
}

#[test]
fn new_strategy_fields_are_validated() {
    let bad = [
        StrategyInput {
            deployment_ttl_seconds: Some(0),
            ..Default::default()
        },
        StrategyInput {
            deployment_ttl_seconds: Some(301),
            ..Default::default()
        },
        StrategyInput {
            unsafe_short_drain: Some(true),
            ..Default::default()
        },
        StrategyInput {
            max_rollback_seconds: Some(0),
            ..Default::default()
        },
    ];
    for s in bad {
        assert!(validate_strategy(&s).is_err(), "{s:?}");
    }
    assert!(validate_strategy(&StrategyInput {
        unsafe_short_drain: Some(true),
        drain_seconds: Some(1),
        ..Default::default()
    })
    .is_ok());
}

fn drain_request(served_before: bool, first_shift: Option<(i64, i64, bool)>) -> DrainRequest {
    let mut strategy = complete_strategy(&StrategyInput::default(), 300, 15);
    strategy.deployment_ttl_seconds = 5;
    DrainRequest {
        slot: Slot::Blue,
        served_before,
        promotion_tried: false,
        strategy,
        first_shift: first_shift.map(|(r, c, insync)| crate::model::ShiftTimes {
            requested_at: crate::time::format(aws_smithy_types::DateTime::from_secs(r)),
            changed_at: crate::time::format(aws_smithy_types::DateTime::from_secs(c)),
            insync,
        }),
    }
}

/// Item 2: the exact drain, counted from the instants the slot last had
/// weight and the TTL in force then. Records TTL 300, deployment TTL 5,
/// Cloud Map TTL 15, margin 10; times are epoch seconds.
#[test]
fn exact_drain_counts_each_ttl_from_when_it_was_in_force() {
    // (served before, first shift (requested, insync at, insync?), this change
    //  (requested, ended, insync?)) -> seconds after this change's end
    let cases = [
        // Old slot, short canary: answers from before the first shift (TTL
        // 300, until t=1010) outlive the canary: 1010 + 300 + 15 + 10 = 1335.
        (
            true,
            Some((1000, 1010, true)),
            (1100, 1120, true),
            1335 - 1120,
        ),
        // Old slot, long canary: the 300 s answers expired long ago; only
        // the deployment TTL counts: 5 + 15 + 10.
        (true, Some((1000, 1010, true)), (2000, 2030, true), 30),
        // First shift not confirmed INSYNC: 60 s documented propagation from
        // its request (1000 + 60 + 300 + 25 = 1385).
        (
            true,
            Some((1000, 1010, false)),
            (1100, 1120, true),
            1385 - 1120,
        ),
        // First shift unknown: the original TTL counts up to this change.
        (true, None, (2000, 2030, true), 300 + 25),
        // New slot after a rollback: only the deployment TTL.
        (false, Some((1000, 1010, true)), (1100, 1120, true), 30),
        // This change not INSYNC: end = its request + 60 s.
        (false, None, (1100, 1120, false), 1160 - 1120 + 30),
    ];
    for (served, first, (req, end, insync), want) in cases {
        let d = exact_drain(&drain_request(served, first), req, end, insync);
        assert_eq!(
            d.until() - end,
            want,
            "served {served} first {first:?} change {req}..{end} insync {insync}: {}",
            d.explain()
        );
        assert!(d.explain().contains("Cloud Map TTL 15s"), "{}", d.explain());
    }
}

#[test]
fn new_slot_drain_covers_the_promotion_ttl_when_promotion_was_tried() {
    let mut d = drain_request(false, None);
    d.promotion_tried = true;
    let x = exact_drain(&d, 1000, 1000, true);
    assert_eq!(x.seconds(), 300 + 15 + DRAIN_MARGIN_SECONDS);
}

#[test]
fn drain_override_lengthens_only_unless_unsafe() {
    // (override, unsafe) -> seconds after the change (exact: 30)
    let cases = [
        (None, false, 30),
        (Some(10), false, 30),
        (Some(100), false, 100),
        (Some(10), true, 10),
        (Some(0), true, 0),
    ];
    for (minimum, unsafe_short, want) in cases {
        let mut d = drain_request(false, None);
        d.strategy.drain_override_seconds = minimum;
        d.strategy.unsafe_short_drain = unsafe_short;
        let x = exact_drain(&d, 1000, 1000, true);
        assert_eq!(
            x.seconds(),
            want,
            "{minimum:?} {unsafe_short}: {}",
            x.explain()
        );
        if minimum.is_some() {
            assert!(
                x.explain().contains("strategy.drainSeconds"),
                "{}",
                x.explain()
            );
        }
    }
}

/// Items 3 and 4: the bound, its statement, and the guard.
#[test]
fn rollback_bound_terms_and_guard() {
    let detection = vec![AlarmDetection {
        alarm: "errors".into(),
        seconds: Some(70),
    }];
    let strategy = |deployment_ttl: u32| {
        complete_strategy(
            &StrategyInput {
                deployment_ttl_seconds: Some(deployment_ttl),
                ..StrategyInput::default()
            },
            300,
            10,
        )
    };
    // (deployment TTL, measured INSYNC) -> (bound, source)
    let cases = [
        (5, None, 65, "documented"),
        (300, None, 360, "documented"),
        // A measured INSYNC shorter than 60 s proves nothing about the next
        // change: the documented bound stays.
        (5, Some(3), 65, "documented"),
        (5, Some(60), 65, "documented"),
        (5, Some(95), 100, "measured"),
    ];
    for (ttl, measured, want, source) in cases {
        let mut b = rollback_bound(&strategy(ttl), detection.clone());
        if let Some(m) = measured {
            b = with_measured_insync(&b, m);
        }
        assert_eq!((b.seconds, b.propagation_source.as_str()), (want, source));
        assert!(
            b.statement.starts_with(&format!(
                "a rollback reaches new connections within {want} s of its decision"
            )),
            "{}",
            b.statement
        );
        assert!(b.statement.contains("errors 70 s"), "{}", b.statement);
    }
    let rollback_bound =
        |ttl, _: Option<u32>, d: Vec<AlarmDetection>| rollback_bound(&strategy(ttl), d);
    assert!(check_rollback_bound(&rollback_bound(5, None, vec![]), 90).is_ok());
    assert!(check_rollback_bound(&rollback_bound(30, None, vec![]), 90).is_ok());
    let err = check_rollback_bound(&rollback_bound(300, None, vec![]), 90)
        .err()
        .map(|e| (e.error_type(), e.to_string()));
    let Some((kind, msg)) = err else {
        panic!("a 360 s bound passed a 90 s guard")
    };
    assert_eq!(kind, "TargetMisconfigured");
    for term in [
        "360s",
        "propagation 60s",
        "TTL during the deployment 300s",
        "strategy.maxRollbackSeconds",
        "strategy.deploymentTtlSeconds",
    ] {
        assert!(msg.contains(term), "{term} missing from {msg}");
    }
}

/// Issue 11 follow-up: keep-alive connections follow connections, not
/// weights. The bound names the connection age, or the drain that deletes
/// the canary when the age is unknown.
#[test]
fn the_rollback_bound_names_the_keep_alive_term() {
    let strategy = |age: Option<u32>, drain: Option<u32>| {
        complete_strategy(
            &StrategyInput {
                client_max_connection_age_seconds: age,
                drain_seconds: drain,
                ..StrategyInput::default()
            },
            300,
            15,
        )
    };
    // Unknown age: until the drain deletes the canary, propagation 60 s +
    // (deployment TTL 5 + Cloud Map TTL 15 + margin 10) after the decision.
    let b = rollback_bound(&strategy(None, None), vec![]);
    assert_eq!(b.seconds, 65);
    let k = b.keep_alive.clone().expect("keep-alive term");
    assert_eq!(
        (
            k.seconds,
            k.term.as_str(),
            k.connection_age_seconds,
            k.drain_seconds
        ),
        (90, "drain", None, 90)
    );
    assert!(
        b.statement.contains(
            "keep-alive connections stay on the canary until the drain deletes it, 90 s after \
             the decision"
        ),
        "{}",
        b.statement
    );
    assert!(b
        .statement
        .contains("strategy.clientMaxConnectionAgeSeconds"));
    // A known age shorter than that: new connections' bound + the age.
    let b = rollback_bound(&strategy(Some(20), None), vec![]);
    let k = b.keep_alive.clone().expect("keep-alive term");
    assert_eq!((k.seconds, k.term.as_str()), (85, "connectionAge"));
    assert!(
        b.statement
            .contains("keep-alive connections within 85 s (65 s + max connection age 20 s)"),
        "{}",
        b.statement
    );
    // Longer than the drain: the drain ends those connections first.
    let b = rollback_bound(&strategy(Some(300), None), vec![]);
    let k = b.keep_alive.clone().expect("keep-alive term");
    assert_eq!((k.seconds, k.term.as_str()), (90, "drain"));
    // drainSeconds lengthens the drain, and so the keep-alive bound.
    let b = rollback_bound(&strategy(None, Some(120)), vec![]);
    assert_eq!(b.keep_alive.map(|k| k.seconds), Some(180));
    // A measured slow INSYNC moves both terms.
    let b = with_measured_insync(&rollback_bound(&strategy(Some(20), None), vec![]), 80);
    let k = b.keep_alive.clone().expect("keep-alive term");
    assert_eq!((b.seconds, k.seconds, k.drain_seconds), (85, 105, 110));
    // The input is validated.
    let mut r = request();
    r.strategy.client_max_connection_age_seconds = Some(0);
    assert_eq!(err_type(validate_request(&r)), "InvalidInput");
    // Older plans without the term read and keep it absent.
    let old: RollbackBound = serde_json::from_value(serde_json::json!({
        "seconds": 65, "propagationSeconds": 60, "propagationSource": "documented",
        "ttlSeconds": 5, "statement": "x"
    }))
    .expect("an older bound reads");
    assert_eq!(with_measured_insync(&old, 90).keep_alive, None);
    assert_eq!(with_measured_insync(&old, 90).seconds, 95);
}

// ------------------------------------------------------------------ abort and repair

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const TO_BAKE: [&str; 9] = [
    "Create task set in idle slot",
    "Check new task set readiness",
    "New task set ready?",
    "First deployment?",
    "Start canary",
    "More steps?",
    "Prepare next step",
    "Shift traffic",
    "Bake",
];

#[test]
fn phase_follows_the_last_state_entered() {
    assert_eq!(phase(&[]), Phase::Creating);
    assert_eq!(phase(&names(&TO_BAKE[..1])), Phase::Creating);
    assert_eq!(phase(&names(&TO_BAKE[..3])), Phase::Readiness);
    assert_eq!(phase(&names(&TO_BAKE)), Phase::Canary);
    let mut promoted = names(&TO_BAKE);
    promoted.extend(names(&[
        "Check alarms",
        "More steps?",
        "Promote new task set",
    ]));
    assert_eq!(phase(&promoted), Phase::Promoting);
    promoted.push("Drain old task set".into());
    assert_eq!(phase(&promoted), Phase::Promoted);
    let mut rolled = names(&TO_BAKE);
    rolled.extend(names(&["Alarm fired", "Roll back traffic"]));
    assert_eq!(phase(&rolled), Phase::RollingBack);
    rolled.extend(names(&[
        "Drain new task set",
        "Delete new task set",
        "Deployment failed",
    ]));
    assert_eq!(phase(&rolled), Phase::Done);
    assert_eq!(phase(&names(&["Rollback failed"])), Phase::OwnPathFailed);
    assert_eq!(
        phase(&names(&["Some new state"])),
        Phase::Unknown("Some new state".into())
    );
}

#[test]
fn abort_fails_the_token_only_while_baking_and_refuses_after_promotion() {
    assert_eq!(abort_action(&Phase::Canary, true), AbortAction::FailToken);
    assert_eq!(abort_action(&Phase::Canary, false), AbortAction::Stop);
    assert_eq!(abort_action(&Phase::Readiness, false), AbortAction::Stop);
    assert_eq!(abort_action(&Phase::Creating, false), AbortAction::Stop);
    for p in [Phase::Promoting, Phase::Promoted, Phase::FirstShift] {
        let AbortAction::Refuse(why) = abort_action(&p, false) else {
            panic!("{p:?} must refuse");
        };
        assert!(why.contains("promot"), "{why}");
    }
    assert!(matches!(
        abort_action(&Phase::RollingBack, true),
        AbortAction::Refuse(w) if w.contains("already rolling back")
    ));
    assert!(matches!(
        abort_action(&Phase::Done, false),
        AbortAction::Refuse(_)
    ));
    assert_eq!(
        abort_cause("arn:aws:iam::1:user/alice", "bad p99", Some("Bake")),
        "aborted by arn:aws:iam::1:user/alice during Bake: bad p99"
    );
}

#[test]
fn repair_restores_what_the_execution_left_and_leaves_what_it_finished() {
    let live = Slot::Blue;
    // Stopped during the bake: traffic moved, roll it back.
    assert_eq!(
        repair_decision("ABORTED", &names(&TO_BAKE), Some(&live)),
        RepairDecision::Restore {
            live,
            traffic_moved: true,
            promotion_tried: false
        }
    );
    // Stopped during readiness: nothing moved, only the task set goes.
    assert_eq!(
        repair_decision("TIMED_OUT", &names(&TO_BAKE[..3]), Some(&live)),
        RepairDecision::Restore {
            live,
            traffic_moved: false,
            promotion_tried: false
        }
    );
    // Stopped while the promotion was in flight.
    let mut promoting = names(&TO_BAKE);
    promoting.push("Promote new task set".into());
    assert_eq!(
        repair_decision("ABORTED", &promoting, Some(&live)),
        RepairDecision::Restore {
            live,
            traffic_moved: true,
            promotion_tried: true
        }
    );
    // Promoted, stopped while draining the old task set: finish forward.
    promoting.push("Drain old task set".into());
    assert_eq!(
        repair_decision("ABORTED", &promoting, Some(&live)),
        RepairDecision::Finish { drain_until: None }
    );
    // Its own rollback failed: the repair tries again.
    let mut failed = names(&TO_BAKE);
    failed.extend(names(&[
        "Alarm fired",
        "Roll back traffic",
        "Rollback failed",
    ]));
    assert!(matches!(
        repair_decision("FAILED", &failed, Some(&live)),
        RepairDecision::Restore {
            traffic_moved: true,
            ..
        }
    ));
    // Passed its own rollback: nothing.
    let mut done = names(&TO_BAKE);
    done.extend(names(&[
        "Alarm fired",
        "Roll back traffic",
        "Drain new task set",
        "Delete new task set",
        "Deployment failed",
    ]));
    assert!(matches!(
        repair_decision("FAILED", &done, Some(&live)),
        RepairDecision::Leave(w) if w.contains("own rollback")
    ));
    // No plan: nothing is guessed.
    assert!(matches!(
        repair_decision("ABORTED", &names(&TO_BAKE[..1]), None),
        RepairDecision::Leave(w) if w.contains("no plan")
    ));
    assert!(matches!(
        repair_decision("SUCCEEDED", &names(&TO_BAKE), Some(&live)),
        RepairDecision::Leave(_)
    ));
}

#[test]
fn a_newer_deployment_means_the_world_moved_on() {
    assert_eq!(world_moved_on("a", Some("a"), &[]), None);
    assert_eq!(world_moved_on("a", None, &[]), None);
    assert!(world_moved_on("a", Some("b"), &[]).is_some_and(|w| w.contains("deployment b")));
    assert!(world_moved_on("a", Some("a"), &["b".into()])
        .is_some_and(|w| w.contains("b of the same service")));
}

// ------------------------------------------------------------------ approval

fn with_approval(steps: Option<Vec<u8>>, approval: ApprovalInput) -> StrategyInput {
    StrategyInput {
        steps,
        approval: Some(approval),
        ..StrategyInput::default()
    }
}

fn approval(before: &[u8], timeout: Option<u32>) -> ApprovalInput {
    ApprovalInput {
        before_steps: before.to_vec(),
        timeout_seconds: timeout,
        on_timeout: None,
    }
}

#[test]
fn approval_names_steps_by_percentage_and_bounds_the_wait() {
    use crate::error::ErrorKind::InvalidInput;
    // (strategy.steps, beforeSteps, timeoutSeconds, the refusal's words)
    type Case<'a> = (Option<Vec<u8>>, &'a [u8], Option<u32>, Option<&'a str>);
    let cases: &[Case] = &[
        (None, &[100], None, None),
        (None, &[10, 100], Some(60), None),
        (Some(vec![25, 100]), &[25], Some(86_400), None),
        (None, &[], None, Some("beforeSteps is empty")),
        (None, &[20], None, Some("20 is not a step")),
        (Some(vec![100]), &[50], None, Some("50 is not a step")),
        (None, &[100, 100], None, Some("lists 100 twice")),
        (
            None,
            &[100],
            Some(0),
            Some("strategy.approval.timeoutSeconds must be 1..=86400"),
        ),
        (
            None,
            &[100],
            Some(86_401),
            Some("strategy.approval.timeoutSeconds"),
        ),
    ];
    for (steps, before, timeout, want) in cases {
        let s = with_approval(steps.clone(), approval(before, *timeout));
        match (validate_strategy(&s), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => {
                assert_eq!(e.kind(), InvalidInput);
                assert!(e.message().contains(w), "{before:?}: {e}");
            }
            (got, want) => panic!("{steps:?} {before:?} {timeout:?}: {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn approval_defaults_an_hour_and_rollback_and_is_absent_when_not_asked() {
    let s = complete_strategy(&StrategyInput::default(), 60, 10);
    assert_eq!(s.approval, None);
    let json = serde_json::to_value(&s).unwrap_or_default();
    assert!(
        json.get("approval").is_none(),
        "absent from the plan: the state machine tests IsPresent"
    );
    let s = complete_strategy(&with_approval(None, approval(&[100], None)), 60, 10);
    assert_eq!(
        s.approval,
        Some(Approval {
            before_steps: vec![100],
            timeout_seconds: DEFAULT_APPROVAL_TIMEOUT_SECONDS,
            on_timeout: crate::model::OnApprovalTimeout::Rollback,
        })
    );
    let json = serde_json::to_value(&s).unwrap_or_default();
    assert_eq!(json["approval"]["onTimeout"], "rollback");
    assert_eq!(json["approval"]["beforeSteps"][0], 100);
}

#[test]
fn on_timeout_reads_approve_and_rollback_only() {
    let a: Result<ApprovalInput, _> =
        serde_json::from_str(r#"{"beforeSteps": [100], "onTimeout": "approve"}"#);
    assert_eq!(
        a.ok().and_then(|a| a.on_timeout),
        Some(crate::model::OnApprovalTimeout::Approve)
    );
    let bad: Result<ApprovalInput, _> =
        serde_json::from_str(r#"{"beforeSteps": [100], "onTimeout": "wait"}"#);
    assert!(bad.is_err());
}

#[test]
fn approve_and_reject_answer_only_the_approval_wait() {
    assert_eq!(
        approval_answer(&Phase::Canary, Some(states::APPROVAL)),
        ApprovalAnswer::Answer
    );
    let refused = [
        (Phase::Canary, Some("Bake"), "not waiting for approval"),
        (Phase::Canary, None, "not waiting for approval now"),
        (Phase::Readiness, None, "not waiting for approval now"),
        (Phase::Promoted, None, "not waiting for approval now"),
        (Phase::RollingBack, None, "rolling back"),
        (Phase::Done, None, "has ended"),
    ];
    for (phase, token, want) in refused {
        let ApprovalAnswer::Refuse(why) = approval_answer(&phase, token) else {
            panic!("{phase:?} {token:?} was answered");
        };
        assert!(why.contains(want), "{phase:?}: {why}");
    }
    // The approval wait is a canary state: abort fails its token.
    assert_eq!(phase(&[states::APPROVAL.to_string()]), Phase::Canary);
    assert_eq!(
        phase(&["Rejected by engineer".to_string()]),
        Phase::RollingBack
    );
    assert_eq!(
        reject_cause("arn:aws:iam::1:user/alice", "p99 doubled"),
        "rejected by arn:aws:iam::1:user/alice during Wait for approval: p99 doubled"
    );
}
