//! The client of the remote "WhatsApp Web API": every endpoint, one shared
//! connection pool, answers read as the backend really gives them.
//!
//! This is the only module that knows the API's URLs and shapes. It owns the
//! access token and adds it to a call at the last moment, and it makes sure
//! the token never leaves in an error: errors are built from the endpoint's
//! name, never from a URL, and response bodies are scrubbed before they are
//! read.

pub mod error;
pub mod request;
pub mod response;

use std::fmt;
use std::time::Duration;

pub use error::{ApiError, ErrorClass};
pub use request::{
    ApiRequest, Button, Content, HttpCall, Interactive, LegacyTemplate, ListMessage, ListRow,
    ListSection, RecipientError, TemplateMessage, TokenPlace, Verb, normalize_group,
    normalize_number,
};
pub use response::{ApiReply, QrCode};

use crate::config::{ApiConfig, SendMethod};
use crate::secret::Secret;

/// The longest a connection attempt may take, whatever the call timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one instance of the remote API. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: url::Url,
    instance_id: Option<String>,
    token: Option<Secret>,
    method: SendMethod,
    timeout: Duration,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url.as_str())
            .field("instance_id", &self.instance_id)
            .field("token", &self.token)
            .field("method", &self.method)
            .finish()
    }
}

impl ApiClient {
    /// Builds a client for the API described by `config`.
    pub fn new(config: &ApiConfig) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("waflow/", env!("CARGO_PKG_VERSION")))
            // The token travels in the URL or the body: a redirect would
            // hand it to whichever host the answer names, and a Referer
            // would carry the URL along. Redirects are answers, not hops.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .map_err(|err| ApiError::Connect {
                endpoint: "client",
                detail: describe_reqwest_error(&err),
            })?;
        Ok(ApiClient {
            http,
            base_url: config.base_url.clone(),
            instance_id: config.instance_id.clone(),
            token: config.access_token.clone(),
            method: config.method,
            timeout: config.timeout,
        })
    }

    /// A client for another instance that shares this one's connection
    /// pool (many numbers on one host need one pool, not one each); a
    /// different timeout needs a client of its own.
    pub fn sibling(&self, config: &ApiConfig) -> Result<Self, ApiError> {
        if config.timeout != self.timeout {
            return ApiClient::new(config);
        }
        Ok(ApiClient {
            http: self.http.clone(),
            base_url: config.base_url.clone(),
            instance_id: config.instance_id.clone(),
            token: config.access_token.clone(),
            method: config.method,
            timeout: config.timeout,
        })
    }

    /// The HTTP shape of `request` with the token shown as `***`: what `simulate` prints.
    pub fn describe(&self, request: &ApiRequest) -> DescribedCall {
        let call = request.to_call(self.method, self.instance_id.as_deref());
        let (url, json) = self.assemble(&call, "***");
        DescribedCall {
            method: match call.verb {
                Verb::Get => "GET",
                Verb::Post => "POST",
            },
            url: url.to_string(),
            json,
        }
    }

    /// Makes the call and reads its answer.
    pub async fn call(&self, request: &ApiRequest) -> Result<ApiReply, ApiError> {
        let endpoint = request.endpoint();
        let token = self.token.as_ref().ok_or(ApiError::NotConfigured {
            endpoint,
            what: "api.access_token",
        })?;
        if request.needs_instance() && self.instance_id.is_none() {
            return Err(ApiError::NotConfigured {
                endpoint,
                what: "api.instance_id",
            });
        }
        let call = request.to_call(self.method, self.instance_id.as_deref());
        let (url, json) = self.assemble(&call, token.expose());
        let builder = match call.verb {
            Verb::Get => self.http.get(url),
            Verb::Post => self.http.post(url),
        };
        let builder = match json {
            Some(body) => builder.json(&body),
            None => builder,
        };
        let started = std::time::Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let (status, body) = result.map_err(|err| self.transport_error(endpoint, &err))?;
        tracing::debug!(
            endpoint,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "api call answered"
        );
        response::interpret(request, status, &token.redact(&body))
    }

    /// The full URL and JSON body of `call` with `token` in its place.
    fn assemble(&self, call: &HttpCall, token: &str) -> (url::Url, Option<serde_json::Value>) {
        let mut url = self.base_url.clone();
        {
            let base_path = url.path().trim_end_matches('/').to_owned();
            url.set_path(&format!("{base_path}/{}", call.path));
        }
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &call.query {
                pairs.append_pair(key, value);
            }
            if call.token == TokenPlace::Query {
                pairs.append_pair("access_token", token);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut json = call.json.clone();
        if call.token == TokenPlace::Body
            && let Some(serde_json::Value::Object(map)) = json.as_mut()
        {
            map.insert("access_token".into(), token.into());
        }
        (url, json)
    }

    /// A transport failure, described without the URL (which holds the token).
    fn transport_error(&self, endpoint: &'static str, err: &reqwest::Error) -> ApiError {
        if err.is_timeout() {
            return ApiError::Timeout {
                endpoint,
                seconds: self.timeout.as_secs().max(1),
            };
        }
        let mut detail = describe_reqwest_error(err);
        if let Some(token) = &self.token {
            detail = token.redact(&detail);
        }
        ApiError::Connect { endpoint, detail }
    }
}

/// A call as `simulate` and `--json` show it, token masked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DescribedCall {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL with `access_token=***` where the token goes in the query.
    pub url: String,
    /// The JSON body, `"access_token": "***"` where the token goes in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
}

/// The error's chain of causes, without any URL.
pub(crate) fn describe_reqwest_error(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    if err.is_connect() {
        parts.push("connection failed".to_owned());
    } else if err.is_body() || err.is_decode() {
        parts.push("the answer broke off".to_owned());
    } else if err.is_request() {
        parts.push("the request failed".to_owned());
    }
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.contains("://") && !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push("network error".to_owned());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str, method: SendMethod) -> ApiClient {
        ApiClient::new(&ApiConfig {
            base_url: url::Url::parse(base).unwrap(),
            instance_id: Some("609ACF283XXXX".into()),
            access_token: Secret::new("6881c11f741a1"),
            method,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    #[test]
    fn describe_masks_the_token_in_query_and_body() {
        let send = ApiRequest::Send {
            number: "84933313000".into(),
            content: Content::Text {
                text: "hi there".into(),
            },
        };
        let get = client("https://wonotify.com/api", SendMethod::Get).describe(&send);
        assert_eq!(
            get.url,
            "https://wonotify.com/api/send?number=84933313000&type=text&message=hi+there&instance_id=609ACF283XXXX&access_token=***"
        );
        let post = client("https://wonotify.com/whatsapp_api/", SendMethod::Post).describe(&send);
        assert_eq!(post.url, "https://wonotify.com/whatsapp_api/send");
        assert_eq!(post.json.unwrap()["access_token"], "***");
    }

    #[test]
    fn debug_hides_the_token() {
        let c = client("https://wonotify.com/api", SendMethod::Post);
        assert!(!format!("{c:?}").contains("6881c11f741a1"));
    }
}
