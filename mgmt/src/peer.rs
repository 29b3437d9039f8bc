//! The peer protocol: what one unit's daemon asks the partner's over the HA
//! link, so that the console shows both members without ssh and `hasync`
//! moves files without another transport.
//!
//! Messages travel as syncd management messages ([`syncd::mgmt`]): sealed
//! with the cluster key's session keys, retransmitted and in order. Each is
//! one JSON [`Envelope`]: the peer protocol's version, a number the asker
//! chose, and an [`Ask`] or its answer. A unit that receives another version
//! answers with an error naming both versions (it never guesses at fields);
//! one that cannot answer in time is reported unreachable by the asker.
//!
//! ```text
//!  console ─► supervisor ─► PeerClient::ask ─► sync task (PeerRelay) ═HA link═►
//!        partner's PeerRelay ─► its supervisor (Command::Peer) ─► answer ═► back
//! ```
//!
//! The relay lives in the sync task (it owns the engine) and never blocks
//! it: everything it touches is a non-blocking channel.

use crate::supervisor::{Command, Reply, SupervisorHandle};
use crossbeam::channel::{self, Receiver, Sender, TryRecvError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use syncd::engine::Engine;

/// The peer protocol version this code speaks.
pub const PEER_PROTOCOL: u16 = 1;

/// How long an asker waits for the partner's answer by default.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// Questions waiting for the sync task; more are refused as busy.
const QUEUED_ASKS: usize = 64;

/// One message between the daemons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PEER_PROTOCOL`] of the sender.
    pub version: u16,
    /// The asker's number for the question (an answer repeats it).
    pub id: u64,
    /// The question or the answer.
    pub body: Body,
}

/// A question or an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A question.
    Ask(Ask),
    /// The answer: JSON of the answer's own shape, or why there is none.
    Answer(Result<String, String>),
}

/// What one daemon asks the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ask {
    /// Its node status ([`crate::node::NodeStatus`]).
    Node,
    /// Its synchronisation figures ([`crate::node::SyncFigures`]).
    SyncStats,
    /// Its synchronised files: name and digest ([`crate::confsync::FileDigest`]).
    Files,
    /// One synchronised file's text.
    File {
        /// Its name (`rules.ron`).
        name: String,
    },
    /// Keep this file for the transfer `transfer`, after validating it.
    Stage {
        /// The transfer it belongs to.
        transfer: u64,
        /// The file's name.
        name: String,
        /// Its text.
        text: String,
    },
    /// Put every file staged for `transfer` in force, all or nothing.
    Commit {
        /// The transfer.
        transfer: u64,
        /// The configuration sync number both members record.
        sync_id: u64,
    },
}

/// Why the partner could not be asked.
pub fn unreachable(why: &str) -> String {
    format!("partner unreachable: {why}")
}

/// Where the supervisor hands questions for the partner; cheap to clone.
#[derive(Clone)]
pub struct PeerClient {
    tx: Sender<Outbound>,
}

struct Outbound {
    ask: Ask,
    reply: Sender<Reply>,
    deadline: Instant,
}

impl PeerClient {
    /// Sends `ask` to the partner; its answer (JSON text) or why there is
    /// none arrives on the returned channel within `timeout`.
    pub fn ask(&self, ask: Ask, timeout: Duration) -> Receiver<Reply> {
        let (reply, answer) = channel::bounded(1);
        let out = Outbound {
            ask,
            reply,
            deadline: Instant::now() + timeout,
        };
        if let Err(e) = self.tx.try_send(out) {
            let _ = e
                .into_inner()
                .reply
                .send(Err(unreachable("the sync task is busy or stopped")));
        }
        answer
    }
}

/// The sync task's end: sends the supervisor's questions, matches the
/// partner's answers, and has the supervisor answer the partner's questions.
pub struct PeerRelay {
    rx: Receiver<Outbound>,
    supervisor: Arc<OnceLock<SupervisorHandle>>,
    next_id: u64,
    waiting: HashMap<u64, (Sender<Reply>, Instant)>,
    serving: Vec<(u64, Receiver<Reply>)>,
    /// Messages from the partner that were not an envelope of this version.
    refused: u64,
}

/// A relay and the client that feeds it; `supervisor` is set once the
/// supervisor runs (the partner's questions are refused until then).
pub fn relay(supervisor: Arc<OnceLock<SupervisorHandle>>) -> (PeerClient, PeerRelay) {
    let (tx, rx) = channel::bounded(QUEUED_ASKS);
    (
        PeerClient { tx },
        PeerRelay {
            rx,
            supervisor,
            next_id: 0,
            waiting: HashMap::new(),
            serving: Vec::new(),
            refused: 0,
        },
    )
}

fn encode(e: &Envelope) -> Vec<u8> {
    serde_json::to_vec(e).unwrap_or_default()
}

/// Sends the answer to the partner's question `id`. Unsent (the link went
/// down meanwhile), the asker times out.
fn answer(engine: &mut Engine, id: u64, answer: Reply) {
    let bytes = encode(&Envelope {
        version: PEER_PROTOCOL,
        id,
        body: Body::Answer(answer),
    });
    let _ = engine.send_mgmt(bytes);
}

impl PeerRelay {
    /// `sync.peer_refused`: messages of the partner's daemon that were not
    /// a peer protocol envelope of this version (dropped; a question of
    /// another version is answered with the reason).
    pub fn counters(&self, out: &mut Vec<(String, u64)>) {
        out.push(("sync.peer_refused".into(), self.refused));
    }

    /// One round: questions out, messages in, answers ready, timeouts.
    pub fn round(&mut self, engine: &mut Engine) {
        let now = Instant::now();
        while let Ok(out) = self.rx.try_recv() {
            self.next_id += 1;
            let id = self.next_id;
            let bytes = encode(&Envelope {
                version: PEER_PROTOCOL,
                id,
                body: Body::Ask(out.ask),
            });
            match engine.send_mgmt(bytes) {
                Ok(_) => {
                    self.waiting.insert(id, (out.reply, out.deadline));
                }
                Err(e) => {
                    let _ = out.reply.send(Err(unreachable(&e.to_string())));
                }
            }
        }
        while let Some(bytes) = engine.take_mgmt() {
            self.received(engine, &bytes);
        }
        self.serving.retain(|(id, rx)| {
            let reply = match rx.try_recv() {
                Ok(a) => a,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => Err("the partner's unit stopped".into()),
            };
            answer(engine, *id, reply);
            false
        });
        self.waiting.retain(|_, (reply, deadline)| {
            if now < *deadline {
                return true;
            }
            let _ = reply.send(Err(unreachable("no answer in time")));
            false
        });
    }

    fn received(&mut self, engine: &mut Engine, bytes: &[u8]) {
        let envelope = match serde_json::from_slice::<Envelope>(bytes) {
            Ok(e) if e.version == PEER_PROTOCOL => e,
            Ok(e) => {
                self.refused += 1;
                if matches!(e.body, Body::Ask(_)) {
                    answer(engine, e.id, Err(version_mismatch(e.version)));
                }
                return;
            }
            Err(_) => {
                self.refused += 1;
                tracing::warn!(
                    "peer: a message from the partner is not a peer protocol envelope; dropped"
                );
                return;
            }
        };
        match envelope.body {
            Body::Answer(answer) => {
                if let Some((reply, _)) = self.waiting.remove(&envelope.id) {
                    let _ = reply.send(answer);
                }
            }
            Body::Ask(ask) => match self.supervisor.get() {
                Some(s) => self
                    .serving
                    .push((envelope.id, s.submit(Command::Peer(ask)))),
                None => answer(
                    engine,
                    envelope.id,
                    Err("the partner's unit is starting".into()),
                ),
            },
        }
    }
}

/// The answer to a question of another peer protocol version.
fn version_mismatch(theirs: u16) -> String {
    format!("peer protocol version {theirs} asked, this unit speaks {PEER_PROTOCOL} (the members run different firmware)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_json_with_the_version_first() {
        let e = Envelope {
            version: PEER_PROTOCOL,
            id: 7,
            body: Body::Ask(Ask::File {
                name: "rules.ron".into(),
            }),
        };
        let text = String::from_utf8(encode(&e)).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"id":7,"body":{"Ask":{"File":{"name":"rules.ron"}}}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), e);
    }

    #[test]
    fn a_full_queue_or_a_stopped_relay_answers_at_once() {
        let (client, relay) = relay(Arc::default());
        drop(relay);
        let answer = client.ask(Ask::Node, PEER_TIMEOUT).try_recv().unwrap();
        assert_eq!(
            answer,
            Err("partner unreachable: the sync task is busy or stopped".into())
        );
    }
}
