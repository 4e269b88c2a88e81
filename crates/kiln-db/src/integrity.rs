//! Tamper evidence: the hash chain over a session's nodes, and the per-instance ed25519 key
//! that signs session exports (see ARCHITECTURE.md, "Integrity").
//!
//! A node's hash is SHA-256 over a version tag, its parents' hashes and its own fields, each
//! length-prefixed, so a branch head's hash commits to everything on its path. An export's
//! signature covers the SHA-256 of the document's canonical JSON (sorted keys, no whitespace)
//! without its `signature` field.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The fields of a node that its hash covers (the session and segment ids are not: an
/// imported node keeps its hash in its new session).
#[derive(Debug, Clone, Copy)]
pub struct NodeFields<'a> {
    pub id: &'a str,
    pub seq: i64,
    pub parent_id: Option<&'a str>,
    pub merge_parent_id: Option<&'a str>,
    pub kind: &'a str,
    pub author: Option<&'a str>,
    pub content: &'a str,
    /// The `data` column's text, as stored.
    pub data: Option<&'a str>,
    pub tokens: Option<i64>,
    pub created_at: &'a str,
}

fn field(h: &mut Sha256, v: Option<&[u8]>) {
    match v {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// Returns a node's hash from its parents' hashes and its fields.
pub fn node_hash(parent: Option<&[u8]>, merge_parent: Option<&[u8]>, f: &NodeFields) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiln-node-1");
    field(&mut h, parent);
    field(&mut h, merge_parent);
    field(&mut h, Some(f.id.as_bytes()));
    field(&mut h, Some(&f.seq.to_le_bytes()));
    field(&mut h, f.parent_id.map(str::as_bytes));
    field(&mut h, f.merge_parent_id.map(str::as_bytes));
    field(&mut h, Some(f.kind.as_bytes()));
    field(&mut h, f.author.map(str::as_bytes));
    field(&mut h, Some(f.content.as_bytes()));
    field(&mut h, f.data.map(str::as_bytes));
    let tokens = f.tokens.map(i64::to_le_bytes);
    field(&mut h, tokens.as_ref().map(|t| &t[..]));
    field(&mut h, Some(f.created_at.as_bytes()));
    h.finalize().into()
}

/// SHA-256 of a JSON value's canonical text: object keys sorted (serde_json's map is a
/// `BTreeMap`: the `preserve_order` feature is not enabled in this workspace), no whitespace.
pub fn canonical_digest(v: &serde_json::Value) -> [u8; 32] {
    let mut h = Sha256::new();
    // Writing into the hasher cannot fail; a Value always serialises.
    let _ = serde_json::to_writer(HashWriter(&mut h), v);
    h.finalize().into()
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An instance's public key: 32 bytes, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "`{s}` is not an ed25519 public key (64 hex digits)"
                ))
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| Error::Invalid(format!("`{s}` is not a valid ed25519 public key")))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An instance's signing key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct InstanceKey(SigningKey);

impl fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InstanceKey(public {}, secret [redacted])",
            self.public()
        )
    }
}

impl InstanceKey {
    /// The key whose secret is these 32 bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        InstanceKey(SigningKey::from_bytes(&seed))
    }

    /// Parses a key file's text: the 32-byte secret as 64 hex digits (whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let seed: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Invalid("a key file holds 64 hex digits".into()))?;
        Ok(Self::from_seed(seed))
    }

    /// The secret as a key file holds it.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs a document digest.
    pub fn sign(&self, digest: &[u8; 32]) -> ExportSignature {
        ExportSignature {
            algorithm: ALGORITHM.into(),
            key: self.public().to_hex(),
            digest: hex::encode(digest),
            signature: hex::encode(self.0.sign(digest).to_bytes()),
        }
    }
}

pub const ALGORITHM: &str = "ed25519";

/// The signature on an export: `signature` is ed25519 over the 32 bytes of `digest`, the
/// SHA-256 of the document's canonical JSON without this field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSignature {
    pub algorithm: String,
    /// The signer's public key (64 hex digits).
    pub key: String,
    /// The signed digest (64 hex digits), informative: verification recomputes it.
    pub digest: String,
    /// 128 hex digits.
    pub signature: String,
}

/// What a document's signature says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Signed by this trusted key, and the signature covers the document as it is.
    Verified { key: String },
    /// Anything else: unsigned, signed by an unknown key, or edited since it was signed.
    Unverified { reason: String },
}

impl Trust {
    pub fn is_verified(&self) -> bool {
        matches!(self, Trust::Verified { .. })
    }
}

impl ExportSignature {
    /// Checks the signature against the document's `digest`, then the key against `trusted`.
    pub fn trust(&self, digest: &[u8; 32], trusted: &[PublicKey]) -> Trust {
        let unverified = |reason: &str| Trust::Unverified {
            reason: reason.to_string(),
        };
        if self.algorithm != ALGORITHM {
            return unverified("the signature's algorithm is not ed25519");
        }
        let Ok(key) = PublicKey::from_hex(&self.key) else {
            return unverified("the signature's key is not an ed25519 public key");
        };
        let Some(sig) = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return unverified("the signature is not 64 bytes of hex");
        };
        if key
            .0
            .verify_strict(digest, &Signature::from_bytes(&sig))
            .is_err()
        {
            return unverified("the signature does not match the document (edited after signing)");
        }
        if !trusted.contains(&key) {
            return unverified("signed by a key this instance does not trust");
        }
        Trust::Verified { key: key.to_hex() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(content: &'a str) -> NodeFields<'a> {
        NodeFields {
            id: "n1",
            seq: 1,
            parent_id: Some("r"),
            merge_parent_id: None,
            kind: "user",
            author: Some("u1"),
            content,
            data: None,
            tokens: Some(3),
            created_at: "2026-01-01T00:00:00.000000Z",
        }
    }

    #[test]
    fn a_node_hash_covers_its_fields_and_its_parent() {
        let base = node_hash(Some(&[1; 32]), None, &fields("hello"));
        assert_ne!(base, node_hash(Some(&[1; 32]), None, &fields("hellO")));
        assert_ne!(base, node_hash(Some(&[2; 32]), None, &fields("hello")));
        assert_ne!(base, node_hash(None, None, &fields("hello")));
        let mut other = fields("hello");
        other.author = Some("u2");
        assert_ne!(base, node_hash(Some(&[1; 32]), None, &other));
        // Length prefixes: moving bytes between fields changes the hash.
        let mut a = fields("ab");
        a.author = Some("u");
        let mut b = fields("b");
        b.author = Some("ua");
        assert_ne!(node_hash(None, None, &a), node_hash(None, None, &b));
    }

    #[test]
    fn signatures_verify_only_unchanged_and_trusted() {
        let key = InstanceKey::from_seed([7; 32]);
        let other = InstanceKey::from_seed([8; 32]);
        let digest = canonical_digest(&serde_json::json!({"b": 1, "a": [1.5, "x"]}));
        let sig = key.sign(&digest);
        assert!(sig.trust(&digest, &[key.public()]).is_verified());
        assert!(!sig.trust(&digest, &[other.public()]).is_verified());
        let edited = canonical_digest(&serde_json::json!({"b": 2, "a": [1.5, "x"]}));
        assert!(!sig.trust(&edited, &[key.public()]).is_verified());
        let mut swapped = sig.clone();
        swapped.key = other.public().to_hex();
        assert!(!swapped.trust(&digest, &[other.public()]).is_verified());
        assert_eq!(
            InstanceKey::from_hex(&key.secret_hex()).unwrap().public(),
            key.public()
        );
        assert!(!format!("{key:?}").contains(&key.secret_hex()));
    }
}
