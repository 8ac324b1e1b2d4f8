//! Evaluation: an event and the rules in, planned actions out.
//!
//! Pure and synchronous: no I/O, no clock (the time comes in [`EvalInput`]),
//! the past only through [`Memory`]. The cost of one event grows with the
//! rules that could match it: message rules with a text pattern are picked
//! by one pass of the literal prefilter over the text (see [`super::prefilter`]),
//! other triggers by kind or name.

mod actions;
mod context;
mod filter;
mod foreach;
mod trail;

pub use foreach::{LeftOut, ListRun};
pub use trail::{NotMatched, Trail};

use context::Base;

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::Value as JValue;
use serde::Serialize;
use serde_json::Value;

use crate::event::jid::{self, JidKind};
use crate::event::{Event, EventKind, ReplyTarget};
use crate::rules::expr::{Now, SEED, fnv, to_value};
use crate::rules::plan::RulePlan;
use crate::rules::state::{Memory, MemoryError, Recorder};
use crate::rules::{Rule, RuleSet, Trigger};
use crate::units::format_duration;

/// What evaluation needs besides the event.
pub struct EvalInput<'a> {
    /// The current time.
    pub now: jiff::Timestamp,
    /// State and cooldowns.
    pub memory: &'a dyn Memory,
    /// Message events older than this are not acted on (`ignore_older_than`).
    pub ignore_older_than: Option<Duration>,
    /// The instance (number) the event is for: rules' `instance:`, and
    /// the key of state, cooldowns and menus.
    pub instance: &'a str,
}

impl<'a> EvalInput<'a> {
    /// Runs `evaluate` on this input with its reads of the past recorded:
    /// the result, unless one of them failed.
    fn recorded<T>(&self, evaluate: impl FnOnce(&EvalInput) -> T) -> Result<T, MemoryError> {
        let recorder = Recorder::new(self.memory);
        let value = evaluate(&EvalInput {
            now: self.now,
            memory: &recorder,
            ignore_older_than: self.ignore_older_than,
            instance: self.instance,
        });
        recorder.finish(value)
    }
}

/// Why an event is ignored as a whole, if it is, and every rule's verdict (`simulate`).
pub type Explained = (Option<String>, Vec<(String, Verdict)>);

/// The result of evaluating one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Why the event is not acted on at all (sent by this number, a status broadcast, stale …).
    pub ignored: Option<String>,
    /// The plans of the matched rules, in rule order (a `for_each` rule's, row by row).
    pub plans: Vec<RulePlan>,
    /// What each matched `for_each` rule made of its list.
    pub lists: Vec<ListRun>,
    /// The rules considered and why each did or did not match.
    pub trail: Trail,
}

/// Why one rule did or did not act on an event (`simulate`).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It matched; here is its plan.
    Matched(RulePlan),
    /// A `for_each` rule matched: the plan of each row, and the account of its list.
    Each(Vec<RulePlan>, ListRun),
    /// It did not match, because …
    NotMatched(String),
    /// An earlier matching rule had `stop: true`.
    Stopped(String),
}

/// The result of an `http` action, for the actions after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResult {
    /// The HTTP status.
    pub status: u16,
    /// The body parsed as JSON, or `null`.
    pub json: Value,
    /// The body as text.
    pub body: String,
}

impl RuleSet {
    /// Evaluates `event`: the plans of every matching rule, in order, until
    /// a `stop`. Fails only when a read of the past failed.
    pub fn evaluate(&self, event: &Event, input: &EvalInput) -> Result<Evaluation, MemoryError> {
        input.recorded(|input| self.evaluate_with(event, input))
    }

    fn evaluate_with(&self, event: &Event, input: &EvalInput) -> Evaluation {
        if let Some(reason) = ignore_reason(event, input) {
            return Evaluation {
                ignored: Some(reason),
                ..Evaluation::default()
            };
        }
        let base = Base::new(self, event, input);
        let mut done = Evaluation::default();
        let candidates = self.candidates(event);
        done.trail.skipped = self.of_trigger(event).saturating_sub(candidates.len());
        for index in candidates {
            let rule = &self.rules[index];
            let captures = match self.check(rule, event, input, &base) {
                Ok(captures) => captures,
                Err(why) => {
                    done.trail
                        .not_matched
                        .push(NotMatched::new(&rule.name, why));
                    continue;
                }
            };
            done.trail.matched.push(rule.name.clone());
            match &rule.for_each {
                None => done
                    .plans
                    .push(self.plan(index, event, input, &base, captures, 0, None)),
                Some(each) => {
                    let (plans, run) = self.expand(index, each, event, input, &base, captures);
                    done.plans.extend(plans);
                    done.lists.push(run);
                }
            }
            if rule.stop {
                done.trail.stopped_by = Some(rule.name.clone());
                break;
            }
        }
        done
    }

    /// Every rule's verdict on `event`, for `simulate`. Slower than [`RuleSet::evaluate`]:
    /// it checks all rules of the event's trigger, to say why each did not match.
    pub fn explain(&self, event: &Event, input: &EvalInput) -> Result<Explained, MemoryError> {
        input.recorded(|input| self.explain_with(event, input))
    }

    fn explain_with(&self, event: &Event, input: &EvalInput) -> Explained {
        if let Some(reason) = ignore_reason(event, input) {
            return (Some(reason), Vec::new());
        }
        let base = Base::new(self, event, input);
        let mut out = Vec::new();
        let mut stopped_by: Option<String> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.trigger.name() != event.kind.trigger() {
                continue;
            }
            if let Some(by) = &stopped_by {
                out.push((rule.name.clone(), Verdict::Stopped(by.clone())));
                continue;
            }
            match self.check(rule, event, input, &base) {
                Ok(captures) => {
                    let verdict = match &rule.for_each {
                        None => Verdict::Matched(
                            self.plan(index, event, input, &base, captures, 0, None),
                        ),
                        Some(each) => {
                            let (plans, run) =
                                self.expand(index, each, event, input, &base, captures);
                            Verdict::Each(plans, run)
                        }
                    };
                    if rule.stop {
                        stopped_by = Some(rule.name.clone());
                    }
                    out.push((rule.name.clone(), verdict));
                }
                Err(reason) => out.push((rule.name.clone(), Verdict::NotMatched(reason))),
            }
        }
        (None, out)
    }

    /// Plans the actions of `rule_index` from `from_action` on, after an `http`
    /// action answered with `http`. The daemon calls this to go on with a rule.
    pub fn continue_plan(
        &self,
        event: &Event,
        input: &EvalInput,
        rule_index: usize,
        from_action: usize,
        http: &HttpResult,
    ) -> Result<Option<RulePlan>, MemoryError> {
        input.recorded(|input| self.continue_with(event, input, rule_index, from_action, http))
    }

    fn continue_with(
        &self,
        event: &Event,
        input: &EvalInput,
        rule_index: usize,
        from_action: usize,
        http: &HttpResult,
    ) -> Option<RulePlan> {
        let rule = self.rules.get(rule_index)?;
        let base = Base::new(self, event, input);
        let captures = self.check(rule, event, input, &base).unwrap_or_default();
        Some(self.plan(
            rule_index,
            event,
            input,
            &base,
            captures,
            from_action,
            Some(http),
        ))
    }

    /// How many rules react to `event`'s kind of trigger (message rules:
    /// all of them, whatever their pattern).
    fn of_trigger(&self, event: &Event) -> usize {
        match &event.kind {
            EventKind::Message(_) => self.message_rules,
            _ => 0,
        }
    }

    /// The rules that could match `event`, in order.
    fn candidates(&self, event: &Event) -> Vec<usize> {
        match &event.kind {
            EventKind::Message(m) => {
                let mut out = self.textless.clone();
                if let Some(text) = &m.text {
                    self.prefilter.candidates(text, &mut out);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            EventKind::Schedule(fire) => self
                .rules
                .iter()
                .position(|r| r.name == fire.rule && matches!(r.trigger, Trigger::Schedule(_)))
                .into_iter()
                .collect(),
            EventKind::Hook(hook) => self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(&r.trigger, Trigger::Webhook(h) if h.hook == hook.name))
                .map(|(i, _)| i)
                .collect(),
            kind => {
                let trigger = kind.trigger();
                self.rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.trigger.name() == trigger)
                    .map(|(i, _)| i)
                    .collect()
            }
        }
    }

    /// Whether `rule` matches `event`: its regex captures, or why not.
    fn check(
        &self,
        rule: &Rule,
        event: &Event,
        input: &EvalInput,
        base: &Base<'_>,
    ) -> Result<BTreeMap<JValue, JValue>, String> {
        if !rule.serves(input.instance) {
            return Err(format!(
                "not for instance {} (instance: in the rule)",
                input.instance
            ));
        }
        let captures = trigger_check(rule, event, input, base)?;
        if let (Some(cooldown), Some(chat)) = (rule.cooldown, chat_of(event))
            && let Ok(Some(last)) = input.memory.last_fired(input.instance, &rule.name, &chat)
        {
            let since =
                Duration::try_from(input.now.duration_since(last)).unwrap_or(Duration::ZERO);
            if since < cooldown {
                return Err(format!(
                    "cooldown: fired in this chat {} ago (cooldown {})",
                    format_duration(Duration::from_secs(since.as_secs())),
                    format_duration(cooldown)
                ));
            }
        }
        if let Some(condition) = &rule.condition {
            let ctx =
                self.rule_context(rule, input, base, &captures, &state_of(event, input), None);
            match self.templates.is_true(condition, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "if: `{}` is false",
                        rule.condition_source.as_deref().unwrap_or_default()
                    ));
                }
                Err(e) => return Err(format!("if: failed: {e}")),
            }
        }
        Ok(captures)
    }

    #[allow(clippy::too_many_arguments)]
    fn rule_context(
        &self,
        rule: &Rule,
        input: &EvalInput,
        base: &Base<'_>,
        captures: &BTreeMap<JValue, JValue>,
        state: &BTreeMap<String, Value>,
        http: Option<&HttpResult>,
    ) -> JValue {
        let mut ctx = base.get().clone();
        let now = input.now.to_zoned(rule.zone.tz.clone());
        ctx.insert("now".into(), JValue::from_object(Now(now)));
        ctx.insert(
            "rule".into(),
            minijinja::context!(name => rule.name.clone()),
        );
        ctx.insert("state".into(), to_value(state));
        let seed = base
            .get()
            .get(SEED)
            .and_then(|v| u64::try_from(v.clone()).ok());
        ctx.insert(
            SEED.into(),
            JValue::from(fnv(seed.unwrap_or(0), rule.name.as_bytes())),
        );
        if matches!(rule.trigger, Trigger::Message(_)) {
            ctx.insert("match".into(), JValue::from(captures.clone()));
        }
        if let Some(http) = http {
            ctx.insert("http".into(), to_value(http));
        }
        if let Some(row) = &base.row {
            ctx.insert("row".into(), row.clone());
        }
        JValue::from(ctx)
    }
}

/// Whether the event is of the rule's trigger and passes its filters: the
/// captures of its `match.text`, or why not.
fn trigger_check(
    rule: &Rule,
    event: &Event,
    input: &EvalInput,
    base: &Base<'_>,
) -> Result<BTreeMap<JValue, JValue>, String> {
    match (&rule.trigger, &event.kind) {
        (Trigger::Message(f), EventKind::Message(m)) => {
            return filter::message(f, m, input, base);
        }
        (Trigger::Status(f), EventKind::Status(s)) => {
            if !f.names.is_empty() && !f.names.contains(&s.name) {
                return Err(format!("status {} is not in match.status", s.name));
            }
            if !f.from.is_empty() && !s.phone.as_ref().is_some_and(|p| f.from.contains(p)) {
                return Err(format!("chat {} is not in match.from", s.chat));
            }
        }
        (Trigger::Presence(f), EventKind::Presence(p)) => {
            if !f.states.is_empty() && !f.states.contains(&p.state) {
                return Err(format!("presence {} is not in match.presence", p.state));
            }
            if !f.from.is_empty() && !p.phone.as_ref().is_some_and(|x| f.from.contains(x)) {
                return Err(format!("{} is not in match.from", p.participant));
            }
        }
        (Trigger::Schedule(_), EventKind::Schedule(fire)) if fire.rule == rule.name => {}
        (Trigger::Schedule(_), EventKind::Schedule(fire)) => {
            return Err(format!(
                "it fires on its own schedule, not with `{}`",
                fire.rule
            ));
        }
        (Trigger::Webhook(h), EventKind::Hook(hook)) if h.hook == hook.name => {}
        (Trigger::Webhook(h), EventKind::Hook(_)) => {
            return Err(format!("it listens on hook `{}`", h.hook));
        }
        (trigger, _) => {
            return Err(format!(
                "the rule is `on: {}`, the event is {}",
                trigger.name(),
                event.kind.trigger()
            ));
        }
    }
    Ok(BTreeMap::new())
}

/// The protective defaults: events no rule may act on.
pub(super) fn ignore_reason(event: &Event, input: &EvalInput) -> Option<String> {
    let EventKind::Message(m) = &event.kind else {
        return None;
    };
    if m.from_me {
        return Some("sent by this number (fromMe): never answered".into());
    }
    match jid::kind(&m.chat) {
        JidKind::Status => return Some("a status update (status@broadcast)".into()),
        JidKind::Newsletter => return Some("a channel post (@newsletter)".into()),
        JidKind::Broadcast => return Some("a broadcast list message (@broadcast)".into()),
        JidKind::Bot => return Some("a message from a bot account (@bot)".into()),
        _ => {}
    }
    if let (Some(limit), Some(ts)) = (input.ignore_older_than, m.timestamp) {
        // Saturating: a hostile timestamp (i64::MIN, -1e300) is very old, not a wrap-around.
        let age = input.now.as_second().saturating_sub(ts);
        if age > limit.as_secs() as i64 {
            return Some(format!(
                "older than ignore_older_than ({}): sent {}s ago, delivered late (catch-up)",
                format_duration(limit),
                age
            ));
        }
    }
    None
}

/// The chat an event belongs to: the key of state and cooldowns.
pub fn chat_of(event: &Event) -> Option<String> {
    match &event.kind {
        EventKind::Message(m) => Some(m.chat.clone()),
        EventKind::Status(s) => Some(s.chat.clone()),
        EventKind::Presence(p) => Some(p.participant.clone()),
        _ => None,
    }
}

pub(super) fn state_of(event: &Event, input: &EvalInput) -> BTreeMap<String, Value> {
    chat_of(event)
        .and_then(|chat| input.memory.state(input.instance, &chat).ok())
        .unwrap_or_default()
}

pub(super) fn reply_target(event: &Event) -> Option<ReplyTarget> {
    match &event.kind {
        EventKind::Message(m) => Some(m.reply_target()),
        EventKind::Status(s) => Some(ReplyTarget::Number(
            s.phone.clone().unwrap_or_else(|| s.chat.clone()),
        )),
        EventKind::Presence(p) => Some(ReplyTarget::Number(
            p.phone.clone().unwrap_or_else(|| p.participant.clone()),
        )),
        _ => None,
    }
}
