use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the stored password hash is not a valid PHC string: {0}")]
    BadHash(String),
    #[error("the stored password hash uses an unsupported scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Argon2id parameters: 19 MiB, 2 passes, 1 lane (the OWASP minimum for argon2id). They are
/// recorded in every hash, so raising them later leaves old hashes verifiable.
fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with argon2id and a random salt into a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    // RFC 9106 §3.1: a 128-bit random salt.
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// Argon2's working memory is large (19 MiB with our parameters) and glibc keeps freed blocks
/// of that size in per-thread arenas, so allocating one per check makes the server grow by
/// megabytes per login. A few buffers are kept and reused instead; callers bound how many
/// checks run at once (the store's Authenticator uses one per CPU).
static MEMORY_POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
const POOLED_BUFFERS: usize = 8;

fn take_memory(blocks: usize) -> Vec<Block> {
    let pooled = match MEMORY_POOL.lock() {
        Ok(mut pool) => pool.pop(),
        Err(poisoned) => poisoned.into_inner().pop(),
    };
    let mut memory = pooled.unwrap_or_default();
    memory.resize(blocks, Block::default());
    memory
}

fn return_memory(memory: Vec<Block>) {
    let mut pool = match MEMORY_POOL.lock() {
        Ok(pool) => pool,
        Err(poisoned) => poisoned.into_inner(),
    };
    if pool.len() < POOLED_BUFFERS {
        pool.push(memory);
    }
}

/// Checks a password against a stored PHC string, with the parameters recorded in it.
/// The final comparison is constant-time.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let bad = |error: argon2::password_hash::Error| PasswordError::BadHash(error.to_string());
    let parsed = PasswordHash::new(stored).map_err(bad)?;
    let algorithm_name = parsed.algorithm.as_str();
    let algorithm = match algorithm_name {
        "argon2id" => Algorithm::Argon2id,
        "argon2i" => Algorithm::Argon2i,
        "argon2d" => Algorithm::Argon2d,
        other => return Err(PasswordError::UnsupportedScheme(other.to_string())),
    };
    let version = match parsed.version {
        Some(number) => {
            Version::try_from(number).map_err(|error| PasswordError::BadHash(error.to_string()))?
        }
        None => Version::V0x13,
    };
    let params = Params::try_from(&parsed).map_err(bad)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::BadHash(
            "the hash has no salt or no output".to_string(),
        ));
    };
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer).map_err(bad)?;
    let mut output = vec![0u8; expected.len()];
    let mut memory = take_memory(params.block_count());
    let outcome = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut output,
        &mut memory[..],
    );
    return_memory(memory);
    outcome.map_err(|error| PasswordError::BadHash(error.to_string()))?;
    Ok(output.ct_eq(expected.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_records_parameters_and_verifies() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", &hash).unwrap());
        assert!(!verify_password("correct horsE", &hash).unwrap());
        assert!(!verify_password("", &hash).unwrap());
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash_password("x").unwrap(), hash_password("x").unwrap());
    }

    #[test]
    fn bad_hashes_are_errors_not_matches() {
        assert!(verify_password("x", "not a hash").is_err());
        assert!(verify_password("x", "$6$salt$abcdef").is_err());
    }
}
