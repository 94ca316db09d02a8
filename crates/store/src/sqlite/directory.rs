//! Domains, accounts and aliases: the SQL, and the `Directory` trait over it.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sealpost_types::{AccountId, Address, AliasSource, Domain, Secret};

use super::{SqliteStore, mailboxes, rows};
use crate::{
    Account, Alias, ChangeEvent, Directory, DkimAlgorithm, DkimKey, DomainRecord, StoreError,
    StoreResult,
};

fn domain_id(conn: &Connection, domain: &Domain) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM domains WHERE name = ?1")?
        .query_row([domain.as_str()], |row| row.get(0))
        .optional()?)
}

fn served_domain_id(conn: &Connection, domain: &Domain) -> StoreResult<i64> {
    domain_id(conn, domain)?.ok_or_else(|| StoreError::UnknownDomain(domain.to_string()))
}

fn algorithm_name(algorithm: DkimAlgorithm) -> &'static str {
    algorithm.key_type()
}

fn algorithm_from(name: &str) -> StoreResult<DkimAlgorithm> {
    match name {
        "ed25519" => Ok(DkimAlgorithm::Ed25519),
        "rsa" => Ok(DkimAlgorithm::Rsa),
        other => Err(StoreError::Corrupt(format!(
            "unknown DKIM algorithm {other:?}"
        ))),
    }
}

fn add_domain(conn: &Connection, domain: &Domain, keys: &[DkimKey]) -> StoreResult<()> {
    match conn.execute("INSERT INTO domains (name) VALUES (?1)", [domain.as_str()]) {
        Err(e) if rows::is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists(format!("the domain {domain}")));
        }
        other => other?,
    };
    let id = conn.last_insert_rowid();
    for key in keys {
        let inserted = conn.execute(
            "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_pem, \
             public_key_base64) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                key.selector,
                algorithm_name(key.algorithm),
                key.private_key_pem.expose(),
                key.public_key_base64
            ],
        );
        match inserted {
            Err(e) if rows::is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!(
                    "the DKIM selector {} of {domain}",
                    key.selector
                )));
            }
            other => other?,
        };
    }
    Ok(())
}

fn delete_domain(conn: &Connection, domain: &Domain) -> StoreResult<()> {
    let id = domain_id(conn, domain)?
        .ok_or_else(|| StoreError::NotFound(format!("the domain {domain}")))?;
    let accounts: i64 = conn.query_row(
        "SELECT count(*) FROM accounts WHERE domain_id = ?1",
        [id],
        |row| row.get(0),
    )?;
    let aliases: i64 = conn.query_row(
        "SELECT count(*) FROM aliases WHERE domain_id = ?1",
        [id],
        |row| row.get(0),
    )?;
    if accounts > 0 || aliases > 0 {
        return Err(StoreError::InUse(
            format!("the domain {domain}"),
            format!("{accounts} account(s) and {aliases} alias(es) use it; delete them first"),
        ));
    }
    conn.execute("DELETE FROM domains WHERE id = ?1", [id])?;
    Ok(())
}

fn domain_record(conn: &Connection, domain: &Domain) -> StoreResult<Option<DomainRecord>> {
    let Some(id) = domain_id(conn, domain)? else {
        return Ok(None);
    };
    let dkim_keys = rows::collect(
        conn,
        "SELECT selector, algorithm, private_key_pem, public_key_base64 FROM dkim_keys \
         WHERE domain_id = ?1 ORDER BY id",
        [id],
        |row| {
            let algorithm: String = rows::get(row, 1)?;
            Ok(DkimKey {
                selector: rows::get(row, 0)?,
                algorithm: algorithm_from(&algorithm)?,
                private_key_pem: Secret::new(rows::get(row, 2)?),
                public_key_base64: rows::get(row, 3)?,
            })
        },
    )?;
    Ok(Some(DomainRecord {
        name: domain.clone(),
        dkim_keys,
    }))
}

fn list_domains(conn: &Connection) -> StoreResult<Vec<Domain>> {
    let mut domains = rows::collect(conn, "SELECT name FROM domains", [], |row| {
        rows::domain(&rows::get::<String>(row, 0)?)
    })?;
    domains.sort();
    Ok(domains)
}

fn account_row(row: &rusqlite::Row<'_>) -> StoreResult<Account> {
    let quota: Option<i64> = rows::get(row, 3)?;
    Ok(Account {
        id: AccountId(rows::get(row, 0)?),
        address: rows::address(&rows::get::<String>(row, 1)?)?,
        password_hash: Secret::new(rows::get(row, 2)?),
        quota_bytes: quota.and_then(|q| u64::try_from(q).ok()),
    })
}

const ACCOUNT_COLUMNS: &str = "SELECT id, address, password_hash, quota_bytes FROM accounts";

fn account_id(conn: &Connection, address: &str) -> StoreResult<Option<AccountId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM accounts WHERE address = ?1")?
        .query_row([address], |row| row.get(0))
        .optional()?
        .map(AccountId))
}

fn alias_exists(conn: &Connection, source: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM aliases WHERE source = ?1")?
        .exists([source])?)
}

fn add_account(
    conn: &Connection,
    address: &Address,
    password_hash: &str,
) -> StoreResult<AccountId> {
    let domain = served_domain_id(conn, address.domain())?;
    let text = address.to_string();
    if alias_exists(conn, &text)? {
        return Err(StoreError::AlreadyExists(format!(
            "{address} (as an alias)"
        )));
    }
    let inserted = conn.execute(
        "INSERT INTO accounts (address, domain_id, password_hash) VALUES (?1, ?2, ?3)",
        params![text, domain, password_hash],
    );
    match inserted {
        Err(e) if rows::is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists(format!("the account {address}")));
        }
        other => other?,
    };
    let id = AccountId(conn.last_insert_rowid());
    mailboxes::create_defaults(conn, id)?;
    Ok(id)
}

fn delete_account(conn: &Connection, address: &Address) -> StoreResult<AccountId> {
    let id = account_id(conn, &address.to_string())?
        .ok_or_else(|| StoreError::NotFound(format!("the account {address}")))?;
    // Mailboxes, messages and the expunge log go by ON DELETE CASCADE; blobs no longer
    // referred to go with them (trigger messages_release_blob).
    conn.execute("DELETE FROM accounts WHERE id = ?1", [id.0])?;
    Ok(id)
}

fn set_password(conn: &Connection, address: &Address, password_hash: &str) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
        params![password_hash, address.to_string()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("the account {address}")));
    }
    Ok(())
}

fn set_quota(conn: &Connection, address: &Address, quota_bytes: Option<u64>) -> StoreResult<()> {
    let quota = match quota_bytes {
        Some(bytes) => Some(i64::try_from(bytes).map_err(|_| {
            StoreError::Refused(format!(
                "a quota of {bytes} octets is more than can be stored"
            ))
        })?),
        None => None,
    };
    let changed = conn.execute(
        "UPDATE accounts SET quota_bytes = ?1 WHERE address = ?2",
        params![quota, address.to_string()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("the account {address}")));
    }
    Ok(())
}

fn list_accounts(conn: &Connection, domain: Option<&Domain>) -> StoreResult<Vec<Account>> {
    let mut accounts = match domain {
        Some(domain) => rows::collect(
            conn,
            &format!(
                "{ACCOUNT_COLUMNS} WHERE domain_id = (SELECT id FROM domains WHERE name = ?1)"
            ),
            [domain.as_str()],
            account_row,
        )?,
        None => rows::collect(conn, ACCOUNT_COLUMNS, [], account_row)?,
    };
    // Sorted by `Address`'s own order (local part, then domain), not by the text.
    accounts.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(accounts)
}

fn add_alias(conn: &Connection, source: &AliasSource, targets: &[Address]) -> StoreResult<()> {
    let domain = served_domain_id(conn, source.domain())?;
    let text = source.to_string();
    if account_id(conn, &text)?.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "{source} (as an account)"
        )));
    }
    let mut unique: Vec<&Address> = Vec::with_capacity(targets.len());
    for target in targets {
        if !unique.contains(&target) {
            unique.push(target);
        }
    }
    if unique.is_empty() {
        return Err(StoreError::Refused(format!(
            "the alias {source} needs a target"
        )));
    }
    // "Adds or replaces": the old targets go with the old row (ON DELETE CASCADE).
    conn.execute("DELETE FROM aliases WHERE source = ?1", [&text])?;
    conn.execute(
        "INSERT INTO aliases (source, domain_id) VALUES (?1, ?2)",
        params![text, domain],
    )?;
    let alias = conn.last_insert_rowid();
    let mut insert = conn.prepare_cached(
        "INSERT INTO alias_targets (alias_id, position, target) VALUES (?1, ?2, ?3)",
    )?;
    for (position, target) in unique.iter().enumerate() {
        insert.execute(params![alias, position as i64, target.to_string()])?;
    }
    Ok(())
}

fn delete_alias(conn: &Connection, source: &AliasSource) -> StoreResult<()> {
    let changed = conn.execute(
        "DELETE FROM aliases WHERE source = ?1",
        [source.to_string()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("the alias {source}")));
    }
    Ok(())
}

/// Targets of the alias `source`, in the order given; `None` when there is no such alias.
fn alias_targets(conn: &Connection, source: &str) -> StoreResult<Option<Vec<String>>> {
    if !alias_exists(conn, source)? {
        return Ok(None);
    }
    let targets = rows::collect(
        conn,
        "SELECT t.target FROM alias_targets t JOIN aliases a ON a.id = t.alias_id \
         WHERE a.source = ?1 ORDER BY t.position",
        [source],
        |row| rows::get::<String>(row, 0),
    )?;
    Ok(Some(targets))
}

fn list_aliases(conn: &Connection) -> StoreResult<Vec<Alias>> {
    let sources = rows::collect(conn, "SELECT source FROM aliases", [], |row| {
        rows::get::<String>(row, 0)
    })?;
    let mut aliases = Vec::with_capacity(sources.len());
    for source in sources {
        let targets = alias_targets(conn, &source)?
            .unwrap_or_default()
            .iter()
            .map(|t| rows::address(t))
            .collect::<StoreResult<Vec<_>>>()?;
        aliases.push(Alias {
            source: rows::alias_source(&source)?,
            targets,
        });
    }
    // Sorted by `AliasSource`'s own order: addresses first, then catch-alls.
    aliases.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(aliases)
}

/// The local accounts among alias targets, first occurrence first. Targets that are not
/// local accounts (remote forwards, other aliases) are not followed here.
fn local_accounts(conn: &Connection, targets: &[String]) -> StoreResult<Vec<AccountId>> {
    let mut found = Vec::with_capacity(targets.len());
    for target in targets {
        if let Some(id) = account_id(conn, target)?
            && !found.contains(&id)
        {
            found.push(id);
        }
    }
    Ok(found)
}

/// An account, else an alias, with exactly this address. `None` when neither exists; an
/// alias whose targets are all remote answers `Some(empty)`: the alias owns the address,
/// so lower-precedence rules (catch-all) do not apply to it.
fn resolve_exact(conn: &Connection, address: &Address) -> StoreResult<Option<Vec<AccountId>>> {
    let text = address.to_string();
    if let Some(id) = account_id(conn, &text)? {
        return Ok(Some(vec![id]));
    }
    match alias_targets(conn, &text)? {
        Some(targets) => local_accounts(conn, &targets).map(Some),
        None => Ok(None),
    }
}

/// The accounts that own `address`: an account or alias with exactly that address, else the
/// same for the address without its `+tag`. `None` when neither exists (the catch-all's
/// turn).
fn resolve_owned(conn: &Connection, address: &Address) -> StoreResult<Option<Vec<AccountId>>> {
    if let Some(found) = resolve_exact(conn, address)? {
        return Ok(Some(found));
    }
    // RFC 5233: "user+detail" is delivered to "user" when nothing matches it exactly.
    match address.without_subaddress() {
        Some(base) => resolve_exact(conn, &base),
        None => Ok(None),
    }
}

fn resolve_recipient(conn: &Connection, address: &Address) -> StoreResult<Vec<AccountId>> {
    if let Some(found) = resolve_owned(conn, address)? {
        return Ok(found);
    }
    let catch_all = AliasSource::CatchAll(address.domain().clone()).to_string();
    match alias_targets(conn, &catch_all)? {
        Some(targets) => local_accounts(conn, &targets),
        None => Ok(Vec::new()),
    }
}

/// An account may send as the addresses whose mail reaches it by any rule but the
/// catch-all: its own (with or without `+tag`) and those of aliases that include it. The
/// catch-all is left out on purpose: it would hand every unused address of the domain,
/// such as `postmaster` or a colleague not yet created, to whoever it delivers to.
fn may_send_as(conn: &Connection, account: AccountId, address: &Address) -> StoreResult<bool> {
    Ok(resolve_owned(conn, address)?.is_some_and(|owners| owners.contains(&account)))
}

#[async_trait]
impl Directory for SqliteStore {
    async fn add_domain(&self, domain: &Domain, dkim_keys: Vec<DkimKey>) -> StoreResult<()> {
        let domain = domain.clone();
        self.writer
            .write(move |txn| add_domain(txn, &domain, &dkim_keys))
            .await
    }

    async fn delete_domain(&self, domain: &Domain) -> StoreResult<()> {
        let domain = domain.clone();
        self.writer
            .write(move |txn| delete_domain(txn, &domain))
            .await
    }

    async fn domain(&self, domain: &Domain) -> StoreResult<Option<DomainRecord>> {
        let domain = domain.clone();
        self.readers
            .read(move |txn| domain_record(txn, &domain))
            .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.readers.read(|txn| list_domains(txn)).await
    }

    async fn add_account(&self, address: &Address, password_hash: &str) -> StoreResult<AccountId> {
        let address = address.clone();
        let hash = password_hash.to_string();
        self.writer
            .write(move |txn| add_account(txn, &address, &hash))
            .await
    }

    async fn delete_account(&self, address: &Address) -> StoreResult<()> {
        let address = address.clone();
        let id = self
            .writer
            .write(move |txn| delete_account(txn, &address))
            .await?;
        self.events.publish(id, ChangeEvent::MailboxesChanged);
        self.events.forget(id);
        Ok(())
    }

    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        let address = address.to_string();
        self.readers
            .read(move |txn| {
                rows::first(
                    txn,
                    &format!("{ACCOUNT_COLUMNS} WHERE address = ?1"),
                    [address],
                    account_row,
                )
            })
            .await
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.readers
            .read(move |txn| {
                rows::first(
                    txn,
                    &format!("{ACCOUNT_COLUMNS} WHERE id = ?1"),
                    [id.0],
                    account_row,
                )
            })
            .await
    }

    async fn list_accounts(&self, domain: Option<&Domain>) -> StoreResult<Vec<Account>> {
        let domain = domain.cloned();
        self.readers
            .read(move |txn| list_accounts(txn, domain.as_ref()))
            .await
    }

    async fn set_password(&self, address: &Address, password_hash: &str) -> StoreResult<()> {
        let address = address.clone();
        let hash = password_hash.to_string();
        self.writer
            .write(move |txn| set_password(txn, &address, &hash))
            .await
    }

    async fn set_quota(&self, address: &Address, quota_bytes: Option<u64>) -> StoreResult<()> {
        let address = address.clone();
        self.writer
            .write(move |txn| set_quota(txn, &address, quota_bytes))
            .await
    }

    async fn add_alias(&self, source: &AliasSource, targets: &[Address]) -> StoreResult<()> {
        let source = source.clone();
        let targets = targets.to_vec();
        self.writer
            .write(move |txn| add_alias(txn, &source, &targets))
            .await
    }

    async fn delete_alias(&self, source: &AliasSource) -> StoreResult<()> {
        let source = source.clone();
        self.writer
            .write(move |txn| delete_alias(txn, &source))
            .await
    }

    async fn list_aliases(&self) -> StoreResult<Vec<Alias>> {
        self.readers.read(|txn| list_aliases(txn)).await
    }

    async fn resolve_recipient(&self, address: &Address) -> StoreResult<Vec<AccountId>> {
        let address = address.clone();
        self.readers
            .read(move |txn| resolve_recipient(txn, &address))
            .await
    }

    async fn may_send_as(&self, account: AccountId, address: &Address) -> StoreResult<bool> {
        let address = address.clone();
        self.readers
            .read(move |txn| may_send_as(txn, account, &address))
            .await
    }
}
