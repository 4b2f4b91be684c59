//! The one error type of the optimize module: every failure a user can cause ends here, as one line.

/// Errors of the optimize module. Messages are single-line and name the offending thing.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("not a valid ONNX model: {0}")]
    InvalidModel(String),
    #[error("tract cannot run this model: {0}")]
    Unsupported(String),
    #[error("bad data: {0}")]
    InvalidData(String),
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument { name: String, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
    /// A long job noticed its cancellation flag and stopped early.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, OptimizeError>;

impl OptimizeError {
    /// An I/O error on `path`, keeping the OS message.
    pub fn io(path: &std::path::Path, err: impl std::fmt::Display) -> Self {
        OptimizeError::Io {
            path: path.display().to_string(),
            message: one_line(&err.to_string()),
        }
    }

    pub fn invalid_argument(name: &str, reason: impl Into<String>) -> Self {
        OptimizeError::InvalidArgument {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Collapses a multi-line message (tract's error chains) onto one line.
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Renders an error with its whole cause chain (`anyhow`-style `{:#}` from tract) on one line.
pub fn chain_line(err: &dyn std::fmt::Display) -> String {
    one_line(&format!("{err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n  b\n\nc"), "a; b; c");
        let e = OptimizeError::io(
            std::path::Path::new("/x/y.onnx"),
            "No such file\nor directory",
        );
        assert_eq!(e.to_string(), "/x/y.onnx: No such file; or directory");
        let e = OptimizeError::invalid_argument("batch", "must be 1");
        assert_eq!(e.to_string(), "invalid argument batch: must be 1");
        assert_eq!(OptimizeError::Cancelled.to_string(), "cancelled");
    }
}
