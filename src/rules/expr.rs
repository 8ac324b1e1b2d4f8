//! Templates and conditions: one language (Jinja, through minijinja) for the
//! text of actions and the `if:` of rules.
//!
//! Every template is checked when the rules are loaded (a syntax error is
//! a load error), in one environment with strict undefined variables (a
//! typo is an error, not an empty string) and a fuel limit (a runaway loop
//! fails its action, not the process). Only its source is kept: each
//! render compiles it again (microseconds), because a compiled template
//! holds about 15 KiB and a rule set may have 10,000 of them
//! (docs/performance.md). A string without template syntax is kept as a
//! literal and never touches the engine.
//!
//! Two additions to Jinja: spintax (`{Hi|Hello|Hey}` picks one alternative
//! per event, so repeated answers vary; rewritten into Jinja when compiled,
//! so alternatives may hold `{{ … }}`), and `in_hours('NAME')`, true while a
//! calendar of the config's `hours:` is open.

use std::collections::HashSet;
use std::fmt;

use minijinja::{Environment, State, UndefinedBehavior, Value};

pub use super::now::{NOW_FIELDS, Now};
use crate::config::Calendars;

/// How much work one render may do before it is stopped.
const FUEL: u64 = 100_000;

/// The prefix conditions are wrapped in; its length shifts error columns.
const CONDITION_PREFIX: &str = "{% if ";

/// A compiled template, or a literal string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// A string without template syntax.
    Literal(String),
    /// A template registered in [`Templates`] under this name.
    Template(String),
}

/// A compile error of a template, with its position inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Byte offset inside the template source, when known.
    pub offset: Option<usize>,
}

/// All compiled templates of one rule set.
pub struct Templates {
    env: Environment<'static>,
    /// The source of each template, by the number in its name; a render
    /// compiles it from here.
    sources: Vec<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Templates({})", self.sources.len())
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// Characters left as they are in a URL component: the unreserved ones.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// Writes a value into a template: percent-encoded (dots too, so a value
/// cannot be a `..` path segment) in URL templates, as it is elsewhere.
fn url_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let url = matches!(state.auto_escape(), minijinja::AutoEscape::Custom(name) if name == "url");
    if !url || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let encoded = percent_encoding::utf8_percent_encode(&text, COMPONENT).to_string();
    // `.` stays out of COMPONENT's exceptions: "%2E%2E" is still a dot
    // segment to URL parsers, so dots are written as "%2E" and checked
    // for after rendering.
    out.write_str(&encoded.replace('.', "%2E"))
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

impl Templates {
    /// An environment with strict undefined and a fuel limit, without calendars.
    pub fn new() -> Self {
        Self::with_calendars(Calendars::default())
    }

    /// An environment whose `in_hours('NAME')` reads `calendars`.
    pub fn with_calendars(calendars: Calendars) -> Self {
        let mut env = Environment::new();
        env.add_function("spin", spin);
        env.add_function(
            "in_hours",
            move |state: &State, name: &str| -> Result<bool, minijinja::Error> {
                let calendar = calendars.get(name).ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("no calendar `{name}` in the config's hours:"),
                    )
                })?;
                let now = state
                    .lookup("now")
                    .and_then(|v| v.downcast_object_ref::<Now>().map(|n| n.0.timestamp()))
                    .ok_or_else(|| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            "in_hours needs `now`",
                        )
                    })?;
                Ok(calendar.is_open(now))
            },
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_debug(true);
        // Messages are plain text: no HTML escaping. In URL templates
        // (names starting with `u`) every value is percent-encoded.
        env.set_auto_escape_callback(|name| {
            if name.starts_with('u') {
                minijinja::AutoEscape::Custom("url".into())
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_formatter(url_formatter);
        Templates {
            env,
            sources: Vec::new(),
        }
    }

    /// The source of the template named `name` (`t12`, `u3`), if there is one.
    fn source_of(&self, name: &str) -> Option<&str> {
        let index: usize = name.get(1..)?.parse().ok()?;
        self.sources.get(index).map(String::as_str)
    }

    /// Compiles a template string.
    pub fn add(&mut self, source: &str) -> Result<Text, TemplateError> {
        self.add_as(source, "t")
    }

    /// Compiles the template of a URL: each value it inserts is
    /// percent-encoded as one component, so text from a message cannot
    /// change the URL's host, path or query structure (`| safe` opts out,
    /// for a value that is a whole URL).
    pub fn add_url(&mut self, source: &str) -> Result<Text, TemplateError> {
        self.add_as(source, "u")
    }

    fn add_as(&mut self, source: &str, prefix: &str) -> Result<Text, TemplateError> {
        let spun = spintax(source);
        if spun == source {
            if !has_syntax(source) {
                return Ok(Text::Literal(source.to_owned()));
            }
            return self.register(source.to_owned(), 0, prefix);
        }
        // Errors are reported against the text as written, not the rewrite.
        self.env
            .template_from_str(source)
            .map(|_| ())
            .map_err(|err| TemplateError {
                message: describe(&err),
                offset: err.range().map(|r| r.start),
            })?;
        self.register(spun, 0, prefix)
    }

    /// Compiles a condition (`if:`) into a template that renders `1` when true.
    pub fn add_condition(&mut self, expression: &str) -> Result<Text, TemplateError> {
        if expression.contains("%}") {
            return Err(TemplateError {
                message: "a condition is an expression, not a template: remove `{%` and `%}`"
                    .into(),
                offset: None,
            });
        }
        let wrapped = format!("{CONDITION_PREFIX}{expression} %}}1{{% endif %}}");
        self.register(wrapped, CONDITION_PREFIX.len(), "t")
    }

    fn register(
        &mut self,
        source: String,
        shift: usize,
        prefix: &str,
    ) -> Result<Text, TemplateError> {
        let name = format!("{prefix}{}", self.sources.len());
        self.env
            .template_from_named_str(&name, &source)
            .map_err(|err| TemplateError {
                message: describe(&err),
                offset: err.range().map(|r| r.start.saturating_sub(shift)),
            })?;
        self.sources.push(source);
        Ok(Text::Template(name))
    }

    /// Renders `text` with `context`.
    pub fn render(&self, text: &Text, context: &Value) -> Result<String, String> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => {
                let source = self
                    .source_of(name)
                    .ok_or_else(|| format!("no template {name} in this rule set"))?;
                let template = self
                    .env
                    .template_from_named_str(name, source)
                    .map_err(|e| describe(&e))?;
                template.render(context).map_err(|e| describe(&e))
            }
        }
    }

    /// Evaluates a condition compiled by [`Templates::add_condition`].
    pub fn is_true(&self, condition: &Text, context: &Value) -> Result<bool, String> {
        self.render(condition, context).map(|out| out == "1")
    }

    /// The calendars a template names in `in_hours('NAME')` with a literal name.
    pub fn calendars_named(&self, text: &Text) -> Vec<String> {
        let Text::Template(name) = text else {
            return Vec::new();
        };
        let Some(source) = self.source_of(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("in_hours(") {
            rest = &rest[at + "in_hours(".len()..];
            let arg = rest.trim_start();
            if let Some(quote) = arg.chars().next().filter(|c| *c == '\'' || *c == '"')
                && let Some(end) = arg[1..].find(quote)
            {
                out.push(arg[1..1 + end].to_owned());
            }
        }
        out
    }

    /// The variables a template reads, as dotted paths (`msg.text`, `vars.shop_url`).
    pub fn variables(&self, text: &Text) -> HashSet<String> {
        match text {
            Text::Literal(_) => HashSet::new(),
            // Compiled aside, not kept: loading checks every template, and
            // most are never rendered.
            Text::Template(name) => self
                .source_of(name)
                .and_then(|source| {
                    self.env
                        .template_from_named_str(name, source)
                        .ok()
                        .map(|t| t.undeclared_variables(true))
                })
                .unwrap_or_default(),
        }
    }
}

/// Any serializable value as a template value.
pub fn to_value<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// The context key holding the spintax seed of one event and rule.
pub const SEED: &str = "_seed";

/// `spin(n, k)`: which of `n` alternatives spintax group `k` shows, the
/// same on every render for one seed, so a retried send says the same.
fn spin(state: &State, n: u64, k: u64) -> u64 {
    let seed = state
        .lookup(SEED)
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0);
    if n == 0 {
        return 0;
    }
    fnv(seed, &k.to_le_bytes()) % n
}

/// FNV-1a: a stable hash, so picks do not change between builds.
pub fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Rewrites spintax groups `{a|b|c}` (nested allowed) into Jinja that picks
/// one with `spin()`. Jinja tags are copied as they are; a brace without a
/// `|` inside, or without its closing brace, stays literal text.
pub fn spintax(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut groups = 0u64;
    let mut rest = source;
    while !rest.is_empty() {
        let (copied, tail) = spin_segment(rest, &mut groups, &mut out, false);
        rest = tail;
        if copied == 0 {
            break;
        }
    }
    if groups == 0 {
        return source.to_owned();
    }
    out
}

/// Copies `text` into `out`, rewriting groups, until its end, or (inside a
/// group) until an unnested `|` or `}`. Returns the bytes consumed and the rest.
fn spin_segment<'a>(
    text: &'a str,
    groups: &mut u64,
    out: &mut String,
    inside: bool,
) -> (usize, &'a str) {
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = &text[i..];
        if let Some(close) = ["{{", "{%", "{#"]
            .iter()
            .zip(["}}", "%}", "#}"])
            .find_map(|(open, close)| rest.starts_with(open).then_some(close))
        {
            let end = rest[2..].find(close).map_or(rest.len(), |e| e + 4);
            out.push_str(&rest[..end]);
            i += end;
            continue;
        }
        match bytes[i] {
            b'{' => {
                if let Some((alternatives, used)) = spin_group(&rest[1..], groups) {
                    let k = *groups;
                    *groups += 1;
                    let n = alternatives.len();
                    for (j, alt) in alternatives.iter().enumerate() {
                        if j == 0 {
                            out.push_str(&format!("{{% if spin({n}, {k}) == 0 %}}"));
                        } else if j + 1 == n {
                            out.push_str("{% else %}");
                        } else {
                            out.push_str(&format!("{{% elif spin({n}, {k}) == {j} %}}"));
                        }
                        out.push_str(alt);
                    }
                    out.push_str("{% endif %}");
                    i += 1 + used;
                } else {
                    // Escaped: next to a generated tag, a bare `{` would open another.
                    out.push_str("{{ '{' }}");
                    i += 1;
                }
            }
            b'|' | b'}' if inside => return (i, &text[i..]),
            _ => {
                let ch = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..ch]);
                i += ch;
            }
        }
    }
    (i, &text[i..])
}

/// Reads the alternatives of a group after its `{`: the rewritten
/// alternatives and the bytes used including the closing `}`; `None` when
/// it is not a group.
fn spin_group(text: &str, groups: &mut u64) -> Option<(Vec<String>, usize)> {
    let mut alternatives = Vec::new();
    let mut used = 0;
    let saved = *groups;
    loop {
        let mut alt = String::new();
        let (n, rest) = spin_segment(&text[used..], groups, &mut alt, true);
        used += n;
        alternatives.push(alt);
        match rest.as_bytes().first() {
            Some(b'|') => used += 1,
            Some(b'}') if alternatives.len() > 1 => return Some((alternatives, used + 1)),
            _ => {
                *groups = saved;
                return None;
            }
        }
    }
}

/// Whether a string holds template syntax.
pub fn has_syntax(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// The error in words: the kind and detail, without minijinja's template names.
fn describe(err: &minijinja::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if err.kind() == minijinja::ErrorKind::UndefinedError
        && let (Some(source), Some(range)) = (err.template_source(), err.range())
        && let Some(expr) = source.get(range)
    {
        text = format!("`{expr}` is not defined");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn literals_skip_the_engine() {
        let mut t = Templates::new();
        assert_eq!(
            t.add("plain text").unwrap(),
            Text::Literal("plain text".into())
        );
    }

    #[test]
    fn render_and_strict_undefined() {
        let mut t = Templates::new();
        let text = t.add("Hi {{ msg.sender_name }}!").unwrap();
        let ctx = context!(msg => context!(sender_name => "An"));
        assert_eq!(t.render(&text, &ctx).unwrap(), "Hi An!");
        let err = t.render(&text, &context!(msg => context!())).unwrap_err();
        assert!(err.contains("msg.sender_name"), "{err}");
    }

    #[test]
    fn no_html_escaping() {
        let mut t = Templates::new();
        let text = t.add("{{ x }}").unwrap();
        assert_eq!(
            t.render(&text, &context!(x => "<b>&</b>")).unwrap(),
            "<b>&</b>"
        );
    }

    #[test]
    fn conditions() {
        let mut t = Templates::new();
        let c = t.add_condition("now.hour >= 9 and now.hour < 18").unwrap();
        let at = |h: i8| {
            let z = jiff::civil::date(2026, 3, 2)
                .at(h, 0, 0, 0)
                .in_tz("Europe/Berlin")
                .unwrap();
            context!(now => Value::from_object(Now(z)))
        };
        assert!(t.is_true(&c, &at(10)).unwrap());
        assert!(!t.is_true(&c, &at(20)).unwrap());
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let mut t = Templates::new();
        let err = t.add("Hello {{ name ").unwrap_err();
        assert!(err.message.contains("syntax error"), "{err:?}");
        let err = t.add_condition("a ==").unwrap_err();
        assert!(err.message.contains("syntax error"), "{err:?}");
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let mut t = Templates::new();
        let text = t
            .add(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            )
            .unwrap();
        let err = t.render(&text, &context!()).unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn variables_are_listed_as_paths() {
        let mut t = Templates::new();
        let text = t
            .add("{{ msg.text }} {{ vars.shop_url }} {% for x in items %}{{ x }}{% endfor %}")
            .unwrap();
        let vars = t.variables(&text);
        assert!(
            vars.contains("msg.text") && vars.contains("vars.shop_url") && vars.contains("items")
        );
        assert!(!vars.contains("x"));
    }

    #[test]
    fn now_renders_as_iso() {
        let mut t = Templates::new();
        let text = t.add("{{ now }} {{ now.weekday }} {{ now.time }}").unwrap();
        let z = jiff::civil::date(2026, 3, 2)
            .at(9, 5, 0, 0)
            .in_tz("Europe/Berlin")
            .unwrap();
        let out = t
            .render(&text, &context!(now => Value::from_object(Now(z))))
            .unwrap();
        assert_eq!(out, "2026-03-02T09:05:00+01:00 1 09:05");
    }

    #[test]
    fn spintax_rewrites_groups_and_leaves_the_rest() {
        assert_eq!(spintax("no groups {here}"), "no groups {here}");
        assert_eq!(
            spintax("{{ a|upper }} {% if x %}|{% endif %}"),
            "{{ a|upper }} {% if x %}|{% endif %}"
        );
        assert_eq!(spintax("unclosed {a|b"), "unclosed {a|b");
        assert_eq!(
            spintax("{ |{}"),
            "{% if spin(2, 0) == 0 %} {% else %}{{ '{' }}{% endif %}"
        );
        assert_eq!(
            spintax("{a|b}"),
            "{% if spin(2, 0) == 0 %}a{% else %}b{% endif %}"
        );
        let nested = spintax("{x|{y|z}} {{ n }}");
        assert!(
            nested.contains("spin(2, 1)") && nested.ends_with(" {{ n }}"),
            "{nested}"
        );
        let mut t = Templates::new();
        let text = t.add("{Hi|Hello {{ name }}|Hey}!").unwrap();
        for seed in 0..20u64 {
            let out = t
                .render(&text, &context!(name => "An", _seed => seed))
                .unwrap();
            assert!(
                ["Hi!", "Hello An!", "Hey!"].contains(&out.as_str()),
                "{out}"
            );
        }
    }

    #[test]
    fn spintax_errors_point_into_the_text_as_written() {
        let mut t = Templates::new();
        let err = t.add("{a|b} {{ x ").unwrap_err();
        assert_eq!(err.offset, Some(9), "{err:?}");
    }
}
