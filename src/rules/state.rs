//! What the rules may read of the past: per-chat state and when a rule last
//! fired in a chat (for `cooldown`).
//!
//! Evaluation only reads, through [`Memory`]; whoever performs the plans
//! writes. [`MemoryState`] keeps both in memory for `simulate` and `waflow
//! test`; the daemon's SQLite store implements the same trait.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::MenuOption;

/// A read of the past failed (the store could not answer): the evaluation
/// is not made, rather than made on a past that looks empty.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot read the chat's state, cooldowns or menus: {0}")]
pub struct MemoryError(pub String);

/// The last menu sent to a recipient: its options and when it was planned.
pub type LastMenu = (Vec<MenuOption>, jiff::Timestamp);

/// Read access to per-chat state and cooldown marks.
pub trait Memory {
    /// The state of one chat.
    fn state(&self, instance: &str, chat: &str) -> Result<BTreeMap<String, Value>, MemoryError>;
    /// When `rule` last fired in `chat`.
    fn last_fired(
        &self,
        instance: &str,
        rule: &str,
        chat: &str,
    ) -> Result<Option<jiff::Timestamp>, MemoryError>;
    /// The options of the last buttons or list message sent to `recipient`
    /// (a number or group id), and when it was planned.
    fn last_menu(&self, instance: &str, recipient: &str) -> Result<Option<LastMenu>, MemoryError>;
}

/// Wraps a [`Memory`] for one evaluation: the first failed read is kept and
/// the read answers empty, so evaluation runs to its end; the caller then
/// discards the result and reports the failure ([`Recorder::finish`]).
pub(crate) struct Recorder<'a> {
    inner: &'a dyn Memory,
    failed: std::cell::RefCell<Option<MemoryError>>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(inner: &'a dyn Memory) -> Self {
        Recorder {
            inner,
            failed: std::cell::RefCell::new(None),
        }
    }

    fn keep<T: Default>(&self, read: Result<T, MemoryError>) -> Result<T, MemoryError> {
        Ok(read.unwrap_or_else(|err| {
            self.failed.borrow_mut().get_or_insert(err);
            T::default()
        }))
    }

    /// `value`, unless a read failed meanwhile.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, MemoryError> {
        match self.failed.into_inner() {
            Some(err) => Err(err),
            None => Ok(value),
        }
    }
}

impl Memory for Recorder<'_> {
    fn state(&self, instance: &str, chat: &str) -> Result<BTreeMap<String, Value>, MemoryError> {
        self.keep(self.inner.state(instance, chat))
    }

    fn last_fired(
        &self,
        instance: &str,
        rule: &str,
        chat: &str,
    ) -> Result<Option<jiff::Timestamp>, MemoryError> {
        self.keep(self.inner.last_fired(instance, rule, chat))
    }

    fn last_menu(&self, instance: &str, recipient: &str) -> Result<Option<LastMenu>, MemoryError> {
        self.keep(self.inner.last_menu(instance, recipient))
    }
}

/// State and cooldowns in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    state: HashMap<(String, String), BTreeMap<String, Value>>,
    fired: HashMap<(String, String, String), jiff::Timestamp>,
    menus: HashMap<(String, String), (Vec<MenuOption>, jiff::Timestamp)>,
}

impl MemoryState {
    /// Sets state values of a chat.
    pub fn set(&mut self, instance: &str, chat: &str, values: &BTreeMap<String, Value>) {
        let entry = self
            .state
            .entry((instance.to_owned(), chat.to_owned()))
            .or_default();
        for (k, v) in values {
            entry.insert(k.clone(), v.clone());
        }
    }

    /// Removes state keys of a chat.
    pub fn clear(&mut self, instance: &str, chat: &str, keys: &[String]) {
        if let Some(entry) = self.state.get_mut(&(instance.to_owned(), chat.to_owned())) {
            for k in keys {
                entry.remove(k);
            }
        }
    }

    /// Records the menu last sent to `recipient`.
    pub fn set_menu(
        &mut self,
        instance: &str,
        recipient: &str,
        menu: Vec<MenuOption>,
        at: jiff::Timestamp,
    ) {
        self.menus
            .insert((instance.to_owned(), recipient.to_owned()), (menu, at));
    }

    /// Records that `rule` fired in `chat` at `at`.
    pub fn fired(&mut self, instance: &str, rule: &str, chat: &str, at: jiff::Timestamp) {
        self.fired
            .insert((instance.to_owned(), rule.to_owned(), chat.to_owned()), at);
    }
}

impl Memory for MemoryState {
    fn state(&self, instance: &str, chat: &str) -> Result<BTreeMap<String, Value>, MemoryError> {
        Ok(self
            .state
            .get(&(instance.to_owned(), chat.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    fn last_fired(
        &self,
        instance: &str,
        rule: &str,
        chat: &str,
    ) -> Result<Option<jiff::Timestamp>, MemoryError> {
        Ok(self
            .fired
            .get(&(instance.to_owned(), rule.to_owned(), chat.to_owned()))
            .copied())
    }

    fn last_menu(&self, instance: &str, recipient: &str) -> Result<Option<LastMenu>, MemoryError> {
        Ok(self
            .menus
            .get(&(instance.to_owned(), recipient.to_owned()))
            .cloned())
    }
}
