//! ECS: the service, its task sets, task definition revisions.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, DeploymentControllerType,
    LaunchType, NetworkConfiguration, Scale, ScaleUnit, ServiceRegistry, Tag, TaskDefinition,
    TaskDefinitionField, TaskSet,
};
use aws_sdk_ecs::Client;
use tracing::info;

use super::{classify, error_code};
use crate::model::CapacityProviderItem;
use crate::plan::{Placement, TaskNetworking, TaskSetView};
use crate::states::{StabilityStatus, TaskSetStatus};
use crate::{time, CanaryError, Result};

/// A task set with everything the handlers read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetInfo {
    pub view: TaskSetView,
    /// `UNKNOWN` (the SDK's `Unknown` variant) when ECS sent none.
    pub stability_status: StabilityStatus,
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
            status: TaskSetStatus::parse(ts.status().unwrap_or_default()),
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
                .cloned()
                .unwrap_or_else(|| StabilityStatus::from("UNKNOWN")),
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
    pub task_sets: Vec<TaskSetInfo>,
    /// The service-level task definition, if any (EXTERNAL services may have none).
    pub task_definition: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    /// The launch type or capacity provider strategy the service was created
    /// with (the service template's choice for a first task set).
    pub placement: Placement,
}

/// A task set's or service's placement as the plan sees it.
pub fn placement(
    launch_type: Option<&LaunchType>,
    cps: &[CapacityProviderStrategyItem],
) -> Placement {
    let items: Vec<CapacityProviderItem> = cps
        .iter()
        .map(|c| CapacityProviderItem {
            capacity_provider: c.capacity_provider().to_string(),
            weight: Some(c.weight()),
            base: Some(c.base()),
        })
        .collect();
    crate::plan::placement_of(launch_type.map(LaunchType::as_str), &items)
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
        task_sets: svc.task_sets().iter().map(TaskSetInfo::from_sdk).collect(),
        task_definition: svc.task_definition().map(str::to_string),
        network_configuration: svc.network_configuration().cloned(),
        placement: placement(svc.launch_type(), svc.capacity_provider_strategy()),
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

/// A task definition as DescribeTaskDefinition (`include=TAGS`) returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTaskDefinition {
    pub td: TaskDefinition,
    pub tags: Vec<Tag>,
}

impl LoadedTaskDefinition {
    pub fn arn(&self) -> &str {
        self.td.task_definition_arn().unwrap_or_default()
    }

    /// Network mode and port mappings, for the service registry checks.
    pub fn networking(&self) -> TaskNetworking {
        TaskNetworking {
            network_mode: self
                .td
                .network_mode()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            ports: self
                .td
                .container_definitions()
                .iter()
                .flat_map(|c| {
                    let name = c.name().unwrap_or_default().to_string();
                    c.port_mappings()
                        .iter()
                        .filter_map(move |p| p.container_port().map(|port| (name.clone(), port)))
                })
                .collect(),
        }
    }
}

/// Reads a task definition (ARN, family:revision or family) with its tags.
pub async fn load_task_definition(ecs: &Client, name: &str) -> Result<LoadedTaskDefinition> {
    let out = ecs
        .describe_task_definition()
        .task_definition(name)
        // Tags come back only when asked for (DescribeTaskDefinition `include`).
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ClientException") | Some("InvalidParameterException") => {
                CanaryError::TargetNotFound(format!("task definition {name:?} does not exist"))
            }
            _ => classify("ecs:DescribeTaskDefinition", e),
        })?;
    let td = out.task_definition().cloned().ok_or_else(|| {
        CanaryError::TargetNotFound(format!("task definition {name:?} does not exist"))
    })?;
    Ok(LoadedTaskDefinition {
        td,
        tags: out.tags().to_vec(),
    })
}

/// `base` with `container`'s image replaced: the definition to register.
pub fn with_image(
    base: &LoadedTaskDefinition,
    container: &str,
    image: &str,
) -> Result<LoadedTaskDefinition> {
    let mut next = base.clone();
    let mut containers = base.td.container_definitions().to_vec();
    let Some(target) = containers.iter_mut().find(|c| c.name() == Some(container)) else {
        let names: Vec<_> = base
            .td
            .container_definitions()
            .iter()
            .filter_map(|c| c.name())
            .collect();
        return Err(CanaryError::TargetMisconfigured(format!(
            "task definition {} has no container {container:?} (it has {names:?})",
            base.arn()
        )));
    };
    target.image = Some(image.to_string());
    next.td.container_definitions = Some(containers);
    Ok(next)
}

/// True when two revisions define the same thing: every field
/// RegisterTaskDefinition accepts, tags aside (a tag edit is no new revision).
/// (`inferenceAccelerators` is left out: Elastic Inference is gone and the
/// SDK marks the parameter "no longer available".)
pub fn same_definition(a: &TaskDefinition, b: &TaskDefinition) -> bool {
    a.family() == b.family()
        && a.container_definitions() == b.container_definitions()
        && a.task_role_arn() == b.task_role_arn()
        && a.execution_role_arn() == b.execution_role_arn()
        && a.network_mode() == b.network_mode()
        && a.volumes() == b.volumes()
        && a.placement_constraints() == b.placement_constraints()
        && a.requires_compatibilities() == b.requires_compatibilities()
        && a.cpu() == b.cpu()
        && a.memory() == b.memory()
        && a.pid_mode() == b.pid_mode()
        && a.ipc_mode() == b.ipc_mode()
        && a.proxy_configuration() == b.proxy_configuration()
        && a.ephemeral_storage() == b.ephemeral_storage()
        && a.runtime_platform() == b.runtime_platform()
        && a.enable_fault_injection() == b.enable_fault_injection()
}

/// What registering `next` would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// The family's latest revision is exactly `next`: it is used (its ARN).
    Reuse(String),
    /// A new revision is registered: `family:N` when the latest could be read.
    Register(Option<String>),
}

/// Reads the family's latest revision (one DescribeTaskDefinition) and
/// tells whether [`register_revision`] would reuse it or register another.
pub async fn reusable_revision(ecs: &Client, next: &LoadedTaskDefinition) -> Revision {
    let family = next.td.family().unwrap_or_default();
    match load_task_definition(ecs, family).await {
        Ok(latest) => match latest.td.task_definition_arn() {
            Some(arn) if same_definition(&latest.td, &next.td) => Revision::Reuse(arn.to_string()),
            _ => Revision::Register(Some(format!(
                "{family}:{}",
                latest.td.revision().saturating_add(1)
            ))),
        },
        Err(_) => Revision::Register(None),
    }
}

/// The image of `container` in a task definition.
pub fn container_image(td: &LoadedTaskDefinition, container: &str) -> Option<String> {
    td.td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .and_then(|c| c.image().map(str::to_string))
}

/// Registers `next` (a copy of a described revision with the new image) as
/// a new revision of its family, carrying every field RegisterTaskDefinition
/// accepts (but the retired inferenceAccelerators), tags included. A retry finds the revision it registered before
/// (the family's latest is exactly `next`) instead of registering another.
pub async fn register_revision(ecs: &Client, next: &LoadedTaskDefinition) -> Result<String> {
    let td = &next.td;
    let family = td.family().unwrap_or_default();
    if let Revision::Reuse(arn) = reusable_revision(ecs, next).await {
        info!(
            task_definition = %arn,
            "reusing revision registered by an earlier try"
        );
        return Ok(arn);
    }
    let out = ecs
        .register_task_definition()
        .family(family)
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_container_definitions(Some(td.container_definitions().to_vec()))
        .set_volumes(Some(td.volumes().to_vec()))
        .set_placement_constraints(Some(td.placement_constraints().to_vec()))
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_tags((!next.tags.is_empty()).then(|| next.tags.clone()))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .set_enable_fault_injection(td.enable_fault_injection())
        .send()
        .await
        .map_err(|e| classify("ecs:RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| CanaryError::AwsError("RegisterTaskDefinition returned no ARN".into()))?;
    info!(task_definition = arn, "registered task definition revision");
    Ok(arn.to_string())
}

/// What a new task set copies from the one it replaces.
#[derive(Debug, Clone)]
pub struct NewTaskSet<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub task_definition: &'a str,
    pub external_id: &'a str,
    pub registry_arn: &'a str,
    /// Networking and platform version: taken from here when given.
    pub template: Option<&'a TaskSet>,
    pub network_configuration: Option<&'a NetworkConfiguration>,
    /// Exactly one of launch type and capacity providers, or neither.
    pub placement: Placement,
    /// containerName / containerPort of the service registry, when needed.
    pub registry_ports: Option<(String, i32)>,
}

/// The launch types `target.network.launchType` may name: those with awsvpc
/// networking (ECS Anywhere's `EXTERNAL` has none). In the contract file, so
/// the service template's `LaunchType` parameter offers exactly these.
pub const LAUNCH_TYPES: &[&str] = &["FARGATE", "EC2"];

/// The SDK's network configuration for a first task set's input (its
/// launch type is checked here too; the placement is the plan's).
pub fn network_from_input(
    n: &crate::model::TaskSetNetwork,
) -> Result<(NetworkConfiguration, Option<LaunchType>)> {
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
    let launch = match n.launch_type.as_deref() {
        None => None,
        Some(lt) if LAUNCH_TYPES.contains(&lt) => Some(LaunchType::from(lt)),
        Some(other) => {
            return Err(CanaryError::invalid(format!(
                "target.network.launchType must be {} (awsvpc networking), got {other:?}",
                LAUNCH_TYPES.join(" or ")
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
        .set_container_name(n.registry_ports.as_ref().map(|(c, _)| c.clone()))
        .set_container_port(n.registry_ports.as_ref().map(|(_, p)| *p))
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
    // Exactly one of the two, or neither: CreateTaskSet refuses both.
    match &n.placement {
        Placement::LaunchType(lt) => req = req.launch_type(LaunchType::from(lt.as_str())),
        Placement::CapacityProviders(items) => {
            for c in items {
                let item = CapacityProviderStrategyItem::builder()
                    .capacity_provider(&c.capacity_provider)
                    .set_weight(c.weight)
                    .set_base(c.base)
                    .build()
                    .map_err(|e| CanaryError::invalid(format!("capacityProviderStrategy: {e}")))?;
                req = req.capacity_provider_strategy(item);
            }
        }
        Placement::ClusterDefault => {}
    }
    if let Some(t) = n.template {
        req = req.set_platform_version(t.platform_version().map(str::to_string));
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
