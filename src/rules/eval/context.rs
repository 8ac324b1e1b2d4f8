//! The template context of an event: built lazily, once per event, with
//! `msg.choice` read from the last menu sent to the chat.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use minijinja::Value as JValue;
use serde::Serialize;

use super::EvalInput;
use crate::event::jid;
use crate::event::{Event, EventKind, Message, ReplyTarget};
use crate::rules::RuleSet;
use crate::rules::expr::{SEED, fnv, to_value};
use crate::rules::plan::MenuOption;
use serde_json::Value;

/// `msg.choice`: the option a message picks — the id of a tapped button or
/// list row, or of the option of the chat's last menu whose number or label
/// it says. Menus are looked up only when a rule reads the choice.
fn choice_of(rules: &RuleSet, event: &Event, input: &EvalInput) -> Option<String> {
    let EventKind::Message(m) = &event.kind else {
        return None;
    };
    if let Some(id) = &m.button_id {
        return Some(id.clone());
    }
    if !rules.uses_choice {
        return None;
    }
    let text = m.text.as_deref()?;
    if text.len() > 200 {
        return None;
    }
    let (ReplyTarget::Number(to) | ReplyTarget::Group(to)) = m.reply_target();
    let (menu, at) = input.memory.last_menu(input.instance, &to).ok().flatten()?;
    if input.now.as_second() - at.as_second() > MENU_LIFETIME {
        return None;
    }
    pick(&menu, text)
}

/// The option `text` names: its number (`2`, `2.`, `#2`), its label or its id,
/// compared without case and accents.
pub fn pick(menu: &[MenuOption], text: &str) -> Option<String> {
    let bare = text.trim().trim_matches(|c: char| !c.is_alphanumeric());
    if let Ok(n) = bare.parse::<usize>() {
        return menu.get(n.checked_sub(1)?).map(|o| o.id.clone());
    }
    let want = crate::event::fold_text(text);
    if want.is_empty() {
        return None;
    }
    menu.iter()
        .find(|o| {
            crate::event::fold_text(&o.label) == want || crate::event::fold_text(&o.id) == want
        })
        .map(|o| o.id.clone())
}

/// A number that differs between events, for spintax picks.
fn event_seed(event: &Event) -> u64 {
    let id = match &event.kind {
        EventKind::Message(m) => format!("{}/{}", m.chat, m.id),
        EventKind::Status(s) => format!("{}/{}", s.id, s.code),
        EventKind::Presence(p) => format!("{}/{}", p.participant, p.state),
        EventKind::Schedule(f) => format!("{}/{}", f.rule, f.at),
        EventKind::Hook(h) => format!("{}/{}/{}", h.name, h.id, h.body),
        _ => String::new(),
    };
    fnv(0, id.as_bytes())
}

/// The event's part of the template context, built on first use: a rule
/// whose texts are all literal never pays for it.
pub(super) struct Base<'a> {
    cell: OnceCell<BTreeMap<String, JValue>>,
    /// `{{ row }}`: the list row the actions are planned for.
    pub(super) row: Option<JValue>,
    /// `msg.choice`: a store lookup, made once per event however many rules ask.
    choice: OnceCell<Option<String>>,
    rules: &'a RuleSet,
    event: &'a Event,
    input: &'a EvalInput<'a>,
}

impl<'a> Base<'a> {
    pub(super) fn new(rules: &'a RuleSet, event: &'a Event, input: &'a EvalInput<'a>) -> Self {
        Base {
            cell: OnceCell::new(),
            row: None,
            choice: OnceCell::new(),
            rules,
            event,
            input,
        }
    }

    /// This event's context for one row of a list: `{{ row }}` set, and
    /// spintax picks that differ from row to row.
    pub(super) fn with_row(&self, row: JValue, line: u64) -> Base<'a> {
        let mut ctx = self.get().clone();
        let seed = ctx.get(SEED).and_then(|v| u64::try_from(v.clone()).ok());
        ctx.insert(
            SEED.to_owned(),
            JValue::from(fnv(seed.unwrap_or(0), &line.to_le_bytes())),
        );
        Base {
            cell: OnceCell::from(ctx),
            row: Some(row),
            choice: OnceCell::from(self.choice().clone()),
            rules: self.rules,
            event: self.event,
            input: self.input,
        }
    }

    pub(super) fn get(&self) -> &BTreeMap<String, JValue> {
        self.cell
            .get_or_init(|| base_context(self.event, &self.rules.vars, self.choice().clone()))
    }

    pub(super) fn choice(&self) -> &Option<String> {
        self.choice
            .get_or_init(|| choice_of(self.rules, self.event, self.input))
    }
}

/// One action's whole template context, built on first use.
pub(super) struct Ctx<'a> {
    cell: OnceCell<JValue>,
    make: &'a dyn Fn() -> JValue,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(make: &'a dyn Fn() -> JValue) -> Self {
        Ctx {
            cell: OnceCell::new(),
            make,
        }
    }

    pub(super) fn get(&self) -> &JValue {
        self.cell.get_or_init(self.make)
    }
}

/// The template context parts that depend only on the event.
fn base_context(event: &Event, vars: &JValue, choice: Option<String>) -> BTreeMap<String, JValue> {
    let mut ctx = BTreeMap::new();
    ctx.insert("vars".to_owned(), vars.clone());
    ctx.insert(SEED.to_owned(), JValue::from(event_seed(event)));
    ctx.insert(
        "event".to_owned(),
        minijinja::context!(raw => to_value(&event.raw)),
    );
    match &event.kind {
        EventKind::Message(m) => {
            let mut view = MsgView::from(m);
            view.choice = choice;
            ctx.insert("msg".into(), to_value(&view));
        }
        EventKind::Status(s) => {
            ctx.insert("status".into(), to_value(s));
        }
        EventKind::Presence(p) => {
            ctx.insert("presence".into(), to_value(p));
        }
        EventKind::Hook(h) => {
            ctx.insert("body".into(), to_value(&h.body));
            ctx.insert("headers".into(), to_value(&h.headers));
            ctx.insert("query".into(), to_value(&h.query));
        }
        _ => {}
    }
    ctx
}

/// `{{ msg }}` as templates see it.
#[derive(Serialize)]
struct MsgView<'a> {
    id: &'a str,
    chat: &'a str,
    sender: &'a str,
    sender_name: Option<&'a str>,
    sender_jid: &'a str,
    sender_phone: Option<&'a str>,
    text: Option<&'a str>,
    #[serde(rename = "type")]
    kind: crate::event::MessageType,
    is_group: bool,
    group: Option<&'a str>,
    from_me: bool,
    timestamp: Option<i64>,
    button_id: Option<&'a str>,
    choice: Option<String>,
    media: Option<&'a crate::event::Media>,
    location: Option<&'a crate::event::Location>,
    edited: bool,
}

impl<'a> From<&'a Message> for MsgView<'a> {
    fn from(m: &'a Message) -> Self {
        MsgView {
            id: &m.id,
            chat: &m.chat,
            sender: &m.sender,
            sender_name: m.sender_name.as_deref(),
            sender_jid: &m.sender_jid,
            sender_phone: m.sender_phone.as_deref(),
            text: m.text.as_deref(),
            kind: m.kind,
            is_group: m.is_group,
            group: m.is_group.then_some(m.chat.as_str()),
            from_me: m.from_me,
            timestamp: m.timestamp,
            button_id: m.button_id.as_deref(),
            choice: None,
            media: m.media.as_ref(),
            location: m.location.as_ref(),
            edited: m.edited,
        }
    }
}

pub(super) fn sender_is(m: &Message, wanted: &str) -> bool {
    m.sender == wanted
        || m.sender_phone.as_deref() == Some(wanted)
        || m.sender_jid == jid::normalize(wanted)
}

pub(super) fn type_name(m: &Message) -> String {
    serde_json::to_value(m.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A state value equals the wanted one; scalars compare by their text (`2` = `"2"`).
pub(super) fn state_holds(have: Option<&Value>, want: &Value) -> bool {
    match (have, want) {
        (None, Value::Null) | (Some(Value::Null), Value::Null) => true,
        (None, _) | (Some(_), Value::Null) => false,
        (Some(h), w) => h == w || (scalar_text(h).is_some() && scalar_text(h) == scalar_text(w)),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How long a menu answers typed numbers and labels.
const MENU_LIFETIME: i64 = 24 * 3600;
