//! The format version check shared by holds and tombstones.

use crate::FORMAT_VERSION;

/// Checks `"v"` before the other fields, so that an object of another version is
/// reported as such rather than as missing fields.
pub(crate) fn check_version(bytes: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        v: u32,
    }
    let found = serde_json::from_slice::<Versioned>(bytes)
        .map_err(|e| format!("not a valid object: {e}"))?
        .v;
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(format!(
            "format version {found} is not supported (this build reads version {FORMAT_VERSION})"
        ))
    }
}

/// A [`schemas::SessionId`] as its hyphenated text, for `#[serde(with = "…")]`.
pub(crate) mod id_text {
    use schemas::SessionId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &SessionId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom("not a session id"))
    }
}

/// An optional [`schemas::SessionId`] as text or null.
pub(crate) mod opt_id_text {
    use schemas::SessionId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<SessionId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| {
                t.parse()
                    .map_err(|_| serde::de::Error::custom("not a session id"))
            })
            .transpose()
    }
}
