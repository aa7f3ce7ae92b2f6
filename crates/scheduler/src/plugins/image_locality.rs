//! ImageLocality: nodes that already hold the pod's images score higher, by image size scaled by
//! how widely the image is spread (upstream's thresholds: 23 MB up to 1000 MB per container).

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin};
use crate::pod::PodInfo;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// `busybox` → `docker.io/library/busybox:latest`, as the runtime reports names.
pub fn normalize_image(name: &str) -> String {
    let mut n = name.to_string();
    let last = n.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !last.contains('@') {
        n.push_str(":latest");
    }
    let first = n.split('/').next().unwrap_or("");
    if !n.contains('/') {
        n = format!("docker.io/library/{n}");
    } else if !(first.contains('.') || first.contains(':') || first == "localhost") {
        n = format!("docker.io/{n}");
    }
    n
}

/// Upstream `calculatePriority`: the summed scaled sizes clamped to the thresholds, as 0–100.
pub fn size_score(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

/// PreScore data: the pod's image names normalized, with their spread over the nodes.
struct Images {
    names: Vec<(String, String)>,
    spread: Vec<f64>,
}

#[derive(Debug)]
pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo]) {
        let total = cache.node_count().max(1) as f64;
        let names: Vec<(String, String)> = pod
            .images
            .iter()
            .map(|i| (i.clone(), normalize_image(i)))
            .collect();
        let spread = names
            .iter()
            .map(|(raw, norm)| cache.image_spread(raw).max(cache.image_spread(norm)) as f64 / total)
            .collect();
        state.write(NAME, Images { names, spread });
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(images) = state.read::<Images>(NAME) else {
            return 0;
        };
        let mut sum = 0i64;
        for ((raw, norm), spread) in images.names.iter().zip(&images.spread) {
            if let Some(size) = node.images.get(raw).or_else(|| node.images.get(norm)) {
                sum += (*size as f64 * spread) as i64;
            }
        }
        size_score(sum, pod.images.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use std::sync::Arc;

    #[test]
    fn names_normalize_like_the_runtime() {
        for (raw, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            ("me/app", "docker.io/me/app:latest"),
            ("oxkube.local/pause:3.10", "oxkube.local/pause:3.10"),
        ] {
            assert_eq!(normalize_image(raw), want);
        }
    }

    #[test]
    fn nodes_holding_big_images_score_higher() {
        let mut cache = Cache::new();
        cache.upsert_node(Arc::new(
            node("a")
                .image("docker.io/library/big:latest", 500 * MB)
                .build(),
        ));
        cache.upsert_node(Arc::new(node("b").build()));
        let p = pod("p").image("big").build_info();
        let mut state = CycleState::default();
        ImageLocality.pre_score(&mut state, &p, &cache, &[]);
        let (Some(a), Some(b)) = (cache.node("a"), cache.node("b")) else {
            panic!("nodes")
        };
        // 500 MB × spread 1/2 = 250 MB → (250-23)/(1000-23) × 100 = 23.
        assert_eq!(ImageLocality.score(&state, &p, a), 23);
        assert_eq!(ImageLocality.score(&state, &p, b), 0);
    }
}
