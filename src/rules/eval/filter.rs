//! Whether a message passes a rule's `match:` filter, and if not, why
//! (the words `simulate` shows); the regex captures when it does.

use std::collections::BTreeMap;

use minijinja::Value as JValue;
use serde_json::Value;

use super::EvalInput;
use super::context::{Base, sender_is, state_holds, type_name};
use crate::event::Message;
use crate::rules::MessageFilter;
use crate::rules::pattern::Pattern;
use crate::rules::raw::ChatScope;

/// Checks `m` against `f`: the captures of `match.text`, or why it does not match.
pub(super) fn message(
    f: &MessageFilter,
    m: &Message,
    input: &EvalInput,
    base: &Base<'_>,
) -> Result<BTreeMap<JValue, JValue>, String> {
    match (f.chat, m.is_group) {
        (ChatScope::Direct, true) => {
            return Err("a group message; the rule is for direct chats (chat: direct)".into());
        }
        (ChatScope::Group, false) => {
            return Err("a direct message; the rule is for groups (chat: group)".into());
        }
        _ => {}
    }
    if !f.from.is_empty() && !f.from.iter().any(|x| sender_is(m, x)) {
        return Err(format!("sender {} is not in match.from", m.sender));
    }
    if !f.groups.is_empty() && !f.groups.contains(&m.chat) {
        return Err(format!("group {} is not in match.group", m.chat));
    }
    if !f.types.is_empty() && !f.types.contains(&m.kind) {
        return Err(format!("type {} is not in match.type", type_name(m)));
    }
    if !f.button_ids.is_empty()
        && !m
            .button_id
            .as_ref()
            .is_some_and(|id| f.button_ids.contains(id))
    {
        return Err(format!(
            "button id {} is not in match.button_id",
            m.button_id.as_deref().unwrap_or("(none)")
        ));
    }
    if !f.choices.is_empty() {
        let choice = base.choice();
        if !choice.as_ref().is_some_and(|c| f.choices.contains(c)) {
            return Err(format!(
                "choice {} is not in match.choice",
                choice.as_deref().unwrap_or("(none)")
            ));
        }
    }
    let captures = match &f.text {
        Some(re) => text_captures(re, m)?,
        None => BTreeMap::new(),
    };
    if !f.state.is_empty() {
        // Reads go through a `Recorder`: a failure is kept there, not lost.
        let state = input
            .memory
            .state(input.instance, &m.chat)
            .unwrap_or_default();
        state_matches(&f.state, &state)?;
    }
    Ok(captures)
}

/// The numbered and named groups of `re` in the message text.
fn text_captures(re: &Pattern, m: &Message) -> Result<BTreeMap<JValue, JValue>, String> {
    let mut captures = BTreeMap::new();
    let text = m.text.as_deref().unwrap_or_default();
    let Some(caps) = re.captures(text) else {
        // Not quoted: the event beside the trail holds the text, and the
        // trail is stored with every message, once per rule not matched.
        // The pattern is quoted: a reload may change the rule.
        return Err(format!("the text does not match /{}/", re.as_str()));
    };
    for (i, name) in re.capture_names().enumerate() {
        let Some(value) = caps.get(i).copied().flatten() else {
            continue;
        };
        let value = JValue::from(value);
        captures.insert(JValue::from(i), value.clone());
        if let Some(name) = name {
            captures.insert(JValue::from(name), value);
        }
    }
    Ok(captures)
}

/// Whether the chat's state holds every value `match.state` asks for.
fn state_matches(
    want: &BTreeMap<String, Value>,
    state: &BTreeMap<String, Value>,
) -> Result<(), String> {
    for (key, want) in want {
        if !state_holds(state.get(key), want) {
            return Err(format!(
                "state.{key} is {}, not {}",
                state.get(key).map_or("unset".into(), |v| v.to_string()),
                if want.is_null() {
                    "unset".into()
                } else {
                    want.to_string()
                }
            ));
        }
    }
    Ok(())
}
