//! The de-duplication key of an event in the inbox: the same message,
//! status or fire gives the same key, so it is recorded and acted on once.
//! Kinds without an id of their own (presence, contacts, groups) get a
//! random part: each delivery of them is new.

use rand::Rng;

use super::{Event, EventKind};

impl Event {
    /// The key under which this event is recorded; the prefix of its outbox rows' keys.
    pub fn key(&self) -> String {
        let nonce = || format!("{:016x}", rand::rng().random::<u64>());
        match &self.kind {
            EventKind::Message(m) => format!("msg:{}", m.id),
            EventKind::Status(s) => format!("status:{}:{}", s.id, s.code),
            EventKind::Presence(p) => format!("presence:{}:{}:{}", p.participant, p.state, nonce()),
            EventKind::Contacts(_) => format!("contacts:{}", nonce()),
            EventKind::Groups(_) => format!("groups:{}", nonce()),
            EventKind::Call(c) => format!("call:{}:{}", c.id, c.status),
            EventKind::Hook(h) => format!("hook:{}:{}", h.name, h.id),
            EventKind::Schedule(f) => format!("fire:{}:{}", f.rule, f.at.as_second()),
        }
    }
}
