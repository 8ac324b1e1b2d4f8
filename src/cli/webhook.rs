//! `waflow webhook set URL [--disable]`: tell the API where to POST events.

use clap::Subcommand;
use serde_json::json;

use super::{CliError, Output};
use crate::api::{ApiClient, ApiReply, ApiRequest};

/// The webhook subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Set the webhook URL (http://HOST/webhook/SECRET for waflow), or switch it off
    Set {
        /// The URL the API should POST events to
        url: String,
        /// Switch the webhook off instead of on
        #[arg(long)]
        disable: bool,
    },
}

/// Runs one webhook subcommand.
pub async fn run(api: &ApiClient, cmd: &WebhookCommand, out: &Output) -> Result<(), CliError> {
    let WebhookCommand::Set { url, disable } = cmd;
    let parsed = url::Url::parse(url)
        .map_err(|e| CliError::Invalid(format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(CliError::Invalid(format!(
            "`{url}` must be an http(s) URL the API can reach"
        )));
    }
    let request = ApiRequest::SetWebhook {
        url: url.clone(),
        enable: !disable,
    };
    let message = match api.call(&request).await? {
        ApiReply::Done { message } => message,
        other => format!("{other:?}"),
    };
    let state = if *disable { "disabled" } else { "enabled" };
    out.success(
        &format!("webhook {state}: {url} ({message})"),
        json!({ "endpoint": "set_webhook", "url": url, "enabled": !disable, "message": message }),
    );
    Ok(())
}
