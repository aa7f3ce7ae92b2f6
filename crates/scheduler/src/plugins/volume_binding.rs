//! VolumeBinding (lite): every PersistentVolumeClaim the pod mounts must exist and be bound, or
//! belong to a WaitForFirstConsumer storage class (then any node will do and provisioning
//! follows the binding). Unbound claims with immediate binding keep the pod out.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::pod::PodInfo;

pub const NAME: &str = "VolumeBinding";
/// Upstream `ErrReasonBindConflict`'s sibling for immediate claims.
pub const UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

#[derive(Debug)]
pub struct VolumeBinding;

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, cache: &Cache) -> Status {
        for claim in &pod.pvcs {
            let key = format!("{}/{claim}", pod.namespace);
            match cache.volumes.claims.get(&key) {
                None => {
                    return Status::unresolvable(
                        NAME,
                        format!("persistentvolumeclaim \"{claim}\" not found"),
                    );
                }
                Some(c) if c.bound => {}
                Some(c)
                    if cache
                        .volumes
                        .wait_for_first_consumer
                        .contains(&c.storage_class) => {}
                Some(_) => return Status::unresolvable(NAME, UNBOUND_IMMEDIATE),
            }
        }
        Status::success()
    }

    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ClaimState;
    use crate::testing::pod;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};

    fn with_claim(name: &str) -> PodInfo {
        let mut p = pod("p").build();
        if let Some(spec) = p.spec.as_mut() {
            spec.volumes = Some(vec![Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.into(),
                    read_only: None,
                }),
                ..Default::default()
            }]);
        }
        PodInfo::new(std::sync::Arc::new(p))
    }

    #[test]
    fn claims_must_be_bound_or_wait_for_first_consumer() {
        let mut cache = Cache::new();
        let claim = |bound, class: &str| ClaimState {
            bound,
            storage_class: class.into(),
        };
        cache
            .volumes
            .claims
            .insert("default/bound".into(), claim(true, "std"));
        cache
            .volumes
            .claims
            .insert("default/later".into(), claim(false, "local"));
        cache
            .volumes
            .claims
            .insert("default/now".into(), claim(false, "std"));
        cache.volumes.wait_for_first_consumer.insert("local".into());
        let cases = [
            ("bound", None),
            ("later", None),
            ("now", Some(UNBOUND_IMMEDIATE.to_string())),
            (
                "gone",
                Some("persistentvolumeclaim \"gone\" not found".to_string()),
            ),
        ];
        for (name, want) in cases {
            let s = VolumeBinding.pre_filter(&mut CycleState::default(), &with_claim(name), &cache);
            assert_eq!(s.reasons.first().cloned(), want, "{name}");
        }
        assert!(
            VolumeBinding
                .pre_filter(&mut CycleState::default(), &pod("p").build_info(), &cache)
                .is_success()
        );
    }
}
