//! The commands' way to the running agent: its HTTP API, found through the address the
//! agent writes into its state folder while it holds the folder's lock — so a command
//! reaches the agent of its own config, never another one on the same PC.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;

pub struct AgentClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent answered with an error: its status and `{"error"}` text.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the agent at {base} did not answer: {source}")]
    Unreachable {
        base: String,
        source: reqwest::Error,
    },
}

impl AgentClient {
    /// The running agent of this config, if one answers within a second.
    pub async fn find(config: &Config) -> Option<AgentClient> {
        // Only the agent that holds this state folder: an address file left by one that
        // was killed may name a port that another program uses now.
        if !crate::store::AgentLock::is_held(&config.state_dir) {
            return None;
        }
        let addr = crate::api::running_addr(&config.state_dir)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .ok()?;
        let client = AgentClient {
            base: format!("http://{addr}"),
            token: config.api.token.as_ref().map(|t| t.expose().to_string()),
            http,
        };
        client.get("/healthz").await.ok().map(|_| client)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let unreachable = |source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                status: status.as_u16(),
                message: body["error"]
                    .as_str()
                    .unwrap_or(status.canonical_reason().unwrap_or("error"))
                    .to_string(),
            })
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
