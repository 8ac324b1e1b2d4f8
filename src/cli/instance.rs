//! `waflow instance …`: create an instance, log it in with the QR code, and
//! the maintenance calls (reboot, reset, reconnect, logout).

use std::path::PathBuf;

use base64::Engine as _;
use clap::Subcommand;
use serde_json::json;

use super::{CliError, Output};
use crate::api::{ApiClient, ApiReply, ApiRequest, QrCode};

/// The instance subcommands.
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create a new instance id (put it in api.instance_id)
    Create,
    /// Get the login QR code: drawn in the terminal, or written to --out as PNG
    Qrcode {
        /// Write the PNG here instead of drawing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Log out WhatsApp Web and start a fresh scan
    Reboot,
    /// Log out, change the instance id and delete all the instance's data
    Reset,
    /// Reconnect to WhatsApp Web and show the logged-in account
    Reconnect,
    /// Log out of WhatsApp Web
    Logout,
}

/// Runs one instance subcommand.
pub async fn run(api: &ApiClient, cmd: &InstanceCommand, out: &Output) -> Result<(), CliError> {
    let request = match cmd {
        InstanceCommand::Create => ApiRequest::CreateInstance,
        InstanceCommand::Qrcode { .. } => ApiRequest::GetQrcode,
        InstanceCommand::Reboot => ApiRequest::Reboot,
        InstanceCommand::Reset => ApiRequest::ResetInstance,
        InstanceCommand::Reconnect => ApiRequest::Reconnect,
        InstanceCommand::Logout => ApiRequest::Logout,
    };
    let endpoint = request.endpoint();
    match (api.call(&request).await?, cmd) {
        (ApiReply::InstanceCreated { instance_id }, _) => out.success(
            &format!(
                "instance created: {instance_id}\nset api.instance_id (or WAFLOW_INSTANCE_ID) to it, then run `waflow instance qrcode`"
            ),
            json!({ "endpoint": endpoint, "instance_id": instance_id }),
        ),
        (ApiReply::QrCode { qr }, InstanceCommand::Qrcode { out: file }) => {
            qrcode(&qr, file.as_deref(), out)?;
        }
        (ApiReply::Connected { account, name }, _) => {
            let who = match (&name, &account) {
                (Some(n), Some(a)) => format!("{n} ({a})"),
                (None, Some(a)) => a.clone(),
                (Some(n), None) => n.clone(),
                (None, None) => "the account".to_owned(),
            };
            out.success(
                &format!("connected: {who}"),
                json!({ "endpoint": endpoint, "account": account, "name": name }),
            );
        }
        (ApiReply::Done { message }, _) => out.success(
            &format!("{endpoint}: {message}"),
            json!({ "endpoint": endpoint, "message": message }),
        ),
        (other, _) => {
            return Err(CliError::Invalid(format!(
                "{endpoint}: unexpected reply {other:?}"
            )));
        }
    }
    Ok(())
}

fn qrcode(qr: &QrCode, file: Option<&std::path::Path>, out: &Output) -> Result<(), CliError> {
    match (file, qr) {
        (Some(path), QrCode::Png(bytes)) => {
            std::fs::write(path, bytes)?;
            out.success(
                &format!(
                    "QR code written to {}: open it and scan it with WhatsApp > Linked devices",
                    path.display()
                ),
                json!({ "endpoint": "get_qrcode", "file": path }),
            );
        }
        (Some(path), QrCode::Content(content)) => {
            let png =
                crate::qr::encode_png(content, 8).map_err(|e| CliError::Invalid(e.to_string()))?;
            std::fs::write(path, png)?;
            out.success(
                &format!("QR code written to {}", path.display()),
                json!({ "endpoint": "get_qrcode", "file": path }),
            );
        }
        (None, qr) => {
            let drawn =
                crate::qr::render_terminal(qr).map_err(|e| CliError::Invalid(e.to_string()))?;
            let data = match qr {
                QrCode::Png(bytes) => json!({
                    "endpoint": "get_qrcode",
                    "png_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
                }),
                QrCode::Content(content) => json!({ "endpoint": "get_qrcode", "content": content }),
            };
            out.success(
                &format!("{drawn}\nScan with WhatsApp > Settings > Linked devices > Link a device"),
                data,
            );
        }
    }
    Ok(())
}
