//! Configuration: defaults < file (`runledger.toml`) < environment (`RUNLEDGER_*`) < CLI flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::{AuthConfig, AuthMode};
use crate::jobs::JobsConfig;
use crate::telemetry::TelemetryConfig;

pub const DEFAULT_DATA_DIR: &str = "./runledger-data";
pub const DEFAULT_BIND: &str = "127.0.0.1:5000";
pub const DEFAULT_CONFIG_FILE: &str = "runledger.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: String,
    /// `json` for one JSON object per log line, else human-readable.
    pub log_format: String,
    /// `[telemetry]`: ingest limits and severity rules (file only).
    pub telemetry: TelemetryConfig,
    /// `[jobs]`: workers, upload limits, dataset presets (file only).
    pub jobs: JobsConfig,
    /// `[auth]`: token keys, limits; `mode` also from `--auth` / `RUNLEDGER_AUTH`.
    pub auth: AuthConfig,
}

/// Settings as each layer may give them; unset fields fall through to the layer below.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub log_format: Option<String>,
    pub telemetry: Option<TelemetryConfig>,
    pub jobs: Option<JobsConfig>,
    pub auth: Option<AuthConfig>,
    /// `--auth` / `RUNLEDGER_AUTH`, over `[auth] mode`.
    #[serde(skip)]
    pub auth_mode: Option<AuthMode>,
}

impl Layer {
    fn over(self, below: Layer) -> Layer {
        Layer {
            data_dir: self.data_dir.or(below.data_dir),
            bind: self.bind.or(below.bind),
            log_format: self.log_format.or(below.log_format),
            telemetry: self.telemetry.or(below.telemetry),
            jobs: self.jobs.or(below.jobs),
            auth: self.auth.or(below.auth),
            auth_mode: self.auth_mode.or(below.auth_mode),
        }
    }

    /// `RUNLEDGER_DATA_DIR`, `RUNLEDGER_BIND`, `RUNLEDGER_LOG_FORMAT`, `RUNLEDGER_AUTH`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Layer {
        use clap::ValueEnum;
        Layer {
            data_dir: get("RUNLEDGER_DATA_DIR").map(PathBuf::from),
            bind: get("RUNLEDGER_BIND"),
            log_format: get("RUNLEDGER_LOG_FORMAT"),
            auth_mode: get("RUNLEDGER_AUTH").and_then(|m| AuthMode::from_str(&m, true).ok()),
            ..Layer::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

impl Config {
    /// Resolve the layers. `file` is the explicit `--config` path; without it
    /// `runledger.toml` in the working directory is read when present.
    pub fn load(file: Option<&Path>, cli: Layer) -> Result<Config, ConfigError> {
        let file_layer = match file {
            Some(p) => read_file(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Layer::default(),
        };
        let env = Layer::from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Ok(Config::resolve(cli.over(env.over(file_layer))))
    }

    pub fn resolve(l: Layer) -> Config {
        Config {
            data_dir: l
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            bind: l.bind.unwrap_or_else(|| DEFAULT_BIND.to_string()),
            log_format: l.log_format.unwrap_or_else(|| "text".to_string()),
            telemetry: l.telemetry.unwrap_or_default(),
            jobs: l.jobs.unwrap_or_default(),
            auth: {
                let mut auth = l.auth.unwrap_or_default();
                if let Some(mode) = l.auth_mode {
                    auth.mode = mode;
                }
                auth
            },
        }
    }
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        let file: Layer = toml::from_str("data_dir = \"/f\"\nbind = \"0.0.0.0:1\"").unwrap();
        let env = Layer::from_env(|k| (k == "RUNLEDGER_BIND").then(|| "127.0.0.1:2".to_string()));
        let cli = Layer {
            data_dir: Some("/cli".into()),
            ..Layer::default()
        };
        let c = Config::resolve(cli.over(env.over(file)));
        assert_eq!(c.data_dir, PathBuf::from("/cli"));
        assert_eq!(c.bind, "127.0.0.1:2");
        assert_eq!(Config::resolve(Layer::default()).bind, DEFAULT_BIND);
        assert!(toml::from_str::<Layer>("unknown = 1").is_err());
        let t: Layer = toml::from_str("[telemetry]\ndevice_rate = 2\n").unwrap();
        let c = Config::resolve(t);
        assert_eq!(c.telemetry.device_rate, 2);
        assert_eq!(c.telemetry.max_batch_events, 10_000);
    }
}
