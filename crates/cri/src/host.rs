//! The host's facts a node reports: its name (the host name, lower-cased), the address of its
//! default route, CPUs and memory (`/proc/meminfo`'s MemTotal).

use std::net::UdpSocket;

/// What the node reports about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ip: String,
    pub cpu: usize,
    pub memory_kib: u64,
}

/// Reading a host fact failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("reading {path}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("/proc/meminfo has no MemTotal")]
    MemTotal,
}

/// MemTotal in KiB from `/proc/meminfo`'s text.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The address the host would send from to reach outside (no packet is sent), or loopback.
pub fn default_ip() -> String {
    let probe = || -> std::io::Result<String> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.connect("192.0.0.8:9")?;
        Ok(socket.local_addr()?.ip().to_string())
    };
    probe().unwrap_or_else(|_| "127.0.0.1".into())
}

fn read(path: &'static str) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|source| HostError::Read { path, source })
}

/// The host's facts; `name` overrides the host name.
pub fn facts(name: Option<String>) -> Result<Host, HostError> {
    let name = match name {
        Some(n) => n,
        None => read("/proc/sys/kernel/hostname")?.trim().to_lowercase(),
    };
    let memory_kib = mem_total_kib(&read("/proc/meminfo")?).ok_or(HostError::MemTotal)?;
    Ok(Host {
        name,
        ip: default_ip(),
        cpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_kib,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_total_is_read_from_meminfo() {
        let text = "MemFree:  10 kB\nMemTotal:       16384256 kB\n";
        assert_eq!(super::mem_total_kib(text), Some(16_384_256));
        assert_eq!(super::mem_total_kib("MemFree: 1 kB\n"), None);
    }
}
