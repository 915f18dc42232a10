//! How many `git upload-pack` processes may run at once: in all (past it: `503`) and per client
//! address (past it: `429`). A slot is held by the answer's stream and freed when it ends or is
//! dropped, so a stalled client holds at most its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct GitSlots {
    total: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
}

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The server runs its maximum of git processes.
    Busy,
    /// This address runs its maximum.
    Address,
}

/// One running upload-pack; frees its slot when dropped.
pub struct GitSlot {
    _permit: OwnedSemaphorePermit,
    address: Option<IpAddr>,
    slots: Arc<GitSlots>,
}

impl GitSlots {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<GitSlots> {
        Arc::new(GitSlots {
            total: Arc::new(Semaphore::new(max_total.max(1))),
            per_address: Mutex::new(HashMap::new()),
            max_per_address: max_per_address.max(1),
        })
    }

    pub fn take(self: &Arc<Self>, address: Option<IpAddr>) -> Result<GitSlot, Refused> {
        if let Some(addr) = address {
            let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(addr).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Refused::Address);
            }
            *n += 1;
        }
        match self.total.clone().try_acquire_owned() {
            Ok(permit) => Ok(GitSlot {
                _permit: permit,
                address,
                slots: self.clone(),
            }),
            Err(_) => {
                self.release(address);
                Err(Refused::Busy)
            }
        }
    }

    fn release(&self, address: Option<IpAddr>) {
        if let Some(addr) = address {
            let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&addr) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&addr);
                }
            }
        }
    }

    /// Running processes.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.per_address.lock().map(|m| m.values().sum()).unwrap_or(0)
    }
}

impl Drop for GitSlot {
    fn drop(&mut self) {
        self.slots.release(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_all() {
        let slots = GitSlots::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = slots.take(Some(a)).unwrap();
        let _a2 = slots.take(Some(a)).unwrap();
        assert_eq!(slots.take(Some(a)).err(), Some(Refused::Address));
        let _b1 = slots.take(Some(b)).unwrap();
        assert_eq!(slots.take(Some(b)).err(), Some(Refused::Busy));
        drop(a1);
        let _b2 = slots.take(Some(b)).expect("a freed slot is given again");
        assert_eq!(slots.running(), 3);
    }
}
