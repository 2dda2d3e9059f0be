//! The clients a run talks through, built once from the configuration: one HTTP client (TLS,
//! proxy and timeouts of `[general]`), the OAI-PMH harvester, Alma's REST client and, with
//! `rosetta.soap_url`, IEWebServices. Secrets come from the environment variables the
//! configuration names, unless they are handed in (the scenario runner's mocks).

use crate::alma::AlmaClient;
use crate::config::{Config, secret};
use crate::harvest::{HarvestOptions, Harvester, Network, http_client_with};
use crate::retry::RetryPolicy;
use crate::rosetta::{RosettaClient, RosettaConfig};
use crate::stage::StageError;

/// Secrets handed in instead of read from the environment (`None`: read it).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub alma_api_key: Option<String>,
    pub rosetta_password: Option<String>,
}

/// How the clients are built.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A short list is an error, not a warning (`--strict-counts`).
    pub strict_counts: bool,
    /// The retries of every client (the library's scenarios use a quicker one).
    pub retry: RetryPolicy,
    pub secrets: Secrets,
}

/// The clients of one run.
pub struct Clients<'c> {
    cfg: &'c Config,
    pub http: reqwest::Client,
    pub harvester: Harvester,
    options: ClientOptions,
}

/// A secret the run needs and the environment lacks: a usage problem (exit 2), said as it is.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {what}")]
pub struct MissingSecret {
    /// The environment variable and why it was unusable.
    pub variable: String,
    pub what: &'static str,
}

impl<'c> Clients<'c> {
    /// One HTTP client per run, built from `[general]` (proxy, TLS, timeouts).
    pub fn from_config(cfg: &'c Config, options: ClientOptions) -> Result<Self, StageError> {
        let network = Network::from_config(&cfg.general).map_err(StageError::Config)?;
        let http = http_client_with(&network).map_err(StageError::Config)?;
        Ok(Self::with_http(cfg, http, options))
    }

    /// Over an HTTP client the caller built.
    pub fn with_http(cfg: &'c Config, http: reqwest::Client, options: ClientOptions) -> Self {
        let harvester = Harvester::new(
            http.clone(),
            HarvestOptions {
                strict_counts: options.strict_counts,
                retry: options.retry.clone(),
                ..HarvestOptions::from_general(&cfg.general)
            },
        );
        Clients {
            cfg,
            http,
            harvester,
            options,
        }
    }

    /// Alma's REST API, with the key from `alma.api_key_env`.
    pub fn alma(&self) -> Result<AlmaClient, MissingSecret> {
        let key = match &self.options.secrets.alma_api_key {
            Some(k) => k.clone(),
            None => secret(&self.cfg.alma.api_key_env).map_err(|p| MissingSecret {
                variable: p.to_string(),
                what: "the Alma API key",
            })?,
        };
        Ok(AlmaClient::new(
            self.http.clone(),
            &self.cfg.alma.api_base_url,
            &key,
            self.cfg.alma.max_requests_per_second,
            self.options.retry.clone(),
        )
        .with_max_body_bytes(self.cfg.general.max_page_bytes))
    }

    /// IEWebServices, when `rosetta.soap_url` is set.
    pub fn rosetta(&self) -> Result<Option<RosettaClient>, MissingSecret> {
        let r = &self.cfg.rosetta;
        let Some(url) = &r.soap_url else {
            return Ok(None);
        };
        let password = match &self.options.secrets.rosetta_password {
            Some(p) => p.clone(),
            None => secret(&r.password_env).map_err(|p| MissingSecret {
                variable: p.to_string(),
                what: "the Rosetta web services password",
            })?,
        };
        Ok(Some(
            RosettaClient::new(
                self.http.clone(),
                RosettaConfig {
                    soap_url: url.clone(),
                    user: r.user.clone().unwrap_or_default(),
                    institution: r.institution.clone().unwrap_or_default(),
                    password,
                    retry: self.options.retry.clone(),
                },
            )
            .with_max_body_bytes(self.cfg.general.max_page_bytes),
        ))
    }
}
