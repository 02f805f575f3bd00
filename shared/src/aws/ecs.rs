//! ECS: the service, its task sets, task definition revisions.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentControllerType, LaunchType,
    NetworkConfiguration, Scale, ScaleUnit, ServiceRegistry, TaskSet,
};
use aws_sdk_ecs::Client;
use tracing::info;

use super::{classify, error_code};
use crate::plan::TaskSetView;
use crate::{time, CanaryError, Result};

/// A task set with everything the handlers read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetInfo {
    pub view: TaskSetView,
    pub stability_status: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Kept to copy placement and networking onto the next task set.
    pub raw: TaskSet,
}

impl TaskSetInfo {
    fn from_sdk(ts: &TaskSet) -> Self {
        let view = TaskSetView {
            id: ts.id().unwrap_or_default().to_string(),
            arn: ts.task_set_arn().unwrap_or_default().to_string(),
            status: ts.status().unwrap_or_default().to_string(),
            external_id: ts.external_id().map(str::to_string),
            registry_arns: ts
                .service_registries()
                .iter()
                .filter_map(|r| r.registry_arn().map(str::to_string))
                .collect(),
            task_definition: ts.task_definition().unwrap_or_default().to_string(),
            created_at: ts.created_at().map(|t| time::format(*t)),
        };
        Self {
            view,
            stability_status: ts
                .stability_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
            desired: ts.computed_desired_count(),
            running: ts.running_count(),
            pending: ts.pending_count(),
            raw: ts.clone(),
        }
    }
}

/// The parts of the ECS service a deployment needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    pub arn: String,
    pub task_sets: Vec<TaskSetInfo>,
    /// The service-level task definition, if any (EXTERNAL services may have none).
    pub task_definition: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
}

/// Reads the service; refuses a missing cluster or service and any service
/// not on the EXTERNAL deployment controller.
pub async fn describe_service(ecs: &Client, cluster: &str, service: &str) -> Result<ServiceInfo> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ClusterNotFoundException") => {
                CanaryError::TargetNotFound(format!("ECS cluster {cluster:?} does not exist"))
            }
            _ => classify("ecs:DescribeServices", e),
        })?;
    let svc = out
        .services()
        .iter()
        .find(|s| s.status() != Some("INACTIVE"))
        .ok_or_else(|| {
            CanaryError::TargetNotFound(format!(
                "ECS service {service:?} does not exist (or is inactive) in cluster {cluster:?}"
            ))
        })?;
    let controller = svc
        .deployment_controller()
        .map(|d| d.r#type().clone())
        .unwrap_or(DeploymentControllerType::Ecs);
    if controller != DeploymentControllerType::External {
        return Err(CanaryError::TargetMisconfigured(format!(
            "ECS service {service:?} uses the {} deployment controller; task sets need EXTERNAL",
            controller.as_str()
        )));
    }
    Ok(ServiceInfo {
        arn: svc.service_arn().unwrap_or_default().to_string(),
        task_sets: svc.task_sets().iter().map(TaskSetInfo::from_sdk).collect(),
        task_definition: svc.task_definition().map(str::to_string),
        network_configuration: svc.network_configuration().cloned(),
    })
}

/// One task set by ARN or id; `None` when it does not exist (any more).
pub async fn describe_task_set(
    ecs: &Client,
    cluster: &str,
    service: &str,
    task_set: &str,
) -> Result<Option<TaskSetInfo>> {
    let out = ecs
        .describe_task_sets()
        .cluster(cluster)
        .service(service)
        .task_sets(task_set)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ClusterNotFoundException") => {
                CanaryError::TargetNotFound(format!("ECS cluster {cluster:?} does not exist"))
            }
            Some("ServiceNotFoundException") | Some("ServiceNotActiveException") => {
                CanaryError::TargetNotFound(format!("ECS service {service:?} does not exist"))
            }
            _ => classify("ecs:DescribeTaskSets", e),
        })?;
    Ok(out
        .task_sets()
        .iter()
        .find(|t| t.task_set_arn() == Some(task_set) || t.id() == Some(task_set))
        .map(TaskSetInfo::from_sdk))
}

/// The task definition to deploy: `base` as is, or (with `image`) a revision
/// of `base` with only `container`'s image changed. A retry finds the
/// revision it registered before instead of registering another.
pub async fn resolve_task_definition(
    ecs: &Client,
    base: &str,
    container: &str,
    image: Option<&str>,
) -> Result<String> {
    let td = describe_task_definition(ecs, base).await?;
    let base_arn = td.task_definition_arn().unwrap_or(base).to_string();
    let Some(image) = image else {
        return Ok(base_arn);
    };
    let mut containers = td.container_definitions().to_vec();
    let Some(target) = containers.iter_mut().find(|c| c.name() == Some(container)) else {
        let names: Vec<_> = td
            .container_definitions()
            .iter()
            .filter_map(|c| c.name())
            .collect();
        return Err(CanaryError::TargetMisconfigured(format!(
            "task definition {base_arn} has no container {container:?} (it has {names:?})"
        )));
    };
    target.image = Some(image.to_string());

    // Idempotency: if the family's latest revision already is exactly this
    // definition (a retry after registering), reuse it.
    let family = td.family().unwrap_or_default();
    if let Ok(latest) = describe_task_definition(ecs, family).await {
        if latest.container_definitions() == containers.as_slice()
            && latest.task_role_arn() == td.task_role_arn()
            && latest.execution_role_arn() == td.execution_role_arn()
            && latest.cpu() == td.cpu()
            && latest.memory() == td.memory()
        {
            if let Some(arn) = latest.task_definition_arn() {
                info!(
                    task_definition = arn,
                    "reusing revision registered by an earlier try"
                );
                return Ok(arn.to_string());
            }
        }
    }

    let out = ecs
        .register_task_definition()
        .family(family)
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_container_definitions(Some(containers))
        .set_volumes(Some(td.volumes().to_vec()))
        .set_placement_constraints(Some(td.placement_constraints().to_vec()))
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .send()
        .await
        .map_err(|e| classify("ecs:RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| CanaryError::AwsError("RegisterTaskDefinition returned no ARN".into()))?;
    info!(
        task_definition = arn,
        image, "registered task definition revision"
    );
    Ok(arn.to_string())
}

async fn describe_task_definition(
    ecs: &Client,
    name: &str,
) -> Result<aws_sdk_ecs::types::TaskDefinition> {
    let out = ecs
        .describe_task_definition()
        .task_definition(name)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ClientException") | Some("InvalidParameterException") => {
                CanaryError::TargetNotFound(format!("task definition {name:?} does not exist"))
            }
            _ => classify("ecs:DescribeTaskDefinition", e),
        })?;
    out.task_definition().cloned().ok_or_else(|| {
        CanaryError::TargetNotFound(format!("task definition {name:?} does not exist"))
    })
}

/// What a new task set copies from the one it replaces.
#[derive(Debug, Clone)]
pub struct NewTaskSet<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub task_definition: &'a str,
    pub external_id: &'a str,
    pub registry_arn: &'a str,
    /// Networking, launch type, registry ports: taken from here when given.
    pub template: Option<&'a TaskSet>,
    pub network_configuration: Option<&'a NetworkConfiguration>,
    /// Launch type when there is no template (a first task set).
    pub launch_type: Option<LaunchType>,
}

/// The SDK's network configuration for a first task set's input.
pub fn network_from_input(
    n: &crate::model::TaskSetNetwork,
) -> Result<(NetworkConfiguration, LaunchType)> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(n.subnets.clone()))
        .set_security_groups(Some(n.security_groups.clone()))
        .assign_public_ip(if n.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| CanaryError::invalid(format!("target.network: {e}")))?;
    let launch = match n.launch_type.as_deref().unwrap_or("FARGATE") {
        "FARGATE" => LaunchType::Fargate,
        "EC2" => LaunchType::Ec2,
        other => {
            return Err(CanaryError::invalid(format!(
            "target.network.launchType must be FARGATE or EC2 (awsvpc networking), got {other:?}"
        )))
        }
    };
    Ok((
        NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build(),
        launch,
    ))
}

/// Creates the task set at scale 100%. `clientToken` is derived from the
/// deployment id so AWS deduplicates a retried call.
pub async fn create_task_set(ecs: &Client, n: &NewTaskSet<'_>) -> Result<TaskSetInfo> {
    let template_registry = n.template.and_then(|t| t.service_registries().first());
    let registry = ServiceRegistry::builder()
        .registry_arn(n.registry_arn)
        .set_port(template_registry.and_then(ServiceRegistry::port))
        .set_container_name(template_registry.and_then(|r| r.container_name().map(str::to_string)))
        .set_container_port(template_registry.and_then(ServiceRegistry::container_port))
        .build();
    let network = n
        .template
        .and_then(|t| t.network_configuration())
        .or(n.network_configuration)
        .cloned();
    let mut req = ecs
        .create_task_set()
        .cluster(n.cluster)
        .service(n.service)
        .task_definition(n.task_definition)
        .external_id(n.external_id)
        .client_token(client_token(n.external_id))
        .service_registries(registry)
        .scale(
            Scale::builder()
                .unit(ScaleUnit::Percent)
                .value(100.0)
                .build(),
        )
        .set_network_configuration(network);
    if n.template.is_none() {
        req = req.set_launch_type(n.launch_type.clone());
    }
    if let Some(t) = n.template {
        req = req
            .set_launch_type(t.launch_type().cloned())
            .set_platform_version(t.platform_version().map(str::to_string));
        if !t.capacity_provider_strategy().is_empty() {
            req = req.set_capacity_provider_strategy(Some(t.capacity_provider_strategy().to_vec()));
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| classify("ecs:CreateTaskSet", e))?;
    let ts = out
        .task_set()
        .ok_or_else(|| CanaryError::AwsError("CreateTaskSet returned no task set".into()))?;
    Ok(TaskSetInfo::from_sdk(ts))
}

/// ECS accepts up to 36 ASCII characters; execution names may be 80.
fn client_token(external_id: &str) -> String {
    if external_id.len() <= 36 {
        return external_id.to_string();
    }
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = external_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = external_id.chars().take(19).collect();
    format!("{head}-{hash:016x}")
}

pub async fn mark_primary(
    ecs: &Client,
    cluster: &str,
    service: &str,
    task_set_arn: &str,
) -> Result<()> {
    ecs.update_service_primary_task_set()
        .cluster(cluster)
        .service(service)
        .primary_task_set(task_set_arn)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("TaskSetNotFoundException") => {
                CanaryError::TaskSetNotFound(format!("task set {task_set_arn} does not exist"))
            }
            _ => classify("ecs:UpdateServicePrimaryTaskSet", e),
        })?;
    Ok(())
}

/// Deletes a task set; `false` when it was already gone.
pub async fn delete_task_set(
    ecs: &Client,
    cluster: &str,
    service: &str,
    task_set: &str,
) -> Result<bool> {
    match ecs
        .delete_task_set()
        .cluster(cluster)
        .service(service)
        .task_set(task_set)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("TaskSetNotFoundException") => Ok(false),
        Err(e) => Err(classify("ecs:DeleteTaskSet", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::client_token;

    #[test]
    fn client_tokens_fit_ecs_limits_and_are_stable() {
        assert_eq!(client_token("short-id"), "short-id");
        let long = "backend-v2-20261127T063000Z-some-very-long-execution-name";
        let t = client_token(long);
        assert!(t.len() <= 36, "{t}");
        assert_eq!(t, client_token(long));
        assert_ne!(t, client_token(&format!("{long}x")));
    }
}
