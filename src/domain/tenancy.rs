//! Who may issue a command: every entity belongs to one tenant, viewers cannot write, and
//! only a tenant's admins (or the installation's operators) manage its users and tokens.
//!
//! Another tenant's entity answers exactly as a missing one does (the same error and message),
//! so nothing about it leaks, not even its existence.

use super::{account, device, experiment, job, run, Command, DomainError, State};
use crate::events::Role;

/// The issuer of a command: the audit actor and the tenant whose data it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user:<name>`, `device:<id>` or `system:<part>`: recorded on every event.
    pub actor: String,
    pub username: Option<String>,
    pub tenant: String,
    pub role: Role,
    /// Installation operator: may create tenants and change tiers.
    pub operator: bool,
}

impl Caller {
    /// A server component acting inside `tenant` (a job worker, start-up).
    pub fn system(part: &str, tenant: &str) -> Caller {
        Caller {
            actor: format!("system:{part}"),
            username: None,
            tenant: tenant.to_string(),
            role: Role::Admin,
            operator: false,
        }
    }

    /// Start-up work that sets up accounts (the first administrator).
    pub fn bootstrap() -> Caller {
        Caller {
            operator: true,
            ..Caller::system("bootstrap", crate::events::DEFAULT_TENANT)
        }
    }

    pub fn can_write(&self) -> bool {
        self.role != Role::Viewer
    }

    fn is_admin_of(&self, tenant: &str) -> bool {
        self.operator || (self.role == Role::Admin && self.tenant == tenant)
    }

    fn is(&self, username: &str) -> bool {
        self.username.as_deref() == Some(username)
    }
}

fn forbidden(msg: impl Into<String>) -> DomainError {
    DomainError::Forbidden(msg.into())
}

/// Check `command` against the caller's tenant and role; `decide` validates the rest.
pub fn authorize(state: &State, caller: &Caller, command: &Command) -> Result<(), DomainError> {
    let tenant = caller.tenant.as_str();
    match command {
        Command::CreateTenant(_) | Command::SetTenantTier { .. } => {
            if caller.operator {
                Ok(())
            } else {
                Err(forbidden(
                    "only an operator of this installation may create tenants or change tiers",
                ))
            }
        }
        Command::CreateUser(u) => {
            if u.operator && !caller.operator {
                return Err(forbidden("only an operator may create operators"));
            }
            if caller.is_admin_of(&u.tenant_id) {
                Ok(())
            } else if u.tenant_id == tenant {
                Err(forbidden(
                    "only an admin of the tenant may create its users",
                ))
            } else {
                Err(account::tenant_not_found(&u.tenant_id))
            }
        }
        Command::SetPassword { username, .. }
        | Command::IssueToken(crate::events::TokenInfo { username, .. })
        | Command::RevokeToken { username, .. } => self_or_admin(state, caller, username),
        Command::SetRole { username, .. } => {
            self_or_admin(state, caller, username)?;
            if caller.is_admin_of(&user_tenant(state, username)) {
                Ok(())
            } else {
                Err(forbidden("only an admin of the tenant may change roles"))
            }
        }
        _ if !caller.can_write() => Err(forbidden(format!(
            "role '{}' is read-only",
            caller.role.as_str()
        ))),
        _ => owns(state, caller, command),
    }
}

fn user_tenant(state: &State, username: &str) -> String {
    state
        .users
        .get(username)
        .map(|u| u.info.tenant_id.clone())
        .unwrap_or_default()
}

/// A user acts on themselves; a tenant admin on the tenant's users.
fn self_or_admin(state: &State, caller: &Caller, username: &str) -> Result<(), DomainError> {
    let Some(u) = state.users.get(username) else {
        return Ok(()); // decide answers "no such user"
    };
    if caller.is(username) || caller.is_admin_of(&u.info.tenant_id) {
        Ok(())
    } else if u.info.tenant_id == caller.tenant {
        Err(forbidden("only an admin may act on another user"))
    } else {
        Err(account::user_not_found(username))
    }
}

/// The entity the command targets belongs to the caller's tenant (or does not exist yet).
fn owns(state: &State, caller: &Caller, command: &Command) -> Result<(), DomainError> {
    let tenant = caller.tenant.as_str();
    let mine = |owner: Option<&str>| owner.is_none_or(|o| o == tenant);
    let new_in = |t: &str| {
        if t == tenant {
            Ok(())
        } else {
            Err(forbidden(
                "an entity can only be created in the caller's tenant",
            ))
        }
    };
    match command {
        Command::CreateExperiment { tenant: t, .. } => new_in(t),
        Command::RegisterDevice(d) => new_in(&d.tenant),
        Command::UploadModel { model, .. } => new_in(&model.tenant),
        Command::RegisterDataset(d) => new_in(&d.tenant),
        Command::QueueJob { tenant: t, .. } | Command::RegisterModelVersion { tenant: t, .. } => {
            new_in(t)?;
            match command {
                Command::RegisterModelVersion { job_id, .. } => job_owned(state, tenant, job_id),
                _ => Ok(()),
            }
        }
        Command::RenameExperiment { experiment_id, .. }
        | Command::DeleteExperiment { experiment_id }
        | Command::RestoreExperiment { experiment_id }
        | Command::SetExperimentTag { experiment_id, .. }
        | Command::DeleteExperimentTag { experiment_id, .. }
        | Command::CreateRun { experiment_id, .. } => {
            let owner = state.experiment(*experiment_id).map(|e| e.tenant.as_str());
            mine(owner)
                .then_some(())
                .ok_or_else(|| experiment::not_found(*experiment_id))
        }
        Command::UpdateRun { run_id, .. }
        | Command::DeleteRun { run_id }
        | Command::RestoreRun { run_id }
        | Command::LogBatch { run_id, .. }
        | Command::DeleteTag { run_id, .. }
        | Command::LogInputs { run_id, .. } => mine(state.run_tenant(run_id))
            .then_some(())
            .ok_or_else(|| run::not_found(run_id)),
        Command::RotateDeviceKey { device_id, .. } | Command::RevokeDeviceKey { device_id } => {
            let owner = state.devices.get(device_id).map(|d| d.tenant.as_str());
            mine(owner)
                .then_some(())
                .ok_or_else(|| device::not_found(device_id))
        }
        Command::ClaimJob { job_id, .. } | Command::CancelJob { job_id } => {
            job_owned(state, tenant, job_id)
        }
        Command::JobStep { event, .. } => job_owned(state, tenant, event.job_id().unwrap_or("")),
        // Account commands are handled by `authorize`.
        Command::CreateTenant(_)
        | Command::SetTenantTier { .. }
        | Command::CreateUser(_)
        | Command::SetPassword { .. }
        | Command::SetRole { .. }
        | Command::IssueToken(_)
        | Command::RevokeToken { .. } => Ok(()),
    }
}

fn job_owned(state: &State, tenant: &str, job_id: &str) -> Result<(), DomainError> {
    match state.jobs.get(job_id) {
        Some(j) if j.tenant != tenant => Err(job::not_found(job_id)),
        _ => Ok(()),
    }
}

/// Reads: another tenant's entity answers exactly like a missing one. A missing one passes
/// here and is reported by the read itself.
pub fn readable_experiment(state: &State, tenant: &str, id: i64) -> Result<(), DomainError> {
    match state.experiment(id) {
        Some(e) if e.tenant != tenant => Err(experiment::not_found(id)),
        _ => Ok(()),
    }
}

/// A user's own data (their tokens) reads under the rule for acting on them.
pub fn readable_user(state: &State, caller: &Caller, username: &str) -> Result<(), DomainError> {
    if !state.users.contains_key(username) {
        return Err(account::user_not_found(username));
    }
    self_or_admin(state, caller, username)
}

pub fn readable_run(state: &State, tenant: &str, run_id: &str) -> Result<(), DomainError> {
    match state.run_tenant(run_id) {
        Some(t) if t != tenant => Err(run::not_found(run_id)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{apply, decide};
    use crate::events::{Event, TenantInfo, Tier, UserInfo};

    fn caller(tenant: &str, role: Role) -> Caller {
        Caller {
            actor: "user:u".into(),
            username: Some(format!("{tenant}-user")),
            tenant: tenant.into(),
            role,
            operator: false,
        }
    }

    fn exec(s: &mut State, c: &Caller, cmd: Command) -> Result<(), DomainError> {
        authorize(s, c, &cmd)?;
        for e in decide(s, &cmd)? {
            apply(s, &e, 1);
        }
        Ok(())
    }

    fn given() -> State {
        let mut s = State::default();
        for (t, id) in [("a", 1), ("b", 2)] {
            apply(
                &mut s,
                &Event::TenantCreated(TenantInfo {
                    tenant_id: t.into(),
                    name: t.into(),
                    tier: Tier::Free,
                }),
                1,
            );
            apply(
                &mut s,
                &Event::ExperimentCreated {
                    experiment_id: id,
                    name: "Default".into(),
                    artifact_location: format!("mlflow-artifacts:/{id}"),
                    tags: vec![],
                    tenant: t.into(),
                },
                1,
            );
        }
        s
    }

    #[test]
    fn another_tenants_experiment_answers_like_a_missing_one() {
        let mut s = given();
        let b = caller("b", Role::Admin);
        let foreign = exec(
            &mut s,
            &b,
            Command::SetExperimentTag {
                experiment_id: 1,
                key: "k".into(),
                value: "v".into(),
            },
        )
        .unwrap_err();
        let missing = exec(
            &mut s,
            &b,
            Command::SetExperimentTag {
                experiment_id: 99,
                key: "k".into(),
                value: "v".into(),
            },
        )
        .unwrap_err();
        assert_eq!(foreign, experiment::not_found(1));
        assert_eq!(missing, experiment::not_found(99));
        assert!(readable_experiment(&s, "b", 1).is_err());
        assert!(readable_experiment(&s, "a", 1).is_ok());
        // Names are per tenant: both may have "Default" and "x".
        for (t, c) in [("a", caller("a", Role::Member)), ("b", b)] {
            exec(
                &mut s,
                &c,
                Command::CreateExperiment {
                    name: "x".into(),
                    artifact_location: None,
                    tags: vec![],
                    tenant: t.into(),
                },
            )
            .unwrap();
        }
        assert_eq!(s.resolve_experiment("b", 0), 2);
        assert_eq!(s.resolve_experiment("default", 0), 0);
    }

    #[test]
    fn viewers_cannot_write_and_nobody_creates_in_another_tenant() {
        let mut s = given();
        let v = caller("a", Role::Viewer);
        let e = exec(&mut s, &v, Command::DeleteExperiment { experiment_id: 1 }).unwrap_err();
        assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
        let m = caller("a", Role::Member);
        let e = exec(
            &mut s,
            &m,
            Command::CreateExperiment {
                name: "sneaky".into(),
                artifact_location: None,
                tags: vec![],
                tenant: "b".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    }

    #[test]
    fn only_admins_manage_users_and_only_operators_tenants() {
        let mut s = given();
        let user = |name: &str, tenant: &str| {
            Command::CreateUser(UserInfo {
                username: name.into(),
                tenant_id: tenant.into(),
                role: Role::Member,
                operator: false,
                password_hash: None,
            })
        };
        let member = caller("a", Role::Member);
        assert!(matches!(
            exec(&mut s, &member, user("m2", "a")),
            Err(DomainError::Forbidden(_))
        ));
        let admin = caller("a", Role::Admin);
        exec(&mut s, &admin, user("m2", "a")).unwrap();
        // Another tenant reads as missing to a tenant admin.
        assert!(matches!(
            exec(&mut s, &admin, user("m3", "b")),
            Err(DomainError::NotFound(_))
        ));
        let tier = Command::SetTenantTier {
            tenant_id: "a".into(),
            tier: Tier::Pro,
        };
        assert!(matches!(
            exec(&mut s, &admin, tier.clone()),
            Err(DomainError::Forbidden(_))
        ));
        exec(&mut s, &Caller::bootstrap(), tier).unwrap();
        assert_eq!(s.tenants["a"].info.tier, Tier::Pro);
    }
}
