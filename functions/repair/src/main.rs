//! The `repair` Lambda function: start-up only; the logic is
//! `canary_engine::handlers::repair`.

use canary_engine::handlers::repair;
use canary_engine::runtime::{init_logging, Context};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let ctx = Context::from_env().await;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        repair::handle(&ctx, event)
    }))
    .await
}
