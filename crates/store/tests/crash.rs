//! Crash safety of the embedded store: a child process writes under load (with compactions and
//! checkpoints going on) and is killed with SIGKILL at a random moment, 20 times over one data
//! directory. After each kill the store must reopen; every acknowledged write must be there, whole;
//! nothing unacknowledged may half-exist; and revisions must continue upward.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oxkube_store::{EmbeddedOptions, EmbeddedStore, RangeRequest, Store, StoreError};
use rand::Rng;

const CYCLES: usize = 20;
const TASKS: usize = 8;
const DIR_ENV: &str = "OXKUBE_CRASH_DIR";
const READY: &str = "CRASH-CHILD-READY";

/// The value written for step `n`: its number and a padding whose length and bytes depend on it, so a
/// partly written value cannot pass as whole.
fn value(n: u64) -> Bytes {
    let pad = (n % 300) as usize + 50;
    let fill = b'a' + (n % 26) as u8;
    let mut v = format!("{n}:").into_bytes();
    v.extend(std::iter::repeat_n(fill, pad));
    Bytes::from(v)
}

fn parse_value(v: &[u8]) -> Option<u64> {
    let colon = v.iter().position(|&c| c == b':')?;
    let n: u64 = std::str::from_utf8(&v[..colon]).ok()?.parse().ok()?;
    (value(n) == v).then_some(n)
}

fn options(dir: &Path) -> EmbeddedOptions {
    EmbeddedOptions {
        checkpoint_wal_bytes: 128 << 10,
        ..EmbeddedOptions::new(dir)
    }
}

/// The writer, run in a child process by `killed_writers_lose_no_acknowledged_write`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the crash test's child process; it runs only when the crash test starts it"]
async fn crash_child() {
    let dir = std::env::var(DIR_ENV).expect("started by the crash test with OXKUBE_CRASH_DIR");
    let dir = Path::new(&dir);
    let store = Arc::new(EmbeddedStore::open(options(&dir.join("db"))).expect("open"));
    let acks = Arc::new(parking_lot::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acks"))
            .expect("ack log"),
    ));
    println!("{READY}");
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/crash/counter/{t}");
            let (mut n, mut rev) = match store.get(key.as_bytes(), None).await.expect("get").0 {
                Some(kv) => {
                    // A write that was durable but not acknowledged when the last child was killed is
                    // where this child resumes: record it, or the next check would count two
                    // unacknowledged steps (that one and the one in flight at the next kill).
                    let n = parse_value(&kv.value).expect("intact");
                    let line = format!("u {t} {n} {}\n", kv.mod_revision);
                    acks.lock().write_all(line.as_bytes()).expect("ack");
                    (n, kv.mod_revision)
                }
                None => (
                    0,
                    store
                        .create(key.as_bytes(), value(0))
                        .await
                        .expect("create"),
                ),
            };
            loop {
                n += 1;
                rev = store
                    .update(key.as_bytes(), value(n), rev)
                    .await
                    .expect("update");
                let line = format!("u {t} {n} {rev}\n");
                acks.lock().write_all(line.as_bytes()).expect("ack");
                let item = format!("/crash/item/{t}/{n}");
                let r = store
                    .create(item.as_bytes(), value(n))
                    .await
                    .expect("create item");
                let line = format!("c {t} {n} {r}\n");
                acks.lock().write_all(line.as_bytes()).expect("ack");
                if t == 0 && n % 100 == 0 {
                    let head = store.current_revision().await.expect("rev");
                    match store.compact(head - 50).await {
                        Ok(()) | Err(StoreError::Compacted { .. }) => {}
                        Err(e) => panic!("compact: {e}"),
                    }
                }
            }
        }));
    }
    // The writers run until the process is killed: one that stops has failed.
    let (stopped, _, _) = futures::future::select_all(tasks).await;
    panic!("a writer stopped: {:?}", stopped.err());
}

/// What the ack log says was acknowledged.
#[derive(Default)]
struct Acked {
    /// Per task: the last acknowledged counter step and its revision.
    counters: HashMap<u64, (u64, i64)>,
    /// Every acknowledged item: (task, step) → revision.
    items: HashMap<(u64, u64), i64>,
    max_revision: i64,
}

fn read_acks(path: &Path) -> Acked {
    let mut acked = Acked::default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return acked;
    };
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [kind, t, n, rev] = f[..] else {
            panic!("bad ack line {line:?}")
        };
        let (t, n, rev): (u64, u64, i64) = (
            t.parse().expect("task"),
            n.parse().expect("step"),
            rev.parse().expect("revision"),
        );
        acked.max_revision = acked.max_revision.max(rev);
        match kind {
            "u" => {
                acked.counters.insert(t, (n, rev));
            }
            "c" => {
                acked.items.insert((t, n), rev);
            }
            _ => panic!("bad ack kind {kind:?}"),
        }
    }
    acked
}

async fn verify(dir: &Path, previous_revision: i64) -> i64 {
    let store = EmbeddedStore::open(options(&dir.join("db")))
        .unwrap_or_else(|e| panic!("reopen after kill failed: {e}"));
    let acked = read_acks(&dir.join("acks"));
    let head = store.current_revision().await.expect("rev");
    assert!(
        head >= acked.max_revision,
        "revision went back: {head} < acked {}",
        acked.max_revision
    );
    assert!(
        head >= previous_revision,
        "revision went back across cycles"
    );

    let everything = store
        .range(RangeRequest::default())
        .await
        .expect("range")
        .kvs;
    let mut items_per_task: HashMap<u64, u64> = HashMap::new();
    for kv in &everything {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let n = parse_value(&kv.value).unwrap_or_else(|| panic!("{key} holds a torn value"));
        let parts: Vec<&str> = key.split('/').collect();
        match parts[..] {
            ["", "crash", "counter", t] => {
                let t: u64 = t.parse().expect("task");
                if let Some(&(acked_n, acked_rev)) = acked.counters.get(&t) {
                    assert!(
                        n == acked_n || n == acked_n + 1,
                        "counter {t} is at {n}, acknowledged {acked_n}"
                    );
                    if n == acked_n {
                        assert_eq!(kv.mod_revision, acked_rev, "counter {t}");
                    }
                }
            }
            ["", "crash", "item", t, step] => {
                let (t, step): (u64, u64) = (t.parse().expect("task"), step.parse().expect("step"));
                assert_eq!(n, step, "{key}");
                let max = items_per_task.entry(t).or_default();
                *max = (*max).max(step);
            }
            _ => panic!("unexpected key {key}"),
        }
    }
    for (&(t, n), &rev) in &acked.items {
        let item = format!("/crash/item/{t}/{n}");
        let kv = store.get(item.as_bytes(), None).await.expect("get").0;
        let kv = kv.unwrap_or_else(|| panic!("acknowledged {item} is missing"));
        assert_eq!(kv.mod_revision, rev, "{item}");
    }
    // At most one write per task was in flight: no item beyond the last acknowledged counter + 1.
    for (t, max) in items_per_task {
        let counter = acked.counters.get(&t).map_or(0, |c| c.0);
        assert!(
            max <= counter + 1,
            "task {t} has item {max} beyond counter {counter}"
        );
    }
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_lose_no_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand::rng();
    let mut revision = 0;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains(READY))
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(20), ready)
                .await
                .expect("child ready in time")
                .expect("reader"),
            "child never became ready"
        );
        tokio::time::sleep(Duration::from_millis(rng.random_range(30..400))).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "cycle {cycle}: the writer died by itself"
        );
        // SIGKILL: no destructor, no flush, no goodbye.
        child.kill().expect("kill");
        child.wait().expect("wait");
        let head = verify(tmp.path(), revision).await;
        assert!(head > revision, "cycle {cycle}: no progress");
        revision = head;
    }
    let acked = read_acks(&tmp.path().join("acks"));
    assert!(
        acked.items.len() > CYCLES * TASKS,
        "the writers wrote too little to mean anything"
    );
}
