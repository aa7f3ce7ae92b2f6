//! The plugins, one per file, each upstream's plugin of the same name.

pub mod balanced_allocation;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod taint_toleration;
pub mod volume_binding;

/// Upstream `helper.DefaultNormalizeScore`: scales scores so the highest is 100; `reverse` turns
/// the scale round (the highest raw score gets 0).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores
                .iter_mut()
                .for_each(|s| *s = crate::framework::MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = crate::framework::MAX_NODE_SCORE * *s / max;
        *s = if reverse {
            crate::framework::MAX_NODE_SCORE - v
        } else {
            v
        };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_normalize_scales_to_100_and_reverses() {
        let mut s = [0, 5, 10];
        super::default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        super::default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        super::default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
