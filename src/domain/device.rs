//! Device commands: register, rotate and revoke API keys. Keys are chosen and hashed by the
//! caller; only the hash reaches an event.

use super::{DomainError, State};
use crate::events::{Event, KeyValue};

const MAX_NAME_LEN: usize = 256;
const MAX_TAGS: usize = 100;
const MAX_TAG_LEN: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub tags: Vec<KeyValue>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub run_id: Option<String>,
    pub tenant: String,
    /// `None` once revoked.
    pub key_hash: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDevice {
    pub device_id: String,
    pub name: String,
    pub tags: Vec<KeyValue>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub run_id: Option<String>,
    pub key_hash: String,
    pub tenant: String,
}

pub(super) fn register(state: &State, d: &NewDevice) -> Result<Vec<Event>, DomainError> {
    if state.devices.contains_key(&d.device_id) {
        return Err(DomainError::AlreadyExists(format!(
            "Device '{}' already exists",
            d.device_id
        )));
    }
    if d.name.trim().is_empty() || d.name.len() > MAX_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Field 'name' must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if d.tags.len() > MAX_TAGS {
        return Err(DomainError::invalid(format!(
            "Field 'tags' has {} entries; at most {MAX_TAGS} are allowed",
            d.tags.len()
        )));
    }
    for t in &d.tags {
        if t.key.is_empty() || t.key.len() > MAX_NAME_LEN || t.value.len() > MAX_TAG_LEN {
            return Err(DomainError::invalid(format!(
                "Field 'tags' has an invalid entry '{}': keys are 1 to {MAX_NAME_LEN} characters, values at most {MAX_TAG_LEN}",
                t.key
            )));
        }
    }
    for (field, v) in [
        ("model_name", &d.model_name),
        ("model_version", &d.model_version),
    ] {
        if v.as_deref()
            .is_some_and(|s| s.is_empty() || s.len() > MAX_NAME_LEN)
        {
            return Err(DomainError::invalid(format!(
                "Field '{field}' must be 1 to {MAX_NAME_LEN} characters"
            )));
        }
    }
    // A device naming a model of our registry must name one of its versions; other names
    // (models registered elsewhere) are kept as given.
    if let (Some(name), Some(latest)) = (
        &d.model_name,
        d.model_name
            .as_ref()
            .and_then(|n| state.model_versions.get(&(d.tenant.clone(), n.clone()))),
    ) {
        let version = d.model_version.as_deref().unwrap_or_default();
        if !version
            .parse::<u64>()
            .is_ok_and(|v| (1..=*latest).contains(&v))
        {
            return Err(DomainError::invalid(format!(
                "Field 'model_version': registered model '{name}' has versions 1 to {latest}, not '{version}'"
            )));
        }
    }
    if let Some(run_id) = &d.run_id {
        if state.run_tenant(run_id) != Some(d.tenant.as_str()) {
            return Err(DomainError::invalid(format!(
                "Field 'run_id': no tracking run with id '{run_id}'"
            )));
        }
    }
    Ok(vec![Event::DeviceRegistered {
        device_id: d.device_id.clone(),
        name: d.name.clone(),
        tags: d.tags.clone(),
        model_name: d.model_name.clone(),
        model_version: d.model_version.clone(),
        run_id: d.run_id.clone(),
        key_hash: d.key_hash.clone(),
        tenant: d.tenant.clone(),
    }])
}

pub(super) fn rotate_key(
    state: &State,
    device_id: &str,
    key_hash: &str,
) -> Result<Vec<Event>, DomainError> {
    get(state, device_id)?;
    Ok(vec![Event::DeviceKeyRotated {
        device_id: device_id.to_string(),
        key_hash: key_hash.to_string(),
    }])
}

pub(super) fn revoke_key(state: &State, device_id: &str) -> Result<Vec<Event>, DomainError> {
    let d = get(state, device_id)?;
    if d.key_hash.is_none() {
        // Revoking twice changes nothing.
        return Ok(vec![]);
    }
    Ok(vec![Event::DeviceKeyRevoked {
        device_id: device_id.to_string(),
    }])
}

fn get<'a>(state: &'a State, device_id: &str) -> Result<&'a Device, DomainError> {
    state
        .devices
        .get(device_id)
        .ok_or_else(|| not_found(device_id))
}

pub fn not_found(device_id: &str) -> DomainError {
    DomainError::NotFound(format!("No device with id '{device_id}'"))
}

/// Fold a device event into the state, keeping the key-hash index in step.
pub(super) fn apply(state: &mut State, event: &Event, time_ms: i64) {
    match event {
        Event::DeviceRegistered {
            device_id,
            name,
            tags,
            model_name,
            model_version,
            run_id,
            key_hash,
            tenant,
        } => {
            state
                .device_keys
                .insert(key_hash.clone(), device_id.clone());
            state.devices.insert(
                device_id.clone(),
                Device {
                    id: device_id.clone(),
                    name: name.clone(),
                    tags: tags.clone(),
                    model_name: model_name.clone(),
                    model_version: model_version.clone(),
                    run_id: run_id.clone(),
                    tenant: tenant.clone(),
                    key_hash: Some(key_hash.clone()),
                    created_ms: time_ms,
                },
            );
        }
        Event::DeviceKeyRotated {
            device_id,
            key_hash,
        } => {
            if let Some(d) = state.devices.get_mut(device_id) {
                if let Some(old) = d.key_hash.replace(key_hash.clone()) {
                    state.device_keys.remove(&old);
                }
                state
                    .device_keys
                    .insert(key_hash.clone(), device_id.clone());
            }
        }
        Event::DeviceKeyRevoked { device_id } => {
            if let Some(old) = state
                .devices
                .get_mut(device_id)
                .and_then(|d| d.key_hash.take())
            {
                state.device_keys.remove(&old);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{decide, Command};

    fn new_device(id: &str, hash: &str) -> NewDevice {
        NewDevice {
            device_id: id.into(),
            name: "pi-cab-7".into(),
            tags: vec![],
            model_name: Some("drowsiness".into()),
            model_version: Some("3".into()),
            run_id: None,
            key_hash: hash.into(),
            tenant: "default".into(),
        }
    }

    fn given(commands: &[Command]) -> State {
        let mut s = State::default();
        for c in commands {
            for e in decide(&s, c).unwrap() {
                s.apply(&e, 1);
            }
        }
        s
    }

    #[test]
    fn register_then_lookup_by_key_hash() {
        let s = given(&[Command::RegisterDevice(new_device("d1", "h1"))]);
        assert_eq!(s.device_keys.get("h1").map(String::as_str), Some("d1"));
        let again = decide(&s, &Command::RegisterDevice(new_device("d1", "h2")));
        assert!(matches!(again, Err(DomainError::AlreadyExists(_))));
    }

    #[test]
    fn rotation_replaces_the_key_and_revocation_removes_it() {
        let s = given(&[
            Command::RegisterDevice(new_device("d1", "h1")),
            Command::RotateDeviceKey {
                device_id: "d1".into(),
                key_hash: "h2".into(),
            },
        ]);
        assert!(!s.device_keys.contains_key("h1"));
        assert!(s.device_keys.contains_key("h2"));
        let s = given(&[
            Command::RegisterDevice(new_device("d1", "h1")),
            Command::RevokeDeviceKey {
                device_id: "d1".into(),
            },
        ]);
        assert!(s.device_keys.is_empty());
        let twice = decide(
            &s,
            &Command::RevokeDeviceKey {
                device_id: "d1".into(),
            },
        );
        assert_eq!(twice, Ok(vec![]));
    }

    #[test]
    fn bad_registration_names_the_field() {
        let mut d = new_device("d1", "h1");
        d.name = " ".into();
        let e = decide(&State::default(), &Command::RegisterDevice(d)).unwrap_err();
        assert!(e.to_string().contains("'name'"));
        let mut d = new_device("d1", "h1");
        d.run_id = Some("nope".into());
        let e = decide(&State::default(), &Command::RegisterDevice(d)).unwrap_err();
        assert!(e.to_string().contains("'run_id'"));
        let e = decide(
            &State::default(),
            &Command::RevokeDeviceKey {
                device_id: "x".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, DomainError::NotFound(_)));
    }
}
