//! The pod network's CNI configuration: a bridge with host-local addresses from the node's pod CIDR,
//! and portmap for `hostPort`s. Outbound NAT is not the bridge's: the service proxy masquerades pod
//! traffic leaving the pod network, so pod-to-pod traffic across nodes keeps its source address. containerd's CRI plugin runs the
//! plugins from the configuration directory and reloads it when the file changes.

use std::path::Path;

/// Pod addresses when the node has no `spec.podCIDR` yet.
pub const DEFAULT_POD_CIDR: &str = "10.42.0.0/24";
/// The configuration file's name (containerd reads the first in name order).
pub const FILE_NAME: &str = "10-oxkube.conflist";

/// The conflist for pods on `subnet` over bridge `bridge`, keeping addresses in `ipam_dir`.
pub fn conflist(subnet: &str, bridge: &str, ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "oxkube",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{ "subnet": subnet }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
    .to_string()
}

/// A bridge name for a node's data directory (at most 15 characters, stable per directory), so
/// nodes of different data directories on one host do not share a bridge.
pub fn bridge_name(data_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("oxk{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_puts_pods_on_the_subnet_behind_a_bridge_with_portmap() {
        let list: serde_json::Value =
            serde_json::from_str(&conflist("10.42.3.0/24", "oxk1", Path::new("/d/ipam")))
                .expect("json");
        assert_eq!(list["plugins"][0]["type"], "bridge");
        assert_eq!(list["plugins"][0]["bridge"], "oxk1");
        assert_eq!(
            list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(list["plugins"][0]["ipam"]["dataDir"], "/d/ipam");
        assert_eq!(list["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn bridge_names_fit_linux_and_differ_per_directory() {
        let a = bridge_name(Path::new("/var/lib/oxkube"));
        let b = bridge_name(Path::new("/tmp/x"));
        assert!(a.len() <= 15 && b.len() <= 15);
        assert_ne!(a, b);
        assert_eq!(a, bridge_name(Path::new("/var/lib/oxkube")));
    }
}
