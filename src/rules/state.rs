//! What the rules may read of the past: per-chat state and when a rule last
//! fired in a chat (for `cooldown`).
//!
//! Evaluation only reads, through [`Memory`]; whoever performs the plans
//! writes. [`MemoryState`] keeps both in memory for `simulate` and `waflow
//! test`; the daemon's SQLite store implements the same trait.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::MenuOption;

/// Read access to per-chat state and cooldown marks.
pub trait Memory {
    /// The state of one chat.
    fn state(&self, instance: &str, chat: &str) -> BTreeMap<String, Value>;
    /// When `rule` last fired in `chat`.
    fn last_fired(&self, instance: &str, rule: &str, chat: &str) -> Option<jiff::Timestamp>;
    /// The options of the last buttons or list message sent to `recipient`
    /// (a number or group id), and when it was planned.
    fn last_menu(
        &self,
        instance: &str,
        recipient: &str,
    ) -> Option<(Vec<MenuOption>, jiff::Timestamp)>;
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
    fn state(&self, instance: &str, chat: &str) -> BTreeMap<String, Value> {
        self.state
            .get(&(instance.to_owned(), chat.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn last_fired(&self, instance: &str, rule: &str, chat: &str) -> Option<jiff::Timestamp> {
        self.fired
            .get(&(instance.to_owned(), rule.to_owned(), chat.to_owned()))
            .copied()
    }

    fn last_menu(
        &self,
        instance: &str,
        recipient: &str,
    ) -> Option<(Vec<MenuOption>, jiff::Timestamp)> {
        self.menus
            .get(&(instance.to_owned(), recipient.to_owned()))
            .cloned()
    }
}
