//! The rules: loaded from YAML, compiled once, evaluated purely.
//!
//! [`RuleSet::compile`] takes the texts of rule files (read by
//! [`crate::rulefiles`]), reports every problem with `FILE:LINE:COL` and a
//! hint, and compiles regexes, templates, conditions and cron expressions. A [`RuleSet`] is immutable; a reload builds a new
//! one and swaps it in. [`RuleSet::evaluate`] takes an event and returns the
//! planned actions — it performs no I/O, knows no async runtime, and reads
//! the past only through [`Memory`].

mod compile;
mod eval;
pub mod expr;
pub mod foreach;
mod now;
pub mod pattern;
pub mod plan;
pub mod prefilter;
pub mod raw;
pub mod spanned;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::config::Zone;
use crate::event::MessageType;
use crate::schedule::Cron;
use crate::secret::Secret;
use pattern::Pattern;

pub use eval::{
    EvalInput, Evaluation, Explained, HttpResult, LeftOut, ListRun, NotMatched, Trail, Verdict,
    chat_of,
};
pub use expr::{Templates, Text};
pub use foreach::{FieldUse, ForEach, ListSource};
pub use plan::{
    ActionFailure, Allowances, HttpCall, MenuOption, Outgoing, PlannedAction, RowRef, RulePlan,
};
pub use raw::{ChatScope, Fallback};
pub use state::{LastMenu, Memory, MemoryError, MemoryState};

/// What loading needs besides the files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The zone of rules without `timezone:` (the config's).
    pub zone: Zone,
    /// `vars:` of the config.
    pub vars: serde_json::Map<String, Value>,
    /// Environment for `${VAR}` in rule files.
    pub env: HashMap<String, String>,
    /// The config's `hours:`, for `in_hours('NAME')`.
    pub calendars: crate::config::Calendars,
    /// The configured instances' names, for `instance:` (empty: not checked).
    pub instances: Vec<String>,
}

impl LoadOptions {
    /// The options an instance's view of the config gives, with the
    /// process environment; `instances` are the names of all configured
    /// instances (a view holds only its own).
    pub fn from_config(config: &crate::config::Config, instances: Vec<String>) -> Self {
        LoadOptions {
            zone: config.timezone.clone(),
            vars: config.vars.clone(),
            env: std::env::vars().collect(),
            calendars: config.hours.clone(),
            instances,
        }
    }
}

/// A compiled, immutable set of rules.
#[derive(Debug)]
pub struct RuleSet {
    /// The rules in evaluation order.
    pub rules: Vec<Rule>,
    /// The files they came from, in load order.
    pub files: Vec<PathBuf>,
    templates: Templates,
    vars: minijinja::Value,
    /// Picks the message rules with a text pattern that could match a text.
    prefilter: prefilter::Prefilter,
    /// Message rules without a text pattern: always candidates.
    textless: Vec<usize>,
    /// How many rules are message rules (the decision trail counts those
    /// the prefilter did not pick).
    message_rules: usize,
    /// Some rule reads `msg.choice`: only then are menus looked up.
    uses_choice: bool,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Where it is defined.
    pub file: PathBuf,
    /// The line of its first key.
    pub line: u64,
    /// What it reacts to, with its filters.
    pub trigger: Trigger,
    /// The `if:` condition.
    pub condition: Option<Text>,
    /// The `if:` as written, for messages.
    pub condition_source: Option<String>,
    /// Fires at most once per chat within this.
    pub cooldown: Option<Duration>,
    /// Later rules do not see a matched event.
    pub stop: bool,
    /// The zone of `now` and the schedule.
    pub zone: Zone,
    /// The actions.
    pub actions: Vec<Action>,
    /// The instances it serves (`instance:`); `None`: every one.
    pub instances: Option<Vec<String>>,
    /// `for_each:`: the actions run once per row of this list.
    pub for_each: Option<ForEach>,
}

impl Rule {
    /// Whether this rule serves the instance called `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.instances
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == name))
    }
}

/// A rule's trigger and filters.
#[derive(Debug)]
pub enum Trigger {
    /// `on: message`.
    Message(MessageFilter),
    /// `on: status`.
    Status(StatusFilter),
    /// `on: presence`.
    Presence(PresenceFilter),
    /// `on: schedule`.
    Schedule(ScheduleSpec),
    /// `on: webhook`.
    Webhook(HookSpec),
}

impl Trigger {
    /// `message`, `status`, …, as in `on:`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Message(_) => "message",
            Trigger::Status(_) => "status",
            Trigger::Presence(_) => "presence",
            Trigger::Schedule(_) => "schedule",
            Trigger::Webhook(_) => "webhook",
        }
    }
}

/// Filters of a message rule.
#[derive(Debug, Default)]
pub struct MessageFilter {
    /// The text pattern.
    pub text: Option<Pattern>,
    /// Direct, group or any.
    pub chat: ChatScope,
    /// Allowed senders: phone digits or normalized JIDs.
    pub from: Vec<String>,
    /// Allowed groups.
    pub groups: Vec<String>,
    /// Allowed types.
    pub types: Vec<MessageType>,
    /// Allowed button/list ids.
    pub button_ids: Vec<String>,
    /// Allowed choices (`msg.choice`).
    pub choices: Vec<String>,
    /// Required state values (`null` = unset).
    pub state: BTreeMap<String, Value>,
}

/// Filters of a status rule.
#[derive(Debug, Default)]
pub struct StatusFilter {
    /// Status names; empty = any.
    pub names: Vec<String>,
    /// Chats (phone digits); empty = any.
    pub from: Vec<String>,
}

/// Filters of a presence rule.
#[derive(Debug, Default)]
pub struct PresenceFilter {
    /// Presence states; empty = any.
    pub states: Vec<String>,
    /// Participants (phone digits); empty = any.
    pub from: Vec<String>,
}

/// A schedule.
#[derive(Debug)]
pub struct ScheduleSpec {
    /// When it fires, in the rule's zone.
    pub cron: Cron,
    /// How late a missed run may still fire on start.
    pub catch_up: Option<Duration>,
}

/// A generic inbound hook.
#[derive(Debug)]
pub struct HookSpec {
    /// `POST /hooks/{hook}`.
    pub hook: String,
    /// The HMAC key / query secret.
    pub secret: Option<Secret>,
}

/// A compiled action: templates ready to render.
#[derive(Debug)]
pub enum Action {
    /// `reply`.
    Reply(SendSpec),
    /// `send`.
    Send(SendSpec),
    /// `send_group`.
    SendGroup(SendSpec),
    /// `send_buttons` (interactive) or `send_template` (legacy).
    Buttons(ButtonsSpec),
    /// `send_list`.
    List(ListSpec),
    /// `http`.
    Http(HttpSpec),
    /// `set`.
    Set(Vec<(String, JsonTemplate)>),
    /// `clear`.
    Clear(Vec<String>),
    /// `delay`.
    Delay(Duration),
    /// `log`.
    Log(Text),
}

/// `reply`, `send`, `send_group`.
#[derive(Debug, Default)]
pub struct SendSpec {
    /// Recipient (send, send_group).
    pub to: Option<Text>,
    /// Text or caption.
    pub text: Option<Text>,
    /// Media URL.
    pub media: Option<Text>,
    /// File name.
    pub filename: Option<Text>,
    /// `allow_repeat`, `allow_cold`.
    pub allow: Allowances,
}

/// `send_buttons` and `send_template`.
#[derive(Debug)]
pub struct ButtonsSpec {
    /// The legacy template format.
    pub legacy: bool,
    /// Recipient; default the event's chat.
    pub to: Option<Text>,
    /// Body.
    pub text: Text,
    /// Title.
    pub title: Option<Text>,
    /// Footer.
    pub footer: Option<Text>,
    /// Buttons.
    pub buttons: Vec<ButtonSpec>,
    /// What to send where interactive messages are dropped.
    pub fallback: Fallback,
    /// `allow_repeat`, `allow_cold`.
    pub allow: Allowances,
}

/// One button: its kind, label and value (id, URL, phone or code).
#[derive(Debug)]
pub struct ButtonSpec {
    /// `id`, `url`, `call` or `copy`.
    pub kind: ButtonKind,
    /// Label.
    pub text: Text,
    /// Id, URL, phone or code.
    pub value: Text,
}

/// The kinds of buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonKind {
    /// Quick reply with an id.
    Reply,
    /// Open a URL.
    Url,
    /// Call a number.
    Call,
    /// Copy a code.
    Copy,
}

/// `send_list`.
#[derive(Debug)]
pub struct ListSpec {
    /// Recipient; default the event's chat.
    pub to: Option<Text>,
    /// Body.
    pub text: Text,
    /// Title.
    pub title: Option<Text>,
    /// Footer.
    pub footer: Option<Text>,
    /// The opening button's label.
    pub button: Text,
    /// Sections: title and rows.
    pub sections: Vec<(Text, Vec<RowSpec>)>,
    /// What to send where interactive messages are dropped.
    pub fallback: Fallback,
    /// `allow_repeat`, `allow_cold`.
    pub allow: Allowances,
}

/// One row of a list: id, title, description.
pub type RowSpec = (Text, Text, Option<Text>);

/// `http`.
#[derive(Debug)]
pub struct HttpSpec {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: Text,
    /// Headers.
    pub headers: Vec<(String, Text)>,
    /// JSON body.
    pub json: Option<JsonTemplate>,
    /// Text body.
    pub body: Option<Text>,
}

/// A JSON value whose strings are templates.
#[derive(Debug)]
pub enum JsonTemplate {
    /// A non-string leaf.
    Literal(Value),
    /// A string.
    Text(Text),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object.
    Object(Vec<(String, JsonTemplate)>),
}

impl RuleSet {
    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The webhook rules listening on `hook`.
    pub fn hook_rules<'a>(&'a self, hook: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| matches!(&r.trigger, Trigger::Webhook(h) if h.hook == hook))
    }
}
