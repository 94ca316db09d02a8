/// Errors of every store backend. Services map them to protocol replies in one place each.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("the domain {0} is not served here (add it with `sealpost domain add {0}`)")]
    UnknownDomain(String),
    #[error("{0} is still in use: {1}")]
    InUse(String, String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the store's writer has stopped")]
    WriterGone,
}
