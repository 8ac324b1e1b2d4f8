//! `waflow send`, `send-group`, `send-buttons`, `send-list`: one message now,
//! straight through the API client (not the daemon's outbox).

use clap::Args;
use serde_json::json;

use super::{CliError, Output};
use crate::api::{
    ApiClient, ApiReply, ApiRequest, Button, Content, Interactive, LegacyTemplate, ListMessage,
    ListRow, ListSection, TemplateMessage, normalize_group, normalize_number,
};

/// What a text or media send carries.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct ContentArgs {
    /// The text, or the caption of --media
    #[arg(long)]
    pub text: Option<String>,
    /// URL of a file to send (image, video, audio, document)
    #[arg(long, value_name = "URL")]
    pub media: Option<String>,
    /// File name shown for a document (with --media), e.g. menu.pdf
    #[arg(long, requires = "media")]
    pub filename: Option<String>,
}

impl ContentArgs {
    fn content(&self) -> Result<Content, CliError> {
        match (&self.media, &self.text) {
            (Some(url), caption) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| CliError::Invalid(format!("--media `{url}` is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(CliError::Invalid(format!(
                        "--media `{url}` must be an http(s) URL the API can download"
                    )));
                }
                Ok(Content::Media {
                    media_url: url.clone(),
                    filename: self.filename.clone(),
                    caption: caption.clone(),
                })
            }
            (None, Some(text)) if !text.trim().is_empty() => {
                Ok(Content::Text { text: text.clone() })
            }
            _ => Err(CliError::Invalid(
                "nothing to send: give --text or --media".into(),
            )),
        }
    }
}

/// Arguments of `waflow send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Phone number with country code, without + (84933313000)
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    #[command(flatten)]
    pub content: ContentArgs,
}

/// Arguments of `waflow send-group`.
#[derive(Debug, Args)]
pub struct SendGroupArgs {
    /// Group id, ending with @g.us
    #[arg(long, value_name = "GROUP_ID")]
    pub group: String,
    #[command(flatten)]
    pub content: ContentArgs,
}

/// Arguments of `waflow send-buttons`.
#[derive(Debug, Args)]
pub struct SendButtonsArgs {
    /// Phone number with country code, without +
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    /// The message text
    #[arg(long)]
    pub text: String,
    /// Title above the text
    #[arg(long)]
    pub title: Option<String>,
    /// Footer below the buttons
    #[arg(long)]
    pub footer: Option<String>,
    /// A button, repeatable, in order: reply:ID:LABEL, url:LABEL:URL, call:LABEL:PHONE or copy:LABEL:CODE
    #[arg(long = "button", value_name = "KIND:..", required = true)]
    pub buttons: Vec<String>,
    /// Use the deprecated template-buttons format instead of interactive buttons
    #[arg(long)]
    pub legacy: bool,
}

/// Arguments of `waflow send-list`.
#[derive(Debug, Args)]
pub struct SendListArgs {
    /// Phone number with country code, without +
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    /// The message text
    #[arg(long)]
    pub text: String,
    /// Label of the button that opens the list
    #[arg(long, value_name = "LABEL")]
    pub button: String,
    /// Title of the message
    #[arg(long)]
    pub title: Option<String>,
    /// Footer of the message
    #[arg(long)]
    pub footer: Option<String>,
    /// A row, repeatable: "SECTION|ID|TITLE" or "SECTION|ID|TITLE|DESCRIPTION"; rows with the same SECTION are grouped
    #[arg(long = "row", value_name = "SECTION|ID|TITLE", required = true)]
    pub rows: Vec<String>,
}

/// `waflow send`.
pub async fn send(api: &ApiClient, args: &SendArgs, out: &Output) -> Result<(), CliError> {
    let request = ApiRequest::Send {
        number: number(&args.to)?,
        content: args.content.content()?,
    };
    deliver(api, &request, out).await
}

/// `waflow send-group`.
pub async fn send_group(
    api: &ApiClient,
    args: &SendGroupArgs,
    out: &Output,
) -> Result<(), CliError> {
    let request = ApiRequest::SendGroup {
        group_id: normalize_group(&args.group).map_err(|e| CliError::Invalid(e.to_string()))?,
        content: args.content.content()?,
    };
    deliver(api, &request, out).await
}

/// `waflow send-buttons`.
pub async fn send_buttons(
    api: &ApiClient,
    args: &SendButtonsArgs,
    out: &Output,
) -> Result<(), CliError> {
    let buttons = args
        .buttons
        .iter()
        .map(|spec| parse_button(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let message = if args.legacy {
        TemplateMessage::Template(LegacyTemplate {
            text: args.text.clone(),
            footer: args.footer.clone(),
            buttons,
        })
    } else {
        TemplateMessage::Interactive(Interactive {
            text: args.text.clone(),
            title: args.title.clone(),
            subtitle: None,
            footer: args.footer.clone(),
            buttons,
        })
    };
    let request = ApiRequest::SendTemplate {
        number: number(&args.to)?,
        message,
    };
    deliver(api, &request, out).await
}

/// `waflow send-list`.
pub async fn send_list(api: &ApiClient, args: &SendListArgs, out: &Output) -> Result<(), CliError> {
    let mut sections: Vec<ListSection> = Vec::new();
    for spec in &args.rows {
        let parts: Vec<&str> = spec.split('|').map(str::trim).collect();
        let (section, id, title, description) = match parts.as_slice() {
            [s, i, t] => (*s, *i, *t, None),
            [s, i, t, d] => (*s, *i, *t, Some((*d).to_owned())),
            _ => {
                return Err(CliError::Invalid(format!(
                    "--row `{spec}`: write SECTION|ID|TITLE or SECTION|ID|TITLE|DESCRIPTION"
                )));
            }
        };
        if id.is_empty() || title.is_empty() {
            return Err(CliError::Invalid(format!(
                "--row `{spec}`: the id and the title must not be empty"
            )));
        }
        let row = ListRow {
            id: id.to_owned(),
            title: title.to_owned(),
            description,
        };
        match sections.iter_mut().find(|s| s.title == section) {
            Some(existing) => existing.rows.push(row),
            None => sections.push(ListSection {
                title: section.to_owned(),
                rows: vec![row],
            }),
        }
    }
    let request = ApiRequest::SendTemplate {
        number: number(&args.to)?,
        message: TemplateMessage::List(ListMessage {
            text: args.text.clone(),
            title: args.title.clone(),
            footer: args.footer.clone(),
            button: args.button.clone(),
            sections,
        }),
    };
    deliver(api, &request, out).await
}

fn number(text: &str) -> Result<String, CliError> {
    normalize_number(text).map_err(|e| CliError::Invalid(e.to_string()))
}

/// `reply:ID:LABEL`, `url:LABEL:URL`, `call:LABEL:PHONE`, `copy:LABEL:CODE`.
fn parse_button(spec: &str) -> Result<Button, CliError> {
    let bad = || {
        CliError::Invalid(format!(
            "--button `{spec}`: write reply:ID:LABEL, url:LABEL:URL, call:LABEL:PHONE or copy:LABEL:CODE"
        ))
    };
    let mut parts = spec.splitn(3, ':');
    let (Some(kind), Some(a), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (a, b) = (a.trim().to_owned(), b.trim().to_owned());
    if a.is_empty() || b.is_empty() {
        return Err(bad());
    }
    Ok(match kind.trim() {
        "reply" => Button::QuickReply { id: a, text: b },
        "url" => Button::Url { text: a, url: b },
        "call" => Button::Call { text: a, phone: b },
        "copy" => Button::Copy { text: a, code: b },
        _ => return Err(bad()),
    })
}

/// Makes a send and prints its message id.
async fn deliver(api: &ApiClient, request: &ApiRequest, out: &Output) -> Result<(), CliError> {
    match api.call(request).await? {
        ApiReply::Sent { message_id } => {
            out.success(
                &format!("sent ({}): message id {message_id}", request.endpoint()),
                json!({ "endpoint": request.endpoint(), "message_id": message_id }),
            );
            Ok(())
        }
        other => Err(CliError::Invalid(format!(
            "{}: unexpected reply {other:?}",
            request.endpoint()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_parse() {
        assert_eq!(
            parse_button("reply:yes:Yes please").unwrap(),
            Button::QuickReply {
                id: "yes".into(),
                text: "Yes please".into()
            }
        );
        assert_eq!(
            parse_button("url:Shop:https://x.example/a?b=c").unwrap(),
            Button::Url {
                text: "Shop".into(),
                url: "https://x.example/a?b=c".into()
            }
        );
        assert!(parse_button("reply:only").is_err());
        assert!(parse_button("poke:a:b").is_err());
    }
}
