//! Compiling `for_each:`: one list source, which trigger may have one, the
//! per-row `where:`, and the actions a list may drive.

use std::path::{Path, PathBuf};

use super::{Compiler, Scope};
use crate::rules::expr::Text;
use crate::rules::raw::{RawForEach, RawListHttp, RawRule, RawTrigger, Sp};
use crate::rules::{Action, ForEach, ListSource};
use crate::secret::Secret;

impl Compiler<'_> {
    /// `for_each.where`, compiled with `row` in scope.
    pub(super) fn each_condition(&mut self, r: &RawRule, scope: &Scope) -> Option<(Text, String)> {
        let c = r.for_each.as_ref()?.value.condition.as_ref()?;
        match self.templates.add_condition(&c.value) {
            Ok(text) => {
                self.check_variables(&text, c, scope);
                Some((text, c.value.clone()))
            }
            Err(e) => {
                self.template_error(c, &e, "`where` condition");
                None
            }
        }
    }

    /// The compiled `for_each`, once the rule's actions are compiled (the
    /// `row.NAME` fields they read are known then).
    pub(super) fn for_each(
        &mut self,
        each: &Sp<RawForEach>,
        trigger: RawTrigger,
        actions: &[Action],
        condition: Option<(Text, String)>,
    ) -> Option<ForEach> {
        if !matches!(trigger, RawTrigger::Schedule | RawTrigger::Webhook) {
            self.error_at(
                each,
                format!("`for_each` applies to `on: schedule` and `on: webhook` rules, not `on: {trigger}`"),
            )
            .hint = Some("a message rule answers the chat the message came from".into());
            return None;
        }
        if actions.iter().any(|a| matches!(a, Action::Http(_))) {
            self.error_at(each, "a `for_each` rule cannot hold an `http` action")
                .hint = Some(
                "load the list with `for_each.http`, or make the call from a rule of its own"
                    .into(),
            );
        }
        let source = self.list_source(each, trigger)?;
        let (condition, condition_source) = condition.unzip();
        Some(ForEach {
            source,
            condition,
            condition_source,
            fields: std::mem::take(&mut self.row_fields),
            line: each.line,
            column: each.column,
        })
    }

    fn list_source(&mut self, each: &Sp<RawForEach>, trigger: RawTrigger) -> Option<ListSource> {
        let e = &each.value;
        let given: Vec<&str> = [
            ("csv", e.csv.is_some()),
            ("yaml", e.yaml.is_some()),
            ("http", e.http.is_some()),
            ("items", e.items.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                "`for_each` needs a list: `csv`, `yaml`, `http` or `items`".to_owned()
            } else {
                format!("`for_each` takes one list, not {}", given.join(" and "))
            };
            self.error_at(each, message).hint = Some(
                "e.g. for_each: { csv: ./lists/appointments.csv, where: \"row.date == now.tomorrow\" }"
                    .into(),
            );
            return None;
        }
        if let Some(path) = &e.csv {
            return self.list_file(path).map(ListSource::Csv);
        }
        if let Some(path) = &e.yaml {
            return self.list_file(path).map(ListSource::Yaml);
        }
        if let Some(http) = &e.http {
            return self.list_http(http);
        }
        let items = e.items.as_ref()?;
        self.items(items, trigger)
    }

    /// A list file's path: relative paths start at the rules file's folder.
    fn list_file(&mut self, path: &Sp<String>) -> Option<PathBuf> {
        let text = path.value.trim();
        if text.is_empty() {
            self.error_at(path, "the list file's path is empty");
            return None;
        }
        // `./lists/a.csv` next to `rules/x.yaml` is `rules/lists/a.csv`.
        let written: PathBuf = Path::new(text)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        if written.is_absolute() {
            return Some(written);
        }
        let base = self.file.parent().unwrap_or(Path::new(""));
        Some(base.join(written))
    }

    fn list_http(&mut self, http: &Sp<RawListHttp>) -> Option<ListSource> {
        let url = http.value.url.value.trim();
        match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(_) => {
                self.error_at(&http.value.url, format!("`{url}` must be an http(s) URL"));
                return None;
            }
            Err(e) => {
                self.error_at(&http.value.url, format!("`{url}` is not a URL: {e}"));
                return None;
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &http.value.headers {
            if value.chars().any(|c| c.is_control() && c != '\t') {
                self.error_at(
                    http,
                    format!("header `{name}` holds a line break or control character"),
                );
            }
            if let Some(value) = Secret::new(value.clone()) {
                headers.push((name.clone(), value));
            }
        }
        Some(ListSource::Http {
            url: url.to_owned(),
            headers,
        })
    }

    fn items(&mut self, items: &Sp<String>, trigger: RawTrigger) -> Option<ListSource> {
        if trigger != RawTrigger::Webhook {
            self.error_at(
                items,
                "`items` reads the call's body: `on: webhook` rules only",
            )
            .hint = Some("on a schedule, read the list with `csv`, `yaml` or `http`".into());
            return None;
        }
        let text = items.value.trim();
        let rest = match text.strip_prefix("body") {
            Some("") => "",
            Some(rest) if rest.starts_with('.') => &rest[1..],
            _ => {
                self.error_at(
                    items,
                    format!("`items: {text}` must name a part of the body"),
                )
                .hint = Some("e.g. items: body.customers".into());
                return None;
            }
        };
        let path: Vec<String> = rest
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        Some(ListSource::Items(path))
    }
}
