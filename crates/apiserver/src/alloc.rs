//! Service cluster IPs and node ports: the service CIDR and the choice of a free address or port
//! (pure), given what is taken.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The node port range upstream uses by default.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// An IPv4 CIDR block for service IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    base: u32,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid service CIDR {0:?}: want an IPv4 block like 10.96.0.0/12, prefix 8..=30")]
pub struct CidrError(pub String);

impl FromStr for ServiceCidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_string());
        let (ip, prefix) = s.split_once('/').ok_or_else(err)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        if !(8..=30).contains(&prefix) {
            return Err(err());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(ServiceCidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl ServiceCidr {
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// The first usable address: the `kubernetes` service's.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// Whether `ip` is a usable address of the block (not the network or broadcast address).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip > self.base && ip < self.base + self.size() - 1
    }

    /// How many addresses at the bottom of the block are kept for addresses asked for by value
    /// (upstream's static band: a sixteenth of the block, at least 16, at most 256), so e.g. the
    /// cluster DNS's 10.96.0.10 is free when its Service is made after others.
    pub fn static_band(&self) -> u32 {
        let size = self.size();
        if size < 16 {
            0
        } else {
            (size / 16).clamp(16, 256)
        }
    }

    /// A free address, searching from `hint` (any number; wraps around): first above the static
    /// band, then in it (upstream's AllocateNextWithOffset).
    pub fn free_ip(&self, taken: &HashSet<Ipv4Addr>, hint: u32) -> Option<Ipv4Addr> {
        // Offsets from the network address: 1 ..= size - 2 are usable.
        let last = self.size() - 2;
        let band = self.static_band().min(last);
        let pick = |from: u32, to: u32| {
            let count = to + 1 - from;
            (0..count)
                .map(|i| Ipv4Addr::from(self.base + from + (hint.wrapping_add(i) % count)))
                .find(|ip| !taken.contains(ip))
        };
        let upper = (band < last).then(|| pick(band + 1, last)).flatten();
        upper.or_else(|| pick(1, band.max(1)))
    }
}

/// A free node port, searching from `hint`.
pub fn free_port(taken: &HashSet<u16>, hint: u32) -> Option<u16> {
    let start = *NODE_PORTS.start();
    let count = u32::from(*NODE_PORTS.end() - start) + 1;
    (0..count)
        .filter_map(|i| u16::try_from(hint.wrapping_add(i) % count).ok())
        .map(|offset| start + offset)
        .find(|p| !taken.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_block() {
        let cidr: ServiceCidr = "10.96.0.0/12".parse().expect("cidr");
        assert_eq!(cidr.first(), Ipv4Addr::new(10, 96, 0, 1));
        assert!(cidr.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 96, 0, 0)));
        assert!("10.96.0.0".parse::<ServiceCidr>().is_err());
        assert!("10.96.0.0/31".parse::<ServiceCidr>().is_err());
    }

    #[test]
    fn a_full_block_has_nothing_free() {
        let cidr: ServiceCidr = "10.0.0.0/30".parse().expect("cidr");
        let taken: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)].into();
        assert_eq!(cidr.free_ip(&taken, 0), None);
        let all: HashSet<u16> = NODE_PORTS.collect();
        assert_eq!(free_port(&all, 7), None);
    }

    #[test]
    fn dynamic_addresses_leave_the_static_band_until_the_rest_is_full() {
        let cidr: ServiceCidr = "10.96.0.0/12".parse().expect("cidr");
        assert_eq!(cidr.static_band(), 256);
        let dns = Ipv4Addr::new(10, 96, 0, 10);
        for hint in [0, 9, 255, u32::MAX, 1 << 20] {
            let ip = cidr.free_ip(&HashSet::new(), hint).expect("free");
            assert!(
                u32::from(ip) > u32::from(Ipv4Addr::new(10, 96, 1, 0)),
                "{ip}"
            );
            assert_ne!(ip, dns);
        }
        // A /26 (64 addresses): a band of 16; once 17..=62 are taken the band is used.
        let small: ServiceCidr = "10.1.0.0/26".parse().expect("cidr");
        assert_eq!(small.static_band(), 16);
        let base = u32::from(Ipv4Addr::new(10, 1, 0, 0));
        let upper: HashSet<Ipv4Addr> = (17..=62).map(|i| Ipv4Addr::from(base + i)).collect();
        let ip = small.free_ip(&upper, 3).expect("band");
        assert!((1..=16).contains(&(u32::from(ip) - base)), "{ip}");
        // A /29 is smaller than 16: no band.
        let tiny: ServiceCidr = "10.2.0.0/29".parse().expect("cidr");
        assert_eq!(tiny.static_band(), 0);
        assert_eq!(
            tiny.free_ip(&HashSet::new(), 0),
            Some(Ipv4Addr::new(10, 2, 0, 1))
        );
    }

    proptest! {
        #[test]
        fn what_is_chosen_is_free_and_in_range(taken in proptest::collection::hash_set(0u32..64, 0..60), hint: u32) {
            let cidr: ServiceCidr = "10.1.0.0/26".parse().expect("cidr");
            let taken: HashSet<Ipv4Addr> = taken.into_iter().map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + i)).collect();
            if let Some(ip) = cidr.free_ip(&taken, hint) {
                prop_assert!(cidr.contains(ip));
                prop_assert!(!taken.contains(&ip));
            } else {
                prop_assert!((1..63).all(|i| taken.contains(&Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + i))));
            }
        }
    }
}
