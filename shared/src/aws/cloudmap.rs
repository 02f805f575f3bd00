//! Cloud Map: the slots' services and the health of the instances ECS
//! registers into them. DNS alone proves nothing here: when every instance is
//! unhealthy Cloud Map still answers with up to 8 of them, so a failed slot
//! still resolves. We count healthy instances before any weight moves.

use std::collections::HashMap;

use aws_sdk_servicediscovery::types::HealthStatus;
use aws_sdk_servicediscovery::Client;

use super::{classify, error_code};
use crate::plan::{cloudmap_service_id, counts_as_healthy, HealthCheckKind, InstanceStatus};
use crate::{CanaryError, Result};

/// The attribute ECS sets on every instance of a task set.
pub const TASK_SET_ATTRIBUTE: &str = "ECS_TASK_SET_EXTERNAL_ID";

/// Healthy and unhealthy instance counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub healthy: u32,
    pub unhealthy: u32,
}

/// What a slot's Cloud Map service is: its DNS name and record TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotService {
    /// `<service name>.<namespace name>`, the name its A records answer.
    pub dns_name: String,
    /// The longest TTL of its DNS records (0 when it has none).
    pub ttl: u32,
    /// Its namespace's type and its DNS record types (slot checks).
    pub shape: crate::plan::RegistryShape,
}

/// Reads a slot's Cloud Map service and its namespace; `TargetNotFound`
/// when either does not exist.
pub async fn slot_service(sd: &Client, registry_arn: &str) -> Result<SlotService> {
    let out = get_service(sd, registry_arn).await?;
    let svc = out.service();
    let dns = svc.and_then(|s| s.dns_config());
    let ttl = dns
        .map(|d| d.dns_records().iter().map(|r| r.ttl()).max().unwrap_or(0))
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or(0);
    let namespace_id = svc.and_then(|s| s.namespace_id()).unwrap_or_default();
    let ns = sd
        .get_namespace()
        .id(namespace_id)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("NamespaceNotFound") => CanaryError::TargetNotFound(format!(
                "the namespace of Cloud Map service {registry_arn} does not exist"
            )),
            _ => classify("servicediscovery:GetNamespace", e),
        })?;
    let ns_name = ns.namespace().and_then(|n| n.name()).unwrap_or_default();
    let name = svc.and_then(|s| s.name()).unwrap_or_default();
    let shape = crate::plan::RegistryShape {
        namespace_type: ns
            .namespace()
            .and_then(|n| n.r#type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        record_types: dns
            .map(|d| {
                d.dns_records()
                    .iter()
                    .map(|r| r.r#type().as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(SlotService {
        dns_name: format!("{name}.{ns_name}"),
        ttl,
        shape,
    })
}

/// Health of the slot's instances; with `external_id`, only the instances of
/// that task set. What counts as healthy depends on the service's kind of
/// health check ([`plan::counts_as_healthy`]): without one, Cloud Map reports
/// `UNKNOWN` for every instance and a registered instance counts; with one,
/// only `HEALTHY` does.
pub async fn slot_health(
    sd: &Client,
    registry_arn: &str,
    external_id: Option<&str>,
) -> Result<Health> {
    let id = cloudmap_service_id(registry_arn)?;
    let gone = |code: Option<&str>| {
        (code == Some("ServiceNotFound")).then(|| {
            CanaryError::TargetNotFound(format!("Cloud Map service {registry_arn} does not exist"))
        })
    };

    let pages: Vec<_> = sd
        .list_instances()
        .service_id(id)
        .into_paginator()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .map_err(|e| {
            gone(error_code(&e)).unwrap_or_else(|| classify("servicediscovery:ListInstances", e))
        })?;
    let instances: Vec<String> = pages
        .iter()
        .flat_map(|p| p.instances())
        .filter(|inst| {
            external_id.is_none()
                || inst
                    .attributes()
                    .and_then(|a| a.get(TASK_SET_ATTRIBUTE))
                    .map(String::as_str)
                    == external_id
        })
        .filter_map(|inst| inst.id().map(str::to_string))
        .collect();
    if instances.is_empty() {
        return Ok(Health::default());
    }

    let kind = health_check_kind(sd, registry_arn).await?;
    if kind == HealthCheckKind::None {
        // Every status would be UNKNOWN: nothing more to read.
        return Ok(Health {
            healthy: u32::try_from(instances.len()).unwrap_or(u32::MAX),
            unhealthy: 0,
        });
    }
    let pages: Vec<_> = sd
        .get_instances_health_status()
        .service_id(id)
        .into_paginator()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .map_err(|e| {
            gone(error_code(&e))
                .unwrap_or_else(|| classify("servicediscovery:GetInstancesHealthStatus", e))
        })?;
    let status: HashMap<&String, &HealthStatus> =
        pages.iter().filter_map(|p| p.status()).flatten().collect();

    let mut h = Health::default();
    for iid in &instances {
        let s = match status.get(iid) {
            Some(HealthStatus::Healthy) => InstanceStatus::Healthy,
            Some(HealthStatus::Unhealthy) => InstanceStatus::Unhealthy,
            // UNKNOWN (`UnknownValue`), or a status this SDK does not know.
            Some(_) => InstanceStatus::Unknown,
            None => InstanceStatus::Missing,
        };
        if counts_as_healthy(kind, s) {
            h.healthy += 1;
        } else {
            h.unhealthy += 1;
        }
    }
    Ok(h)
}

/// RegisterInstance operations of the slot's service not finished yet
/// (SUBMITTED or PENDING). ListOperations filters by service, status and
/// type on the server (AWS Cloud Map API Reference, ListOperations,
/// OperationFilter); its summaries carry only id and status, so the status is
/// checked again here (a server that ignores the filters, like moto, then
/// still answers right for finished operations).
pub async fn pending_registrations(sd: &Client, registry_arn: &str) -> Result<u32> {
    use aws_sdk_servicediscovery::types::{
        FilterCondition, OperationFilter, OperationFilterName, OperationStatus,
    };
    let id = cloudmap_service_id(registry_arn)?;
    let filter = |name: OperationFilterName, values: &[&str], condition: FilterCondition| {
        OperationFilter::builder()
            .name(name)
            .set_values(Some(values.iter().map(|v| (*v).to_string()).collect()))
            .condition(condition)
            .build()
            .map_err(|e| CanaryError::invalid(e.to_string()))
    };
    let pages: Vec<_> = sd
        .list_operations()
        .filters(filter(
            OperationFilterName::ServiceId,
            &[id],
            FilterCondition::Eq,
        )?)
        .filters(filter(
            OperationFilterName::Status,
            &["SUBMITTED", "PENDING"],
            FilterCondition::In,
        )?)
        .filters(filter(
            OperationFilterName::Type,
            &["REGISTER_INSTANCE"],
            FilterCondition::Eq,
        )?)
        .into_paginator()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .map_err(|e| classify("servicediscovery:ListOperations", e))?;
    let pending = pages
        .iter()
        .flat_map(|p| p.operations())
        .filter(|o| {
            matches!(
                o.status(),
                Some(OperationStatus::Submitted | OperationStatus::Pending)
            )
        })
        .count();
    Ok(u32::try_from(pending).unwrap_or(u32::MAX))
}

/// GetService of a slot's Cloud Map service; `TargetNotFound` when it does
/// not exist.
async fn get_service(
    sd: &Client,
    registry_arn: &str,
) -> Result<aws_sdk_servicediscovery::operation::get_service::GetServiceOutput> {
    let id = cloudmap_service_id(registry_arn)?;
    let out = sd
        .get_service()
        .id(id)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ServiceNotFound") => CanaryError::TargetNotFound(format!(
                "Cloud Map service {registry_arn} does not exist"
            )),
            _ => classify("servicediscovery:GetService", e),
        })?;
    Ok(out)
}

/// The kind of health check of a slot's Cloud Map service (GetService).
pub async fn health_check_kind(sd: &Client, registry_arn: &str) -> Result<HealthCheckKind> {
    let out = get_service(sd, registry_arn).await?;
    let svc = out.service();
    Ok(if svc.and_then(|s| s.health_check_config()).is_some() {
        HealthCheckKind::Route53
    } else if svc.and_then(|s| s.health_check_custom_config()).is_some() {
        HealthCheckKind::Custom
    } else {
        HealthCheckKind::None
    })
}
