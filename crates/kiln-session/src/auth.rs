//! Callers and API tokens: tokens are 256 random bits, shown once, stored as SHA-256 hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

use kiln_db::User;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user_id: String,
    pub name: String,
    pub is_owner: bool,
    /// The program acting for the user, when it is not Kiln's own (an MCP client): every node
    /// the caller writes carries it as `data.client` (see [`ClientInfo`]).
    pub client: Option<ClientInfo>,
}

/// The program a call came through: the protocol and the name the client gave itself
/// (`{"protocol": "mcp", "name": "claude-ai"}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClientInfo {
    pub protocol: String,
    pub name: String,
}

impl Caller {
    /// Returns the caller acting through `client`.
    pub fn via(mut self, client: ClientInfo) -> Self {
        self.client = Some(client);
        self
    }
}

impl From<User> for Caller {
    fn from(u: User) -> Self {
        Self {
            user_id: u.id,
            name: u.name,
            is_owner: u.is_owner,
            client: None,
        }
    }
}

/// Returns a fresh API token: `kiln_` and 64 hex digits (256 random bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("kiln_{}", hex::encode(bytes))
}

/// Returns the SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 32);
    }
}
