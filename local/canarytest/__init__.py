"""Test support shared by the end-to-end, reliability, state machine and
bench suites and the demo (issue 14): importable from the project's venv as
`canarytest` (local/ is on its path, see local/setup.sh), no `sys.path` edits.

- `canarytest.world`: the article's world built through the AWS APIs
  (`build`, `Service`, `World`), deployments and their histories (`start`,
  `wait_end`, `history`, `entered`, `story`, `bakes`, ...), client fleets,
  the realism settings.
- `canarytest.invariants`: the Route 53 traffic invariants
  (`route53_violations`, `assert_invariants`).
- `canarytest.e2e`: helpers of the end-to-end tests (`run`, `service`,
  `function_calls`, `diagnostics`, `CLI`, `cli_env`).
- `canarytest.contract`: the engine's generated contract (contract/contract.json).
- `canarytest.bad_inputs`: the catalogue of inputs create-taskset must refuse.
"""
