//! The command line: one struct per command, doc comments as help text, and
//! an environment variable for every flag so scripts and CI can set them once.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Start, watch and inspect canary deployments of ECS services reached
/// through Cloud Map DNS (executions of the ecs-dns-canary state machine).
///
/// Exit codes: 0 success (for watch: the execution SUCCEEDED); 1 the watched
/// execution ended FAILED, TIMED_OUT or ABORTED; 2 bad command line; 3 invalid
/// deployment file or name (nothing started); 4 a Step Functions call failed;
/// 5 abort changed nothing (promoting or promoted, rolling back, or ended).
#[derive(Debug, Parser)]
#[command(name = "ecs-dns-canary", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The deployment state machine: its ARN, or its name (looked up with
    /// ListStateMachines).
    #[arg(
        long,
        global = true,
        env = "CANARY_STATE_MACHINE_ARN",
        value_name = "ARN|NAME"
    )]
    pub state_machine_arn: Option<String>,

    /// Step Functions endpoint, e.g. http://127.0.0.1:5000 for the local AWS.
    /// Default: the region's AWS endpoint.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// AWS region. Default: the SDK's chain (AWS_REGION, profile).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,

    /// Print JSON instead of text (watch: one JSON object per line).
    #[arg(long, global = true, env = "CANARY_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a deployment from a deployment file (and watch it with --watch).
    Deploy(DeployArgs),
    /// Follow an execution live until it ends.
    Watch(WatchArgs),
    /// List recent executions with their status and duration.
    List(ListArgs),
    /// Show an execution's states in order, with durations and the failure cause.
    History(HistoryArgs),
    /// Show what a deployment would do and every reason it would be refused,
    /// with read-only AWS calls (create-taskset's own checks); change nothing.
    Plan(PlanArgs),
    /// Roll back now: all traffic to the slot that was live, the new task
    /// set deleted; the execution ends RolledBackOnAbort naming the reason
    /// and you (STS). Exit 5: nothing changed (promoting or promoted,
    /// already rolling back, or ended).
    Abort(AbortArgs),
    /// End the current bake now (the alarm gate still runs); --full then
    /// goes to 100 %, skipping the remaining steps. Exit 5: not baking.
    Promote(PromoteArgs),
    /// Let a deployment waiting for approval (strategy.approval) go on to
    /// its next step; the history names you (STS). Exit 5: not waiting.
    Approve(ApproveArgs),
    /// Reject a deployment waiting for approval: it rolls back and ends
    /// RolledBackOnReject naming the reason and you. Exit 5: not waiting.
    Reject(RejectArgs),
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,

    /// Why: written into the execution's cause with the caller's ARN.
    #[arg(long, env = "CANARY_REJECT_REASON", value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,

    /// After the gate, go to 100 % at once (skip the remaining steps).
    #[arg(long, env = "CANARY_PROMOTE_FULL", value_parser = BoolishValueParser::new())]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,

    /// Why: written into the execution's cause with the caller's ARN.
    #[arg(long, env = "CANARY_ABORT_REASON", value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The deployment file, as for deploy.
    #[arg(long, short = 'f', env = "CANARY_DEPLOYMENT_FILE", value_name = "PATH")]
    pub file: PathBuf,

    #[command(flatten)]
    pub overrides: Overrides,

    /// The execution name (deployment id) to check. Default: the name deploy
    /// would derive.
    #[arg(long, env = "CANARY_EXECUTION_NAME")]
    pub name: Option<String>,
}

/// The command-line values that replace the deployment file's (deploy and
/// plan take the same ones, applied by the same code: `deploy::apply`).
#[derive(Debug, Args, Clone, Default)]
pub struct Overrides {
    /// The new image for the target container (replaces the file's `image`
    /// and `taskDefinition`).
    #[arg(
        long,
        env = "CANARY_IMAGE",
        value_name = "REF",
        conflicts_with = "task_definition"
    )]
    pub image: Option<String>,

    /// A ready task definition (ARN or family:revision) to deploy as is
    /// (replaces the file's `image` and `taskDefinition`).
    #[arg(long, env = "CANARY_TASK_DEFINITION", value_name = "ARN")]
    pub task_definition: Option<String>,

    /// Traffic percentages on the new slot, strictly increasing, ending at
    /// 100 (`100` alone is blue/green). Replaces `strategy.steps`.
    #[arg(
        long,
        env = "CANARY_STEPS",
        value_delimiter = ',',
        value_name = "P,P,.."
    )]
    pub steps: Option<Vec<u8>>,

    /// Bake time after each step, in seconds. Replaces `strategy.bakeSeconds`.
    #[arg(long, env = "CANARY_BAKE_SECONDS", value_name = "SECS")]
    pub bake: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deployment file: a DeploymentRequest (target, strategy, alarms;
    /// `image` may be left out and given with --image). With --from it may
    /// be left out: the earlier execution's input is used.
    #[arg(
        long,
        short = 'f',
        env = "CANARY_DEPLOYMENT_FILE",
        value_name = "PATH",
        required_unless_present = "from"
    )]
    pub file: Option<PathBuf>,

    /// Deploy the task definition an earlier execution (name or ARN)
    /// deployed, read from its history: e.g. `--from NAME --steps 100
    /// --bake 0` switches back to yesterday's version in one step.
    #[arg(
        long,
        env = "CANARY_DEPLOY_FROM",
        value_name = "EXECUTION",
        conflicts_with_all = ["image", "task_definition"]
    )]
    pub from: Option<String>,

    #[command(flatten)]
    pub overrides: Overrides,

    /// Execution name (the deployment id). Default: <service>-<image tag>-<UTC time>.
    #[arg(long, env = "CANARY_EXECUTION_NAME")]
    pub name: Option<String>,

    /// Follow the execution until it ends; the exit code is then watch's.
    #[arg(long, env = "CANARY_WATCH", value_parser = BoolishValueParser::new())]
    pub watch: bool,

    /// Validate and print the execution name and input; start nothing.
    #[arg(long, env = "CANARY_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,

    #[command(flatten)]
    pub follow: FollowArgs,
}

/// How `watch` (and `deploy --watch`) polls and shows progress.
#[derive(Debug, Args, Clone)]
pub struct FollowArgs {
    /// Milliseconds between two GetExecutionHistory calls.
    #[arg(
        long,
        env = "CANARY_POLL_MS",
        default_value_t = 1000,
        value_name = "MS"
    )]
    pub poll_ms: u64,

    /// Plain lines even on a terminal (no progress bar).
    #[arg(long, env = "CANARY_PLAIN", value_parser = BoolishValueParser::new())]
    pub plain: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,

    #[command(flatten)]
    pub follow: FollowArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only executions with this status.
    #[arg(long, env = "CANARY_LIST_STATUS", ignore_case = true)]
    pub status: Option<StatusFilter>,

    /// At most this many executions, newest first.
    #[arg(long, env = "CANARY_LIST_MAX", default_value_t = 20, value_name = "N")]
    pub max: usize,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The execution: its ARN, or its name under --state-machine-arn.
    #[arg(env = "CANARY_EXECUTION", value_name = "EXECUTION")]
    pub execution: String,

    /// Also list Choice and Pass states (text output; JSON always has them).
    #[arg(long, env = "CANARY_HISTORY_ALL", value_parser = BoolishValueParser::new())]
    pub all: bool,
}

/// Execution statuses ListExecutions can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusFilter {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl StatusFilter {
    pub fn to_sdk(self) -> aws_sdk_sfn::types::ExecutionStatus {
        use aws_sdk_sfn::types::ExecutionStatus as S;
        match self {
            Self::Running => S::Running,
            Self::Succeeded => S::Succeeded,
            Self::Failed => S::Failed,
            Self::TimedOut => S::TimedOut,
            Self::Aborted => S::Aborted,
            Self::PendingRedrive => S::PendingRedrive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ecs-dns-canary").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deploy_takes_overrides_and_global_flags_after_the_command() -> TestResult {
        let cli = parse(&[
            "deploy",
            "--file",
            "d.json",
            "--image",
            "repo/app:v2",
            "--steps",
            "10,50,100",
            "--bake",
            "30",
            "--watch",
            "--json",
            "--endpoint-url",
            "http://127.0.0.1:5000",
        ])?;
        assert!(cli.global.json);
        assert_eq!(
            cli.global.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let Command::Deploy(d) = cli.command else {
            return Err("not deploy".into());
        };
        assert_eq!(d.file, Some(PathBuf::from("d.json")));
        assert_eq!(d.overrides.image.as_deref(), Some("repo/app:v2"));
        assert_eq!(d.overrides.steps, Some(vec![10, 50, 100]));
        assert_eq!(d.overrides.bake, Some(30));
        assert!(d.watch && !d.dry_run);
        assert_eq!(d.follow.poll_ms, 1000);
        Ok(())
    }

    #[test]
    fn image_and_task_definition_exclude_each_other() {
        let err = parse(&[
            "deploy",
            "-f",
            "d.json",
            "--image",
            "a:1",
            "--task-definition",
            "app:3",
        ]);
        assert!(err.is_err());
    }

    #[test]
    fn deploy_from_needs_no_file_and_excludes_an_image() -> TestResult {
        let cli = parse(&[
            "deploy", "--from", "web-v1-x", "--steps", "100", "--bake", "0",
        ])?;
        let Command::Deploy(d) = cli.command else {
            return Err("not deploy".into());
        };
        assert_eq!((d.from.as_deref(), d.file), (Some("web-v1-x"), None));
        assert!(parse(&["deploy", "--from", "x", "--image", "a:1"]).is_err());
        assert!(
            parse(&["deploy", "--steps", "100"]).is_err()
                || std::env::var_os("CANARY_DEPLOYMENT_FILE").is_some()
        );
        Ok(())
    }

    #[test]
    fn plan_takes_a_file_and_an_image() -> TestResult {
        let cli = parse(&["plan", "-f", "d.json", "--image", "a:2", "--json"])?;
        assert!(cli.global.json);
        let Command::Plan(p) = cli.command else {
            return Err("not plan".into());
        };
        assert_eq!(
            (p.file, p.overrides.image.as_deref()),
            (PathBuf::from("d.json"), Some("a:2"))
        );
        Ok(())
    }

    #[test]
    fn steps_above_255_are_refused_by_the_parser() {
        assert!(parse(&["deploy", "-f", "d.json", "--steps", "10,300"]).is_err());
    }

    #[test]
    fn list_status_is_case_insensitive() -> TestResult {
        let cli = parse(&["list", "--status", "failed", "--max", "5"])?;
        let Command::List(l) = cli.command else {
            return Err("not list".into());
        };
        assert_eq!(l.status, Some(StatusFilter::Failed));
        assert_eq!(l.max, 5);
        let cli = parse(&["list", "--status", "TIMED_OUT"])?;
        let Command::List(l) = cli.command else {
            return Err("not list".into());
        };
        assert_eq!(l.status, Some(StatusFilter::TimedOut));
        Ok(())
    }

    #[test]
    fn watch_and_history_take_an_execution() -> TestResult {
        let cli = parse(&["watch", "svc-v2", "--poll-ms", "250", "--plain"])?;
        let Command::Watch(w) = cli.command else {
            return Err("not watch".into());
        };
        assert_eq!(w.execution, "svc-v2");
        assert_eq!(w.follow.poll_ms, 250);
        assert!(w.follow.plain);
        assert!(parse(&["history"]).is_err() || std::env::var_os("CANARY_EXECUTION").is_some());
        Ok(())
    }

    #[test]
    fn boolean_flags_read_the_usual_words_from_the_environment() -> TestResult {
        let cases = [
            ("CANARY_TEST_JSON_ONE", "1", true),
            ("CANARY_TEST_JSON_YES", "yes", true),
            ("CANARY_TEST_JSON_TRUE", "true", true),
            ("CANARY_TEST_JSON_ZERO", "0", false),
            ("CANARY_TEST_JSON_FALSE", "false", false),
        ];
        for (var, value, expected) in cases {
            // A variable only this test reads, so parallel tests are unaffected.
            std::env::set_var(var, value);
            let cmd = Cli::command().mut_arg("json", |a| a.env(var));
            let m = cmd.try_get_matches_from(["ecs-dns-canary", "list"])?;
            assert_eq!(m.get_flag("json"), expected, "CANARY_JSON={value}");
        }
        Ok(())
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        fn check(cmd: &clap::Command, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_env().is_none() {
                    missing.push(format!("{} {}", cmd.get_name(), id));
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub, missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), &mut missing);
        assert!(missing.is_empty(), "flags without env: {missing:?}");
    }
}
