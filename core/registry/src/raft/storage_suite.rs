//! openraft's storage conformance suite, run against the on-disk log and
//! state machine, each case in a fresh temporary directory.

#![allow(clippy::unwrap_used)]

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{StorageError, TypeConfig};

struct TempStore;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for TempStore {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        let sm = StateMachine::open(dir.path()).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn the_log_and_state_machine_pass_openraft_s_storage_suite() {
    Suite::test_all(TempStore).unwrap();
}
