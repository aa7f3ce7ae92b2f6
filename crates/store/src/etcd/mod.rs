//! The etcd v3 backend: the same contract over a real etcd cluster (`--datastore-endpoint`). Revisions
//! are etcd's, conditional writes are etcd transactions, watches are etcd watches with `prev_kv`.

pub mod local;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use std::collections::VecDeque;

use crate::{
    Event, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream,
    prefix_end,
};

/// Every way the etcd backend fails.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("cannot connect to etcd at {endpoints}")]
    Connect {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd {op} failed")]
    Request {
        op: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd answered {op} without a response header")]
    NoHeader { op: &'static str },
    #[error("etcd canceled the watch: {reason}")]
    WatchCanceled { reason: String },
}

/// A store backed by etcd v3.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The largest response accepted from etcd.
const MAX_MESSAGE: usize = 512 << 20;

/// etcd answers reads below the compaction point and above the head with OutOfRange and these texts.
const COMPACTED_MSG: &str = "required revision has been compacted";
const FUTURE_MSG: &str = "required revision is a future revision";

fn request_error(
    op: &'static str,
    revision: Option<Revision>,
) -> impl FnOnce(etcd_client::Error) -> StoreError {
    move |source| {
        if let (etcd_client::Error::GRpcStatus(status), Some(requested)) = (&source, revision) {
            if status.message().contains(COMPACTED_MSG) {
                return StoreError::Compacted { requested };
            }
            if status.message().contains(FUTURE_MSG) {
                return StoreError::FutureRevision { requested };
            }
        }
        EtcdError::Request { op, source }.into()
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(
    header: Option<&etcd_client::ResponseHeader>,
    op: &'static str,
) -> Result<Revision, StoreError> {
    header
        .map(etcd_client::ResponseHeader::revision)
        .ok_or(StoreError::Etcd(EtcdError::NoHeader { op }))
}

/// The key-values an `or_else` get returned (what the key is now, after a failed compare).
fn current_of(responses: Vec<TxnOpResponse>) -> Option<KeyValue> {
    responses.into_iter().find_map(|r| match r {
        TxnOpResponse::Get(get) => get.kvs().first().map(to_kv),
        _ => None,
    })
}

impl EtcdStore {
    /// Connects to etcd (comma-separated endpoints, e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &str) -> Result<EtcdStore, EtcdError> {
        let list: Vec<&str> = endpoints.split(',').map(str::trim).collect();
        let client = Client::connect(&list, None)
            .await
            .map_err(|source| EtcdError::Connect {
                endpoints: endpoints.to_owned(),
                source,
            })?;
        Ok(EtcdStore {
            client,
            endpoints: endpoints.to_owned(),
        })
    }

    /// A KV client that accepts responses as large as a big list (tonic's default stops at 4 MiB).
    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }

    async fn txn(
        &self,
        txn: Txn,
        op: &'static str,
    ) -> Result<etcd_client::TxnResponse, StoreError> {
        self.kv().txn(txn).await.map_err(request_error(op, None))
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(
        &self,
        key: &[u8],
        revision: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StoreError> {
        let mut opts = GetOptions::new();
        if let Some(r) = revision.filter(|r| *r > 0) {
            opts = opts.with_revision(r);
        }
        let resp = self
            .kv()
            .get(key, Some(opts))
            .await
            .map_err(request_error("get", revision))?;
        let at = header_revision(resp.header(), "get")?;
        Ok((
            resp.kvs().first().map(to_kv),
            revision.filter(|r| *r > 0).unwrap_or(at),
        ))
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        let start: Vec<u8> = match &req.start_after {
            Some(after) if after.as_ref() >= req.prefix.as_ref() => {
                let mut k = after.to_vec();
                k.push(0);
                k
            }
            _ => req.prefix.to_vec(),
        };
        let mut opts = match prefix_end(&req.prefix) {
            Some(end) => GetOptions::new().with_range(end),
            None => GetOptions::new().with_from_key(),
        };
        if req.limit > 0 {
            opts = opts.with_limit(i64::try_from(req.limit).unwrap_or(i64::MAX));
        }
        if let Some(r) = req.revision.filter(|r| *r > 0) {
            opts = opts.with_revision(r);
        }
        let resp = self
            .kv()
            .get(start, Some(opts))
            .await
            .map_err(request_error("range", req.revision))?;
        let head = header_revision(resp.header(), "range")?;
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            revision: req.revision.filter(|r| *r > 0).unwrap_or(head),
            more: resp.more(),
            count: usize::try_from(resp.count()).unwrap_or(0),
        })
    }

    async fn create(&self, key: &[u8], value: Bytes) -> Result<Revision, StoreError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(txn, "create").await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists);
        }
        header_revision(resp.header(), "create")
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn, "update").await?;
        if !resp.succeeded() {
            return Err(StoreError::Conflict {
                expected,
                current: current_of(resp.op_responses()).map(Box::new),
            });
        }
        header_revision(resp.header(), "update")
    }

    async fn delete(
        &self,
        key: &[u8],
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let delete = TxnOp::delete(key, Some(etcd_client::DeleteOptions::new().with_prev_key()));
        let txn = match expected {
            Some(expected) => Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([delete])
                .or_else([TxnOp::get(key, None)]),
            None => Txn::new().and_then([delete]),
        };
        let resp = self.txn(txn, "delete").await?;
        let revision = header_revision(resp.header(), "delete")?;
        if !resp.succeeded() {
            return match current_of(resp.op_responses()) {
                None => Err(StoreError::NotFound),
                Some(now) => Err(StoreError::Conflict {
                    expected: expected.unwrap_or(0),
                    current: Some(Box::new(now)),
                }),
            };
        }
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_kv),
            _ => None,
        });
        prev.map(|kv| (revision, kv)).ok_or(StoreError::NotFound)
    }

    async fn watch(&self, prefix: &[u8], start: Revision) -> Result<WatchStream, StoreError> {
        let mut opts = WatchOptions::new().with_prev_key();
        opts = match prefix_end(prefix) {
            Some(end) => opts.with_range(end),
            None => opts.with_from_key(),
        };
        if start > 0 {
            opts = opts.with_start_revision(start);
        }
        let stream = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(prefix, Some(opts))
            .await
            .map_err(request_error("watch", Some(start)))?;
        let state = EtcdWatch {
            stream,
            buffered: VecDeque::new(),
            start,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, EtcdWatch::step)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let resp = self
            .kv()
            .get(b"\0".to_vec(), Some(GetOptions::new().with_keys_only()))
            .await
            .map_err(request_error("get", None))?;
        header_revision(resp.header(), "get")
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.kv()
            .compact(revision, None)
            .await
            .map_err(request_error("compact", Some(revision)))?;
        Ok(())
    }
}

/// One etcd watch as a state machine driven by `stream::unfold`.
struct EtcdWatch {
    stream: etcd_client::WatchStream,
    buffered: VecDeque<Event>,
    start: Revision,
    done: bool,
}

impl EtcdWatch {
    async fn step(mut self) -> Option<(Result<Event, StoreError>, EtcdWatch)> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let resp = match self.stream.next().await? {
                Ok(resp) => resp,
                Err(source) => {
                    self.done = true;
                    let err = EtcdError::Request {
                        op: "watch",
                        source,
                    };
                    return Some((Err(err.into()), self));
                }
            };
            if resp.canceled() {
                self.done = true;
                let err = if resp.compact_revision() > 0 {
                    StoreError::Compacted {
                        requested: self.start,
                    }
                } else {
                    EtcdError::WatchCanceled {
                        reason: resp.cancel_reason().to_owned(),
                    }
                    .into()
                };
                return Some((Err(err), self));
            }
            for e in resp.events() {
                let Some(kv) = e.kv() else { continue };
                let prev = e.prev_kv().map(to_kv);
                self.buffered.push_back(match e.event_type() {
                    EventType::Put => Event::Put {
                        kv: to_kv(kv),
                        prev,
                    },
                    EventType::Delete => Event::Delete {
                        revision: kv.mod_revision(),
                        prev: prev.unwrap_or_else(|| KeyValue {
                            key: Bytes::copy_from_slice(kv.key()),
                            value: Bytes::new(),
                            create_revision: 0,
                            mod_revision: 0,
                        }),
                    },
                });
            }
        }
    }
}
