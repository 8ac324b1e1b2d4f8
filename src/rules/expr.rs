//! Templates and conditions: one language (Jinja, through minijinja) for the
//! text of actions and the `if:` of rules.
//!
//! Every template is compiled once, when the rules are loaded, into one
//! environment with strict undefined variables (a typo is an error, not an
//! empty string) and a fuel limit (a runaway loop fails its action, not the
//! process). A string without template syntax is kept as a literal and never
//! touches the engine.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, UndefinedBehavior, Value};

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

impl Templates {
    /// An environment with strict undefined and a fuel limit.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_debug(true);
        // Messages are plain text: no HTML escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Templates {
            env,
            sources: Vec::new(),
        }
    }

    /// Compiles a template string.
    pub fn add(&mut self, source: &str) -> Result<Text, TemplateError> {
        if !has_syntax(source) {
            return Ok(Text::Literal(source.to_owned()));
        }
        self.register(source.to_owned(), 0)
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
        self.register(wrapped, CONDITION_PREFIX.len())
    }

    fn register(&mut self, source: String, shift: usize) -> Result<Text, TemplateError> {
        let name = format!("t{}", self.sources.len());
        self.env
            .add_template_owned(name.clone(), source.clone())
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
                let template = self.env.get_template(name).map_err(|e| describe(&e))?;
                template.render(context).map_err(|e| describe(&e))
            }
        }
    }

    /// Evaluates a condition compiled by [`Templates::add_condition`].
    pub fn is_true(&self, condition: &Text, context: &Value) -> Result<bool, String> {
        self.render(condition, context).map(|out| out == "1")
    }

    /// The variables a template reads, as dotted paths (`msg.text`, `vars.shop_url`).
    pub fn variables(&self, text: &Text) -> HashSet<String> {
        match text {
            Text::Literal(_) => HashSet::new(),
            Text::Template(name) => self
                .env
                .get_template(name)
                .map(|t| t.undeclared_variables(true))
                .unwrap_or_default(),
        }
    }
}

/// Any serializable value as a template value.
pub fn to_value<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
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

/// `{{ now }}`: a moment in the rule's zone, with its parts as attributes.
#[derive(Debug)]
pub struct Now(pub jiff::Zoned);

impl Object for Now {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let z = &self.0;
        Some(match key.as_str()? {
            "year" => Value::from(z.year()),
            "month" => Value::from(z.month()),
            "day" => Value::from(z.day()),
            "hour" => Value::from(z.hour()),
            "minute" => Value::from(z.minute()),
            "second" => Value::from(z.second()),
            // ISO weekday: Monday 1 … Sunday 7.
            "weekday" => Value::from(z.weekday().to_monday_one_offset()),
            "weekday_name" => Value::from(weekday_name(z.weekday())),
            "date" => Value::from(z.date().to_string()),
            "time" => Value::from(z.strftime("%H:%M").to_string()),
            "timestamp" => Value::from(z.timestamp().as_second()),
            "iso" => Value::from(iso(z)),
            "timezone" => Value::from(z.time_zone().iana_name().unwrap_or("UTC")),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&NOW_FIELDS)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&iso(&self.0))
    }
}

/// The attributes of `now`, for `undeclared_variables` checks and enumeration.
pub const NOW_FIELDS: [&str; 13] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "weekday",
    "weekday_name",
    "date",
    "time",
    "timestamp",
    "iso",
    "timezone",
];

fn iso(z: &jiff::Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "Monday",
        Tuesday => "Tuesday",
        Wednesday => "Wednesday",
        Thursday => "Thursday",
        Friday => "Friday",
        Saturday => "Saturday",
        Sunday => "Sunday",
    }
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
}
