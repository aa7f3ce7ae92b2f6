//! Rule sets as nftables scripts — the whole table, or the smallest change from the one in the
//! kernel — each applied as one transaction (`nft -f`), so packets see the old rules or the new,
//! never a mix; and the kernel boundary itself behind the `Netfilter` trait, with a recording fake.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::rules::Ruleset;

/// The proxy's table (family `ip`).
pub const TABLE: &str = "oxkube-proxy";

fn declare_chain(out: &mut String, name: &str, base: Option<&str>) {
    match base {
        Some(base) => {
            let _ = writeln!(out, "add chain ip {TABLE} {name} {{ {base} }}");
        }
        None => {
            let _ = writeln!(out, "add chain ip {TABLE} {name}");
        }
    }
}

fn declare_collection(out: &mut String, name: &str, c: &crate::rules::Collection) {
    let kind = if c.map { "map" } else { "set" };
    let _ = writeln!(out, "add {kind} ip {TABLE} {name} {{ {} }}", c.declaration);
}

fn element(key: &str, value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{key} : {v}"),
        None => key.to_string(),
    }
}

fn add_elements<'a>(
    out: &mut String,
    name: &str,
    elements: impl Iterator<Item = (&'a String, &'a Option<String>)>,
) {
    let list: Vec<String> = elements.map(|(k, v)| element(k, v)).collect();
    if !list.is_empty() {
        let _ = writeln!(
            out,
            "add element ip {TABLE} {name} {{ {} }}",
            list.join(", ")
        );
    }
}

fn add_rules(out: &mut String, chain: &str, rules: &[String]) {
    for rule in rules {
        let _ = writeln!(out, "add rule ip {TABLE} {chain} {rule}");
    }
}

/// The script that replaces whatever table is there with `r` (the first sync, or a repair).
pub fn full(r: &Ruleset) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "add table ip {TABLE}");
    let _ = writeln!(out, "delete table ip {TABLE}");
    let _ = writeln!(out, "add table ip {TABLE}");
    for (name, c) in &r.chains {
        declare_chain(&mut out, name, c.base);
    }
    for (name, c) in &r.collections {
        declare_collection(&mut out, name, c);
    }
    // Rules before elements: a rule that looks up a map makes the kernel walk every element the
    // map already has, so binding ten thousand rules to a full map costs rules × elements.
    for (name, c) in &r.chains {
        add_rules(&mut out, name, &c.rules);
    }
    for (name, c) in &r.collections {
        add_elements(&mut out, name, c.elements.iter());
    }
    out
}

/// The script that turns `old` (what the kernel holds) into `new`, touching only what changed:
/// new chains and sets first, then changed elements and chains, then what is gone — the order the
/// kernel needs (nothing is deleted while still referenced), all in one transaction. Affinity sets
/// that stay are never flushed, so clients keep their endpoints. Empty when nothing changed.
pub fn diff(old: &Ruleset, new: &Ruleset) -> String {
    let mut out = String::new();
    for (name, c) in &new.chains {
        if !old.chains.contains_key(name) {
            declare_chain(&mut out, name, c.base);
        }
    }
    for (name, c) in &new.collections {
        // A set's declaration never changes under one name (an affinity set's name carries its
        // timeout), so a known name needs nothing here.
        if !old.collections.contains_key(name) {
            declare_collection(&mut out, name, c);
        }
    }
    // Elements: removed or changed keys go, new or changed ones come (one merge-walk per
    // collection over both sorted element maps).
    let mut added: Vec<(&String, Elements)> = Vec::new();
    let empty = BTreeMap::new();
    for (name, c) in &new.collections {
        let before = old.collections.get(name).map_or(&empty, |o| &o.elements);
        let (gone, came) = element_changes(before, &c.elements);
        if !gone.is_empty() && old.collections.contains_key(name) {
            let _ = writeln!(
                out,
                "delete element ip {TABLE} {name} {{ {} }}",
                gone.join(", ")
            );
        }
        added.push((name, came));
    }
    for (name, c) in &new.chains {
        match old.chains.get(name) {
            Some(o) if o.rules == c.rules => {}
            Some(_) => {
                let _ = writeln!(out, "flush chain ip {TABLE} {name}");
                add_rules(&mut out, name, &c.rules);
            }
            None => add_rules(&mut out, name, &c.rules),
        }
    }
    for (name, came) in added {
        add_elements(&mut out, name, came.into_iter());
    }
    let gone_chains: Vec<&String> = old
        .chains
        .keys()
        .filter(|name| !new.chains.contains_key(*name))
        .collect();
    for name in &gone_chains {
        let _ = writeln!(out, "flush chain ip {TABLE} {name}");
    }
    for name in &gone_chains {
        let _ = writeln!(out, "delete chain ip {TABLE} {name}");
    }
    for (name, c) in &old.collections {
        if !new.collections.contains_key(name) {
            let kind = if c.map { "map" } else { "set" };
            let _ = writeln!(out, "delete {kind} ip {TABLE} {name}");
        }
    }
    out
}

/// Set or map elements (key, value) borrowed from a rule set.
type Elements<'a> = Vec<(&'a String, &'a Option<String>)>;

/// The keys `before` loses (removed, or whose value changes) and the elements `after` brings (new,
/// or with a changed value), walking both sorted maps once.
fn element_changes<'a>(
    before: &'a BTreeMap<String, Option<String>>,
    after: &'a BTreeMap<String, Option<String>>,
) -> (Vec<&'a str>, Elements<'a>) {
    let (mut gone, mut came) = (Vec::new(), Vec::new());
    let mut b = before.iter().peekable();
    let mut a = after.iter().peekable();
    loop {
        match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => gone.extend(b.by_ref().map(|(k, _)| k.as_str())),
            (None, Some(_)) => came.extend(a.by_ref()),
            (Some((bk, bv)), Some((ak, av))) => match bk.cmp(ak) {
                std::cmp::Ordering::Less => {
                    gone.push(bk.as_str());
                    b.next();
                }
                std::cmp::Ordering::Greater => {
                    came.push((*ak, *av));
                    a.next();
                }
                std::cmp::Ordering::Equal => {
                    if bv != av {
                        gone.push(bk.as_str());
                        came.push((*ak, *av));
                    }
                    b.next();
                    a.next();
                }
            },
        }
    }
    (gone, came)
}

/// Applying a script failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("starting {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nft refused the rules: {stderr}")]
    Refused { stderr: String },
}

/// The kernel's packet filter, as the proxy uses it: one script, one transaction.
pub trait Netfilter: Send + Sync + std::fmt::Debug {
    fn apply(&self, script: &str) -> Result<(), NftError>;
}

/// The real one: `nft -f -`, in the caller's network namespace or in a named one (`ip netns exec`).
#[derive(Debug, Clone, Default)]
pub struct Nft {
    pub netns: Option<String>,
}

impl Netfilter for Nft {
    fn apply(&self, script: &str) -> Result<(), NftError> {
        use std::io::Write;
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, "nft", "-f", "-"]);
                c
            }
            None => {
                let mut c = std::process::Command::new("nft");
                c.args(["-f", "-"]);
                c
            }
        };
        let spawn_error = |source| NftError::Spawn {
            program: "nft".into(),
            source,
        };
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).map_err(spawn_error)?;
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(NftError::Refused {
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

/// A recording fake: keeps every script; fails the next apply when told to.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub scripts: Arc<parking_lot::Mutex<Vec<String>>>,
    pub fail_next: Arc<std::sync::atomic::AtomicBool>,
}

impl Netfilter for Recorder {
    fn apply(&self, script: &str) -> Result<(), NftError> {
        if self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(NftError::Refused {
                stderr: "told to fail".into(),
            });
        }
        self.scripts.lock().push(script.to_string());
        Ok(())
    }
}

impl Recorder {
    pub fn scripts(&self) -> Vec<String> {
        self.scripts.lock().clone()
    }
}
