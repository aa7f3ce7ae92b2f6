//! The store benchmark (`oxkube bench store`): one workload run on the embedded backend and on a real
//! etcd started on loopback in the same run, printed side by side with the ratio. Not a test: it
//! asserts nothing and never runs in CI.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::etcd::local::{LocalEtcd, LocalEtcdError};
use crate::{EmbeddedOptions, EmbeddedStore, EtcdStore, RangeRequest, Store, StoreError};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub sequential: usize,
    pub concurrent: usize,
    pub writers: usize,
    pub range_keys: usize,
    pub watch_events: usize,
    pub value_size: usize,
    /// Keys in the store whose opening time is measured (embedded only).
    pub open_keys: usize,
    /// Where both stores keep their data; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
}

/// Every way the benchmark fails.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot create the benchmark directory")]
    Dir(#[source] std::io::Error),
    #[error("cannot open the embedded store")]
    Embedded(#[source] crate::embedded::EmbeddedError),
    #[error("cannot start etcd")]
    StartEtcd(#[source] LocalEtcdError),
    #[error("cannot connect to etcd")]
    ConnectEtcd(#[source] crate::etcd::EtcdError),
    #[error("a store operation failed during the {phase} phase")]
    Store {
        phase: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("the watch ended after {got} of {want} events")]
    WatchEnded { got: usize, want: usize },
    #[error("a writer task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// One backend's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub sequential_writes_per_s: f64,
    pub concurrent_writes_per_s: f64,
    pub range_ms: f64,
    pub watch_events_per_s: f64,
    pub watch_events: usize,
}

/// Both backends' figures.
#[derive(Debug, Clone)]
pub struct Report {
    pub options: BenchOptions,
    pub embedded: Figures,
    pub etcd: Figures,
    pub etcd_version: String,
    /// Time to open the embedded store holding `options.open_keys` keys (WAL replay included).
    pub open_ms: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "store benchmark: {} B values; etcd {} on loopback; both sync every acknowledged write to disk",
            o.value_size, self.etcd_version
        )?;
        writeln!(
            f,
            "{:<44} {:>12} {:>12} {:>8}",
            "workload", "embedded", "etcd", "ratio"
        )?;
        let (e, d) = (&self.embedded, &self.etcd);
        let rows = [
            (
                format!("sequential durable writes/s ({})", o.sequential),
                e.sequential_writes_per_s,
                d.sequential_writes_per_s,
                true,
            ),
            (
                format!(
                    "{} concurrent writers, writes/s ({})",
                    o.writers, o.concurrent
                ),
                e.concurrent_writes_per_s,
                d.concurrent_writes_per_s,
                true,
            ),
            (
                format!("range of {} keys, ms", o.range_keys),
                e.range_ms,
                d.range_ms,
                false,
            ),
            (
                format!("watch delivery, events/s ({})", e.watch_events),
                e.watch_events_per_s,
                d.watch_events_per_s,
                true,
            ),
        ];
        for (name, emb, etcd, higher_is_better) in rows {
            let ratio = if higher_is_better {
                emb / etcd
            } else {
                etcd / emb
            };
            writeln!(f, "{name:<44} {emb:>12.1} {etcd:>12.1} {ratio:>7.2}x")?;
        }
        let open = format!("open a store of {} keys, ms", o.open_keys);
        writeln!(
            f,
            "{open:<44} {:>12.1} {:>12} {:>8}",
            self.open_ms, "-", "-"
        )?;
        writeln!(
            f,
            "ratio: how many times better the embedded store is (time: etcd/embedded)"
        )
    }
}

fn store_err(phase: &'static str) -> impl FnOnce(StoreError) -> BenchError {
    move |source| BenchError::Store { phase, source }
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Creates `count` keys `{prefix}{i}` from `writers` concurrent tasks; returns the elapsed time.
async fn write_concurrently(
    store: &Arc<dyn Store>,
    prefix: &str,
    count: usize,
    writers: usize,
    value: &Bytes,
) -> Result<Duration, BenchError> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count {
                let key = format!("{prefix}{i:08}");
                store.create(key.as_bytes(), value.clone()).await?;
                i += writers;
            }
            Ok::<(), StoreError>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(BenchError::Task)?
            .map_err(store_err("concurrent write"))?;
    }
    Ok(start.elapsed())
}

/// Runs the workload on one store.
pub async fn workload(store: Arc<dyn Store>, o: &BenchOptions) -> Result<Figures, BenchError> {
    let value = Bytes::from(vec![b'x'; o.value_size]);
    let first = store.current_revision().await.map_err(store_err("start"))?;

    let start = Instant::now();
    for i in 0..o.sequential {
        let key = format!("/bench/seq/{i:08}");
        store
            .create(key.as_bytes(), value.clone())
            .await
            .map_err(store_err("sequential write"))?;
    }
    let sequential_writes_per_s = per_second(o.sequential, start.elapsed());

    let elapsed =
        write_concurrently(&store, "/bench/conc/", o.concurrent, o.writers, &value).await?;
    let concurrent_writes_per_s = per_second(o.concurrent, elapsed);

    write_concurrently(&store, "/bench/range/", o.range_keys, o.writers, &value).await?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let resp = store
            .range(RangeRequest {
                prefix: Bytes::from_static(b"/bench/range/"),
                ..Default::default()
            })
            .await
            .map_err(store_err("range"))?;
        times.push(start.elapsed());
        if resp.kvs.len() != o.range_keys {
            return Err(BenchError::Store {
                phase: "range",
                source: StoreError::InvalidRequest("range returned the wrong number of keys"),
            });
        }
    }
    times.sort();
    let range_ms = times[times.len() / 2].as_secs_f64() * 1e3;

    // Watch delivery: replay the whole history written so far (topped up to `watch_events`).
    let written = o.sequential + o.concurrent + o.range_keys;
    if written < o.watch_events {
        write_concurrently(
            &store,
            "/bench/watch/",
            o.watch_events - written,
            o.writers,
            &value,
        )
        .await?;
    }
    let want = written.max(o.watch_events);
    let start = Instant::now();
    let mut watch = store
        .watch(b"/bench/", first + 1)
        .await
        .map_err(store_err("watch"))?;
    let mut got = 0;
    while got < want {
        match watch.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => return Err(store_err("watch")(e)),
            None => return Err(BenchError::WatchEnded { got, want }),
        }
    }
    let watch_events_per_s = per_second(got, start.elapsed());

    Ok(Figures {
        sequential_writes_per_s,
        concurrent_writes_per_s,
        range_ms,
        watch_events_per_s,
        watch_events: got,
    })
}

fn etcd_version() -> String {
    let binary = std::env::var("OXKUBE_ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned());
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "(unknown version)".to_owned())
}

/// Runs the workload on both backends, embedded first.
pub async fn run(o: &BenchOptions) -> Result<Report, BenchError> {
    let tmp;
    let dir = match &o.dir {
        Some(dir) => dir.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(BenchError::Dir)?;
            tmp.path().to_owned()
        }
    };
    let embedded = {
        let store = EmbeddedStore::open(EmbeddedOptions::new(dir.join("embedded")))
            .map_err(BenchError::Embedded)?;
        workload(Arc::new(store), o).await?
    };
    let open_ms = {
        let dir = dir.join("embedded-open");
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(EmbeddedOptions::new(&dir)).map_err(BenchError::Embedded)?,
        );
        let value = Bytes::from(vec![b'x'; o.value_size]);
        write_concurrently(&store, "/bench/open/", o.open_keys, o.writers, &value).await?;
        drop(store);
        let start = Instant::now();
        let store =
            EmbeddedStore::open(EmbeddedOptions::new(&dir)).map_err(BenchError::Embedded)?;
        let elapsed = start.elapsed();
        if store.len() != o.open_keys {
            return Err(BenchError::Store {
                phase: "open",
                source: StoreError::InvalidRequest("reopened store has the wrong number of keys"),
            });
        }
        elapsed.as_secs_f64() * 1e3
    };
    let etcd = {
        let server = LocalEtcd::start(&dir.join("etcd"))
            .await
            .map_err(BenchError::StartEtcd)?;
        let store = EtcdStore::connect(server.endpoint())
            .await
            .map_err(BenchError::ConnectEtcd)?;
        workload(Arc::new(store), o).await?
    };
    Ok(Report {
        options: o.clone(),
        embedded,
        etcd,
        etcd_version: etcd_version(),
        open_ms,
    })
}
