//! The decision trail of one event (SPEC §8): which rules were considered
//! and, for each, matched or why not — in the words `simulate` uses. It is
//! collected while the rules are evaluated (the reasons of candidates that
//! did not match are a by-product of checking them), stored with the
//! event, and read back by `waflow explain`.

use serde::{Deserialize, Serialize};

/// What the rules decided about one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    /// Rules that matched, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// Rules considered that did not match, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_matched: Vec<NotMatched>,
    /// The matched rule whose `stop: true` ended the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// Rules of the event's trigger that were not considered: their text
    /// pattern needs words the message does not hold.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

/// A rule that did not match, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotMatched {
    /// The rule.
    pub rule: String,
    /// Why (`simulate`'s words).
    pub why: String,
}

/// The longest reason kept, in characters: a reason may quote the whole
/// message, and the trail is stored with every event.
const WHY_KEPT: usize = 160;

impl NotMatched {
    /// `rule` did not match because of `why` (cut to [`WHY_KEPT`] characters).
    pub fn new(rule: &str, mut why: String) -> NotMatched {
        if let Some((cut, _)) = why.char_indices().nth(WHY_KEPT) {
            why.truncate(cut);
            why.push('…');
        }
        NotMatched {
            rule: rule.to_owned(),
            why,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
