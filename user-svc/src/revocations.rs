//! user-svc's own verifier reads the token revocation list from its
//! database, the same list the other services fetch over gRPC.

use async_trait::async_trait;
use oms_runtime::auth::revocations::{MAX_ENTRIES, Revocation, RevocationSource};

use crate::accounts::Accounts;

/// The list as [`Accounts::revocations`] pages it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRevocations(pub(crate) Accounts);

#[async_trait]
impl RevocationSource for StoredRevocations {
    async fn fetch(&self) -> Result<Vec<Revocation>, String> {
        const PAGE: u64 = 1000;
        let mut listed = Vec::new();
        let mut offset = Some(0);
        while let Some(from) = offset {
            let (page, next) = self
                .0
                .revocations(from, PAGE)
                .await
                .map_err(|e| format!("reading token revocations: {e}"))?;
            listed.extend(page);
            if listed.len() > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} revocations listed"));
            }
            offset = next;
        }
        Ok(listed)
    }
}
