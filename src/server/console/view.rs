//! The console's pages as HTML: minijinja templates embedded in the
//! binary, every value HTML-escaped (templates end in `.html`), and text a
//! stranger wrote cleaned of what could disguise it (bidirectional
//! overrides, terminal escapes, other control characters). The stylesheet
//! and the script are served from here too.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use minijinja::Environment;

const TEMPLATES: [(&str, &str); 10] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("chats.html", include_str!("templates/chats.html")),
    ("chat.html", include_str!("templates/chat.html")),
    ("timeline.html", include_str!("templates/timeline.html")),
    ("outbox.html", include_str!("templates/outbox.html")),
    ("optouts.html", include_str!("templates/optouts.html")),
    ("rules.html", include_str!("templates/rules.html")),
    ("qr.html", include_str!("templates/qr.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "console: a template does not compile");
            }
        }
        env.add_filter("clean", clean);
        env.add_filter("when", |ms: i64| crate::units::ms_text(ms));
        env
    })
}

/// Renders a page; a template failure is an escaped error page, never a panic.
pub(super) fn render(name: &str, ctx: minijinja::Value) -> String {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(template = name, error = %err, "console: a page could not be rendered");
            "<!doctype html><title>waflow</title><p>This page could not be rendered; the log says why.</p>".to_owned()
        }
    }
}

/// Text a stranger wrote, safe to show: bidirectional overrides and
/// isolates, terminal escapes and other control characters (but line
/// breaks and tabs) become `�`. HTML escaping happens after, as for every value.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
            if bidi || (c.is_control() && c != '\n' && c != '\t') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `GET /console/assets/console.css`.
pub(super) async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/console.css"),
    )
}

/// `GET /console/assets/console.js`.
pub(super) async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/console.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_stranger_writes_is_escaped_and_cleaned() {
        let nasty = "<script>alert(\"x\")</script> 'q' \u{202E}gnp.exe \u{1b}[31mred\u{1b}[0m";
        let html = render(
            "chats.html",
            minijinja::context! { instance => "default", csrf => "t", chats => vec![minijinja::context! {
                chat => nasty, name => nasty, text => nasty, at => 0, paused => false,
            }] },
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(
            !html.contains('\u{202E}') && !html.contains('\u{1b}'),
            "{html}"
        );
        assert!(html.contains("&#x27;q&#x27;"), "{html}");
    }
}
